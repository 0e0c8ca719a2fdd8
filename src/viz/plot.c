#include "viz/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "viz/font.h"

#define IMAGE_PIXELS (BCAE_WEDGE_AZIMUTH * BCAE_WEDGE_Z)

static const bcae_rgb PAPER = {255, 255, 255};
static const bcae_rgb INK = {35, 35, 35};
static const bcae_rgb MUTED = {105, 105, 105};

static const int Z_TICKS[] = {0, 50, 100, 150, 200};
static const int AZIMUTH_TICKS[] = {0, 50, 100, 150};
#define N_Z_TICKS ((int)(sizeof Z_TICKS / sizeof Z_TICKS[0]))
#define N_AZIMUTH_TICKS ((int)(sizeof AZIMUTH_TICKS / sizeof AZIMUTH_TICKS[0]))
#define MAX_TICKS 12

void bcae_plot_options_default(bcae_plot_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->layer = BCAE_PLOT_ALL_LAYERS;
    opt->scale = 2;
    opt->title = NULL;
    opt->difference = 0;
    opt->vmin = 6;
    opt->vmax = 10;
    opt->diff_range = 2;
    opt->empty = PAPER;
}

/* Text grows with the pixel scale, but slower: at scale 1 the panels are
 * small and big labels would crowd them; at 8 they are huge. */
static int font_for_scale(int scale)
{
    if (scale <= 1) return 1;
    if (scale <= 3) return 2;
    return scale / 2 + 1;
}

/* Ticks at a round step (1, 2 or 5 times a power of ten) giving at most
 * about six marks over [lo, hi]. */
static int nice_ticks(double lo, double hi, double *ticks, int max)
{
    double span = hi - lo;
    if (!(span > 0) || !isfinite(span)) return 0;
    double raw = span / 5, mag = pow(10, floor(log10(raw))), norm = raw / mag;
    double step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
    int n = 0;
    for (double k = ceil(lo / step - 1e-9); n < max; k++) {
        double v = k * step;
        if (v > hi + step * 1e-9) break;
        ticks[n++] = fabs(v) < step * 1e-9 ? 0 : v; /* no "-0" label */
    }
    return n;
}

static void log_colorbar(const bcae_plot_options *opt, int font, double *ticks,
                         bcae_colorbar *cb)
{
    memset(cb, 0, sizeof *cb);
    cb->scale.map = BCAE_CMAP_SEQUENTIAL;
    cb->scale.vmin = opt->vmin;
    cb->scale.vmax = opt->vmax;
    cb->scale.zero_is_empty = 1;
    cb->scale.empty = opt->empty;
    cb->ticks = ticks;
    cb->nticks = nice_ticks(opt->vmin, opt->vmax, ticks, MAX_TICKS);
    cb->label = "log2(ADC+1)";
    cb->bar_width = 6 * font;
    cb->text.size = font;
    cb->text.colour = INK;
}

static void diff_colorbar(const bcae_plot_options *opt, int font, double *ticks,
                          bcae_colorbar *cb)
{
    memset(cb, 0, sizeof *cb);
    cb->scale.map = BCAE_CMAP_DIVERGING;
    cb->scale.vmin = -opt->diff_range;
    cb->scale.vmax = opt->diff_range;
    cb->scale.empty = opt->empty;
    cb->ticks = ticks;
    cb->nticks = nice_ticks(-opt->diff_range, opt->diff_range, ticks, MAX_TICKS);
    cb->label = "log2(B+1) - log2(A+1)";
    cb->bar_width = 6 * font;
    cb->text.size = font;
    cb->text.colour = INK;
}

static int widest_int_label(const int *v, int n, int font)
{
    int widest = 0;
    char buf[16];
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%d", v[i]);
        int w = bcae_font_text_width(buf, font);
        if (w > widest) widest = w;
    }
    return widest;
}

static void layer_caption(int layer, char *buf, size_t n)
{
    if (layer == BCAE_PLOT_ALL_LAYERS)
        snprintf(buf, n, "maximum over layers 0-%d", BCAE_WEDGE_LAYERS - 1);
    else
        snprintf(buf, n, "layer %d", layer);
}

static int has_title(const bcae_plot_options *opt) { return opt->title && opt->title[0]; }

