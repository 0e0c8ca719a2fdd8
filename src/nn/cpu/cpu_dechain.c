/*
 * Inference chains for the BCAE-2D decoders on the CPU: the two heads
 * planned as one unit, with the encoder chain's Winograd kernels
 * (cpu_wino.h) for every residual convolution.
 *
 * What is different from running the layers one by one (src/model/runner.c)
 *  - Activations stay NHWC in the chain's precision (fp32 or bf16) from the
 *    code to the output layer: the Winograd kernels read and write NHWC and
 *    fuse the LeakyReLU (conv1) and the whole ReZero tail (conv2, in place
 *    over the block input), which the layer path runs as separate passes
 *    over 32 channels at up to 192 x 256.
 *  - The code is read from the engine's layout once, with the first
 *    upsampling done in the same pass; later upsamplings are copies of
 *    NHWC pixels.
 *  - The output layer (1x1, 32 -> 16) is a small AVX-512 kernel writing the
 *    engine's layout (for 16 channels nChw16c is NHWC) in fp32.
 * The decoders are ~12x the encoder's multiplies (45.9 GFLOP a wedge for
 * BCAE-2D(4,8,3)'s two heads), nearly all in 3x3 convolutions at 192 x 256:
 * Winograd F(4x4, 3x3) does a quarter of their products.
 *
 * Planned only where the kernels run (AVX-512F and FMA), for channels that
 * are multiples of 16, 3x3 pad 1 residual convolutions and a 1x1 output
 * layer; elsewhere create answers BCAE_ERR_UNSUPPORTED and the runner runs
 * the layers (oneDNN). bf16: bf16 activations, fp32 transforms and sums,
 * bf16 products where the CPU has AVX512-BF16 (as in the encoder chain);
 * the output layer reads bf16 and sums in fp32.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "core/error.h"
#include "nn/cpu/cpu_internal.h"
#include "nn/cpu/cpu_wino.h"

enum { DC_ALIGN = 64, DC_MAX_STEPS = 4 * 64 + 2, DC_MAX_C = 256 };

typedef enum dc_kind {
    DC_IN,    /* the code, engine layout -> NHWC (upsampled when `up`) */
    DC_UP,    /* NHWC nearest x2 */
    DC_CONV1, /* buffer -> tmp, LeakyReLU */
    DC_CONV2, /* tmp -> buffer, ReZero tail in place */
    DC_OUT    /* the 1x1 output layer -> the head's output, engine layout fp32 */
} dc_kind;

typedef struct dc_step {
    dc_kind kind;
    int c, h, w;          /* output shape */
    int src, dst, up;     /* buffers (-1: the caller's); DC_IN: upsample too */
    cpu_wino *wino;       /* DC_CONV1 / DC_CONV2 */
    float alpha;          /* DC_CONV2: the ReZero scalar */
    float *wt, *bias;     /* DC_OUT: weights [cin][cout], bias [cout] */
} dc_step;

struct nn_dechain {
    nn_dechain_desc d;
    nn_engine *owner;
    int threads, bf16, m, dot;
    size_t esz; /* bytes an activation element */
    int nsteps[2];
    dc_step steps[2][DC_MAX_STEPS];
    void *buf[3]; /* two block buffers (upsampling alternates them), conv1's output */
    float *wino_scratch; /* shared by every Winograd step (they run one at a time) */
    int own_buf;  /* allocated here (else the caller's, nn_dechain_desc.buffers) */
};

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void cpu_dechain_destroy(nn_dechain *c)
{
    if (!c) return;
    /* Every slot (calloc'd): a head whose planning failed half-way has steps
     * past its nsteps. */
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < DC_MAX_STEPS; i++) {
            cpu_wino_destroy(c->steps[k][i].wino);
            free(c->steps[k][i].wt);
            free(c->steps[k][i].bias);
        }
    if (c->own_buf)
        for (int b = 0; b < 3; b++) free(c->buf[b]);
    free(c->wino_scratch);
    free(c);
}

