#include "viz/canvas.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "viz/font.h"

bcae_status bcae_canvas_init(bcae_canvas *c, int width, int height, bcae_rgb background,
                             bcae_error *err)
{
    c->width = c->height = 0;
    c->pixels = NULL;
    if (width < 1 || height < 1 || width > BCAE_CANVAS_MAX_SIDE || height > BCAE_CANVAS_MAX_SIDE)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "canvas size %dx%d out of range",
                         width, height);
    size_t n = (size_t)width * (size_t)height;
    c->pixels = malloc(n * 3);
    if (!c->pixels)
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "out of memory for a %dx%d canvas", width,
                         height);
    c->width = width;
    c->height = height;
    for (size_t i = 0; i < n; i++) {
        c->pixels[3 * i + 0] = background.r;
        c->pixels[3 * i + 1] = background.g;
        c->pixels[3 * i + 2] = background.b;
    }
    return BCAE_OK;
}

void bcae_canvas_free(bcae_canvas *c)
{
    free(c->pixels);
    c->pixels = NULL;
    c->width = c->height = 0;
}

bcae_rgb bcae_canvas_get(const bcae_canvas *c, int x, int y)
{
    bcae_rgb black = {0, 0, 0};
    if (x < 0 || y < 0 || x >= c->width || y >= c->height) return black;
    const uint8_t *p = c->pixels + 3 * ((size_t)y * (size_t)c->width + (size_t)x);
    bcae_rgb v = {p[0], p[1], p[2]};
    return v;
}

void bcae_canvas_set(bcae_canvas *c, int x, int y, bcae_rgb colour)
{
    if (x < 0 || y < 0 || x >= c->width || y >= c->height) return;
    uint8_t *p = c->pixels + 3 * ((size_t)y * (size_t)c->width + (size_t)x);
    p[0] = colour.r;
    p[1] = colour.g;
    p[2] = colour.b;
}

void bcae_canvas_fill_rect(bcae_canvas *c, int x, int y, int w, int h, bcae_rgb colour)
{
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    /* Computed in long long: x + w may overflow int for huge requests. */
    long long x1 = (long long)x + w, y1 = (long long)y + h;
    if (x1 > c->width) x1 = c->width;
    if (y1 > c->height) y1 = c->height;
    for (int yy = y0; yy < y1; yy++) {
        uint8_t *p = c->pixels + 3 * ((size_t)yy * (size_t)c->width + (size_t)x0);
        for (int xx = x0; xx < x1; xx++, p += 3) {
            p[0] = colour.r;
            p[1] = colour.g;
            p[2] = colour.b;
        }
    }
}

void bcae_canvas_frame(bcae_canvas *c, int x, int y, int w, int h, bcae_rgb colour)
{
    bcae_canvas_fill_rect(c, x - 1, y - 1, w + 2, 1, colour);
    bcae_canvas_fill_rect(c, x - 1, y + h, w + 2, 1, colour);
    bcae_canvas_fill_rect(c, x - 1, y, 1, h, colour);
    bcae_canvas_fill_rect(c, x + w, y, 1, h, colour);
}

void bcae_canvas_text(bcae_canvas *c, int x, int y, const char *text,
                      const bcae_text_style *style)
{
    int size = style->size < 1 ? 1 : style->size;
    int len = bcae_font_text_width(text, size);
    int shift = style->align == BCAE_ALIGN_CENTER ? len / 2
                : style->align == BCAE_ALIGN_END  ? len
                                                  : 0;
    if (style->vertical)
        y -= shift;
    else
        x -= shift;
    for (int i = 0; text[i]; i++) {
        int along0 = i * BCAE_FONT_ADVANCE * size;
        for (int row = 0; row < BCAE_FONT_HEIGHT; row++) {
            unsigned bits = bcae_font_row((unsigned char)text[i], row);
            for (int col = 0; col < BCAE_FONT_WIDTH; col++) {
                if (!(bits & (1u << (BCAE_FONT_WIDTH - 1 - col)))) continue;
                int along = along0 + col * size, across = row * size;
                /* Vertical text turns the glyph's top to the left, so the
                 * string runs from the bottom of its box to the top. */
                if (style->vertical)
                    bcae_canvas_fill_rect(c, x + across, y + len - along - size, size, size,
                                          style->colour);
                else
                    bcae_canvas_fill_rect(c, x + along, y + across, size, size,
                                          style->colour);
            }
        }
    }
}