bcae_status bcae_plot_layout_compute(int n, const bcae_plot_options *opt,
                                     bcae_plot_layout *lay, bcae_error *err)
{
    memset(lay, 0, sizeof *lay);
    int panels = n + (opt->difference ? 1 : 0);
    if (n < 1 || panels > BCAE_PLOT_MAX_PANELS)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "plot: %d wedges; between 1 and %d panels can be drawn", n,
                         BCAE_PLOT_MAX_PANELS);
    if (opt->difference && n != 2)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "plot: a difference panel needs exactly 2 wedges, got %d", n);
    if (opt->layer != BCAE_PLOT_ALL_LAYERS && (opt->layer < 0 || opt->layer >= BCAE_WEDGE_LAYERS))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "plot: layer %d out of range (0..%d, or all)", opt->layer,
                         BCAE_WEDGE_LAYERS - 1);
    if (opt->scale < 1 || opt->scale > BCAE_PLOT_MAX_SCALE)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "plot: scale %d out of range (1..%d)",
                         opt->scale, BCAE_PLOT_MAX_SCALE);
    if (!(opt->vmax > opt->vmin) || !isfinite(opt->vmin) || !isfinite(opt->vmax))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "plot: colour range [%g, %g] is empty", opt->vmin, opt->vmax);
    if (opt->difference && !(opt->diff_range > 0 && isfinite(opt->diff_range)))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "plot: difference range %g must be positive", opt->diff_range);

    int s = opt->scale, f = font_for_scale(s);
    int margin = 6 * f, tick = 2 * f, line = BCAE_FONT_HEIGHT * f;
    lay->scale = s;
    lay->font = f;
    lay->npanels = panels;
    lay->panel_w = BCAE_WEDGE_Z * s;
    lay->panel_h = BCAE_WEDGE_AZIMUTH * s;

    /* Left of the first panel: the axis label reading upward, then the tick
     * labels, right-aligned against the tick marks. */
    int ytick_w = widest_int_label(AZIMUTH_TICKS, N_AZIMUTH_TICKS, f);
    int x = margin + line + 3 * f + ytick_w + f + tick + 1;
    double ticks[MAX_TICKS];
    bcae_colorbar cb;
    for (int i = 0; i < n; i++)
        lay->panel_x[i] = x + i * (lay->panel_w + 1 + tick + 4 * f);
    lay->colorbar_x = lay->panel_x[n - 1] + lay->panel_w + 1 + 6 * f;
    log_colorbar(opt, f, ticks, &cb);
    x = lay->colorbar_x + bcae_colorbar_width(&cb);
    lay->diff_colorbar_x = -1;
    if (opt->difference) {
        lay->panel_x[n] = x + 8 * f + tick + 1;
        lay->diff_colorbar_x = lay->panel_x[n] + lay->panel_w + 1 + 6 * f;
        diff_colorbar(opt, f, ticks, &cb);
        x = lay->diff_colorbar_x + bcae_colorbar_width(&cb);
    }
    lay->width = x + margin;

    /* The header: the title with the layer caption at the right of the
     * same line, or below it where both do not fit. A title wider than the
     * panels widens the figure rather than being cut. */
    char caption[64];
    layer_caption(opt->layer, caption, sizeof caption);
    int caption_w = bcae_font_text_width(caption, f);
    int header = line;
    lay->caption_below = 0;
    if (has_title(opt)) {
        int title_w = bcae_font_text_width(opt->title, f + 1);
        header = BCAE_FONT_HEIGHT * (f + 1);
        if (2 * margin + title_w + 6 * f + caption_w > lay->width) {
            lay->caption_below = 1;
            header += f + line;
            if (2 * margin + title_w > lay->width) lay->width = 2 * margin + title_w;
        }
    } else if (2 * margin + caption_w > lay->width) {
        lay->width = 2 * margin + caption_w;
    }
    lay->panel_y = margin + header + 5 * f + line + 3 * f + 1;
    lay->height = lay->panel_y + lay->panel_h + 1 + tick + f + line + 3 * f + line + margin;
    if (lay->width > BCAE_CANVAS_MAX_SIDE)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "plot: figure %d pixels wide, too wide",
                         lay->width);
    return BCAE_OK;
}

void bcae_plot_voxel_pixel(const bcae_plot_layout *lay, int panel, int azimuth, int z, int *x,
                           int *y)
{
    *x = lay->panel_x[panel] + z * lay->scale;
    *y = lay->panel_y + (BCAE_WEDGE_AZIMUTH - 1 - azimuth) * lay->scale;
}

