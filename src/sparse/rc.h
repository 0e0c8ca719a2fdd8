/*
 * The binary range coder of the sparse codec and its adaptive bit models
 * (docs/SPARSE.md section 2 specifies both to the bit).
 *
 * Coder: LZMA's range coder (32-bit range, a 33-bit low with carry
 * propagation through a cached byte and a count of pending 0xFF bytes),
 * with 16-bit probabilities and the split computed with a 64-bit product,
 * bound = (range * p0) >> 16, rather than LZMA's (range >> 11) * p0: the
 * truncation of range then costs nothing, where at 16-bit precision it would
 * cost up to 1/256 of the probability. Chosen because it is small, has no
 * floating point, is byte-exact wherever uint32/uint64 arithmetic is, and
 * decodes a bit in a handful of instructions (the codec codes ~1.7 million
 * bits a wedge). The encoder writes one byte per 8 bits of range consumed,
 * so a stream is never more than a few bytes longer than its information.
 *
 * Bit model: p0 = P(bit = 0) in units of 2^-16, starting at 1/2, and n, the
 * number of bits seen (capped at a per-model-family limit). The update moves
 * p0 towards the bit by the fraction rate[n] / 65536 = 1 / (n + 2): with an
 * uncapped n this is exactly the Krichevsky-Trofimov estimate (k0 + 1/2) /
 * (k + 1), the best a context that has seen k bits can do without a prior,
 * and it learns fast in the many contexts that see few bits; once n reaches
 * the cap the model forgets at a fixed rate 1 / (cap + 2) and follows slow
 * drift. p0 stays in [1, 65535] without clamping (the step is always less
 * than the distance to 0 or 65536), so both sub-ranges are non-empty.
 */
#ifndef BCAE_SPARSE_RC_H
#define BCAE_SPARSE_RC_H

#include <stddef.h>
#include <stdint.h>

#include "sparse/tables.h"

typedef struct rc_bit {
    uint16_t p0; /* P(bit = 0) * 65536, in [1, 65535] */
    uint16_t n;  /* bits seen, capped at the family's limit (<= 255) */
} rc_bit;

#define RC_BIT_INIT ((rc_bit){32768, 0})
#define RC_TOP (1u << 24)

#if defined(__GNUC__)
#define RC_INLINE static inline __attribute__((always_inline))
#else
#define RC_INLINE static inline
#endif

static inline void rc_bit_init(rc_bit *m, size_t count)
{
    for (size_t i = 0; i < count; i++) m[i] = RC_BIT_INIT;
}

/* Branch-free: a coded bit is as unpredictable to the CPU as to the model,
 * and a mispredicted branch per bit would cost more than the arithmetic. */
static inline void rc_bit_update(rc_bit *m, int bit, unsigned limit)
{
    uint32_t r = sparse_rate[m->n], p = m->p0, mask = 0u - (uint32_t)bit;
    uint32_t up = ((65536u - p) * r) >> 16, down = (p * r) >> 16;
    m->p0 = (uint16_t)(p + (up & ~mask) - (down & mask));
    m->n = (uint16_t)(m->n + (m->n < limit));
}

/* ---- encoder ------------------------------------------------------------ */

typedef struct rc_encoder {
    uint64_t low;     /* 33 bits: bit 32 is a carry into the pending bytes */
    uint32_t range;
    uint8_t cache;    /* the last byte not yet written (a carry may still change it) */
    uint64_t pending; /* cache + this many - 1 bytes of 0xFF wait to be written */
    uint8_t *buf;
    size_t cap, pos;  /* pos counts every byte, also those past cap */
    /* Optional statistics (NULL: off): counts[m - base][bit] for every coded
     * bit of a model in the array starting at base. */
    uint32_t (*counts)[2];
    const rc_bit *base;
    size_t direct; /* counts[direct][0] counts the bits coded without a model */
} rc_encoder;

static inline void rc_enc_init(rc_encoder *e, uint8_t *buf, size_t cap)
{
    e->low = 0;
    e->range = 0xFFFFFFFFu;
    e->cache = 0;
    e->pending = 1;
    e->buf = buf;
    e->cap = cap;
    e->pos = 0;
    e->counts = NULL;
    e->base = NULL;
    e->direct = 0;
}

