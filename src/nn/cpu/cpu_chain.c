/*
 * Inference chains on the CPU: the BCAE-2D encoder planned as one unit.
 *
 * What is different from running the layers one by one (src/model/runner.c)
 *  - The first convolution and the AvgPool after it are one layer: both are
 *    linear, so together they are a convolution with kernel k + 1, stride 2
 *    and the same padding, whose kernel is the k x k kernel convolved with a
 *    2 x 2 box of 1/4 (SPEC section 6). It is computed by scattering each
 *    non-zero input voxel into the (k+1)/2 x (k+1)/2 outputs it touches
 *    (~89% of the input is zero), or, as a check, densely by oneDNN.
 *  - A residual block is two oneDNN convolutions and nothing else: conv1
 *    with LeakyReLU fused, conv2 with the whole ReZero tail fused as
 *    post-ops [linear(alpha), sum, LeakyReLU] writing over the block's
 *    input (which only it reads): y = lrelu(alpha * conv2(a1) + x).
 *  - Activations are NHWC in the chain's precision: oneDNN's fast kernels
 *    for that post-op chain (brgconv) want NHWC; with the blocked layout the
 *    sum-after-linear chain falls back to the reference kernel. Only the
 *    final reorder writes the engine's layout (nChw16c, fp32).
 *
 * Precisions
 *  - FP32: everything fp32.
 *  - BF16: bf16 activations and weights, fp32 accumulation and bias; the
 *    sparse first layer computes in fp32 and rounds its output to bf16.
 *  - INT8: s8 activations (LeakyReLU leaves negatives, so not u8), s8
 *    weights with one scale per output channel (max |w| / 127), s32
 *    accumulation. Each activation's scale is max |a| / 127 over the
 *    calibration inputs, measured by running them through an fp32 twin of
 *    the chain. oneDNN 2.6 computes an int8 convolution as
 *    post_ops(oscale * (acc + bias)) (checked: the bias is in accumulator
 *    units), so bias_q = b / (s_in * s_w) and oscale = s_in * s_w / s_out;
 *    conv2's sum post-op rescales the block input by s_x / s_out. Pooling
 *    keeps its input's scale (an average stays in range).
 *    The layers at the code's resolution (after the last pooling) run in
 *    fp32: quantising their activations cost two thirds of int8's MAE
 *    increase on the default model (one activation at a time, see
 *    docs/PRECISION.md), and they hold 1/16 or less of the convolution
 *    work each. The residual block before that pooling is the boundary: it
 *    writes fp32 (its s8 input entering through a binary post-op, so in
 *    units of that input's scale, which the next convolution folds into its
 *    weights and its sum post-op). With no pooling after the first layer
 *    the code's resolution is the whole chain; then only the last block
 *    writes fp32, so that the code is not rounded to 8 bits.
 *
 * Threads as in cpu_conv.c: the engine's count is set around creation and
 * every execution, the caller's ICV restored after.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dnnl_debug.h>
#include <immintrin.h>

#include "core/error.h"
#include "nn/cpu/cpu_internal.h"
#include "nn/cpu/cpu_report.h"
#include "nn/cpu/cpu_wino.h"

/* Buffers: two for activations, one for residual blocks' inner activation,
 * and for int8 one fp32 buffer for the last block's output (the code). */
enum { CHAIN_ALIGN = 64, CHAIN_BUFFERS = 4, CHAIN_F32_BUF = 3 };
/* Zero taps on each side of the AVX-512 sparse kernel's padded kernel;
 * entries of slack after each row's list (sparse_list_row writes 16 at a
 * time). */
enum { SPARSE_PAD = 2, SPARSE_SLACK = 16 };

typedef enum step_kind {
    STEP_FIRST_SPARSE,
    STEP_FIRST_DENSE,
    STEP_POOL,
    STEP_CONV1, /* residual conv1: buffer -> tmp */
    STEP_CONV2, /* residual conv2: tmp -> buffer, in place with the tail */
    STEP_OUT    /* buffer -> y (fp32, engine layout) */
} step_kind;

typedef struct chain_step {
    step_kind kind;
    int c, h, w;         /* output shape */
    dnnl_data_type_t dt; /* output's data type */
    int src_buf, dst_buf; /* chain buffers; -1: the caller's x / y */
    dnnl_primitive_t prim;
    dnnl_memory_t scratch, src, dst, wei, bias;
    float scale_out; /* int8: the output's scale (value = scale * stored) */
    /* int8, the boundary block's conv2 (see the top): it writes fp32 and its
     * s8 input x (buffer res_buf) enters through a binary post-op instead of
     * the in-place sum. */
    int f32_out, res_buf;
    dnnl_memory_t src1;
    /* A 3x3 stride-1 convolution run by the Winograd kernels (cpu_wino.h)
     * instead of prim; alpha: conv2's ReZero scalar. */
    cpu_wino *wino;
    float alpha;
} chain_step;

/* A non-zero input voxel of the sparse first layer (see below). */
typedef struct sp_entry {
    int32_t zi; /* z * 16 + channel */
    float v;
} sp_entry;

struct nn_chain {
    nn_chain_desc d;
    nn_layer *layers; /* copy of the descriptor's array (pointers into the caller's weights) */
    int threads;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    nn_engine *owner;
    dnnl_data_type_t dt;
    nn_chain_conv conv; /* the 3x3 algorithm, resolved (never AUTO) */
    int wino_dot;       /* bf16 chains: Winograd with bf16 products (AVX512-BF16) */

    chain_step *steps;
    int nsteps;
    void *buf[CHAIN_BUFFERS];
    void *scratch_buf;
    float *wino_scratch; /* one for every Winograd step (they run one at a time) */

    /* The sparse first layer: fused kernel [cin][K][K][cout], bias, and one
     * accumulator row per thread. */
    int K, P, cin0, cout0;
    int avx512; /* the CPU runs the AVX-512 kernel (16 -> 32 channels) */
    float *w_pad;     /* its zero-padded kernel */
    sp_entry *lists;  /* its per-row non-zero lists, one wedge: H x W*16 */
    int *counts;      /* H */
    float *w_first, *b_first, *acc;

    /* INT8: the fp32 twin used for calibration and the ranges it saw; until
     * chain_finish the chain has no steps of its own. */
    nn_chain *twin;
    float *amax; /* one per step; non-NULL in a recording (twin) chain */
    int calibrated;
    double *profile; /* cpu_chain_profile: process CPU seconds per step, or NULL */
};

/* ---- small helpers ---------------------------------------------------------------- */