/* Whether the chain plans a head: [UPSAMPLE2 | RESIDUAL]*, then a 1x1 CONV. */
static const char *head_unsupported(const nn_dechain_desc *d, int k)
{
    const nn_layer *L = d->layers[k];
    int n = d->nlayers[k];
    if (!L || n < 1) return "no layers";
    for (int i = 0; i < n - 1; i++) {
        if (L[i].kind == NN_LAYER_UPSAMPLE2) continue;
        if (L[i].kind != NN_LAYER_RESIDUAL) return "a layer other than upsampling or residual";
        if (L[i].cin != d->c || L[i].cout != d->c || L[i].k != 3 || L[i].pad != 1)
            return "a residual block other than 3x3, pad 1, of the code's channels";
    }
    const nn_layer *o = &L[n - 1];
    if (o->kind != NN_LAYER_CONV || o->k != 1 || o->pad != 0 || o->cin != d->c)
        return "an output layer other than a 1x1 convolution";
    if (o->cout % 16 || cpu_block(o->cout) != 16)
        return "output channels not in blocks of 16 (a multiple of 16, AVX-512 layouts)";
    return NULL;
}

static void *alloc_bytes(size_t bytes)
{
    return aligned_alloc(DC_ALIGN, (bytes + DC_ALIGN - 1) / DC_ALIGN * DC_ALIGN);
}

/* The steps of head k; buffer sizes into need[0..2], the Winograd scratch
 * into need[3] (bytes). */
static bcae_status plan_head(nn_dechain *c, int k, size_t need[4], bcae_error *err)
{
    const nn_dechain_desc *d = &c->d;
    const nn_layer *L = d->layers[k];
    int n = d->nlayers[k], ns = 0, cur = 0, h = d->h, w = d->w, i = 0;
    dc_step *s = &c->steps[k][ns++];
    s->kind = DC_IN, s->c = d->c, s->src = -1, s->dst = cur;
    if (L[0].kind == NN_LAYER_UPSAMPLE2) {
        s->up = 1, h *= 2, w *= 2;
        i = 1;
    }
    s->h = h, s->w = w;
    for (; i < n - 1; i++) {
        if (ns + 2 >= DC_MAX_STEPS)
            return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "decoder chain: too many layers");
        if (L[i].kind == NN_LAYER_UPSAMPLE2) {
            s = &c->steps[k][ns++];
            h *= 2, w *= 2;
            s->kind = DC_UP, s->c = d->c, s->h = h, s->w = w, s->src = cur, s->dst = cur ^ 1;
            cur ^= 1;
            continue;
        }
        for (int second = 0; second < 2; second++) {
            s = &c->steps[k][ns++];
            s->kind = second ? DC_CONV2 : DC_CONV1;
            s->c = d->c, s->h = h, s->w = w;
            s->src = second ? 2 : cur, s->dst = second ? cur : 2;
            s->alpha = L[i].alpha;
            s->wino = cpu_wino_create(c->m, d->n, d->c, d->c, h, w, second ? L[i].w2 : L[i].w,
                                      second ? L[i].b2 : L[i].b, c->bf16, c->dot, c->threads, 1);
            if (!s->wino) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "decoder chain: out of memory");
        }
    }
    const nn_layer *o = &L[n - 1];
    s = &c->steps[k][ns++];
    s->kind = DC_OUT, s->c = o->cout, s->h = h, s->w = w, s->src = cur, s->dst = -1;
    s->wt = alloc_bytes((size_t)o->cin * (size_t)o->cout * sizeof(float));
    s->bias = alloc_bytes((size_t)o->cout * sizeof(float));
    if (!s->wt || !s->bias) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "decoder chain: out of memory");
    for (int co = 0; co < o->cout; co++)
        for (int ci = 0; ci < o->cin; ci++)
            s->wt[(size_t)ci * (size_t)o->cout + (size_t)co] = o->w[(size_t)co * (size_t)o->cin + (size_t)ci];
    memcpy(s->bias, o->b, (size_t)o->cout * sizeof(float));
    c->nsteps[k] = ns;
    for (int j = 0; j < ns; j++) {
        const dc_step *t = &c->steps[k][j];
        if (t->wino && cpu_wino_scratch_floats(t->wino) * sizeof(float) > need[3])
            need[3] = cpu_wino_scratch_floats(t->wino) * sizeof(float);
        if (t->dst < 0) continue;
        size_t bytes = (size_t)d->n * (size_t)t->c * (size_t)t->h * (size_t)t->w * c->esz;
        if (bytes > need[t->dst]) need[t->dst] = bytes;
    }
    return BCAE_OK;
}

