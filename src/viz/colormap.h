/* Colour maps and the mapping of data values onto them. */
#ifndef BCAE_VIZ_COLORMAP_H
#define BCAE_VIZ_COLORMAP_H

#include <stdint.h>

#include "bcae.h" /* bcae_rgb */

typedef enum bcae_colormap {
    /* Dark purple through teal and green to yellow, perceptually ordered
     * (a viridis-like approximation): for magnitudes such as log2(ADC+1). */
    BCAE_CMAP_SEQUENTIAL = 0,
    /* Blue, white at the centre, red: for signed differences. */
    BCAE_CMAP_DIVERGING,
    BCAE_CMAP_COUNT
} bcae_colormap;

/* The colour at position t of a map; t is clamped to [0, 1] and NaN reads
 * as 0. Piecewise linear between the map's anchors, so the anchors
 * themselves (t = 0, 1, and 0.5 for the diverging map) are exact. */
bcae_rgb bcae_colormap_rgb(bcae_colormap map, double t);

/* How a panel turns values into colours. */
typedef struct bcae_color_scale {
    bcae_colormap map;
    double vmin, vmax;  /* mapped to t = 0 and t = 1; outside values saturate */
    int zero_is_empty;  /* exact 0 (an empty voxel) is drawn as `empty` */
    bcae_rgb empty;     /* also used for NaN */
} bcae_color_scale;

bcae_rgb bcae_color_scale_rgb(const bcae_color_scale *s, double v);

#endif
