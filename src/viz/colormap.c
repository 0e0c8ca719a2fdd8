#include "viz/colormap.h"

#include <math.h>

/* Anchors evenly spaced in t. The sequential map rises steadily in
 * lightness from dark purple to yellow, so a reader can order values by
 * brightness alone and it survives greyscale printing; its hue path
 * (purple, blue, teal, green, yellow) follows the viridis family. */
static const bcae_rgb SEQUENTIAL[] = {
    {68, 1, 84},    {71, 44, 122},  {59, 81, 139},  {44, 113, 142}, {33, 144, 141},
    {39, 173, 129}, {92, 200, 99},  {170, 220, 50}, {253, 231, 37},
};

/* Pure white in the middle so that "no difference" reads as blank paper,
 * the same as an empty voxel in the sequential panels. */
static const bcae_rgb DIVERGING[] = {
    {33, 102, 172}, {146, 197, 222}, {255, 255, 255}, {244, 165, 130}, {178, 24, 43},
};

static uint8_t lerp_channel(uint8_t a, uint8_t b, double f)
{
    return (uint8_t)lrint((double)a + ((double)b - (double)a) * f);
}

bcae_rgb bcae_colormap_rgb(bcae_colormap map, double t)
{
    const bcae_rgb *anchors = SEQUENTIAL;
    int n = (int)(sizeof SEQUENTIAL / sizeof SEQUENTIAL[0]);
    if (map == BCAE_CMAP_DIVERGING) {
        anchors = DIVERGING;
        n = (int)(sizeof DIVERGING / sizeof DIVERGING[0]);
    }
    if (!(t > 0)) t = 0; /* also NaN */
    if (t > 1) t = 1;
    double pos = t * (n - 1);
    int i = (int)pos;
    if (i >= n - 1) return anchors[n - 1];
    double f = pos - i;
    bcae_rgb c = {lerp_channel(anchors[i].r, anchors[i + 1].r, f),
                  lerp_channel(anchors[i].g, anchors[i + 1].g, f),
                  lerp_channel(anchors[i].b, anchors[i + 1].b, f)};
    return c;
}

bcae_rgb bcae_color_scale_rgb(const bcae_color_scale *s, double v)
{
    if (isnan(v) || (s->zero_is_empty && v == 0)) return s->empty;
    double span = s->vmax - s->vmin;
    double t = span > 0 ? (v - s->vmin) / span : 0.5;
    return bcae_colormap_rgb(s->map, t);
}