static bcae_status chain_fail(bcae_error *err, const char *what, dnnl_status_t st)
{
    bcae_status code = st == dnnl_unimplemented    ? BCAE_ERR_UNSUPPORTED
                       : st == dnnl_out_of_memory ? BCAE_ERR_OUT_OF_MEMORY
                                                   : BCAE_ERR_INTERNAL;
    return bcae_fail(err, code, "encoder chain: %s: oneDNN: %s", what, dnnl_status2str(st));
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static int8_t f32_to_s8(float f)
{
    float r = nearbyintf(f);
    if (r > 127.0f) return 127;
    if (r < -128.0f) return -128;
    if (r != r) return 0;
    return (int8_t)r;
}

static size_t step_elems(const nn_chain *c, const chain_step *s)
{
    return (size_t)c->d.n * (size_t)s->c * (size_t)s->h * (size_t)s->w;
}

static int run_prim(nn_chain *c, chain_step *s, dnnl_exec_arg_t *args, int nargs)
{
    if (s->scratch) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->scratch};
    int saved = omp_get_max_threads();
    omp_set_num_threads(c->threads);
    dnnl_status_t st = dnnl_primitive_execute(s->prim, c->stream, nargs, args);
    if (st == dnnl_success) st = dnnl_stream_wait(c->stream);
    omp_set_num_threads(saved);
    return st == dnnl_success;
}

/* ---- the sparse first layer -------------------------------------------------------- */

/* Fused kernel of conv(k, pad) followed by AvgPool2d(2): K = k + 1,
 * wf[ja][jz] = 1/4 sum_{a,b in {0,1}} w[ja - a][jz - b] (indices inside the
 * k x k kernel), stored [cin][K][K][cout] for the scatter. */
static void fuse_first_weights(nn_chain *c, const nn_layer *l)
{
    const int k = l->k, K = k + 1, ci = l->cin, co = l->cout;
    for (int o = 0; o < co; o++)
        for (int i = 0; i < ci; i++)
            for (int ja = 0; ja < K; ja++)
                for (int jz = 0; jz < K; jz++) {
                    double s = 0.0;
                    for (int a = 0; a < 2; a++)
                        for (int b = 0; b < 2; b++) {
                            int y = ja - a, x = jz - b;
                            if (y >= 0 && y < k && x >= 0 && x < k)
                                s += l->w[(((size_t)o * (size_t)ci + (size_t)i) * (size_t)k +
                                           (size_t)y) * (size_t)k + (size_t)x];
                        }
                    c->w_first[(((size_t)i * (size_t)K + (size_t)ja) * (size_t)K + (size_t)jz) *
                                   (size_t)co + (size_t)o] = (float)(0.25 * s);
                }
    memcpy(c->b_first, l->b, (size_t)co * sizeof(float));
}

/* One output row: acc[q][o] over the K input rows it sees. CO is the output
 * width, a compile-time 32 in the common case so the o-loops vectorise. */
static inline void sparse_row(const float *restrict x, const float *restrict wf,
                              const float *restrict bias, float *restrict acc, int H, int W,
                              int CI, int K, int P, int p, int Wo, const int CO)
{
    for (int q = 0; q < Wo; q++)
        for (int o = 0; o < CO; o++) acc[(size_t)q * (size_t)CO + (size_t)o] = bias[o];
    for (int ja = 0; ja < K; ja++) {
        int a = 2 * p + ja - P;
        if (a < 0 || a >= H) continue;
        const float *row = x + (size_t)a * (size_t)W * (size_t)CI;
        for (int z = 0; z < W; z++) {
            const float *v = row + (size_t)z * (size_t)CI;
            int any = 0;
            for (int i = 0; i < CI; i++) any |= v[i] != 0.0f;
            if (!any) continue;
            /* Outputs q with 2q + jz - P = z: jz of z's parity class. */
            int jz0 = (z + P) & 1;
            for (int i = 0; i < CI; i++) {
                float xv = v[i];
                if (xv == 0.0f) continue;
                const float *wrow = wf + ((size_t)i * (size_t)K + (size_t)ja) * (size_t)K * (size_t)CO;
                for (int jz = jz0; jz < K; jz += 2) {
                    int q = (z + P - jz) / 2;
                    if (q < 0 || q >= Wo) continue;
                    const float *wv = wrow + (size_t)jz * (size_t)CO;
                    float *dst = acc + (size_t)q * (size_t)CO;
                    for (int o = 0; o < CO; o++) dst[o] += xv * wv[o];
                }
            }
        }
    }
}

/* The 16 -> 32 channel case with AVX-512, in two passes per wedge.
 *
 * 1. Each input row becomes a list of its non-zero voxels (z * 16 + channel,
 *    value), sorted by z, written branch-free with compress-stores.
 * 2. Outputs are computed four adjacent columns at a time in gather form:
 *    the sum over the listed voxels of the K rows and K + 6 columns they
 *    see. The accumulators (4 columns x 2 halves of 16 channels = 8
 *    independent FMA chains) stay in registers; nothing is
 *    read-modified-written in memory. To keep the inner loop free of
 *    data-dependent branches every voxel feeds all four columns, through a
 *    kernel padded with zero taps (wpad, [ci][K][K + 12][32]: tap jz at
 *    jz + 6). */
/* Compressed in registers and interleaved by permutes, then stored whole
 * (16 entries, SPARSE_SLACK past the list's end): the memory form of
 * vpcompressd is microcoded on Zen 4 and cost ~170 cycles a column here
 * (2.3 ms of CPU a wedge, 40% of the first layer; bench/bench_chain). */
__attribute__((target("avx512f"))) static int sparse_list_row(const float *row, int W,
                                                               sp_entry *out)
{
    const __m512 zero = _mm512_setzero_ps();
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    int n = 0;
    for (int z = 0; z < W; z++) {
        __m512 v = _mm512_loadu_ps(row + (size_t)z * 16);
        __mmask16 m = _mm512_cmp_ps_mask(v, zero, _CMP_NEQ_UQ);
        __m512i zi = _mm512_add_epi32(_mm512_set1_epi32(z * 16), lane);
        __m512i zc = _mm512_maskz_compress_epi32(m, zi);
        __m512i vc = _mm512_castps_si512(_mm512_maskz_compress_ps(m, v));
        _mm512_storeu_si512(out + n, _mm512_permutex2var_epi32(zc, lo, vc));
        _mm512_storeu_si512(out + n + 8, _mm512_permutex2var_epi32(zc, hi, vc));
        n += __builtin_popcount((unsigned)m);
    }
    return n;
}

