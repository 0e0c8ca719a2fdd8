/* Line charts (viz/chart.h): ticks, the data-to-pixel mapping, clipping to
 * the plot box, markers and the legend. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "viz/chart.h"

static const bcae_rgb WHITE = {255, 255, 255}, RED = {200, 0, 0}, INK = {0, 0, 0};

static int same_rgb(bcae_rgb a, bcae_rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

static void test_ticks(void)
{
    double t[32];
    bcae_chart_axis lin = {0, 1, 0, NULL};
    int n = bcae_chart_ticks(&lin, t, 32);
    CHECK(n == 6);
    CHECK_NEAR(t[0], 0, 0);
    CHECK_NEAR(t[1], 0.2, 1e-12);
    CHECK_NEAR(t[5], 1, 1e-12);

    bcae_chart_axis lg = {1, 100, 1, NULL};
    n = bcae_chart_ticks(&lg, t, 32);
    double want[7] = {1, 2, 5, 10, 20, 50, 100};
    CHECK(n == 7);
    for (int i = 0; i < n && i < 7; i++) CHECK_NEAR(t[i], want[i], 1e-9);

    bcae_chart_axis wide = {0.5, 2000, 1, NULL}; /* > 2 decades: powers of ten only */
    n = bcae_chart_ticks(&wide, t, 32);
    CHECK(n == 4);
    CHECK_NEAR(t[0], 1, 1e-12);
    CHECK_NEAR(t[3], 1000, 1e-9);

    bcae_chart_axis bad = {0, 10, 1, NULL}; /* a log axis cannot start at 0 */
    CHECK(bcae_chart_ticks(&bad, t, 32) == 0);
}

static void test_mapping_and_clipping(void)
{
    bcae_canvas c;
    bcae_error err;
    CHECK(bcae_canvas_init(&c, 200, 150, WHITE, &err) == BCAE_OK);
    bcae_chart ch;
    memset(&ch, 0, sizeof ch);
    ch.x = 50;
    ch.y = 20;
    ch.w = 101;
    ch.h = 101;
    ch.xaxis = (bcae_chart_axis){1, 100, 1, "x"};
    ch.yaxis = (bcae_chart_axis){0, 10, 0, "y"};
    ch.text = (bcae_text_style){1, INK, BCAE_ALIGN_START, 0};
    ch.grid = (bcae_rgb){230, 230, 230};
    CHECK_NEAR(bcae_chart_px(&ch, 1), 50, 1e-9);
    CHECK_NEAR(bcae_chart_px(&ch, 10), 100, 1e-9); /* log: the middle decade */
    CHECK_NEAR(bcae_chart_px(&ch, 100), 150, 1e-9);
    CHECK_NEAR(bcae_chart_py(&ch, 0), 120, 1e-9);  /* y up */
    CHECK_NEAR(bcae_chart_py(&ch, 10), 20, 1e-9);
    CHECK(isnan(bcae_chart_px(&ch, 0)));
    CHECK(isnan(bcae_chart_px(&ch, NAN)));

    /* A horizontal line at y = 5 from x = 0.01 (outside) to 1e4 (outside):
     * drawn inside the box only. */
    double xs[2] = {0.01, 1e4}, ys[2] = {5, 5};
    bcae_chart_series(&c, &ch, xs, ys, 2, 1, BCAE_MARKER_NONE, 0, RED);
    CHECK(same_rgb(bcae_canvas_get(&c, 100, 70), RED));
    CHECK(same_rgb(bcae_canvas_get(&c, 50, 70), RED));
    CHECK(same_rgb(bcae_canvas_get(&c, 150, 70), RED));
    CHECK(same_rgb(bcae_canvas_get(&c, 49, 70), WHITE));
    CHECK(same_rgb(bcae_canvas_get(&c, 151, 70), WHITE));

    /* A marker at (10, 2.5); a point the axis cannot show breaks nothing. */
    double mx[2] = {10, 0}, my[2] = {2.5, 2.5};
    bcae_chart_series(&c, &ch, mx, my, 2, 1, BCAE_MARKER_SQUARE, 5, INK);
    CHECK(same_rgb(bcae_canvas_get(&c, 100, 95), INK));
    CHECK(same_rgb(bcae_canvas_get(&c, 102, 97), INK));
    CHECK(same_rgb(bcae_canvas_get(&c, 104, 95), WHITE));

    bcae_chart_draw_axes(&c, &ch);
    CHECK(same_rgb(bcae_canvas_get(&c, 49, 60), INK)); /* the frame, just outside the box */
    int left, bottom, top;
    bcae_chart_margins(&ch, &left, &bottom, &top);
    CHECK(left > 0 && bottom > 0 && top > 0);

    bcae_legend_entry e[2] = {{"a curve", RED, 2, BCAE_MARKER_CIRCLE},
                              {"points", INK, 0, BCAE_MARKER_DIAMOND}};
    int w, h;
    bcae_legend_size(e, 2, &ch.text, &w, &h);
    CHECK(w > 7 * 6 && h > 2 * 9);
    bcae_canvas_legend(&c, 5, 5, e, 2, &ch.text, WHITE);
    CHECK(same_rgb(bcae_canvas_get(&c, 4, 5), INK));
    bcae_canvas_free(&c);
}

int main(void)
{
    test_ticks();
    test_mapping_and_clipping();
    printf("test_chart: %d checks, %d failures\n", check_count, check_failures);
    return check_failures != 0;
}
