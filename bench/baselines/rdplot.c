/* The rate-distortion figure: MAE and PSNR (dB) against the compression
 * ratio, one curve per lossy family in sweep order, lossless methods and
 * BCAE models as points, a grey line at the target ratio. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "baselines.h"
#include "core/error.h"
#include "viz/chart.h"

#define MAX_FAMILIES 16

static const bcae_rgb PAPER = {255, 255, 255}, INK = {35, 35, 35}, GRID = {228, 228, 228},
                      TARGET = {160, 160, 160};
/* Distinct, colour-blind-friendly hues (Okabe-Ito and a few more). */
static const bcae_rgb PALETTE[] = {{0, 114, 178},  {213, 94, 0},   {0, 158, 115},
                                   {204, 121, 167}, {230, 159, 0},  {86, 180, 233},
                                   {120, 120, 120}, {150, 60, 30},  {90, 50, 160},
                                   {0, 90, 60}};
#define NPALETTE ((int)(sizeof PALETTE / sizeof PALETTE[0]))
static const bcae_rgb BCAE_COLOUR = {200, 0, 40};

typedef struct family {
    const char *name;
    int rows[64];
    int n;
    int points_only; /* lossless methods and BCAE: markers, no line */
    bcae_marker marker;
    bcae_rgb colour;
} family;

static int collect(const bl_result *rows, int n, family *f)
{
    int nf = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < nf && strcmp(f[k].name, rows[i].method.family)) k++;
        if (k == nf) {
            if (nf == MAX_FAMILIES) continue;
            memset(&f[nf], 0, sizeof f[nf]);
            f[nf].name = rows[i].method.family;
            f[nf].points_only = rows[i].method.lossless || rows[i].method.kind == BL_BCAE;
            nf++;
        }
        if (f[k].n < 64) f[k].rows[f[k].n++] = i;
    }
    int c = 0;
    for (int k = 0; k < nf; k++) {
        if (rows[f[k].rows[0]].method.kind == BL_BCAE) {
            f[k].colour = BCAE_COLOUR;
            f[k].marker = BCAE_MARKER_STAR;
        } else {
            f[k].colour = PALETTE[c % NPALETTE];
            f[k].marker = f[k].points_only ? BCAE_MARKER_SQUARE
                          : (c % 3 == 0)   ? BCAE_MARKER_CIRCLE
                          : (c % 3 == 1)   ? BCAE_MARKER_DIAMOND
                                           : BCAE_MARKER_TRIANGLE;
            c++;
        }
    }
    return nf;
}

static double metric(const bl_result *r, int which) { return which ? r->psnr_db : r->mae; }

