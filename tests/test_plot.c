/* Wedge pictures: colour maps, font, canvas, the wedge figure and its PNG. */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "viz/canvas.h"
#include "viz/colormap.h"
#include "viz/font.h"
#include "viz/plot.h"

static const bcae_rgb WHITE = {255, 255, 255};

static size_t voxel(int azimuth, int z, int layer)
{
    return ((size_t)azimuth * BCAE_WEDGE_Z + (size_t)z) * BCAE_WEDGE_LAYERS + (size_t)layer;
}

static int same_rgb(bcae_rgb a, bcae_rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

/* Off by at most one per channel: float vs double rounding of log2. */
static int near_rgb(bcae_rgb a, bcae_rgb b)
{
    return abs(a.r - b.r) <= 1 && abs(a.g - b.g) <= 1 && abs(a.b - b.b) <= 1;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A PNG read back through libpng as 8-bit RGB. */
typedef struct picture {
    int width, height;
    uint8_t *rgb;
} picture;

static int picture_read(const char *path, picture *p)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    p->rgb = NULL;
    if (!png_image_begin_read_from_file(&img, path)) return -1;
    img.format = PNG_FORMAT_RGB;
    p->rgb = malloc(PNG_IMAGE_SIZE(img));
    if (!p->rgb || !png_image_finish_read(&img, NULL, p->rgb, 0, NULL)) {
        png_image_free(&img);
        free(p->rgb);
        p->rgb = NULL;
        return -1;
    }
    p->width = (int)img.width;
    p->height = (int)img.height;
    return 0;
}

static bcae_rgb picture_at(const picture *p, int x, int y)
{
    const uint8_t *q = p->rgb + 3 * ((size_t)y * (size_t)p->width + (size_t)x);
    bcae_rgb c = {q[0], q[1], q[2]};
    return c;
}

/* Every pixel of the block showing voxel (azimuth, z) of a panel is `want`. */
static int block_is(const picture *p, const bcae_plot_layout *lay, int panel, int azimuth, int z,
                    bcae_rgb want, int exact)
{
    int x, y;
    bcae_plot_voxel_pixel(lay, panel, azimuth, z, &x, &y);
    for (int dy = 0; dy < lay->scale; dy++)
        for (int dx = 0; dx < lay->scale; dx++) {
            bcae_rgb got = picture_at(p, x + dx, y + dy);
            if (exact ? !same_rgb(got, want) : !near_rgb(got, want)) {
                fprintf(stderr,
                        "  panel %d voxel (%d, %d) pixel (%d, %d): got %d,%d,%d want %d,%d,%d\n",
                        panel, azimuth, z, x + dx, y + dy, got.r, got.g, got.b, want.r, want.g,
                        want.b);
                return 0;
            }
        }
    return 1;
}

static bcae_rgb log_colour(unsigned adc)
{
    bcae_color_scale s = {BCAE_CMAP_SEQUENTIAL, 6, 10, 1, {255, 255, 255}};
    return bcae_color_scale_rgb(&s, log2(adc + 1.0));
}

static void test_colormaps(void)
{
    /* The sequential map brightens monotonically (approximate luma). */
    double prev = -1;
    int monotone = 1;
    for (int i = 0; i <= 200; i++) {
        bcae_rgb c = bcae_colormap_rgb(BCAE_CMAP_SEQUENTIAL, i / 200.0);
        double luma = 0.299 * c.r + 0.587 * c.g + 0.114 * c.b;
        if (luma < prev - 0.5) monotone = 0;
        prev = luma;
    }
    CHECK(monotone);
    bcae_rgb lo = bcae_colormap_rgb(BCAE_CMAP_SEQUENTIAL, 0);
    bcae_rgb hi = bcae_colormap_rgb(BCAE_CMAP_SEQUENTIAL, 1);
    CHECK(lo.r + lo.g + lo.b < 200);  /* dark */
    CHECK(hi.r > 200 && hi.g > 200 && hi.b < 100); /* yellow */
    CHECK(same_rgb(bcae_colormap_rgb(BCAE_CMAP_SEQUENTIAL, -3), lo));
    CHECK(same_rgb(bcae_colormap_rgb(BCAE_CMAP_SEQUENTIAL, 7), hi));
    CHECK(same_rgb(bcae_colormap_rgb(BCAE_CMAP_SEQUENTIAL, NAN), lo));

    bcae_rgb neg = bcae_colormap_rgb(BCAE_CMAP_DIVERGING, 0);
    bcae_rgb pos = bcae_colormap_rgb(BCAE_CMAP_DIVERGING, 1);
    CHECK(same_rgb(bcae_colormap_rgb(BCAE_CMAP_DIVERGING, 0.5), WHITE));
    CHECK(neg.b > neg.r); /* blue end */
    CHECK(pos.r > pos.b); /* red end */

    bcae_color_scale s = {BCAE_CMAP_SEQUENTIAL, 6, 10, 1, {1, 2, 3}};
    bcae_rgb empty = {1, 2, 3};
    CHECK(same_rgb(bcae_color_scale_rgb(&s, 0), empty));
    CHECK(same_rgb(bcae_color_scale_rgb(&s, NAN), empty));
    CHECK(same_rgb(bcae_color_scale_rgb(&s, 10), hi));
    CHECK(same_rgb(bcae_color_scale_rgb(&s, 6), lo));
    CHECK(same_rgb(bcae_color_scale_rgb(&s, 8), bcae_colormap_rgb(BCAE_CMAP_SEQUENTIAL, 0.5)));
    s.zero_is_empty = 0;
    CHECK(same_rgb(bcae_color_scale_rgb(&s, 0), lo)); /* below range: saturates */
    bcae_color_scale d = {BCAE_CMAP_DIVERGING, -2, 2, 0, {0, 0, 0}};
    CHECK(same_rgb(bcae_color_scale_rgb(&d, 0), WHITE));
    CHECK(same_rgb(bcae_color_scale_rgb(&d, -9), neg));
}

static void test_font(void)
{
    for (int ch = 33; ch < 127; ch++) {
        int ink = 0;
        for (int r = 0; r < BCAE_FONT_HEIGHT; r++) {
            unsigned bits = bcae_font_row(ch, r);
            CHECK(bits < (1u << BCAE_FONT_WIDTH));
            ink += bits != 0;
        }
        CHECK_MSG(ink > 0, "glyph '%c' is blank", ch);
    }
    for (int r = 0; r < BCAE_FONT_HEIGHT; r++) CHECK(bcae_font_row(' ', r) == 0);
    /* Unknown characters draw as '?'. */
    for (int r = 0; r < BCAE_FONT_HEIGHT; r++)
        CHECK(bcae_font_row(200, r) == bcae_font_row('?', r));
    CHECK(bcae_font_row('A', -1) == 0 && bcae_font_row('A', BCAE_FONT_HEIGHT) == 0);
    /* Descenders use the rows below the capital height; capitals do not. */
    CHECK(bcae_font_row('g', 8) != 0 && bcae_font_row('p', 7) != 0);
    CHECK(bcae_font_row('E', 7) == 0 && bcae_font_row('E', 0) == 0x1F);
    CHECK(bcae_font_text_width("", 3) == 0);
    CHECK(bcae_font_text_width("a", 1) == BCAE_FONT_WIDTH);
    CHECK(bcae_font_text_width("ab", 2) == 2 * (BCAE_FONT_ADVANCE + BCAE_FONT_WIDTH));
}

static void test_canvas(void)
{
    bcae_error err;
    bcae_canvas c;
    bcae_rgb bg = {10, 20, 30}, red = {255, 0, 0}, ink = {0, 0, 0};
    CHECK(bcae_canvas_init(&c, 0, 5, bg, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(c.pixels == NULL);
    CHECK(bcae_canvas_init(&c, 40, 30, bg, &err) == BCAE_OK);
    CHECK(same_rgb(bcae_canvas_get(&c, 39, 29), bg));
    bcae_rgb black = {0, 0, 0};
    CHECK(same_rgb(bcae_canvas_get(&c, 40, 0), black));
    /* Clipped, not out of bounds (ASan would catch the latter). */
    bcae_canvas_fill_rect(&c, -5, -5, 10, 10, red);
    bcae_canvas_fill_rect(&c, 35, 25, 100, 100, red);
    bcae_canvas_set(&c, -1, 3, red);
    CHECK(same_rgb(bcae_canvas_get(&c, 0, 0), red) && same_rgb(bcae_canvas_get(&c, 4, 4), red));
    CHECK(same_rgb(bcae_canvas_get(&c, 5, 5), bg));
    CHECK(same_rgb(bcae_canvas_get(&c, 39, 29), red));

    /* The frame sits just outside its box. */
    bcae_canvas_fill_rect(&c, 0, 0, 40, 30, bg);
    bcae_canvas_frame(&c, 10, 10, 5, 4, red);
    CHECK(same_rgb(bcae_canvas_get(&c, 9, 9), red) && same_rgb(bcae_canvas_get(&c, 15, 14), red));
    CHECK(same_rgb(bcae_canvas_get(&c, 10, 10), bg) && same_rgb(bcae_canvas_get(&c, 14, 13), bg));

    /* Horizontal text at size 2: the 'L' stem in column 0, its foot on row 6. */
    bcae_canvas_fill_rect(&c, 0, 0, 40, 30, bg);
    bcae_text_style ts = {2, ink, BCAE_ALIGN_START, 0};
    bcae_canvas_text(&c, 3, 4, "L", &ts);
    CHECK(same_rgb(bcae_canvas_get(&c, 3, 4), ink) && same_rgb(bcae_canvas_get(&c, 4, 17), ink));
    CHECK(same_rgb(bcae_canvas_get(&c, 12, 16), ink)); /* foot, last column */
    CHECK(same_rgb(bcae_canvas_get(&c, 5, 4), bg));    /* right of the stem */
    CHECK(same_rgb(bcae_canvas_get(&c, 12, 14), bg));

    /* Vertical text reads upward: the stem lies along the bottom of its box
     * and the foot becomes a column on the right. */
    bcae_canvas_fill_rect(&c, 0, 0, 40, 30, bg);
    ts.size = 1;
    ts.vertical = 1;
    bcae_canvas_text(&c, 20, 10, "L", &ts); /* box x 20..28, y 10..14 */
    for (int k = 0; k < BCAE_FONT_CAP_HEIGHT; k++)
        CHECK(same_rgb(bcae_canvas_get(&c, 20 + k, 14), ink));
    for (int k = 0; k < BCAE_FONT_WIDTH; k++)
        CHECK(same_rgb(bcae_canvas_get(&c, 26, 10 + k), ink));
    CHECK(same_rgb(bcae_canvas_get(&c, 20, 13), bg));
    CHECK(same_rgb(bcae_canvas_get(&c, 20, 9), bg) && same_rgb(bcae_canvas_get(&c, 27, 14), bg));

    /* Centred text is centred. */
    bcae_canvas_fill_rect(&c, 0, 0, 40, 30, bg);
    ts.vertical = 0;
    ts.align = BCAE_ALIGN_CENTER;
    bcae_canvas_text(&c, 20, 0, "I", &ts); /* box 18..22; the top bar is columns 1..3 */
    CHECK(same_rgb(bcae_canvas_get(&c, 19, 0), ink) && same_rgb(bcae_canvas_get(&c, 21, 0), ink));
    CHECK(same_rgb(bcae_canvas_get(&c, 18, 0), bg) && same_rgb(bcae_canvas_get(&c, 22, 0), bg));

    /* Heat map: origin_lower puts row 0 at the bottom. */
    float v[2 * 3] = {0, 6, 10, 8, 8, 8};
    bcae_color_scale s = {BCAE_CMAP_SEQUENTIAL, 6, 10, 1, WHITE};
    bcae_canvas_heatmap(&c, 2, 2, v, 2, 3, 3, 2, 1, &s);
    CHECK(same_rgb(bcae_canvas_get(&c, 2, 4), WHITE));
    CHECK(same_rgb(bcae_canvas_get(&c, 7, 5), bcae_colormap_rgb(BCAE_CMAP_SEQUENTIAL, 1)));
    CHECK(same_rgb(bcae_canvas_get(&c, 3, 3), bcae_colormap_rgb(BCAE_CMAP_SEQUENTIAL, 0.5)));

    /* PNG round trip, pixel for pixel. */
    CHECK(bcae_canvas_write_png(&c, "plot_canvas.png", &err) == BCAE_OK);
    picture p;
    CHECK(picture_read("plot_canvas.png", &p) == 0);
    if (p.rgb) {
        CHECK(p.width == 40 && p.height == 30);
        CHECK(memcmp(p.rgb, c.pixels, 40 * 30 * 3) == 0);
        free(p.rgb);
    }
    remove("plot_canvas.png");
    bcae_canvas_free(&c);
    CHECK(c.pixels == NULL);
}

/* A wedge with a diagonal track of ADC 500 in layer 4, a saturated spot
 * (1023) in layer 9, and a voxel with ADC 100 in layer 2 and 800 in layer 7. */
static void synthetic_wedge(uint16_t *w)
{
    memset(w, 0, BCAE_WEDGE_VOXELS * sizeof *w);
    for (int k = 0; k < 100; k++) w[voxel(20 + k, 30 + 2 * k, 4)] = 500;
    for (int a = 150; a < 153; a++)
        for (int z = 200; z < 203; z++) w[voxel(a, z, 9)] = 1023;
    w[voxel(100, 50, 2)] = 100;
    w[voxel(100, 50, 7)] = 800;
}

static void test_project(const uint16_t *w)
{
    float *img = malloc(sizeof(float) * BCAE_WEDGE_AZIMUTH * BCAE_WEDGE_Z);
    bcae_plot_project(w, BCAE_PLOT_ALL_LAYERS, img);
    CHECK(img[100 * BCAE_WEDGE_Z + 50] == log2f(801.0f));
    CHECK(img[20 * BCAE_WEDGE_Z + 30] == log2f(501.0f));
    CHECK(img[0] == 0);
    bcae_plot_project(w, 2, img);
    CHECK(img[100 * BCAE_WEDGE_Z + 50] == log2f(101.0f));
    CHECK(img[20 * BCAE_WEDGE_Z + 30] == 0);
    free(img);
}

static void test_figure(const uint16_t *w)
{
    bcae_error err;
    bcae_plot_options opt;
    bcae_plot_options_default(&opt);
    CHECK(opt.scale == 2 && opt.layer == BCAE_PLOT_ALL_LAYERS && opt.vmin == 6 && opt.vmax == 10);
    opt.title = "synthetic wedge";
    const uint16_t *const wedges[1] = {w};
    const char *const titles[1] = {"synthetic.npy"};
    bcae_plot_layout lay;
    CHECK(bcae_plot_layout_compute(1, &opt, &lay, &err) == BCAE_OK);
    CHECK(lay.npanels == 1 && lay.diff_colorbar_x == -1);
    CHECK(lay.panel_w == 2 * BCAE_WEDGE_Z && lay.panel_h == 2 * BCAE_WEDGE_AZIMUTH);
    CHECK(lay.panel_x[0] > 0 && lay.colorbar_x > lay.panel_x[0] + lay.panel_w);
    CHECK(lay.width > lay.colorbar_x && lay.height > lay.panel_y + lay.panel_h);

    CHECK(bcae_plot_wedges("plot_max.png", wedges, titles, 1, &opt, &err) == BCAE_OK);
    picture p;
    CHECK(picture_read("plot_max.png", &p) == 0);
    if (p.rgb) {
        CHECK(p.width == lay.width && p.height == lay.height);
        /* Empty voxels, including the corners, are background. */
        CHECK(block_is(&p, &lay, 0, 0, 0, WHITE, 1));
        CHECK(block_is(&p, &lay, 0, 191, 248, WHITE, 1));
        CHECK(block_is(&p, &lay, 0, 5, 100, WHITE, 1));
        CHECK(block_is(&p, &lay, 0, 21, 30, WHITE, 1)); /* beside the track */
        /* Track voxels have the colour of log2(501). */
        CHECK(block_is(&p, &lay, 0, 20, 30, log_colour(500), 0));
        CHECK(block_is(&p, &lay, 0, 119, 228, log_colour(500), 0));
        /* The saturated spot is the map's top colour exactly. */
        bcae_rgb top = bcae_colormap_rgb(BCAE_CMAP_SEQUENTIAL, 1);
        CHECK(block_is(&p, &lay, 0, 151, 201, top, 1));
        /* Azimuth grows upward: the spot is in the panel's upper half. */
        int x, y;
        bcae_plot_voxel_pixel(&lay, 0, 151, 201, &x, &y);
        CHECK(y < lay.panel_y + lay.panel_h / 2);
        /* Maximum over layers. */
        CHECK(block_is(&p, &lay, 0, 100, 50, log_colour(800), 0));
        /* The colour bar's top is the map's top colour, its bottom the bottom. */
        CHECK(same_rgb(picture_at(&p, lay.colorbar_x + 2, lay.panel_y), top));
        CHECK(same_rgb(picture_at(&p, lay.colorbar_x + 2, lay.panel_y + lay.panel_h - 1),
                       bcae_colormap_rgb(BCAE_CMAP_SEQUENTIAL, 0)));
        /* Something (labels) is drawn left of and below the panel. */
        int ink_left = 0, ink_below = 0;
        for (int yy = 0; yy < p.height; yy++)
            for (int xx = 0; xx < lay.panel_x[0] - 8; xx++)
                ink_left += !same_rgb(picture_at(&p, xx, yy), WHITE);
        for (int yy = lay.panel_y + lay.panel_h + 8; yy < p.height; yy++)
            for (int xx = 0; xx < p.width; xx++)
                ink_below += !same_rgb(picture_at(&p, xx, yy), WHITE);
        CHECK(ink_left > 50 && ink_below > 50);
        free(p.rgb);
    }

    /* One layer: layer 2 has the ADC-100 voxel and not the track. */
    opt.layer = 2;
    CHECK(bcae_plot_wedges("plot_layer.png", wedges, titles, 1, &opt, &err) == BCAE_OK);
    CHECK(picture_read("plot_layer.png", &p) == 0);
    if (p.rgb) {
        CHECK(block_is(&p, &lay, 0, 100, 50, log_colour(100), 0));
        CHECK(!near_rgb(log_colour(100), log_colour(800)));
        CHECK(block_is(&p, &lay, 0, 20, 30, WHITE, 1));
        CHECK(block_is(&p, &lay, 0, 151, 201, WHITE, 1));
        free(p.rgb);
    }
    opt.layer = 4;
    CHECK(bcae_plot_wedges("plot_layer.png", wedges, titles, 1, &opt, &err) == BCAE_OK);
    CHECK(picture_read("plot_layer.png", &p) == 0);
    if (p.rgb) {
        CHECK(block_is(&p, &lay, 0, 20, 30, log_colour(500), 0));
        CHECK(block_is(&p, &lay, 0, 100, 50, WHITE, 1));
        free(p.rgb);
    }

    /* Scale 1 and no title: a smaller figure, same pixel rules. */
    opt.layer = BCAE_PLOT_ALL_LAYERS;
    opt.scale = 1;
    opt.title = NULL;
    CHECK(bcae_plot_layout_compute(1, &opt, &lay, &err) == BCAE_OK);
    CHECK(bcae_plot_wedges("plot_layer.png", wedges, NULL, 1, &opt, &err) == BCAE_OK);
    CHECK(picture_read("plot_layer.png", &p) == 0);
    if (p.rgb) {
        CHECK(p.width == lay.width && p.height == lay.height);
        CHECK(lay.panel_w == BCAE_WEDGE_Z);
        CHECK(block_is(&p, &lay, 0, 20, 30, log_colour(500), 0));
        CHECK(block_is(&p, &lay, 0, 21, 30, WHITE, 1));
        free(p.rgb);
    }

    /* A long title widens the figure instead of running off it. */
    char longtitle[301];
    memset(longtitle, 'W', 300);
    longtitle[300] = '\0';
    bcae_plot_layout wide;
    opt.title = longtitle;
    CHECK(bcae_plot_layout_compute(1, &opt, &wide, &err) == BCAE_OK);
    CHECK(wide.width > lay.width && wide.width >= bcae_font_text_width(longtitle, wide.font + 1));
    CHECK(wide.caption_below && wide.panel_y > lay.panel_y);
    opt.title = "short";
    CHECK(bcae_plot_layout_compute(1, &opt, &wide, &err) == BCAE_OK);
    CHECK(!wide.caption_below && wide.width == lay.width);
    remove("plot_max.png");
    remove("plot_layer.png");
}

static void test_difference(const uint16_t *a)
{
    bcae_error err;
    uint16_t *b = malloc(BCAE_WEDGE_VOXELS * sizeof *b);
    memcpy(b, a, BCAE_WEDGE_VOXELS * sizeof *b);
    b[voxel(20, 30, 4)] = 0;     /* lost: -log2(501), saturates blue */
    b[voxel(10, 10, 0)] = 700;   /* spurious: +log2(701), saturates red */
    b[voxel(21, 32, 4)] = 600;   /* slightly high: log2(601) - log2(501) */
    const uint16_t *const wedges[2] = {a, b};
    const char *const titles[2] = {"a.npy", "b.npy"};
    bcae_plot_options opt;
    bcae_plot_options_default(&opt);
    opt.difference = 1;
    bcae_plot_layout lay, plain;
    CHECK(bcae_plot_layout_compute(2, &opt, &lay, &err) == BCAE_OK);
    CHECK(lay.npanels == 3);
    CHECK(lay.panel_x[1] > lay.panel_x[0] + lay.panel_w);
    CHECK(lay.colorbar_x > lay.panel_x[1] + lay.panel_w);
    CHECK(lay.panel_x[2] > lay.colorbar_x && lay.diff_colorbar_x > lay.panel_x[2] + lay.panel_w);
    opt.difference = 0;
    CHECK(bcae_plot_layout_compute(2, &opt, &plain, &err) == BCAE_OK);
    CHECK(plain.npanels == 2 && lay.width > plain.width + lay.panel_w);
    opt.difference = 1;

    CHECK(bcae_plot_wedges("plot_diff.png", wedges, titles, 2, &opt, &err) == BCAE_OK);
    picture p;
    CHECK(picture_read("plot_diff.png", &p) == 0);
    if (p.rgb) {
        CHECK(p.width == lay.width && p.height == lay.height);
        /* Panels A and B show their own wedges. */
        CHECK(block_is(&p, &lay, 0, 20, 30, log_colour(500), 0));
        CHECK(block_is(&p, &lay, 1, 20, 30, WHITE, 1));
        CHECK(block_is(&p, &lay, 1, 10, 10, log_colour(700), 0));
        /* The difference panel. */
        CHECK(block_is(&p, &lay, 2, 20, 30, bcae_colormap_rgb(BCAE_CMAP_DIVERGING, 0), 1));
        CHECK(block_is(&p, &lay, 2, 10, 10, bcae_colormap_rgb(BCAE_CMAP_DIVERGING, 1), 1));
        double d = log2(601.0) - log2(501.0);
        CHECK(block_is(&p, &lay, 2, 21, 32,
                       bcae_colormap_rgb(BCAE_CMAP_DIVERGING, (d + 2) / 4), 0));
        CHECK(block_is(&p, &lay, 2, 22, 34, WHITE, 1)); /* same in both */
        CHECK(block_is(&p, &lay, 2, 0, 0, WHITE, 1));   /* empty in both */
        /* The difference colour bar: red at the top, blue at the bottom. */
        CHECK(same_rgb(picture_at(&p, lay.diff_colorbar_x + 2, lay.panel_y),
                       bcae_colormap_rgb(BCAE_CMAP_DIVERGING, 1)));
        CHECK(same_rgb(picture_at(&p, lay.diff_colorbar_x + 2, lay.panel_y + lay.panel_h - 1),
                       bcae_colormap_rgb(BCAE_CMAP_DIVERGING, 0)));
        free(p.rgb);
    }
    remove("plot_diff.png");
    free(b);
}

/* No file named `prefix`* is left in the working directory. */
static int leftovers(const char *prefix)
{
    DIR *d = opendir(".");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    closedir(d);
    return n;
}

static void test_errors(const uint16_t *w)
{
    bcae_error err;
    bcae_plot_options opt;
    bcae_plot_options_default(&opt);
    const uint16_t *const wedges[2] = {w, w};

    bcae_error_clear(&err);
    CHECK(bcae_plot_wedges("no-such-folder/plot.png", wedges, NULL, 1, &opt, &err) == BCAE_ERR_IO);
    CHECK(err.status == BCAE_ERR_IO && strstr(err.message, "no-such-folder/plot.png"));
    CHECK(!file_exists("no-such-folder/plot.png"));

    /* The destination is a folder: the temporary file is written, the
     * rename fails, and the temporary file is removed. */
    rmdir("plot_dir_target");
    CHECK(mkdir("plot_dir_target", 0777) == 0);
    CHECK(bcae_plot_wedges("plot_dir_target", wedges, NULL, 1, &opt, &err) == BCAE_ERR_IO);
    CHECK(leftovers("plot_dir_target.") == 0);
    rmdir("plot_dir_target");

    /* Bad options are refused before anything is written. */
    opt.layer = 16;
    CHECK(bcae_plot_wedges("plot_bad.png", wedges, NULL, 1, &opt, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    opt.layer = -2;
    CHECK(bcae_plot_wedges("plot_bad.png", wedges, NULL, 1, &opt, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    opt.layer = 0;
    opt.scale = 0;
    CHECK(bcae_plot_wedges("plot_bad.png", wedges, NULL, 1, &opt, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    opt.scale = BCAE_PLOT_MAX_SCALE + 1;
    CHECK(bcae_plot_wedges("plot_bad.png", wedges, NULL, 1, &opt, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    opt.scale = 2;
    opt.difference = 1;
    CHECK(bcae_plot_wedges("plot_bad.png", wedges, NULL, 1, &opt, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    opt.difference = 0;
    opt.vmin = opt.vmax;
    CHECK(bcae_plot_wedges("plot_bad.png", wedges, NULL, 1, &opt, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    opt.vmin = 6;
    CHECK(bcae_plot_wedges("plot_bad.png", wedges, NULL, 0, &opt, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_plot_wedges("plot_bad.png", wedges, NULL, BCAE_PLOT_MAX_PANELS + 1, &opt, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    const uint16_t *const missing[1] = {NULL};
    CHECK(bcae_plot_wedges("plot_bad.png", missing, NULL, 1, &opt, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(leftovers("plot_bad.") == 0);

    /* NULL options mean the defaults. */
    CHECK(bcae_plot_wedges("plot_defaults.png", wedges, NULL, 1, NULL, &err) == BCAE_OK);
    CHECK(file_exists("plot_defaults.png"));
    remove("plot_defaults.png");
}

int main(void)
{
    test_colormaps();
    test_font();
    test_canvas();
    uint16_t *w = malloc(BCAE_WEDGE_VOXELS * sizeof *w);
    synthetic_wedge(w);
    test_project(w);
    test_figure(w);
    test_difference(w);
    test_errors(w);
    free(w);
    return check_report("test_plot");
}