__attribute__((target("avx512f,fma"))) static void
sparse_row_16x32_avx512(const sp_entry *lists, const int *counts, int cap, const float *wpad,
                        const float *bias, float *acc, int H, int K, int P, int p, int Wo)
{
    const int KP = K + SPARSE_PAD * 2;
    for (int q = 0; q < Wo; q++) {
        _mm512_storeu_ps(acc + (size_t)q * 32, _mm512_loadu_ps(bias));
        _mm512_storeu_ps(acc + (size_t)q * 32 + 16, _mm512_loadu_ps(bias + 16));
    }
    /* Input rows outermost: one row's taps (16 channels x (K + 4) x 128 B)
     * stay in L1 while every output column of the row is accumulated. */
    for (int ja = 0; ja < K; ja++) {
        int a = 2 * p + ja - P;
        if (a < 0 || a >= H) continue;
        const sp_entry *e = lists + (size_t)a * (size_t)cap;
        const int n = counts[a];
        const float *wja = wpad + (size_t)ja * (size_t)KP * 32;
        const size_t wstride = (size_t)K * (size_t)KP * 32; /* per channel */
        int b = 0, f = 0;
        for (int q0 = 0; q0 < Wo; q0 += 2) {
            const int zbase = 2 * q0 - P; /* t = z - zbase in [0, K + 2) */
            while (b < n && (e[b].zi >> 4) < zbase) b++;
            if (f < b) f = b;
            while (f < n && (e[f].zi >> 4) < zbase + K + 2) f++;
            if (b == f) continue;
            float *o = acc + (size_t)q0 * 32;
            /* Two sets of accumulators, even and odd entries: eight
             * independent FMA chains hide the FMA latency. */
            __m512 lo0 = _mm512_loadu_ps(o), hi0 = _mm512_loadu_ps(o + 16);
            __m512 lo1 = _mm512_setzero_ps(), hi1 = lo1, lo2 = lo1, hi2 = lo1, lo3 = lo1,
                   hi3 = lo1;
            int j = b;
            for (; j + 1 < f; j += 2) {
                int t = (e[j].zi >> 4) - zbase, i = e[j].zi & 15;
                int t2 = (e[j + 1].zi >> 4) - zbase, i2 = e[j + 1].zi & 15;
                __m512 xv = _mm512_set1_ps(e[j].v), xv2 = _mm512_set1_ps(e[j + 1].v);
                const float *w = wja + (size_t)i * wstride + (size_t)(t + SPARSE_PAD) * 32;
                const float *w2 = wja + (size_t)i2 * wstride + (size_t)(t2 + SPARSE_PAD) * 32;
                lo0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w), lo0);
                hi0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w + 16), hi0);
                lo1 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w - 64), lo1);
                hi1 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w - 48), hi1);
                lo2 = _mm512_fmadd_ps(xv2, _mm512_loadu_ps(w2), lo2);
                hi2 = _mm512_fmadd_ps(xv2, _mm512_loadu_ps(w2 + 16), hi2);
                lo3 = _mm512_fmadd_ps(xv2, _mm512_loadu_ps(w2 - 64), lo3);
                hi3 = _mm512_fmadd_ps(xv2, _mm512_loadu_ps(w2 - 48), hi3);
            }
            if (j < f) {
                int t = (e[j].zi >> 4) - zbase, i = e[j].zi & 15;
                __m512 xv = _mm512_set1_ps(e[j].v);
                const float *w = wja + (size_t)i * wstride + (size_t)(t + SPARSE_PAD) * 32;
                lo0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w), lo0);
                hi0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w + 16), hi0);
                lo1 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w - 64), lo1);
                hi1 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w - 48), hi1);
            }
            lo0 = _mm512_add_ps(lo0, lo2);
            hi0 = _mm512_add_ps(hi0, hi2);
            lo1 = _mm512_add_ps(lo1, lo3);
            hi1 = _mm512_add_ps(hi1, hi3);
            _mm512_storeu_ps(o, lo0);
            _mm512_storeu_ps(o + 16, hi0);
            if (q0 + 1 < Wo) {
                _mm512_storeu_ps(o + 32, _mm512_add_ps(_mm512_loadu_ps(o + 32), lo1));
                _mm512_storeu_ps(o + 48, _mm512_add_ps(_mm512_loadu_ps(o + 48), hi1));
            }
        }
    }
}

static void sparse_row_any(const float *x, const float *wf, const float *bias, float *acc, int H,
                           int W, int CI, int K, int P, int p, int Wo, int CO)
{
    sparse_row(x, wf, bias, acc, H, W, CI, K, P, p, Wo, CO);
}

/* Writes one output row (acc, Wo x CO fp32) in the chain's precision. */
static void store_row(const nn_chain *c, const chain_step *s, const float *acc, int n, int p)
{
    const int Ho = s->h, Wo = s->w, CO = c->cout0;
    const float inv = s->dt == dnnl_s8 ? 1.0f / s->scale_out : 1.0f;
    void *out = c->buf[s->dst_buf];
    size_t base = (((size_t)n * (size_t)Ho + (size_t)p) * (size_t)Wo) * (size_t)CO;
    size_t cnt = (size_t)Wo * (size_t)CO;
    if (s->dt == dnnl_f32) {
        memcpy((float *)out + base, acc, cnt * sizeof(float));
    } else if (s->dt == dnnl_bf16) {
        uint16_t *o = (uint16_t *)out + base;
        for (size_t i = 0; i < cnt; i++) o[i] = f32_to_bf16(acc[i]);
    } else {
        int8_t *o = (int8_t *)out + base;
        for (size_t i = 0; i < cnt; i++) o[i] = f32_to_s8(acc[i] * inv);
    }
}

static void run_sparse_first(nn_chain *c, chain_step *s, const float *x)
{
    const int H = c->d.h, W = c->d.w, CI = c->cin0, CO = c->cout0, Ho = s->h, Wo = s->w;
    const int K = c->K, P = c->P, N = c->d.n;
    const size_t wedge = (size_t)H * (size_t)W * (size_t)CI, row = (size_t)W * (size_t)CI,
                 cap = row + SPARSE_SLACK;
    if (c->lists) {
        for (int n = 0; n < N; n++) {
            const float *xn = x + (size_t)n * wedge;
#pragma omp parallel num_threads(c->threads)
            {
#pragma omp for schedule(static)
                for (int a = 0; a < H; a++)
                    c->counts[a] = sparse_list_row(xn + (size_t)a * row, W, c->lists + (size_t)a * cap);
#pragma omp for schedule(dynamic, 1)
                for (int p = 0; p < Ho; p++) {
                    float *acc = c->acc + (size_t)omp_get_thread_num() * (size_t)Wo * (size_t)CO;
                    sparse_row_16x32_avx512(c->lists, c->counts, (int)cap, c->w_pad, c->b_first,
                                            acc, H, K, P, p, Wo);
                    store_row(c, s, acc, n, p);
                }
            }
        }
        return;
    }
#pragma omp parallel for num_threads(c->threads) schedule(dynamic, 1) collapse(2)
    for (int n = 0; n < N; n++)
        for (int p = 0; p < Ho; p++) {
            float *acc = c->acc + (size_t)omp_get_thread_num() * (size_t)Wo * (size_t)CO;
            sparse_row_any(x + (size_t)n * wedge, c->w_first, c->b_first, acc, H, W, CI, K, P, p,
                           Wo, CO);
            store_row(c, s, acc, n, p);
        }
}

/* ---- planning ---------------------------------------------------------------------- */

static dnnl_status_t make_attr(dnnl_primitive_attr_t *attr)
{
    dnnl_status_t st = dnnl_primitive_attr_create(attr);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    return st;
}

static dnnl_status_t md_nhwc(dnnl_memory_desc_t *md, int n, int ch, int h, int w,
                             dnnl_data_type_t dt)
{
    const dnnl_dims_t dims = {n, ch, h, w};
    return dnnl_memory_desc_init_by_tag(md, 4, dims, dt, dnnl_nhwc);
}