static inline void rc_enc_byte(rc_encoder *e, uint8_t b)
{
    if (e->pos < e->cap) e->buf[e->pos] = b;
    e->pos++;
}

static inline void rc_enc_shift_low(rc_encoder *e)
{
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t b = e->cache;
        do {
            rc_enc_byte(e, (uint8_t)(b + carry));
            b = 0xFF;
        } while (--e->pending != 0);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->pending++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

/* counting: a constant at each call site (the passes are compiled twice,
 * with and without statistics), so that the common case pays nothing. */
static inline void rc_encode(rc_encoder *e, rc_bit *m, int bit, unsigned limit, int counting)
{
    uint32_t bound = (uint32_t)(((uint64_t)e->range * m->p0) >> 16);
    uint32_t mask = 0u - (uint32_t)bit;
    if (counting) e->counts[m - e->base][bit]++;
    e->low += bound & mask;
    e->range = bound ^ ((bound ^ (e->range - bound)) & mask);
    rc_bit_update(m, bit, limit);
    while (e->range < RC_TOP) {
        e->range <<= 8;
        rc_enc_shift_low(e);
    }
}

/* Codes `bits` low bits of v, most significant first, each at probability
 * 1/2 (no model): for bits that carry no context worth learning. */
static inline void rc_encode_direct(rc_encoder *e, uint32_t v, int bits, int counting)
{
    if (counting) e->counts[e->direct][0] += (uint32_t)bits;
    for (int i = bits - 1; i >= 0; i--) {
        e->range >>= 1;
        e->low += e->range & (0u - ((v >> i) & 1));
        while (e->range < RC_TOP) {
            e->range <<= 8;
            rc_enc_shift_low(e);
        }
    }
}

/* Flushes; returns the stream's length (which may exceed cap: then the
 * bytes past cap were dropped and the caller must not use the buffer). */
static inline size_t rc_enc_finish(rc_encoder *e)
{
    for (int i = 0; i < 5; i++) rc_enc_shift_low(e);
    return e->pos;
}

/* ---- decoder ------------------------------------------------------------ */

typedef struct rc_decoder {
    uint32_t range, code;
    const uint8_t *buf;
    size_t len, pos; /* pos counts every byte asked for, also those past len */
} rc_decoder;

static inline uint8_t rc_dec_byte(rc_decoder *d)
{
    uint8_t b = d->pos < d->len ? d->buf[d->pos] : 0;
    d->pos++;
    return b;
}

/* Returns 0, or -1 if the stream cannot be one of ours (its first byte, the
 * encoder's initial cache, is always 0). */
static inline int rc_dec_init(rc_decoder *d, const uint8_t *buf, size_t len)
{
    d->buf = buf;
    d->len = len;
    d->pos = 0;
    d->range = 0xFFFFFFFFu;
    d->code = 0;
    if (rc_dec_byte(d) != 0) return -1;
    for (int i = 0; i < 4; i++) d->code = (d->code << 8) | rc_dec_byte(d);
    return 0;
}

static inline int rc_decode(rc_decoder *d, rc_bit *m, unsigned limit)
{
    uint32_t bound = (uint32_t)(((uint64_t)d->range * m->p0) >> 16);
    int bit = d->code >= bound;
    uint32_t mask = 0u - (uint32_t)bit;
    d->code -= bound & mask;
    d->range = bound ^ ((bound ^ (d->range - bound)) & mask);
    rc_bit_update(m, bit, limit);
    while (d->range < RC_TOP) {
        d->range <<= 8;
        d->code = (d->code << 8) | rc_dec_byte(d);
    }
    return bit;
}

static inline uint32_t rc_decode_direct(rc_decoder *d, int bits)
{
    uint32_t v = 0;
    for (int i = 0; i < bits; i++) {
        d->range >>= 1;
        uint32_t b = d->code >= d->range;
        d->code -= d->range & (0u - b);
        v = (v << 1) | b;
        while (d->range < RC_TOP) {
            d->range <<= 8;
            d->code = (d->code << 8) | rc_dec_byte(d);
        }
    }
    return v;
}

/* A stream decoded to its end has been read exactly: the decoder asks for
 * as many bytes as the encoder wrote. Anything else is damage. */
static inline int rc_dec_exact(const rc_decoder *d)
{
    return d->pos == d->len;
}

#endif
