/*
 * Pictures of TPC wedges, the internals: the layout and rendering onto a
 * canvas behind the public bcae_plot_wedges (include/bcae.h, "Pictures of
 * wedges", which has the options). Built on the canvas API (viz/canvas.h),
 * which figures of other arrangements can use directly.
 */
#ifndef BCAE_VIZ_PLOT_H
#define BCAE_VIZ_PLOT_H

#include <stdint.h>

#include "bcae.h"
#include "viz/canvas.h"
#include "viz/colormap.h"

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

#endif
