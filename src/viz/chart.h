/*
 * Line charts on a canvas: a framed plot box with linear or logarithmic
 * axes, tick labels and axis titles; data series drawn as polylines and/or
 * markers, clipped to the box; and a legend. For curves such as a
 * rate-distortion sweep; the wedge heat maps are viz/plot.h.
 */
#ifndef BCAE_VIZ_CHART_H
#define BCAE_VIZ_CHART_H

#include "viz/canvas.h"

typedef struct bcae_chart_axis {
    double min, max;   /* the data range the box spans (both > 0 for a log axis) */
    int log;           /* logarithmic (base 10) instead of linear */
    const char *label; /* axis title; may be NULL */
} bcae_chart_axis;

typedef struct bcae_chart {
    int x, y, w, h;        /* the plot box in pixels (axes, labels are drawn outside it) */
    bcae_chart_axis xaxis, yaxis;
    bcae_text_style text;  /* size and colour of tick labels and titles */
    bcae_rgb grid;         /* colour of the grid lines at the ticks */
    const char *title;     /* above the box; may be NULL */
} bcae_chart;

typedef enum bcae_marker {
    BCAE_MARKER_NONE = 0,
    BCAE_MARKER_CIRCLE,
    BCAE_MARKER_SQUARE,
    BCAE_MARKER_DIAMOND,
    BCAE_MARKER_TRIANGLE,
    BCAE_MARKER_CROSS,
    BCAE_MARKER_STAR /* a filled circle with a ring: to single out a point */
} bcae_marker;

/* Space the labels need around the plot box, for laying out a figure:
 * left (tick labels and the y title), bottom (tick labels and the x title),
 * top (the title). */
void bcae_chart_margins(const bcae_chart *ch, int *left, int *bottom, int *top);

/* Tick positions of an axis: 1, 2 or 5 times a power of ten on a linear
 * axis (about six), powers of ten on a log axis (with 2 and 5 between them
 * when it spans at most two decades). Returns how many, at most max. */
int bcae_chart_ticks(const bcae_chart_axis *axis, double *ticks, int max);

/* Pixel position of a data value along an axis; NaN for a value the axis
 * cannot show (non-finite, or <= 0 on a log axis). */
double bcae_chart_px(const bcae_chart *ch, double x);
double bcae_chart_py(const bcae_chart *ch, double y);

/* The box's frame, grid, ticks and their labels, the axis titles and the
 * chart title. */
void bcae_chart_draw_axes(bcae_canvas *c, const bcae_chart *ch);

/* A straight line `width` pixels thick between two pixel positions,
 * clipped to the canvas. */
void bcae_canvas_line(bcae_canvas *c, double x0, double y0, double x1, double y1, int width,
                      bcae_rgb colour);
/* A marker of `size` pixels across centred on (x, y). */
void bcae_canvas_marker(bcae_canvas *c, int x, int y, bcae_marker m, int size, bcae_rgb colour);

/* n points (xs[i], ys[i]) in data units, in order, as a polyline of the
 * given width (0: none) and/or markers, clipped to the plot box. A point the
 * axes cannot show (see bcae_chart_px) breaks the line there. */
void bcae_chart_series(bcae_canvas *c, const bcae_chart *ch, const double *xs, const double *ys,
                       int n, int line_width, bcae_marker m, int marker_size, bcae_rgb colour);

typedef struct bcae_legend_entry {
    const char *label;
    bcae_rgb colour;
    int line_width;    /* 0: no line sample */
    bcae_marker marker;
} bcae_legend_entry;

/* Size of a legend box holding the entries, one a line. */
void bcae_legend_size(const bcae_legend_entry *e, int n, const bcae_text_style *text, int *w,
                      int *h);
/* Draws the legend with its top-left corner at (x, y), on `background`
 * inside a frame of the text colour. */
void bcae_canvas_legend(bcae_canvas *c, int x, int y, const bcae_legend_entry *e, int n,
                        const bcae_text_style *text, bcae_rgb background);

#endif