static size_t scratch_size(const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

/* The int8 scale of a step's input (the previous step's output). */
static float scale_in(const nn_chain *c, int i)
{
    return i > 0 ? c->steps[i - 1].scale_out : 1.0f;
}

/* Weights of a convolution in the primitive's format: plain OIHW f32 (or,
 * with wscale, s8 with those per-channel scales) reordered once. */
static dnnl_status_t load_weights(nn_chain *c, chain_step *s, const_dnnl_primitive_desc_t pd,
                                  const float *w, int co, int ci, int k, float *wscale)
{
    dnnl_status_t st;
    const dnnl_dims_t wd = {co, ci, k, k};
    size_t count = (size_t)co * (size_t)ci * (size_t)k * (size_t)k, per = count / (size_t)co;
    dnnl_memory_desc_t plain_md;
    dnnl_data_type_t wdt = wscale ? dnnl_s8 : dnnl_f32;
    st = dnnl_memory_desc_init_by_tag(&plain_md, 4, wd, wdt, dnnl_oihw);
    if (st != dnnl_success) return st;
    void *plain = malloc(count * (wdt == dnnl_s8 ? 1 : 4));
    if (!plain) return dnnl_out_of_memory;
    if (wdt == dnnl_s8) {
        for (int o = 0; o < co; o++) {
            for (size_t j = 0; j < per; j++)
                ((int8_t *)plain)[(size_t)o * per + j] = f32_to_s8(w[(size_t)o * per + j] / wscale[o]);
        }
    } else {
        memcpy(plain, w, count * sizeof(float));
    }
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t from = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    st = dnnl_memory_create(&s->wei, want, c->engine, DNNL_MEMORY_ALLOCATE);
    if (st == dnnl_success) st = dnnl_memory_create(&from, &plain_md, c->engine, plain);
    if (st == dnnl_success)
        st = dnnl_reorder_primitive_desc_create(&rpd, &plain_md, c->engine, want, c->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&r, rpd);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, s->wei}};
        st = dnnl_primitive_execute(r, c->stream, 2, args);
        if (st == dnnl_success) st = dnnl_stream_wait(c->stream);
    }
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (from) dnnl_memory_destroy(from);
    free(plain);
    return st;
}

static dnnl_status_t load_bias(nn_chain *c, chain_step *s, const float *b, int co,
                               const float *wscale, float sin)
{
    const dnnl_dims_t bd = {co};
    dnnl_memory_desc_t md;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&md, 1, bd, dnnl_f32, dnnl_x);
    if (st == dnnl_success) st = dnnl_memory_create(&s->bias, &md, c->engine, DNNL_MEMORY_ALLOCATE);
    void *h = NULL;
    if (st == dnnl_success) st = dnnl_memory_get_data_handle(s->bias, &h);
    if (st != dnnl_success) return st;
    float *dst = h;
    for (int o = 0; o < co; o++) dst[o] = wscale ? b[o] / (sin * wscale[o]) : b[o];
    return dnnl_success;
}

/* Plans a convolution step: src buffer -> dst buffer (or in place for
 * conv2), weights loaded, post-ops per kind. */
static bcae_status plan_conv(nn_chain *c, int i, const nn_layer *l, int second, int stride,
                             const float *w, const float *b, int k, int pad, int cin,
                             dnnl_memory_desc_t *src_md, bcae_error *err)
{
    chain_step *s = &c->steps[i];
    const int n = c->d.n, co = s->c;
    dnnl_status_t st;
    const char *what = "convolution";
    dnnl_memory_desc_t dst_md, w_md, b_md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    float *wscale = NULL, *oscale = NULL, *wfold = NULL;
    const dnnl_dims_t wd = {co, cin, k, k}, bd = {co}, strides = {stride, stride}, pads = {pad, pad};
    /* int8 arithmetic when the input is s8; an fp32 step of an int8 chain
     * may still read an input in units of an int8 scale (see the top). */
    const int q = src_md->data_type == dnnl_s8;
    dnnl_data_type_t wdt = q ? dnnl_s8 : src_md->data_type == dnnl_bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t res_md;
    st = md_nhwc(&dst_md, n, co, s->h, s->w, s->dt);
    if (st == dnnl_success && s->f32_out) st = md_nhwc(&res_md, n, co, s->h, s->w, dnnl_s8);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&w_md, 4, wd, wdt, dnnl_format_tag_any);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x);
    if (st == dnnl_success) st = make_attr(&attr);
    if (st == dnnl_success) st = dnnl_post_ops_create(&ops);
    if (st != dnnl_success) goto done;

    /* conv2 works in place on the block input, whose scale is that of the
     * step before conv1. */
    const float sin = scale_in(c, i), sprev = second ? scale_in(c, i - 1) : 1.0f;
    const size_t wcount = (size_t)co * (size_t)cin * (size_t)k * (size_t)k;
    if (q) {
        wscale = malloc((size_t)co * sizeof(float));
        oscale = malloc((size_t)co * sizeof(float));
        if (!wscale || !oscale) {
            st = dnnl_out_of_memory;
            goto done;
        }
    } else if (sin != 1.0f) {
        wfold = malloc(wcount * sizeof(float));
        if (!wfold) {
            st = dnnl_out_of_memory;
            goto done;
        }
        for (size_t j = 0; j < wcount; j++) wfold[j] = w[j] * sin;
        w = wfold;
    }
    if (l && l->kind == NN_LAYER_RESIDUAL && s->f32_out) {
        /* alpha * h / s_x + q_x = (alpha * h + x) / s_x, in fp32; the output
         * reorder multiplies by s_x. */
        st = dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_linear, l->alpha, 0.0f);
        if (st == dnnl_success) st = dnnl_post_ops_append_binary(ops, dnnl_binary_add, &res_md);
        if (st == dnnl_success)
            st = dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, NN_LEAKY_SLOPE, 0.0f);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, ops);
    } else if (l && l->kind == NN_LAYER_RESIDUAL) {
        if (second) {
            st = dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_linear, l->alpha, 0.0f);
            if (st == dnnl_success)
                st = dnnl_post_ops_append_sum(ops, sprev / s->scale_out);
        }
        if (st == dnnl_success)
            st = dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, NN_LEAKY_SLOPE, 0.0f);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, ops);
    }
    if (st != dnnl_success) goto done;

    /* The output scales need the weight scales (max |w| / 127 per output
     * channel); load_weights quantises with the same ones. */
    if (q) {
        size_t per = (size_t)cin * (size_t)k * (size_t)k;
        for (int o = 0; o < co; o++) {
            float m = 0.0f;
            for (size_t j = 0; j < per; j++) m = fmaxf(m, fabsf(w[(size_t)o * per + j]));
            wscale[o] = m > 0.0f ? m / 127.0f : 1.0f;
            oscale[o] = sin * wscale[o] / (s->f32_out ? sprev : s->scale_out);
        }
        st = dnnl_primitive_attr_set_output_scales(attr, co, 1 << 1, oscale);
        if (st != dnnl_success) goto done;
    }

    what = "convolution plan";
    dnnl_convolution_desc_t cd;
    st = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                            src_md, &w_md, &b_md, &dst_md, strides, pads, pads);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &cd, attr, c->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&s->prim, pd);
    what = "convolution weights";
    if (st == dnnl_success) st = load_weights(c, s, pd, w, co, cin, k, wscale);
    if (st == dnnl_success) st = load_bias(c, s, b, co, wscale, sin);
    what = "convolution memory";
    if (st == dnnl_success) st = dnnl_memory_create(&s->src, src_md, c->engine, DNNL_MEMORY_NONE);
    if (st == dnnl_success) st = dnnl_memory_create(&s->dst, &dst_md, c->engine, DNNL_MEMORY_NONE);
    if (st == dnnl_success && s->f32_out)
        st = dnnl_memory_create(&s->src1, &res_md, c->engine, DNNL_MEMORY_NONE);
    if (st == dnnl_success && scratch_size(pd) > 0) {
        const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        st = dnnl_memory_create(&s->scratch, smd, c->engine, DNNL_MEMORY_NONE);
    }
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    free(wscale);
    free(oscale);
    free(wfold);
    return st == dnnl_success ? BCAE_OK : chain_fail(err, what, st);
}

