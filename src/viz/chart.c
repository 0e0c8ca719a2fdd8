#include "viz/chart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "viz/font.h"

#define MAX_TICKS 32

static int text_size(const bcae_chart *ch) { return ch->text.size < 1 ? 1 : ch->text.size; }

static void tick_label(char *buf, size_t n, double v) { snprintf(buf, n, "%g", v); }

int bcae_chart_ticks(const bcae_chart_axis *a, double *ticks, int max)
{
    double lo = a->min, hi = a->max;
    int n = 0;
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi)) return 0;
    if (a->log) {
        if (!(lo > 0)) return 0;
        /* Whole decades, and 2 and 5 between them when there are few. */
        int with_mid = log10(hi / lo) <= 2 + 1e-9;
        for (int e = (int)floor(log10(lo)); e <= (int)ceil(log10(hi)) && n < max; e++) {
            static const double mult[3] = {1, 2, 5};
            for (int k = 0; k < (with_mid ? 3 : 1) && n < max; k++) {
                double v = mult[k] * pow(10, e);
                if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks[n++] = v;
            }
        }
        return n;
    }
    double raw = (hi - lo) / 5, mag = pow(10, floor(log10(raw))), norm = raw / mag;
    double step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
    for (double k = ceil(lo / step - 1e-9); n < max; k++) {
        double v = k * step;
        if (v > hi + step * 1e-9) break;
        ticks[n++] = fabs(v) < step * 1e-9 ? 0 : v; /* no "-0" label */
    }
    return n;
}

/* Position of v along an axis as a fraction of its length; NaN if the
 * axis cannot show it. */
static double axis_fraction(const bcae_chart_axis *a, double v)
{
    if (!isfinite(v)) return NAN;
    if (a->log) {
        if (!(v > 0) || !(a->min > 0) || !(a->max > a->min)) return NAN;
        return log(v / a->min) / log(a->max / a->min);
    }
    if (!(a->max > a->min)) return NAN;
    return (v - a->min) / (a->max - a->min);
}

double bcae_chart_px(const bcae_chart *ch, double x)
{
    return ch->x + axis_fraction(&ch->xaxis, x) * (ch->w - 1);
}

double bcae_chart_py(const bcae_chart *ch, double y)
{
    return ch->y + (1 - axis_fraction(&ch->yaxis, y)) * (ch->h - 1);
}

static int widest_tick_label(const bcae_chart_axis *a, int size)
{
    double t[MAX_TICKS];
    int n = bcae_chart_ticks(a, t, MAX_TICKS), widest = 0;
    char buf[32];
    for (int i = 0; i < n; i++) {
        tick_label(buf, sizeof buf, t[i]);
        int w = bcae_font_text_width(buf, size);
        if (w > widest) widest = w;
    }
    return widest;
}

void bcae_chart_margins(const bcae_chart *ch, int *left, int *bottom, int *top)
{
    int s = text_size(ch), line = BCAE_FONT_HEIGHT * s;
    *left = 3 * s + 2 * s + widest_tick_label(&ch->yaxis, s) +
            (ch->yaxis.label && ch->yaxis.label[0] ? 3 * s + line : 0) + 2 * s;
    *bottom = 3 * s + 2 * s + line + (ch->xaxis.label && ch->xaxis.label[0] ? 3 * s + line : 0) +
              2 * s;
    *top = ch->title && ch->title[0] ? line + 4 * s : 2 * s;
}