bcae_status cpu_dechain_create(nn_engine *e, const nn_dechain_desc *d, nn_dechain **out,
                               bcae_error *err)
{
    *out = NULL;
    const nn_cpu_options *o = cpu_options(e);
    if (!d || d->n < 1 || d->nheads < 1 || d->nheads > 2 || d->c % 16 || d->c > DC_MAX_C)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "decoder chain: the CPU backend plans 1 or 2 heads over a code whose "
                         "channels are a multiple of 16, at most 256");
    if (d->precision != BCAE_PRECISION_FP32 && d->precision != BCAE_PRECISION_BF16)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "decoder chain: fp32 or bf16 only");
    for (int k = 0; k < d->nheads; k++) {
        const char *why = head_unsupported(d, k);
        if (why) return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "decoder chain: head %d has %s", k, why);
    }
    nn_chain_conv algo = cpu_chain_conv_resolve(o, d->precision);
    if (algo == NN_CHAIN_CONV_DIRECT)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "decoder chain: its 3x3 convolutions are Winograd only (AVX-512F and FMA, "
                         "not --conv-algo or --chain-conv direct): the layers run instead");
    nn_dechain *c = calloc(1, sizeof *c);
    if (!c) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "decoder chain: out of memory");
    c->d = *d;
    c->owner = e;
    c->threads = cpu_threads(e);
    c->bf16 = d->precision == BCAE_PRECISION_BF16;
    c->m = algo == NN_CHAIN_CONV_WINO2 ? 2 : 4;
    c->dot = c->bf16 && cpu_wino_bf16_dot_available() && !getenv("BCAE_WINO_FP32_PRODUCTS");
    c->esz = c->bf16 ? 2 : 4;
    size_t need[4] = {0, 0, 0, 0};
    bcae_status rc = BCAE_OK;
    for (int k = 0; k < d->nheads && !rc; k++) rc = plan_head(c, k, need, err);
    int lent = 1;
    for (int b = 0; b < 3; b++)
        lent = lent && d->buffers[b] && need[b] <= d->buffer_bytes &&
               (uintptr_t)d->buffers[b] % DC_ALIGN == 0;
    c->own_buf = !lent;
    for (int b = 0; b < 3 && !rc; b++) {
        if (lent) c->buf[b] = d->buffers[b];
        else if (need[b] && !(c->buf[b] = alloc_bytes(need[b])))
            rc = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "decoder chain: cannot allocate %zu MB",
                           need[b] >> 20);
    }
    if (!rc && need[3] && !(c->wino_scratch = alloc_bytes(need[3])))
        rc = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "decoder chain: out of memory");
    if (rc) {
        cpu_dechain_destroy(c);
        return rc;
    }
    c->d.layers[0] = c->d.layers[1] = NULL; /* read once, above */
    *out = c;
    return BCAE_OK;
}

/* ---- the steps ------------------------------------------------------------------- */

/* The code (engine layout, fp32, blocks of cpu_block(C)) to NHWC in the
 * chain's type, each pixel repeated f x f times. */
static void run_in(const nn_dechain *c, const dc_step *s, const float *code)
{
    const int N = c->d.n, C = c->d.c, H = c->d.h, W = c->d.w, B = cpu_block(C), f = s->up ? 2 : 1;
    const int Ho = H * f, Wo = W * f;
    void *dst = c->buf[s->dst];
#pragma omp parallel for collapse(2) num_threads(c->threads)
    for (int n = 0; n < N; n++)
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                const size_t o = (((size_t)n * Ho + (size_t)y) * Wo + (size_t)x) * (size_t)C;
                for (int ch = 0; ch < C; ch++) {
                    float v = code[((((size_t)n * (size_t)(C / B) + (size_t)(ch / B)) * H +
                                     (size_t)(y / f)) * W + (size_t)(x / f)) * B + (size_t)(ch % B)];
                    if (c->bf16) ((uint16_t *)dst)[o + (size_t)ch] = to_bf16(v);
                    else ((float *)dst)[o + (size_t)ch] = v;
                }
            }
}

/* NHWC nearest x2: each source row becomes two rows of doubled pixels. */
static void run_up(const nn_dechain *c, const dc_step *s)
{
    const int N = c->d.n, Hi = s->h / 2, Wi = s->w / 2;
    const size_t px = (size_t)s->c * c->esz, row = (size_t)s->w * px;
    const char *src = c->buf[s->src];
    char *dst = c->buf[s->dst];
#pragma omp parallel for collapse(2) num_threads(c->threads)
    for (int n = 0; n < N; n++)
        for (int y = 0; y < Hi; y++) {
            const char *in = src + ((size_t)n * (size_t)Hi + (size_t)y) * (size_t)Wi * px;
            char *o0 = dst + ((size_t)n * (size_t)s->h + 2 * (size_t)y) * row;
            for (int x = 0; x < Wi; x++) {
                memcpy(o0 + 2 * (size_t)x * px, in + (size_t)x * px, px);
                memcpy(o0 + (2 * (size_t)x + 1) * px, in + (size_t)x * px, px);
            }
            memcpy(o0 + row, o0, row);
        }
}

