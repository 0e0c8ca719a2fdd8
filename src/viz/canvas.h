/*
 * An RGB raster to compose figures on, and the few things figures are made
 * of: filled and outlined rectangles, text in the built-in font, heat-map
 * panels of 2D arrays, colour bars. Written out as PNG.
 *
 * Coordinates are pixels, x to the right and y down from the top-left
 * corner. Drawing clips to the canvas, so callers may draw partly outside
 * it without checks.
 */
#ifndef BCAE_VIZ_CANVAS_H
#define BCAE_VIZ_CANVAS_H

#include <stdint.h>

#include "bcae.h"
#include "viz/colormap.h"

typedef struct bcae_canvas {
    int width, height;
    uint8_t *pixels; /* width * height * 3 bytes, rows top to bottom, R G B */
} bcae_canvas;

/* Allocates a canvas filled with `background`. Sizes must be in
 * [1, BCAE_CANVAS_MAX_SIDE]. */
#define BCAE_CANVAS_MAX_SIDE 32768
bcae_status bcae_canvas_init(bcae_canvas *c, int width, int height, bcae_rgb background,
                             bcae_error *err);
void bcae_canvas_free(bcae_canvas *c);

/* The pixel at (x, y); black outside the canvas. */
bcae_rgb bcae_canvas_get(const bcae_canvas *c, int x, int y);
void bcae_canvas_set(bcae_canvas *c, int x, int y, bcae_rgb colour);
void bcae_canvas_fill_rect(bcae_canvas *c, int x, int y, int w, int h, bcae_rgb colour);
/* A one-pixel frame drawn just outside the w x h box at (x, y), so that it
 * never covers the box's own pixels. */
void bcae_canvas_frame(bcae_canvas *c, int x, int y, int w, int h, bcae_rgb colour);

typedef enum bcae_text_align {
    BCAE_ALIGN_START = 0, /* (x, y) is the top-left corner of the text box */
    BCAE_ALIGN_CENTER,    /* x (or y, for vertical text) is the centre */
    BCAE_ALIGN_END        /* x (or y, for vertical text) is the right (bottom) edge */
} bcae_text_align;

typedef struct bcae_text_style {
    int size;            /* integer magnification of the 5x9 font, >= 1 */
    bcae_rgb colour;
    bcae_text_align align;
    int vertical;        /* rotated a quarter turn counter-clockwise: reads upward */
} bcae_text_style;

/* Draws one line of text. Horizontal text occupies a box of
 * bcae_font_text_width() x BCAE_FONT_HEIGHT * size whose top is y; vertical
 * text a box BCAE_FONT_HEIGHT * size wide, whose left edge is x, and as
 * tall as the text is long. */
void bcae_canvas_text(bcae_canvas *c, int x, int y, const char *text,
                      const bcae_text_style *style);

/* Draws a rows x cols array of values as a heat map whose top-left pixel is
 * (x, y), each value a scale x scale block. Row 0 is drawn at the top unless
 * origin_lower is set, in which case it is at the bottom (as on a plot with
 * the vertical axis pointing up). `row_stride` is the distance in elements
 * between consecutive rows of `values`. */
void bcae_canvas_heatmap(bcae_canvas *c, int x, int y, const float *values, int rows, int cols,
                         int row_stride, int scale, int origin_lower,
                         const bcae_color_scale *cs);

/* A vertical colour bar: the gradient (vmax at the top), tick marks and
 * tick labels on its right, and the label, reading upward, beyond them. */
typedef struct bcae_colorbar {
    bcae_color_scale scale;
    const double *ticks; /* values in [vmin, vmax]; labelled with "%g" */
    int nticks;
    const char *label;   /* may be NULL */
    int bar_width;       /* pixels */
    bcae_text_style text;
} bcae_colorbar;

/* Total width the colour bar occupies, from the bar's left edge to the end
 * of its label. */
int bcae_colorbar_width(const bcae_colorbar *cb);
/* Draws the bar with its top-left corner at (x, y) and height h, framed in
 * the text colour. */
void bcae_canvas_colorbar(bcae_canvas *c, int x, int y, int h, const bcae_colorbar *cb);

/* Writes the canvas as an 8-bit RGB PNG, atomically: a temporary file next
 * to `path` is renamed over it only once complete, so a failure leaves no
 * partial file (and an existing `path` untouched). */
bcae_status bcae_canvas_write_png(const bcae_canvas *c, const char *path, bcae_error *err);

#endif