void bcae_plot_project(const uint16_t *adc, int layer, float *image)
{
    for (int a = 0; a < BCAE_WEDGE_AZIMUTH; a++)
        for (int z = 0; z < BCAE_WEDGE_Z; z++) {
            const uint16_t *v = adc + ((size_t)a * BCAE_WEDGE_Z + (size_t)z) * BCAE_WEDGE_LAYERS;
            unsigned m = 0;
            if (layer == BCAE_PLOT_ALL_LAYERS) {
                for (int l = 0; l < BCAE_WEDGE_LAYERS; l++)
                    if (v[l] > m) m = v[l];
            } else {
                m = v[layer];
            }
            image[a * BCAE_WEDGE_Z + z] = log2f((float)m + 1.0f);
        }
}

/* Copies `text` into buf, ending it in "..." if it is wider than max_w. */
static void fit_text(char *buf, size_t n, const char *text, int size, int max_w)
{
    snprintf(buf, n, "%s", text);
    size_t len = strlen(buf);
    if (bcae_font_text_width(buf, size) <= max_w) return;
    while (len > 0) {
        len--;
        if (len + 4 > n) continue;
        memcpy(buf + len, "...", 4);
        if (bcae_font_text_width(buf, size) <= max_w) return;
    }
    buf[0] = '\0';
}

/* Frame, tick marks and tick labels around one heat map. */
static void draw_axes(bcae_canvas *c, const bcae_plot_layout *lay, int panel,
                      int label_azimuth)
{
    int f = lay->font, s = lay->scale, tick = 2 * f;
    int x0 = lay->panel_x[panel], y0 = lay->panel_y;
    int w = lay->panel_w, h = lay->panel_h;
    bcae_canvas_frame(c, x0, y0, w, h, INK);
    bcae_text_style ts = {f, INK, BCAE_ALIGN_CENTER, 0};
    char buf[16];
    for (int i = 0; i < N_Z_TICKS; i++) {
        int tx = x0 + Z_TICKS[i] * s + s / 2;
        bcae_canvas_fill_rect(c, tx, y0 + h + 1, 1, tick, INK);
        snprintf(buf, sizeof buf, "%d", Z_TICKS[i]);
        bcae_canvas_text(c, tx, y0 + h + 1 + tick + f, buf, &ts);
    }
    bcae_canvas_text(c, x0 + w / 2, y0 + h + 1 + tick + f + BCAE_FONT_HEIGHT * f + 3 * f,
                     "z (time bin)", &ts);

    ts.align = BCAE_ALIGN_END;
    for (int i = 0; i < N_AZIMUTH_TICKS; i++) {
        int ty = y0 + (BCAE_WEDGE_AZIMUTH - 1 - AZIMUTH_TICKS[i]) * s + s / 2;
        bcae_canvas_fill_rect(c, x0 - 1 - tick, ty, tick, 1, INK);
        if (!label_azimuth) continue;
        snprintf(buf, sizeof buf, "%d", AZIMUTH_TICKS[i]);
        bcae_canvas_text(c, x0 - 1 - tick - f, ty - BCAE_FONT_CAP_HEIGHT * f / 2, buf, &ts);
    }
    if (label_azimuth) {
        bcae_text_style vs = {f, INK, BCAE_ALIGN_CENTER, 1};
        bcae_canvas_text(c, 6 * f, y0 + h / 2, "azimuth (pad)", &vs);
    }
}

static void draw_panel_title(bcae_canvas *c, const bcae_plot_layout *lay, int panel,
                             const char *prefix, const char *title)
{
    if (!title) title = "";
    int f = lay->font;
    char full[512], fitted[512];
    snprintf(full, sizeof full, "%s%s", prefix, title);
    fit_text(fitted, sizeof fitted, full, f, lay->panel_w + 2 * f);
    bcae_text_style ts = {f, INK, BCAE_ALIGN_CENTER, 0};
    bcae_canvas_text(c, lay->panel_x[panel] + lay->panel_w / 2,
                     lay->panel_y - 1 - 3 * f - BCAE_FONT_HEIGHT * f, fitted, &ts);
}