/* The step list: shapes, buffers and (for int8) each output's scale. */
static bcae_status lay_out_steps(nn_chain *c, bcae_error *err)
{
    const nn_chain_desc *d = &c->d;
    int cap = 2 * d->nlayers + 2;
    c->steps = calloc((size_t)cap, sizeof *c->steps);
    if (!c->steps) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "encoder chain: out of memory");
    /* int8: the boundary block (see the top), the last residual block
     * before the last pooling, or with no pooling after the first layer the
     * last residual block. */
    int boundary = -1, last_pool = -1;
    for (int li = 2; li < d->nlayers; li++)
        if (d->layers[li].kind == NN_LAYER_POOL2) last_pool = li;
    if (c->dt == dnnl_s8)
        for (int li = 2; li < d->nlayers; li++)
            if (d->layers[li].kind == NN_LAYER_RESIDUAL && (last_pool < 0 || li < last_pool))
                boundary = li;
    dnnl_data_type_t dt = c->dt;
    int cur = 0, ch = d->layers[0].cout, h = d->h / 2, w = d->w / 2, ns = 0;
    chain_step *s = &c->steps[ns++];
    s->kind = d->first == NN_FIRST_DENSE ? STEP_FIRST_DENSE : STEP_FIRST_SPARSE;
    s->c = ch, s->h = h, s->w = w, s->src_buf = -1, s->dst_buf = cur, s->dt = dt;
    for (int li = 2; li < d->nlayers; li++) {
        const nn_layer *l = &d->layers[li];
        if (l->kind == NN_LAYER_POOL2) {
            s = &c->steps[ns++];
            h /= 2, w /= 2;
            s->kind = STEP_POOL, s->c = ch, s->h = h, s->w = w, s->dt = dt;
            s->src_buf = cur, s->dst_buf = cur == 0 ? 1 : 0;
            cur = s->dst_buf;
        } else {
            s = &c->steps[ns++];
            s->kind = STEP_CONV1, s->c = ch, s->h = h, s->w = w, s->src_buf = cur, s->dst_buf = 2;
            s->dt = dt;
            s = &c->steps[ns++];
            s->kind = STEP_CONV2, s->c = ch, s->h = h, s->w = w, s->src_buf = 2, s->dst_buf = cur;
            s->dt = dt;
            if (li == boundary) {
                s->f32_out = 1, s->res_buf = cur;
                s->dst_buf = cur = CHAIN_F32_BUF;
                s->dt = dt = dnnl_f32;
            }
        }
    }
    s = &c->steps[ns++];
    s->kind = STEP_OUT, s->c = ch, s->h = h, s->w = w, s->src_buf = cur, s->dst_buf = -1;
    s->dt = dnnl_f32;
    c->nsteps = ns;
    for (int i = 0; i < ns; i++) {
        chain_step *t = &c->steps[i];
        if (t->f32_out) t->scale_out = scale_in(c, i - 1); /* the block input's */
        else if (t->kind == STEP_POOL || t->kind == STEP_OUT) t->scale_out = scale_in(c, i);
        else if (t->dt == dnnl_s8) t->scale_out = c->twin->amax[i] > 0.0f ? c->twin->amax[i] / 127.0f : 1.0f;
        else t->scale_out = 1.0f;
    }
    return BCAE_OK;
}