void bcae_chart_draw_axes(bcae_canvas *c, const bcae_chart *ch)
{
    int s = text_size(ch), tick = 3 * s, gap = 2 * s, line = BCAE_FONT_HEIGHT * s;
    bcae_text_style ts = ch->text;
    ts.size = s;
    ts.vertical = 0;
    double t[MAX_TICKS];
    char buf[32];

    /* Grid first, so that the frame and the data lie over it. */
    int nx = bcae_chart_ticks(&ch->xaxis, t, MAX_TICKS);
    for (int i = 0; i < nx; i++) {
        int px = (int)lround(bcae_chart_px(ch, t[i]));
        bcae_canvas_fill_rect(c, px, ch->y, 1, ch->h, ch->grid);
        bcae_canvas_fill_rect(c, px, ch->y + ch->h, 1, tick, ch->text.colour);
        tick_label(buf, sizeof buf, t[i]);
        ts.align = BCAE_ALIGN_CENTER;
        bcae_canvas_text(c, px, ch->y + ch->h + tick + gap, buf, &ts);
    }
    int ny = bcae_chart_ticks(&ch->yaxis, t, MAX_TICKS);
    for (int i = 0; i < ny; i++) {
        int py = (int)lround(bcae_chart_py(ch, t[i]));
        bcae_canvas_fill_rect(c, ch->x, py, ch->w, 1, ch->grid);
        bcae_canvas_fill_rect(c, ch->x - 1 - tick, py, tick, 1, ch->text.colour);
        tick_label(buf, sizeof buf, t[i]);
        ts.align = BCAE_ALIGN_END;
        bcae_canvas_text(c, ch->x - 1 - tick - gap, py - BCAE_FONT_CAP_HEIGHT * s / 2, buf, &ts);
    }
    bcae_canvas_frame(c, ch->x, ch->y, ch->w, ch->h, ch->text.colour);

    if (ch->xaxis.label && ch->xaxis.label[0]) {
        ts.align = BCAE_ALIGN_CENTER;
        bcae_canvas_text(c, ch->x + ch->w / 2, ch->y + ch->h + tick + gap + line + 3 * s,
                         ch->xaxis.label, &ts);
    }
    if (ch->yaxis.label && ch->yaxis.label[0]) {
        ts.align = BCAE_ALIGN_CENTER;
        ts.vertical = 1;
        int lx = ch->x - 1 - tick - gap - widest_tick_label(&ch->yaxis, s) - 3 * s - line;
        bcae_canvas_text(c, lx, ch->y + ch->h / 2, ch->yaxis.label, &ts);
        ts.vertical = 0;
    }
    if (ch->title && ch->title[0]) {
        ts.align = BCAE_ALIGN_CENTER;
        bcae_canvas_text(c, ch->x + ch->w / 2, ch->y - line - 3 * s, ch->title, &ts);
    }
}

void bcae_canvas_line(bcae_canvas *c, double x0, double y0, double x1, double y1, int width,
                      bcae_rgb colour)
{
    if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1) || width < 1) return;
    /* A square pen stepped one pixel at a time along the longer direction. */
    double dx = x1 - x0, dy = y1 - y0;
    double len = fabs(dx) > fabs(dy) ? fabs(dx) : fabs(dy);
    if (len > 4.0 * BCAE_CANVAS_MAX_SIDE) return; /* not a picture's line */
    int steps = (int)ceil(len);
    int half = (width - 1) / 2;
    for (int i = 0; i <= steps; i++) {
        double t = steps ? (double)i / steps : 0;
        int px = (int)lround(x0 + t * dx), py = (int)lround(y0 + t * dy);
        bcae_canvas_fill_rect(c, px - half, py - half, width, width, colour);
    }
}

void bcae_canvas_marker(bcae_canvas *c, int x, int y, bcae_marker m, int size, bcae_rgb colour)
{
    int r = size / 2;
    if (r < 1) r = 1;
    switch (m) {
    case BCAE_MARKER_NONE:
        break;
    case BCAE_MARKER_SQUARE:
        bcae_canvas_fill_rect(c, x - r, y - r, 2 * r + 1, 2 * r + 1, colour);
        break;
    case BCAE_MARKER_CIRCLE:
    case BCAE_MARKER_STAR:
        for (int j = -r; j <= r; j++)
            for (int i = -r; i <= r; i++) {
                int d2 = i * i + j * j;
                int inside = d2 <= r * r + r / 2;
                if (m == BCAE_MARKER_STAR) {
                    /* A dot, a white gap, a ring. */
                    int rin = r / 2;
                    if (d2 <= rin * rin) bcae_canvas_set(c, x + i, y + j, colour);
                    else if (inside && d2 > (r - 2) * (r - 2))
                        bcae_canvas_set(c, x + i, y + j, colour);
                } else if (inside) {
                    bcae_canvas_set(c, x + i, y + j, colour);
                }
            }
        break;
    case BCAE_MARKER_DIAMOND:
        for (int j = -r; j <= r; j++)
            for (int i = -r; i <= r; i++)
                if (abs(i) + abs(j) <= r) bcae_canvas_set(c, x + i, y + j, colour);
        break;
    case BCAE_MARKER_TRIANGLE:
        for (int j = -r; j <= r; j++) {
            int half = (j + r) / 2; /* apex up, base at y + r */
            bcae_canvas_fill_rect(c, x - half, y + j, 2 * half + 1, 1, colour);
        }
        break;
    case BCAE_MARKER_CROSS: {
        int w = size >= 8 ? 2 : 1;
        bcae_canvas_line(c, x - r, y - r, x + r, y + r, w, colour);
        bcae_canvas_line(c, x - r, y + r, x + r, y - r, w, colour);
        break;
    }
    }
}