static void draw_header(bcae_canvas *c, const bcae_plot_layout *lay,
                        const bcae_plot_options *opt)
{
    int f = lay->font, margin = 6 * f;
    char caption[64];
    layer_caption(opt->layer, caption, sizeof caption);
    bcae_text_style ts = {f, MUTED, BCAE_ALIGN_END, 0};
    if (has_title(opt)) {
        bcae_text_style title = {f + 1, INK, BCAE_ALIGN_START, 0};
        bcae_canvas_text(c, margin, margin, opt->title, &title);
        if (lay->caption_below) {
            ts.align = BCAE_ALIGN_START;
            bcae_canvas_text(c, margin, margin + BCAE_FONT_HEIGHT * (f + 1) + f, caption, &ts);
        } else {
            /* On the title's baseline: the capital heights differ by 7. */
            bcae_canvas_text(c, lay->width - margin, margin + BCAE_FONT_CAP_HEIGHT, caption,
                             &ts);
        }
    } else {
        ts.align = BCAE_ALIGN_START;
        bcae_canvas_text(c, margin, margin, caption, &ts);
    }
}

bcae_status bcae_plot_render(bcae_canvas *c, const uint16_t *const *wedges,
                             const char *const *titles, int n, const bcae_plot_options *opt,
                             bcae_plot_layout *lay_out, bcae_error *err)
{
    c->pixels = NULL;
    c->width = c->height = 0;
    bcae_plot_options defaults;
    if (!opt) {
        bcae_plot_options_default(&defaults);
        opt = &defaults;
    }
    /* The layout checks n first, so that wedges[] is only read within it. */
    bcae_plot_layout lay;
    bcae_status st = bcae_plot_layout_compute(n, opt, &lay, err);
    if (st != BCAE_OK) return st;
    if (!wedges) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "plot: no wedges");
    for (int i = 0; i < n; i++)
        if (!wedges[i])
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "plot: wedge %d is NULL", i);
    if (lay_out) *lay_out = lay;

    /* Two images at most are alive at once: a panel's and, for the
     * difference, the first wedge's kept from its own panel. */
    float *image = malloc(sizeof(float) * IMAGE_PIXELS);
    float *first = opt->difference ? malloc(sizeof(float) * IMAGE_PIXELS) : NULL;
    if (!image || (opt->difference && !first)) {
        free(image);
        free(first);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "plot: out of memory");
    }
    st = bcae_canvas_init(c, lay.width, lay.height, PAPER, err);
    if (st != BCAE_OK) {
        free(image);
        free(first);
        return st;
    }

    int f = lay.font;
    double ticks[MAX_TICKS];
    bcae_colorbar cb;
    log_colorbar(opt, f, ticks, &cb);
    draw_header(c, &lay, opt);
    for (int i = 0; i < n; i++) {
        float *dst = opt->difference && i == 0 ? first : image;
        bcae_plot_project(wedges[i], opt->layer, dst);
        bcae_canvas_heatmap(c, lay.panel_x[i], lay.panel_y, dst, BCAE_WEDGE_AZIMUTH,
                            BCAE_WEDGE_Z, BCAE_WEDGE_Z, lay.scale, 1, &cb.scale);
        draw_axes(c, &lay, i, i == 0);
        const char *prefix = opt->difference ? (i == 0 ? "A: " : "B: ") : "";
        draw_panel_title(c, &lay, i, prefix, titles ? titles[i] : NULL);
    }
    bcae_canvas_colorbar(c, lay.colorbar_x, lay.panel_y, lay.panel_h, &cb);

    if (opt->difference) {
        /* image holds B's projection from the loop's last panel. */
        for (int i = 0; i < IMAGE_PIXELS; i++) image[i] -= first[i];
        diff_colorbar(opt, f, ticks, &cb);
        bcae_canvas_heatmap(c, lay.panel_x[n], lay.panel_y, image, BCAE_WEDGE_AZIMUTH,
                            BCAE_WEDGE_Z, BCAE_WEDGE_Z, lay.scale, 1, &cb.scale);
        draw_axes(c, &lay, n, 0);
        draw_panel_title(c, &lay, n, "", "difference B - A");
        bcae_canvas_colorbar(c, lay.diff_colorbar_x, lay.panel_y, lay.panel_h, &cb);
    }
    free(image);
    free(first);
    return BCAE_OK;
}

bcae_status bcae_plot_wedges(const char *path, const uint16_t *const *wedges,
                             const char *const *titles, int n, const bcae_plot_options *opt,
                             bcae_error *err)
{
    bcae_canvas c;
    bcae_status st = bcae_plot_render(&c, wedges, titles, n, opt, NULL, err);
    if (st == BCAE_OK) st = bcae_canvas_write_png(&c, path, err);
    bcae_canvas_free(&c);
    return st;
}