bcae_status bl_plot(const char *path, const bl_result *rows, int n, double target,
                    bcae_error *err)
{
    family fam[MAX_FAMILIES];
    int nf = collect(rows, n, fam);

    /* Axis ranges over every point a panel can show. */
    double xmin = INFINITY, xmax = 0, ymax[2] = {0, -INFINITY}, ymin[2] = {0, INFINITY};
    for (int i = 0; i < n; i++) {
        double x = rows[i].ratio;
        if (!(x > 0) || !isfinite(x)) continue;
        if (x < xmin) xmin = x;
        if (x > xmax) xmax = x;
        for (int w = 0; w < 2; w++) {
            double y = metric(&rows[i], w);
            if (!isfinite(y)) continue;
            if (y > ymax[w]) ymax[w] = y;
            if (w == 1 && y < ymin[w]) ymin[w] = y;
        }
    }
    if (!(xmax > 0)) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "nothing to plot");
    xmin = pow(10, floor(log10(xmin < target ? xmin : target)));
    xmax = pow(10, ceil(log10(xmax > target ? xmax : target)));
    /* MAE on a log axis: the sweeps span four decades. Lossless points
     * (MAE 0) sit on the axis's bottom edge, as their legend entry says. */
    double mae_min = INFINITY;
    for (int i = 0; i < n; i++)
        if (rows[i].mae > 0 && isfinite(rows[i].mae) && rows[i].mae < mae_min)
            mae_min = rows[i].mae;
    if (!(ymax[0] > 0)) ymax[0] = 1;
    if (!isfinite(mae_min)) mae_min = ymax[0] / 10;
    ymin[0] = pow(10, floor(log10(mae_min)));
    ymax[0] = pow(10, ceil(log10(ymax[0])));
    if (!isfinite(ymin[1])) {
        ymin[1] = 0;
        ymax[1] = 1;
    }
    double pad = (ymax[1] - ymin[1]) * 0.05 + 0.5;
    ymin[1] = floor(ymin[1] - pad);
    ymax[1] = ceil(ymax[1] + pad);

    bcae_text_style text = {2, INK, BCAE_ALIGN_START, 0};
    bcae_chart ch[2];
    const char *ylabel[2] = {"MAE, log2(ADC+1)", "PSNR (dB)"};
    const char *title[2] = {"error (lower is better)", "PSNR (higher is better)"};
    int pw = 440, ph = 340, left = 0, bottom = 0, top = 0;
    for (int w = 0; w < 2; w++) {
        memset(&ch[w], 0, sizeof ch[w]);
        ch[w].w = pw;
        ch[w].h = ph;
        ch[w].xaxis = (bcae_chart_axis){xmin, xmax, 1, "compression ratio"};
        ch[w].yaxis = (bcae_chart_axis){ymin[w], ymax[w], w == 0, ylabel[w]};
        ch[w].text = text;
        ch[w].grid = GRID;
        ch[w].title = title[w];
        int l, b, t;
        bcae_chart_margins(&ch[w], &l, &b, &t);
        if (l > left) left = l;
        if (b > bottom) bottom = b;
        if (t > top) top = t;
    }
    bcae_legend_entry leg[MAX_FAMILIES];
    char labels[MAX_FAMILIES][80];
    for (int k = 0; k < nf; k++) {
        const bl_result *r0 = &rows[fam[k].rows[0]];
        snprintf(labels[k], sizeof labels[k], "%s%s", fam[k].name,
                 r0->method.lossless ? " (lossless)" : "");
        leg[k] = (bcae_legend_entry){labels[k], fam[k].colour, fam[k].points_only ? 0 : 2,
                                     fam[k].marker};
    }
    int lw, lh;
    bcae_legend_size(leg, nf, &text, &lw, &lh);
    int gap = 30;
    int width = left + pw + gap + left + pw + gap + lw + 12;
    int height = top + ph + bottom + 8;
    if (height < top + lh + 50) height = top + lh + 50;
    ch[0].x = left;
    ch[1].x = left + pw + gap + left;
    ch[0].y = ch[1].y = top;

    bcae_canvas c;
    bcae_status st = bcae_canvas_init(&c, width, height, PAPER, err);
    if (st != BCAE_OK) {
        bcae_canvas_free(&c);
        return st;
    }
    for (int w = 0; w < 2; w++) {
        bcae_chart_draw_axes(&c, &ch[w]);
        double tx[2] = {target, target}, ty[2] = {ymin[w], ymax[w]};
        bcae_chart_series(&c, &ch[w], tx, ty, 2, 1, BCAE_MARKER_NONE, 0, TARGET);
        for (int k = 0; k < nf; k++) {
            double xs[64], ys[64];
            for (int i = 0; i < fam[k].n; i++) {
                xs[i] = rows[fam[k].rows[i]].ratio;
                ys[i] = metric(&rows[fam[k].rows[i]], w);
                if (w == 0 && ys[i] == 0) ys[i] = ymin[0];
            }
            int big = fam[k].marker == BCAE_MARKER_STAR ? 13 : 7;
            bcae_chart_series(&c, &ch[w], xs, ys, fam[k].n, fam[k].points_only ? 0 : 2,
                              fam[k].marker, big, fam[k].colour);
        }
    }
    bcae_canvas_legend(&c, ch[1].x + pw + gap, top, leg, nf, &text, PAPER);
    /* Notes under the legend. */
    char note[64];
    bcae_text_style ts = text;
    ts.size = 1;
    int ny = top + lh + 10;
    snprintf(note, sizeof note, "grey line: ratio %g", target);
    bcae_canvas_text(&c, ch[1].x + pw + gap, ny, note, &ts);
    bcae_canvas_text(&c, ch[1].x + pw + gap, ny + 14, "lossless: MAE 0, drawn on", &ts);
    bcae_canvas_text(&c, ch[1].x + pw + gap, ny + 26, "the MAE axis, no PSNR", &ts);
    st = bcae_canvas_write_png(&c, path, err);
    bcae_canvas_free(&c);
    return st;
}