/* The 1x1 output layer: y[co] = b[co] + sum_ci w[ci][co] x[ci], 16 outputs
 * a vector, written in blocks of 16 channels (the engine's layout). */
__attribute__((target("avx512f,fma"))) static void run_out(const nn_dechain *c, const dc_step *s,
                                                          float *y)
{
    const int N = c->d.n, CI = c->d.c, CO = s->c, H = s->h, W = s->w, NB = CO / 16;
    const void *src = c->buf[s->src];
    const int bf16 = c->bf16;
#pragma omp parallel for collapse(2) num_threads(c->threads)
    for (int n = 0; n < N; n++)
        for (int row = 0; row < H; row++)
            for (int x = 0; x < W; x++) {
                const size_t p = ((size_t)n * (size_t)H + (size_t)row) * (size_t)W + (size_t)x;
                float xin[DC_MAX_C];
                if (bf16)
                    for (int ci = 0; ci < CI; ci++)
                        xin[ci] = from_bf16(((const uint16_t *)src)[p * (size_t)CI + (size_t)ci]);
                else
                    memcpy(xin, (const float *)src + p * (size_t)CI, (size_t)CI * sizeof(float));
                for (int b = 0; b < NB; b++) {
                    __m512 acc = _mm512_loadu_ps(s->bias + 16 * b);
                    for (int ci = 0; ci < CI; ci++)
                        acc = _mm512_fmadd_ps(_mm512_set1_ps(xin[ci]),
                                              _mm512_loadu_ps(s->wt + (size_t)ci * (size_t)CO + 16 * (size_t)b),
                                              acc);
                    _mm512_storeu_ps(y + ((((size_t)n * (size_t)NB + (size_t)b) * (size_t)H +
                                           (size_t)row) * (size_t)W + (size_t)x) * 16,
                                     acc);
                }
            }
}

static void poison(nn_tensor *const *out, int nheads)
{
    for (int k = 0; k < nheads; k++) {
        nn_tensor *t = out[k];
        if (!t || !t->data) continue;
        size_t n = (size_t)t->n * (size_t)t->c * (size_t)t->h * (size_t)t->w;
        for (size_t i = 0; i < n; i++) t->data[i] = NAN;
    }
}

bcae_status cpu_dechain_forward(nn_dechain *c, const nn_tensor *code, nn_tensor *const *out)
{
    const nn_dechain_desc *d = &c->d;
    int ok = code && code->n == d->n && code->c == d->c && code->h == d->h && code->w == d->w;
    for (int k = 0; k < d->nheads && ok; k++) {
        const dc_step *last = &c->steps[k][c->nsteps[k] - 1];
        ok = out[k] && out[k]->n == d->n && out[k]->c == last->c && out[k]->h == last->h &&
             out[k]->w == last->w;
    }
    if (!ok) {
        poison(out, d->nheads);
        return bcae_fail(&c->owner->last_error, BCAE_ERR_SHAPE,
                         "decoder chain: the code or an output is not the shape planned (code "
                         "%dx%dx%dx%d)", d->n, d->c, d->h, d->w);
    }
    for (int k = 0; k < d->nheads; k++)
        for (int i = 0; i < c->nsteps[k]; i++) {
            const dc_step *s = &c->steps[k][i];
            switch (s->kind) {
            case DC_IN: run_in(c, s, code->data); break;
            case DC_UP: run_up(c, s); break;
            case DC_CONV1:
                cpu_wino_forward(s->wino, c->buf[s->src], c->buf[s->dst], WINO_POST_LEAKY, 0.0f,
                                 c->wino_scratch);
                break;
            case DC_CONV2:
                cpu_wino_forward(s->wino, c->buf[s->src], c->buf[s->dst], WINO_POST_RESIDUAL,
                                 s->alpha, c->wino_scratch);
                break;
            case DC_OUT: run_out(c, s, out[k]->data); break;
            }
        }
    return BCAE_OK;
}

const char *cpu_dechain_describe(const nn_dechain *c, char *buf, size_t size)
{
    snprintf(buf, size, "3x3 convs Winograd F(%dx%d,3x3) (AVX-512)%s", c->m, c->m,
             !c->bf16 ? "" : c->dot ? " with bf16 products (AVX512-BF16)" : " with fp32 products");
    return buf;
}
