/* A built-in 5x9 bitmap font for figure labels (printable ASCII). */
#ifndef BCAE_VIZ_FONT_H
#define BCAE_VIZ_FONT_H

/* Cell of one glyph: 5 columns; rows 0..6 sit above the baseline (capital
 * height 7), rows 7..8 hold descenders (g, j, p, q, y, comma). */
#define BCAE_FONT_WIDTH 5
#define BCAE_FONT_HEIGHT 9
#define BCAE_FONT_CAP_HEIGHT 7
/* Horizontal distance from one glyph to the next: one blank column. */
#define BCAE_FONT_ADVANCE 6

/* Row `row` (0..8) of the glyph for character c as a 5-bit mask, bit 4 the
 * leftmost column. Characters outside printable ASCII draw as '?'. */
unsigned bcae_font_row(int c, int row);

/* Width in pixels of `text` drawn at integer magnification `size`: the
 * glyphs and the gaps between them, no trailing gap. 0 for "". */
int bcae_font_text_width(const char *text, int size);

#endif
