/*
 * Pictures of TPC wedges: each wedge a heat-map panel of azimuth (vertical,
 * 192 rows, azimuth 0 at the bottom) by z (horizontal, 249 columns) in
 * log2(ADC+1), side by side, optionally with a panel of the difference of
 * two wedges. Built on the canvas API (viz/canvas.h), which figures of other
 * arrangements can use directly.
 */
#ifndef BCAE_VIZ_PLOT_H
#define BCAE_VIZ_PLOT_H

#include <stdint.h>

#include "bcae.h"
#include "viz/canvas.h"
#include "viz/colormap.h"

#define BCAE_PLOT_MAX_PANELS 8
#define BCAE_PLOT_MAX_SCALE 8
#define BCAE_PLOT_ALL_LAYERS (-1)

typedef struct bcae_plot_options {
    int layer;         /* BCAE_PLOT_ALL_LAYERS: maximum over the 16 layers; else 0..15 */
    int scale;         /* pixels per voxel side, 1..BCAE_PLOT_MAX_SCALE */
    const char *title; /* figure title; NULL or "" for none */
    int difference;    /* with exactly two wedges A, B: a third panel log2(B+1) - log2(A+1) */
    double vmin, vmax; /* log2(ADC+1) colour range; 0 (empty) is always drawn as `empty` */
    double diff_range; /* the difference panel spans [-diff_range, diff_range] */
    bcae_rgb empty;    /* colour of empty voxels (the figure's own background is white) */
} bcae_plot_options;

/* layer = all, scale 2, no title, no difference, range [6, 10] (zero
 * suppression puts every non-zero ADC at log2(65) > 6, the 10-bit maximum at
 * log2(1024) = 10), difference range 2, white. */
void bcae_plot_options_default(bcae_plot_options *opt);

/* Where things are in a figure, for drawing and for finding a voxel's pixels. */
typedef struct bcae_plot_layout {
    int width, height;                 /* the whole figure */
    int scale;                         /* pixels per voxel side */
    int font;                          /* text magnification */
    int npanels;                       /* wedges, plus one for a difference */
    int panel_x[BCAE_PLOT_MAX_PANELS]; /* left edge of each heat map */
    int panel_y;                       /* top edge of the heat maps */
    int panel_w, panel_h;              /* BCAE_WEDGE_Z * scale, BCAE_WEDGE_AZIMUTH * scale */
    int colorbar_x;                    /* left edge of the log2(ADC+1) colour bar */
    int diff_colorbar_x;               /* left edge of the difference colour bar; -1 if none */
    int caption_below;                 /* the layer caption has a line of its own */
} bcae_plot_layout;

/* Checks the options against n wedges and computes the figure's layout. */
bcae_status bcae_plot_layout_compute(int n, const bcae_plot_options *opt,
                                     bcae_plot_layout *lay, bcae_error *err);

/* Top-left pixel of the scale x scale block that shows voxel (azimuth, z)
 * in panel p. */
void bcae_plot_voxel_pixel(const bcae_plot_layout *lay, int panel, int azimuth, int z, int *x,
                           int *y);

/* The 2D picture of a wedge: image[azimuth * BCAE_WEDGE_Z + z] =
 * log2(a + 1), where a is the ADC of that layer, or its maximum over the
 * layers for BCAE_PLOT_ALL_LAYERS; 0 stays 0. */
void bcae_plot_project(const uint16_t *adc, int layer, float *image);

/* Draws the figure onto `c`, which it initialises (free it with
 * bcae_canvas_free, also after an error). wedges[i] are BCAE_WEDGE_VOXELS
 * ADC values in (azimuth, z, layer) order; titles (or any of its entries)
 * may be NULL. `lay` (may be NULL) receives the layout. */
bcae_status bcae_plot_render(bcae_canvas *c, const uint16_t *const *wedges,
                             const char *const *titles, int n, const bcae_plot_options *opt,
                             bcae_plot_layout *lay, bcae_error *err);

/* bcae_plot_render, then bcae_canvas_write_png to `path` (atomically: no
 * partial file on failure). opt may be NULL for the defaults. */
bcae_status bcae_plot_wedges(const char *path, const uint16_t *const *wedges,
                             const char *const *titles, int n, const bcae_plot_options *opt,
                             bcae_error *err);

#endif