/* Liang-Barsky: clips the segment to [xmin, xmax] x [ymin, ymax]; 0 if
 * nothing of it is inside. */
static int clip_segment(double *x0, double *y0, double *x1, double *y1, double xmin, double ymin,
                        double xmax, double ymax)
{
    double t0 = 0, t1 = 1, dx = *x1 - *x0, dy = *y1 - *y0;
    double p[4] = {-dx, dx, -dy, dy};
    double q[4] = {*x0 - xmin, xmax - *x0, *y0 - ymin, ymax - *y0};
    for (int k = 0; k < 4; k++) {
        if (p[k] == 0) {
            if (q[k] < 0) return 0;
            continue;
        }
        double r = q[k] / p[k];
        if (p[k] < 0) {
            if (r > t1) return 0;
            if (r > t0) t0 = r;
        } else {
            if (r < t0) return 0;
            if (r < t1) t1 = r;
        }
    }
    double ax = *x0 + t0 * dx, ay = *y0 + t0 * dy, bx = *x0 + t1 * dx, by = *y0 + t1 * dy;
    *x0 = ax;
    *y0 = ay;
    *x1 = bx;
    *y1 = by;
    return 1;
}

void bcae_chart_series(bcae_canvas *c, const bcae_chart *ch, const double *xs, const double *ys,
                       int n, int line_width, bcae_marker m, int marker_size, bcae_rgb colour)
{
    double xmin = ch->x, ymin = ch->y, xmax = ch->x + ch->w - 1, ymax = ch->y + ch->h - 1;
    if (line_width > 0)
        for (int i = 0; i + 1 < n; i++) {
            double x0 = bcae_chart_px(ch, xs[i]), y0 = bcae_chart_py(ch, ys[i]);
            double x1 = bcae_chart_px(ch, xs[i + 1]), y1 = bcae_chart_py(ch, ys[i + 1]);
            if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1)) continue;
            if (clip_segment(&x0, &y0, &x1, &y1, xmin, ymin, xmax, ymax))
                bcae_canvas_line(c, x0, y0, x1, y1, line_width, colour);
        }
    if (m != BCAE_MARKER_NONE)
        for (int i = 0; i < n; i++) {
            double px = bcae_chart_px(ch, xs[i]), py = bcae_chart_py(ch, ys[i]);
            if (!isfinite(px) || !isfinite(py) || px < xmin || px > xmax || py < ymin ||
                py > ymax)
                continue;
            bcae_canvas_marker(c, (int)lround(px), (int)lround(py), m, marker_size, colour);
        }
}

/* Legend geometry, proportional to the text size. */
static int sample_width(int s) { return 8 * s; }

void bcae_legend_size(const bcae_legend_entry *e, int n, const bcae_text_style *text, int *w,
                      int *h)
{
    int s = text->size < 1 ? 1 : text->size, widest = 0;
    for (int i = 0; i < n; i++) {
        int tw = bcae_font_text_width(e[i].label ? e[i].label : "", s);
        if (tw > widest) widest = tw;
    }
    *w = 3 * s + sample_width(s) + 3 * s + widest + 3 * s;
    *h = 2 * s + n * (BCAE_FONT_HEIGHT * s + 3 * s) + s;
}

void bcae_canvas_legend(bcae_canvas *c, int x, int y, const bcae_legend_entry *e, int n,
                        const bcae_text_style *text, bcae_rgb background)
{
    int s = text->size < 1 ? 1 : text->size, w, h;
    bcae_legend_size(e, n, text, &w, &h);
    bcae_canvas_fill_rect(c, x, y, w, h, background);
    bcae_canvas_frame(c, x, y, w, h, text->colour);
    bcae_text_style ts = *text;
    ts.size = s;
    ts.align = BCAE_ALIGN_START;
    ts.vertical = 0;
    for (int i = 0; i < n; i++) {
        int ty = y + 2 * s + i * (BCAE_FONT_HEIGHT * s + 3 * s);
        int cy = ty + BCAE_FONT_CAP_HEIGHT * s / 2, sx = x + 3 * s;
        if (e[i].line_width > 0)
            bcae_canvas_line(c, sx, cy, sx + sample_width(s) - 1, cy, e[i].line_width,
                             e[i].colour);
        bcae_canvas_marker(c, sx + sample_width(s) / 2, cy, e[i].marker, 3 * s + 1, e[i].colour);
        bcae_canvas_text(c, sx + sample_width(s) + 3 * s, ty, e[i].label ? e[i].label : "", &ts);
    }
}