static bcae_status plan_steps(nn_chain *c, bcae_error *err)
{
    const nn_chain_desc *d = &c->d;
    bcae_status rc = lay_out_steps(c, err);
    if (rc) return rc;
    size_t bytes[CHAIN_BUFFERS] = {0};
    for (int i = 0; i < c->nsteps; i++) {
        const chain_step *s = &c->steps[i];
        if (s->dst_buf < 0) continue;
        size_t e = step_elems(c, s) * dnnl_data_type_size(s->dt);
        if (e > bytes[s->dst_buf]) bytes[s->dst_buf] = e;
    }
    for (int b = 0; b < CHAIN_BUFFERS; b++) {
        if (!bytes[b]) continue;
        c->buf[b] = aligned_alloc(CHAIN_ALIGN, (bytes[b] + CHAIN_ALIGN - 1) / CHAIN_ALIGN * CHAIN_ALIGN);
        if (!c->buf[b]) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "encoder chain: out of memory");
    }

    const nn_layer *first = &d->layers[0];
    c->K = first->k + 1;
    c->P = first->pad;
    c->cin0 = first->cin;
    c->cout0 = first->cout;
    size_t wf = (size_t)c->cin0 * (size_t)c->K * (size_t)c->K * (size_t)c->cout0;
    c->w_first = malloc(wf * sizeof(float));
    c->b_first = malloc((size_t)c->cout0 * sizeof(float));
    c->acc = aligned_alloc(CHAIN_ALIGN, ((size_t)c->threads * (size_t)(d->w / 2) *
                                             (size_t)c->cout0 * sizeof(float) + CHAIN_ALIGN - 1) /
                                            CHAIN_ALIGN * CHAIN_ALIGN);
    if (!c->w_first || !c->b_first || !c->acc)
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "encoder chain: out of memory");
    fuse_first_weights(c, first);
    if (c->avx512 && c->cin0 == 16 && c->cout0 == 32) {
        const size_t K = (size_t)c->K, KP = K + 2 * SPARSE_PAD;
        c->w_pad = calloc(16 * K * KP * 32, sizeof(float));
        c->lists = malloc((size_t)d->h * ((size_t)d->w * 16 + SPARSE_SLACK) * sizeof(sp_entry));
        c->counts = malloc((size_t)d->h * sizeof(int));
        if (!c->w_pad || !c->lists || !c->counts)
            return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "encoder chain: out of memory");
        for (size_t i = 0; i < 16; i++)
            for (size_t ja = 0; ja < K; ja++)
                for (size_t jz = 0; jz < K; jz++)
                    memcpy(c->w_pad + ((i * K + ja) * KP + jz + SPARSE_PAD) * 32,
                           c->w_first + ((i * K + ja) * K + jz) * 32, 32 * sizeof(float));
    }

    dnnl_status_t st = dnnl_success;
    int li = 2; /* the layer the next step comes from */
    size_t scratch = 0;
    for (int i = 0; i < c->nsteps && !rc; i++) {
        chain_step *s = &c->steps[i];
        chain_step *prev = i > 0 ? &c->steps[i - 1] : NULL;
        dnnl_memory_desc_t src_md, dst_md;
        switch (s->kind) {
        case STEP_FIRST_SPARSE: break;
        case STEP_FIRST_DENSE: {
            /* The input as oneDNN sees it: for 16 channels the engine's
             * nChw16c is NHWC. */
            st = md_nhwc(&src_md, d->n, d->c, d->h, d->w, dnnl_f32);
            if (st != dnnl_success) return chain_fail(err, "input descriptor", st);
            /* A dense layer over the fused kernel in plain OIHW. */
            size_t K = (size_t)c->K, ci = (size_t)c->cin0, co = (size_t)c->cout0;
            float *w = malloc(co * ci * K * K * sizeof(float));
            if (!w) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "encoder chain: out of memory");
            for (size_t o = 0; o < co; o++)
                for (size_t ic = 0; ic < ci; ic++)
                    for (size_t y = 0; y < K; y++)
                        for (size_t x = 0; x < K; x++)
                            w[((o * ci + ic) * K + y) * K + x] = c->w_first[((ic * K + y) * K + x) * co + o];
            rc = plan_conv(c, i, NULL, 0, 2, w, c->b_first, c->K, c->P, c->cin0, &src_md,
                           err);
            free(w);
            break;
        }
        case STEP_POOL: {
            li++;
            dnnl_pooling_desc_t pdsc;
            dnnl_primitive_attr_t attr = NULL;
            dnnl_primitive_desc_t pd = NULL;
            const dnnl_dims_t k2 = {2, 2}, zero = {0, 0};
            st = md_nhwc(&src_md, d->n, prev->c, prev->h, prev->w, prev->dt);
            if (st == dnnl_success) st = md_nhwc(&dst_md, d->n, s->c, s->h, s->w, s->dt);
            if (st == dnnl_success) st = make_attr(&attr);
            if (st == dnnl_success)
                st = dnnl_pooling_forward_desc_init(&pdsc, dnnl_forward_inference,
                                                    dnnl_pooling_avg_exclude_padding, &src_md,
                                                    &dst_md, k2, k2, zero, zero);
            if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &pdsc, attr, c->engine, NULL);
            if (st == dnnl_success) st = dnnl_primitive_create(&s->prim, pd);
            if (st == dnnl_success) st = dnnl_memory_create(&s->src, &src_md, c->engine, DNNL_MEMORY_NONE);
            if (st == dnnl_success) st = dnnl_memory_create(&s->dst, &dst_md, c->engine, DNNL_MEMORY_NONE);
            if (st == dnnl_success && scratch_size(pd) > 0)
                st = dnnl_memory_create(&s->scratch, dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0),
                                        c->engine, DNNL_MEMORY_NONE);
            if (pd) dnnl_primitive_desc_destroy(pd);
            if (attr) dnnl_primitive_attr_destroy(attr);
            if (st != dnnl_success) return chain_fail(err, "pooling", st);
            break;
        }
        case STEP_CONV1:
        case STEP_CONV2: {
            const nn_layer *l = &d->layers[li];
            int second = s->kind == STEP_CONV2;
            if (c->conv != NN_CHAIN_CONV_DIRECT && l->k == 3 && l->pad == 1 && !s->f32_out &&
                prev->dt == s->dt && (s->dt == dnnl_f32 || s->dt == dnnl_bf16)) {
                s->wino = cpu_wino_create(c->conv == NN_CHAIN_CONV_WINO4 ? 4 : 2, d->n, l->cin,
                                          s->c, s->h, s->w, second ? l->w2 : l->w,
                                          second ? l->b2 : l->b, s->dt == dnnl_bf16,
                                          s->dt == dnnl_bf16 && c->wino_dot, c->threads, 1);
                s->alpha = l->alpha;
                /* Shapes it does not take (channels not multiples of 16)
                 * go to oneDNN below; only memory is an error. */
                if (!s->wino && l->cin % 16 == 0 && s->c % 16 == 0)
                    return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "encoder chain: out of memory");
                if (s->wino) {
                    if (second) li++;
                    break;
                }
            }
            st = md_nhwc(&src_md, d->n, prev->c, prev->h, prev->w, prev->dt);
            if (st != dnnl_success) return chain_fail(err, "descriptor", st);
            rc = plan_conv(c, i, l, second, 1, second ? l->w2 : l->w, second ? l->b2 : l->b, l->k,
                           l->pad, l->cin, &src_md, err);
            if (second) li++;
            break;
        }
        case STEP_OUT: {
            /* Reorder to the engine's fp32 layout, undoing the int8 scale. */
            dnnl_primitive_attr_t attr = NULL;
            dnnl_primitive_desc_t pd = NULL;
            const dnnl_dims_t dims = {d->n, s->c, s->h, s->w};
            st = md_nhwc(&src_md, d->n, s->c, s->h, s->w, prev->dt);
            if (st == dnnl_success)
                st = dnnl_memory_desc_init_by_tag(&dst_md, 4, dims, dnnl_f32,
                                                  cpu_block(s->c) == 16 ? dnnl_nChw16c
                                                  : cpu_block(s->c) == 8 ? dnnl_nChw8c
                                                                         : dnnl_nchw);
            if (st == dnnl_success) st = make_attr(&attr);
            if (st == dnnl_success && s->scale_out != 1.0f)
                st = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &s->scale_out);
            if (st == dnnl_success)
                st = dnnl_reorder_primitive_desc_create(&pd, &src_md, c->engine, &dst_md, c->engine, attr);
            if (st == dnnl_success) st = dnnl_primitive_create(&s->prim, pd);
            if (st == dnnl_success) st = dnnl_memory_create(&s->src, &src_md, c->engine, DNNL_MEMORY_NONE);
            if (st == dnnl_success) st = dnnl_memory_create(&s->dst, &dst_md, c->engine, DNNL_MEMORY_NONE);
            if (st == dnnl_success && scratch_size(pd) > 0)
                st = dnnl_memory_create(&s->scratch, dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0),
                                        c->engine, DNNL_MEMORY_NONE);
            if (pd) dnnl_primitive_desc_destroy(pd);
            if (attr) dnnl_primitive_attr_destroy(attr);
            if (st != dnnl_success) return chain_fail(err, "output reorder", st);
            break;
        }
        }
        if (!rc && s->scratch) {
            const dnnl_memory_desc_t *md;
            dnnl_memory_get_memory_desc(s->scratch, &md);
            size_t sz = dnnl_memory_desc_get_size(md);
            if (sz > scratch) scratch = sz;
        }
    }
    if (rc) return rc;
    if (scratch > 0) {
        c->scratch_buf = aligned_alloc(CHAIN_ALIGN, (scratch + CHAIN_ALIGN - 1) / CHAIN_ALIGN * CHAIN_ALIGN);
        if (!c->scratch_buf) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "encoder chain: out of memory");
    }
    size_t wino = 0;
    for (int i = 0; i < c->nsteps; i++)
        if (c->steps[i].wino && cpu_wino_scratch_floats(c->steps[i].wino) > wino)
            wino = cpu_wino_scratch_floats(c->steps[i].wino);
    if (wino > 0) {
        free(c->wino_scratch);
        c->wino_scratch = aligned_alloc(CHAIN_ALIGN, (wino * sizeof(float) + CHAIN_ALIGN - 1) /
                                                         CHAIN_ALIGN * CHAIN_ALIGN);
        if (!c->wino_scratch) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "encoder chain: out of memory");
    }
    /* Point every step at its buffers once: they never move. */
    for (int i = 0; i < c->nsteps; i++) {
        chain_step *s = &c->steps[i];
        if (s->scratch) dnnl_memory_set_data_handle(s->scratch, c->scratch_buf);
        if (s->src && s->src_buf >= 0) dnnl_memory_set_data_handle(s->src, c->buf[s->src_buf]);
        if (s->dst && s->dst_buf >= 0) dnnl_memory_set_data_handle(s->dst, c->buf[s->dst_buf]);
        if (s->src1) dnnl_memory_set_data_handle(s->src1, c->buf[s->res_buf]);
    }
    return BCAE_OK;
}

