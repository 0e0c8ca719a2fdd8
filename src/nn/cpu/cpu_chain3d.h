/*
 * The 3D inference chains' shared machinery (cpu_chain3d.c: the encoders'
 * chain and the direct kernels; cpu_dechain3d.c: the decoders' chain).
 * Private to the CPU backend.
 */
#ifndef BCAE_NN_CPU_CHAIN3D_H
#define BCAE_NN_CPU_CHAIN3D_H

#include <stddef.h>

#include "nn/cpu/cpu_internal.h"

#define AVX512_TARGET "avx512f,avx512vl,avx512dq,fma"

enum { C3_ALIGN = 64, C3_SLACK = 256 /* floats after every buffer: vector over-reads */ };
enum { ROW_PLAIN = 0, ROW_PHASE = 1 };
enum { EPI_SPLIT = 0, EPI_REZERO = 1, EPI_OUT = 2, EPI_SHUFFLE = 3 };

/* An activation in the chain's layout: (n, c, d + 2, h + 2, rs), zero in the
 * padding. PLAIN rows hold column w at 1 + w; PHASE rows hold column 2j at
 * 1 + j and column 2j + 1 at ob + 1 + j. */
typedef struct act3 {
    int c, d, h, w;
    int layout, rs, ob;
    size_t cs, ns; /* channel and sample strides */
    float *data;
} act3;

typedef struct conv_step {
    const act3 *src; /* NULL: the sparse first layer, reading the caller's input */
    int cin, cout, kd, kh, kw, sh;
    int h0;               /* first input row tap: 0, or 1 for a transposed conv's odd rows */
    int off[4];           /* row offset of tap kw for output column 0 */
    int od, oh, ow;       /* output dims */
    float *wpk;           /* [ci][kd][kh][kw][cout] */
    float *bias;          /* cout */
    int epi;
    int cb, r, wv;        /* register tile: channels, rows, vectors of 16 columns */
    void (*fn[2][9])(const struct conv_step *, int, int, int, int, int); /* [R rows / 1][wv] */
    act3 *dst, *dst_side; /* SPLIT, SHUFFLE: halves; REZERO: dst (side in side) */
    int f, a0, na;        /* SHUFFLE: channels per half, first row phase, phases here */
    const act3 *side;
    float alpha;
    float *out; /* OUT: plain (n, cout, od, oh, ow) */
} conv_step;

static inline float lrelu(float v) { return v > 0.0f ? v : NN_LEAKY_SLOPE * v; }

static inline size_t round16(size_t v) { return (v + 15) & ~(size_t)15; }

static inline void act_shape(act3 *a, int c, int d, int h, int w, int layout)
{
    a->c = c, a->d = d, a->h = h, a->w = w;
    a->layout = layout;
    if (layout == ROW_PLAIN) {
        a->ob = 0;
        a->rs = (int)round16((size_t)w + 2);
    } else {
        const int e = (w + 1) / 2, o = w / 2;
        a->ob = e + 2;
        a->rs = (int)round16((size_t)a->ob + (size_t)o + 2);
    }
    a->cs = (size_t)(d + 2) * (size_t)(h + 2) * (size_t)a->rs;
    a->ns = (size_t)c * a->cs;
}

static inline float *act_row(const act3 *a, int n, int c, int d, int h)
{
    return a->data + (size_t)n * a->ns + (size_t)c * a->cs +
           ((size_t)(d + 1) * (size_t)(a->h + 2) + (size_t)(h + 1)) * (size_t)a->rs;
}

/* A zero-filled activation for a batch of n (with C3_SLACK floats after it);
 * 0, or -1 when out of memory. */
int c3_act_alloc(act3 *a, int n, int c, int d, int h, int w, int layout);
/* Packs conv weights (cout, cin, taps) into dst [ci][taps][co_off + co] of a
 * kernel with ctot output channels. */
void c3_pack(float *dst, const float *w, int cout, int cin, int taps, int ctot, int co_off);
/* Picks the register tile of a step (and its kernels); needs an even tile
 * for EPI_SHUFFLE. */
void c3_choose_tile(conv_step *s);
/* Runs one step over a batch of n; scratch holds per_thread floats a thread
 * (the portable path's row, (ow + 2) * (cout + 1) + 16 suffice). */
void c3_run_conv(const conv_step *s, int n, int threads, int avx512, float *scratch,
                 size_t per_thread);
int c3_has_avx512(void);

#endif