void bcae_canvas_heatmap(bcae_canvas *c, int x, int y, const float *values, int rows, int cols,
                         int row_stride, int scale, int origin_lower,
                         const bcae_color_scale *cs)
{
    for (int r = 0; r < rows; r++) {
        int py = origin_lower ? y + (rows - 1 - r) * scale : y + r * scale;
        const float *row = values + (size_t)r * (size_t)row_stride;
        for (int col = 0; col < cols; col++)
            bcae_canvas_fill_rect(c, x + col * scale, py, scale, scale,
                                  bcae_color_scale_rgb(cs, row[col]));
    }
}

/* Tick geometry of a colour bar, proportional to its text size. */
static int tick_length(const bcae_colorbar *cb) { return 3 * cb->text.size; }
static int tick_gap(const bcae_colorbar *cb) { return 2 * cb->text.size; }

static void tick_text(char *buf, size_t n, double v) { snprintf(buf, n, "%g", v); }

int bcae_colorbar_width(const bcae_colorbar *cb)
{
    int widest = 0;
    char buf[32];
    for (int i = 0; i < cb->nticks; i++) {
        tick_text(buf, sizeof buf, cb->ticks[i]);
        int w = bcae_font_text_width(buf, cb->text.size);
        if (w > widest) widest = w;
    }
    int width = cb->bar_width + tick_length(cb) + tick_gap(cb) + widest;
    if (cb->label && cb->label[0]) width += 3 * tick_gap(cb) + BCAE_FONT_HEIGHT * cb->text.size;
    return width;
}

void bcae_canvas_colorbar(bcae_canvas *c, int x, int y, int h, const bcae_colorbar *cb)
{
    const bcae_color_scale *s = &cb->scale;
    /* Rows at the same positions as the ticks, so the top and bottom rows
     * are exactly the colours of vmax and vmin. */
    for (int r = 0; r < h; r++) {
        double t = h > 1 ? 1.0 - (double)r / (h - 1) : 0.5;
        bcae_canvas_fill_rect(c, x, y + r, cb->bar_width, 1, bcae_colormap_rgb(s->map, t));
    }
    bcae_canvas_frame(c, x, y, cb->bar_width, h, cb->text.colour);

    int size = cb->text.size;
    int label_x = x + cb->bar_width + tick_length(cb) + tick_gap(cb);
    int widest = 0;
    bcae_text_style ts = cb->text;
    ts.align = BCAE_ALIGN_START;
    ts.vertical = 0;
    char buf[32];
    double span = s->vmax - s->vmin;
    for (int i = 0; i < cb->nticks; i++) {
        double v = cb->ticks[i];
        if (!(span > 0) || v < s->vmin || v > s->vmax) continue;
        int ty = y + (int)((s->vmax - v) / span * (h - 1) + 0.5);
        bcae_canvas_fill_rect(c, x + cb->bar_width, ty, tick_length(cb), 1, cb->text.colour);
        tick_text(buf, sizeof buf, v);
        int w = bcae_font_text_width(buf, size);
        if (w > widest) widest = w;
        /* Centred on the digits' height, which is the capital height. */
        bcae_canvas_text(c, label_x, ty - BCAE_FONT_CAP_HEIGHT * size / 2, buf, &ts);
    }
    if (cb->label && cb->label[0]) {
        ts.vertical = 1;
        ts.align = BCAE_ALIGN_CENTER;
        bcae_canvas_text(c, label_x + widest + 3 * tick_gap(cb), y + h / 2, cb->label, &ts);
    }
}

bcae_status bcae_canvas_write_png(const bcae_canvas *c, const char *path, bcae_error *err)
{
    if (!c->pixels || c->width < 1 || c->height < 1)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: empty canvas", path);
    bcae_atomic_file f;
    bcae_status st = bcae_atomic_open(&f, path, err);
    if (st != BCAE_OK) return st;

    /* libpng's simplified API reports failure through its return value and
     * image.message, which spares us setjmp/longjmp error handling. */
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)c->width;
    image.height = (png_uint_32)c->height;
    image.format = PNG_FORMAT_RGB;
    int ok = png_image_write_to_stdio(&image, f.fp, 0, c->pixels, 0, NULL);
    if (!ok) {
        st = bcae_fail(err, BCAE_ERR_IO, "%s: PNG encoding failed: %s", path, image.message);
        png_image_free(&image);
        bcae_atomic_abort(&f);
        return st;
    }
    png_image_free(&image);
    return bcae_atomic_commit(&f, err);
}