static int desc_supported(const nn_chain_desc *d)
{
    if (d->nlayers < 2 || d->layers[0].kind != NN_LAYER_CONV || d->layers[1].kind != NN_LAYER_POOL2)
        return 0;
    const nn_layer *f = &d->layers[0];
    if (f->cin != d->c || f->k % 2 != 1 || f->pad != (f->k - 1) / 2) return 0;
    /* The first layer reads x as NHWC, which the engine's layout is only
     * when the channels form one block (1, 8 or 16 of them). */
    if (cpu_block(d->c) != d->c) return 0;
    if (d->h % 2 || d->w % 2) return 0;
    int h = d->h / 2, w = d->w / 2, ch = f->cout;
    for (int i = 2; i < d->nlayers; i++) {
        const nn_layer *l = &d->layers[i];
        if (l->kind == NN_LAYER_POOL2) {
            if (h % 2 || w % 2) return 0;
            h /= 2, w /= 2;
        } else if (l->kind == NN_LAYER_RESIDUAL) {
            if (l->cin != ch || l->cout != ch || l->k % 2 != 1 || l->pad != (l->k - 1) / 2) return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

/* The 3x3 algorithm (nn_cpu_options.chain_conv). AUTO is Winograd F(4x4,
 * 3x3) wherever the kernels run: on Zen 4 (double-pumped AVX-512, where
 * oneDNN's direct kernels already run near the FMA peak) it does a quarter
 * of the products and measured faster at every resolution of the chain
 * (bench/RESULTS.md, Zen 4 section); its error stays within the bound of
 * tests/test_backend_ops.c. int8 keeps oneDNN's VNNI kernels. The decoder
 * chain (cpu_dechain.c) takes the same choice. */
nn_chain_conv cpu_chain_conv_resolve(const nn_cpu_options *o, bcae_precision precision)
{
    if (precision == BCAE_PRECISION_INT8) return NN_CHAIN_CONV_DIRECT;
    nn_chain_conv a = o->chain_conv;
    if (a == NN_CHAIN_CONV_AUTO) {
        const char *env = getenv("BCAE_CHAIN_CONV");
        if (o->conv2d_algo == NN_CONV2D_DIRECT) a = NN_CHAIN_CONV_DIRECT;
        else if (env && !strcmp(env, "direct")) a = NN_CHAIN_CONV_DIRECT;
        else if (env && !strcmp(env, "wino2")) a = NN_CHAIN_CONV_WINO2;
        else a = NN_CHAIN_CONV_WINO4;
    }
    if (a != NN_CHAIN_CONV_DIRECT && !cpu_wino_available()) a = NN_CHAIN_CONV_DIRECT;
    return a;
}

static nn_chain *chain_new(nn_engine *e, const nn_chain_desc *d)
{
    nn_chain *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->d = *d;
    c->layers = malloc((size_t)d->nlayers * sizeof *c->layers);
    if (!c->layers) {
        free(c);
        return NULL;
    }
    memcpy(c->layers, d->layers, (size_t)d->nlayers * sizeof *c->layers);
    c->d.layers = c->layers;
    const cpu_state *s = e->impl;
    c->owner = e;
    c->engine = s->engine;
    c->stream = s->stream;
    c->threads = cpu_threads(e);
    c->dt = d->precision == BCAE_PRECISION_BF16 ? dnnl_bf16
            : d->precision == BCAE_PRECISION_INT8 ? dnnl_s8
                                                  : dnnl_f32;
    c->avx512 = d->first != NN_FIRST_SPARSE_PORTABLE && cpu_isa_allows(CPU_LEVEL_AVX512) &&
                __builtin_cpu_supports("avx512f") &&
                __builtin_cpu_supports("fma");
    c->conv = cpu_chain_conv_resolve(cpu_options(e), d->precision);
    c->wino_dot = cpu_wino_bf16_dot_available() && !getenv("BCAE_WINO_FP32_PRODUCTS");
    return c;
}

static void free_steps(nn_chain *c)
{
    for (int i = 0; i < c->nsteps; i++) {
        chain_step *s = &c->steps[i];
        dnnl_memory_t mems[] = {s->scratch, s->src, s->dst, s->wei, s->bias, s->src1};
        for (size_t j = 0; j < sizeof mems / sizeof mems[0]; j++)
            if (mems[j]) dnnl_memory_destroy(mems[j]);
        if (s->prim) dnnl_primitive_destroy(s->prim);
        cpu_wino_destroy(s->wino);
    }
    free(c->steps);
    c->steps = NULL;
    c->nsteps = 0;
}

void cpu_chain_destroy(nn_chain *c)
{
    if (!c) return;
    free_steps(c);
    for (int b = 0; b < CHAIN_BUFFERS; b++) free(c->buf[b]);
    free(c->scratch_buf);
    free(c->wino_scratch);
    free(c->w_first);
    free(c->b_first);
    free(c->acc);
    free(c->w_pad);
    free(c->lists);
    free(c->counts);
    free(c->amax);
    cpu_chain_destroy(c->twin);
    free(c->layers);
    free(c);
}

static bcae_status plan_locked(nn_chain *c, bcae_error *err)
{
    int saved = omp_get_max_threads();
    omp_set_num_threads(c->threads);
    bcae_status rc = plan_steps(c, err);
    omp_set_num_threads(saved);
    return rc;
}

bcae_status cpu_chain_create(nn_engine *e, const nn_chain_desc *d, nn_chain **out, bcae_error *err)
{
    *out = NULL;
    if (!d || d->n < 1 || !d->layers || !desc_supported(d))
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "encoder chain: the CPU backend plans only the BCAE-2D encoder form "
                         "(conv, pool, then pools and residual blocks, even sizes, 1, 8 or 16 "
                         "input channels)");
    if (d->first == NN_FIRST_DENSE && d->precision != BCAE_PRECISION_FP32)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "encoder chain: the dense first layer is an fp32 check only");
    nn_chain *c = chain_new(e, d);
    if (!c) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "encoder chain: out of memory");
    bcae_status rc;
    if (d->precision == BCAE_PRECISION_INT8) {
        /* Calibrate first: an fp32 twin records every step's range. */
        nn_chain_desc td = *d;
        td.precision = BCAE_PRECISION_FP32;
        td.first = NN_FIRST_SPARSE;
        c->twin = chain_new(e, &td);
        if (c->twin) c->twin->conv = NN_CHAIN_CONV_DIRECT; /* the int8 chain's own arithmetic */
        rc = c->twin ? plan_locked(c->twin, err)
                     : bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "encoder chain: out of memory");
        if (!rc) {
            c->twin->amax = calloc((size_t)c->twin->nsteps, sizeof(float));
            if (!c->twin->amax) rc = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "encoder chain: out of memory");
        }
    } else {
        rc = plan_locked(c, err);
    }
    if (rc) {
        cpu_chain_destroy(c);
        return rc;
    }
    *out = c;
    return BCAE_OK;
}

static int tensor_is(const nn_tensor *t, int n, int ch, int h, int w)
{
    return t->n == n && t->c == ch && t->h == h && t->w == w;
}

static float max_abs(const float *p, size_t n, int threads)
{
    float m = 0.0f;
#pragma omp parallel for num_threads(threads) reduction(max : m)
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(p[i]));
    return m;
}

/* NaN over y, so that a caller ignoring the status sees the failure too. */
static void poison_y(nn_tensor *y)
{
    size_t n = (size_t)y->n * (size_t)y->c * (size_t)y->h * (size_t)y->w;
    for (size_t i = 0; i < n; i++) y->data[i] = NAN;
}

static bcae_status run(nn_chain *c, const nn_tensor *x, nn_tensor *y)
{
    const chain_step *last = &c->steps[c->nsteps - 1];
    if (!tensor_is(x, c->d.n, c->d.c, c->d.h, c->d.w) ||
        !tensor_is(y, c->d.n, last->c, last->h, last->w)) {
        poison_y(y);
        return bcae_fail(&c->owner->last_error, BCAE_ERR_SHAPE,
                         "encoder chain: input %dx%dx%dx%d and output %dx%dx%dx%d, planned for "
                         "%dx%dx%dx%d and %dx%dx%dx%d",
                         x->n, x->c, x->h, x->w, y->n, y->c, y->h, y->w, c->d.n, c->d.c, c->d.h,
                         c->d.w, c->d.n, last->c, last->h, last->w);
    }
    for (int i = 0; i < c->nsteps; i++) {
        chain_step *s = &c->steps[i];
        int ok = 1;
        struct timespec t0, t1;
        if (c->profile) clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        switch (s->kind) {
        case STEP_FIRST_SPARSE: run_sparse_first(c, s, x->data); break;
        case STEP_FIRST_DENSE:
        case STEP_CONV1:
        case STEP_CONV2: {
            if (s->wino) {
                cpu_wino_forward(s->wino, c->buf[s->src_buf], c->buf[s->dst_buf],
                                 s->kind == STEP_CONV2 ? WINO_POST_RESIDUAL : WINO_POST_LEAKY,
                                 s->alpha, c->wino_scratch);
                break;
            }
            if (s->kind == STEP_FIRST_DENSE) dnnl_memory_set_data_handle(s->src, x->data);
            dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, s->src},
                                       {DNNL_ARG_WEIGHTS, s->wei},
                                       {DNNL_ARG_BIAS, s->bias},
                                       {DNNL_ARG_DST, s->dst},
                                       {DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, s->src1}};
            ok = run_prim(c, s, args, s->src1 ? 5 : 4);
            break;
        }
        case STEP_POOL: {
            dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, s->src}, {DNNL_ARG_DST, s->dst}};
            ok = run_prim(c, s, args, 2);
            break;
        }
        case STEP_OUT: {
            dnnl_memory_set_data_handle(s->dst, y->data);
            dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, s->src}, {DNNL_ARG_TO, s->dst}};
            ok = run_prim(c, s, args, 2);
            break;
        }
        }
        if (!ok) {
            poison_y(y);
            return bcae_fail(&c->owner->last_error, BCAE_ERR_INTERNAL,
                             "encoder chain: oneDNN failed at step %d of %d", i, c->nsteps);
        }
        if (c->profile) {
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
            c->profile[i] += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        }
        if (c->amax && s->dst_buf >= 0) {
            float m = max_abs(c->buf[s->dst_buf], step_elems(c, s), c->threads);
            if (m > c->amax[i]) c->amax[i] = m;
        }
    }
    return BCAE_OK;
}

bcae_status cpu_chain_calibrate(nn_chain *c, const nn_tensor *x)
{
    if (!c->twin || c->steps) return BCAE_OK;
    /* The twin's output is not wanted; its last buffer-to-y step needs a
     * target of the right shape: borrow one of the twin's own buffers
     * (its output is fp32 and no larger than the first activation). */
    const chain_step *last = &c->twin->steps[c->twin->nsteps - 1];
    nn_tensor y = {c->d.n, last->c, last->h, last->w, c->twin->buf[2]};
    bcae_status rc = run(c->twin, x, &y);
    if (rc == BCAE_OK) c->calibrated = 1;
    return rc;
}

bcae_status cpu_chain_finish(nn_chain *c, bcae_error *err)
{
    if (!c->twin || c->steps) return BCAE_OK;
    if (!c->calibrated)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "encoder chain: int8 needs calibration inputs before use");
    bcae_status rc = plan_locked(c, err);
    if (rc) {
        free_steps(c);
        return rc;
    }
    cpu_chain_destroy(c->twin);
    c->twin = NULL;
    return BCAE_OK;
}

bcae_status cpu_chain_forward(nn_chain *c, const nn_tensor *x, nn_tensor *y)
{
    if (!c->steps || c->twin) { /* an int8 chain not finished: misuse */
        poison_y(y);
        return bcae_fail(&c->owner->last_error, BCAE_ERR_INVALID_ARGUMENT,
                         "encoder chain: an int8 chain runs only after chain_finish");
    }
    return run(c, x, y);
}

const char *cpu_chain_describe(const nn_chain *c, char *buf, size_t size)
{
    const char *first = c->d.first == NN_FIRST_DENSE ? "dense (oneDNN)"
                        : c->lists                   ? "sparse (AVX-512)"
                                                     : "sparse (portable C)";
    int wino = 0;
    for (int i = 0; i < c->nsteps; i++) wino += c->steps[i].wino != NULL;
    const char *conv = !wino                             ? "oneDNN direct"
                       : c->conv == NN_CHAIN_CONV_WINO4 ? "Winograd F(4x4,3x3) (AVX-512)"
                                                        : "Winograd F(2x2,3x3) (AVX-512)";
    snprintf(buf, size, "first layer %s, 3x3 convs %s%s", first, conv,
             !wino || c->dt != dnnl_bf16 ? ""
             : c->wino_dot               ? " with bf16 products (AVX512-BF16)"
                                         : " with fp32 products");
    return buf;
}

int cpu_chain_profile(nn_chain *c, double *per_step, int cap, char (*names)[32])
{
    if (cap < c->nsteps) return -1;
    c->profile = per_step;
    static const char *kinds[] = {"first sparse", "first dense", "pool", "conv1", "conv2", "out"};
    for (int i = 0; i < c->nsteps && names; i++)
        snprintf(names[i], sizeof names[i], "%s %s %dx%d", kinds[c->steps[i].kind],
                 c->steps[i].wino ? "wino" : "", c->steps[i].h, c->steps[i].w);
    return c->nsteps;
}
