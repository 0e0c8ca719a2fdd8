/*
 * Inference chains for the 3D decoders (BCAE++, BCAE-HT) on the CPU, with
 * the direct kernels of cpu_chain3d.c.
 *
 * A decoder block's main_block.0 and side_block.0 are ConvTranspose3d(k
 * (3,4,4), s (1,2,2), p 1) on the same input. Each is exactly a Conv3d(k3,
 * p1) with 4x the outputs followed by a 2x2 shuffle over (h, w) (SPEC
 * section 6): output channel (a, b, o) at input voxel (d, h, w) is output
 * o at (d, 2h + a, 2w + b), and its kernel is the transposed one
 * re-indexed, W'[u, v, s] = W[2 - u, a + 3 - 2v, b + 3 - 2s] (zero outside
 * [0, 3]). So the pair is ONE convolution with 2 x 4f outputs, and the
 * shuffle, the biases and the LeakyReLU are its epilogue, which interleaves
 * the b = 0 and b = 1 channels of a register tile and writes whole rows of
 * the upsampled, zero-padded activation. main_block.3 then runs with the
 * ReZero tail in its epilogue, as in the encoder, and the output conv writes
 * the raw head output (logits for clf, the untransformed regression for
 * reg: bcae_heads applies the heads afterwards, as for the layer path).
 *
 * Row phase a only ever uses kernel rows v = a, a + 1 (the third is zero),
 * so NN_DECONV_ROWS runs the transposed convs as two convolutions of kernel
 * (3, 2, 3), one per a, with 2 x 2f outputs each: 1.5x the deconvolution's
 * multiplications instead of the shuffle form's 2.25x, at the cost of
 * reading the input twice.
 *
 * The two heads read the same code and have the same shapes: they run one
 * after the other through the same activation buffers.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/cpu/cpu_chain3d.h"

enum { DEC_MAX_BLOCKS = 8, DEC_MAX_STEPS = 3 * DEC_MAX_BLOCKS + 1 };

struct nn_dechain3d {
    nn_dechain3d_desc d;
    nn_engine *owner;
    int threads, avx512;
    int nsteps[2];
    conv_step steps[2][DEC_MAX_STEPS];
    act3 in;                          /* the code, padded */
    act3 acts[3 * DEC_MAX_BLOCKS];    /* per block: main, side, y (shared by the heads) */
    int nacts;
    float *code_plain, *out_plain;
    size_t out_floats;
    float *acc; /* the portable path's rows */
    size_t acc_per_thread;
};

void cpu_dechain3d_destroy(nn_dechain3d *c)
{
    if (!c) return;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < c->nsteps[k]; i++) {
            free(c->steps[k][i].wpk);
            free(c->steps[k][i].bias);
        }
    for (int i = 0; i < c->nacts; i++) free(c->acts[i].data);
    free(c->in.data);
    free(c->code_plain);
    free(c->out_plain);
    free(c->acc);
    free(c);
}

/* Weights of a transposed conv wt (cin, f, 3, 4, 4) for row phases a0 ..
 * a0 + na - 1 into the step's [ci][kd][kh][kw][ch], ch = ((half f + o) na +
 * (a - a0)) 2 + b; kernel row kh is v = h0 + kh of the k3 form. */
static void pack_deconv(conv_step *s, const float *wt, int half)
{
    const int f = s->f, cin = s->cin;
    for (int ci = 0; ci < cin; ci++)
        for (int o = 0; o < f; o++)
            for (int ai = 0; ai < s->na; ai++)
                for (int b = 0; b < 2; b++) {
                    const int a = s->a0 + ai, ch = ((half * f + o) * s->na + ai) * 2 + b;
                    for (int u = 0; u < 3; u++)
                        for (int kh = 0; kh < s->kh; kh++)
                            for (int sx = 0; sx < 3; sx++) {
                                const int v = s->h0 + kh, th = a + 3 - 2 * v, tw = b + 3 - 2 * sx;
                                float val = 0.0f;
                                if (th >= 0 && th < 4 && tw >= 0 && tw < 4)
                                    val = wt[((((size_t)ci * (size_t)f + (size_t)o) * 3 +
                                               (size_t)(2 - u)) * 4 + (size_t)th) * 4 +
                                             (size_t)tw];
                                s->wpk[((((size_t)ci * 3 + (size_t)u) * (size_t)s->kh +
                                         (size_t)kh) * 3 + (size_t)sx) * (size_t)s->cout +
                                       (size_t)ch] = val;
                            }
                }
}

static conv_step *new_step(nn_dechain3d *c, int head, const act3 *src, int cin, int cout,
                           int kh, const act3 *geom, int epi)
{
    conv_step *s = &c->steps[head][c->nsteps[head]++];
    memset(s, 0, sizeof *s);
    s->src = src;
    s->cin = cin, s->cout = cout;
    s->kd = 3, s->kh = kh, s->kw = 3, s->sh = 1;
    s->off[0] = 0, s->off[1] = 1, s->off[2] = 2;
    s->od = geom->d, s->oh = geom->h, s->ow = geom->w;
    s->epi = epi;
    s->na = 1;
    s->wpk = malloc((size_t)cin * 3 * (size_t)kh * 3 * (size_t)cout * sizeof(float) + 64);
    s->bias = malloc((size_t)cout * sizeof(float));
    return s;
}

static bcae_status plan_head(nn_dechain3d *c, int k, size_t *widest, bcae_error *err)
{
    const nn_dechain3d_head *hd = &c->d.heads[k];
    const act3 *src = &c->in;
    int ai = 0;
    for (int i = 0; i < hd->nblocks; i++) {
        const nn_block3d *b = &hd->blocks[i];
        const int f = b->cout;
        if (b->cin != src->c || f < 1)
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                             "3D decoder chain: head %d block %d has %d -> %d channels after %d",
                             k, i, b->cin, f, src->c);
        act3 *m = &c->acts[ai], *sd = &c->acts[ai + 1], *y = &c->acts[ai + 2];
        ai += 3;
        if (k == 0) {
            c->nacts = ai;
            if (c3_act_alloc(m, c->d.n, f, src->d, 2 * src->h, 2 * src->w, ROW_PLAIN) ||
                c3_act_alloc(sd, c->d.n, f, src->d, 2 * src->h, 2 * src->w, ROW_PLAIN) ||
                c3_act_alloc(y, c->d.n, f, src->d, 2 * src->h, 2 * src->w, ROW_PLAIN))
                return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "3D decoder chain: out of memory");
        } else if (ai > c->nacts || m->c != f || m->h != 2 * src->h || m->w != 2 * src->w) {
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                             "3D decoder chain: the heads differ in shape at block %d", i);
        }
        const int rows = c->d.form == NN_DECONV_ROWS;
        for (int a = 0; a < (rows ? 2 : 1); a++) {
            const int na = rows ? 1 : 2;
            conv_step *s = new_step(c, k, src, b->cin, 2 * f * na * 2, rows ? 2 : 3, src,
                                    EPI_SHUFFLE);
            if (!s->wpk || !s->bias)
                return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "3D decoder chain: out of memory");
            s->f = f, s->a0 = a, s->na = na, s->h0 = rows ? a : 0;
            s->dst = m, s->dst_side = sd;
            pack_deconv(s, b->w0, 0);
            pack_deconv(s, b->ws, 1);
            for (int ch = 0; ch < s->cout; ch++) {
                const int o = ch / (2 * na);
                s->bias[ch] = o < f ? b->b0[o] : b->bs[o - f];
            }
        }
        conv_step *s3 = new_step(c, k, m, f, f, 3, m, EPI_REZERO);
        if (!s3->wpk || !s3->bias)
            return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "3D decoder chain: out of memory");
        c3_pack(s3->wpk, b->w3, f, f, 27, f, 0);
        memcpy(s3->bias, b->b3, (size_t)f * sizeof(float));
        s3->side = sd, s3->dst = y, s3->alpha = b->alpha;
        src = y;
    }
    if (hd->out_cin != src->c || hd->out_cout < 1)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "3D decoder chain: output conv takes %d channels after %d", hd->out_cin,
                         src->c);
    conv_step *so = new_step(c, k, src, src->c, hd->out_cout, 3, src, EPI_OUT);
    if (!so->wpk || !so->bias)
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "3D decoder chain: out of memory");
    c3_pack(so->wpk, hd->w_out, hd->out_cout, src->c, 27, hd->out_cout, 0);
    memcpy(so->bias, hd->b_out, (size_t)hd->out_cout * sizeof(float));
    const size_t of = (size_t)c->d.n * (size_t)hd->out_cout * (size_t)src->d * (size_t)src->h *
                      (size_t)src->w;
    if (k == 0) c->out_floats = of;
    else if (of != c->out_floats)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "3D decoder chain: the heads differ");
    for (int i = 0; i < c->nsteps[k]; i++) {
        conv_step *s = &c->steps[k][i];
        c3_choose_tile(s);
        const size_t need = (size_t)(s->ow + 2) * (size_t)(s->cout + 1) + 16;
        if (need > *widest) *widest = need;
    }
    return BCAE_OK;
}

bcae_status cpu_dechain3d_create(nn_engine *e, const nn_dechain3d_desc *d, nn_dechain3d **out,
                                 bcae_error *err)
{
    *out = NULL;
    if (d->n < 1 || d->c < 1 || d->d < 1 || d->h < 1 || d->w < 1 || d->nheads < 1 ||
        d->nheads > 2)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "3D decoder chain: unsupported code %dx%dx%dx%dx%d, %d heads", d->n, d->c,
                         d->d, d->h, d->w, d->nheads);
    for (int k = 0; k < d->nheads; k++)
        if (d->heads[k].nblocks < 1 || d->heads[k].nblocks > DEC_MAX_BLOCKS)
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                             "3D decoder chain: %d blocks in head %d", d->heads[k].nblocks, k);
    nn_dechain3d *c = calloc(1, sizeof *c);
    if (!c) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "3D decoder chain: out of memory");
    c->d = *d;
    for (int k = 0; k < 2; k++) c->d.heads[k].blocks = NULL;
    c->owner = e;
    c->threads = cpu_threads(e);
    c->avx512 = !d->portable && c3_has_avx512();
    size_t widest = 0;
    bcae_status st = BCAE_OK;
    if (c3_act_alloc(&c->in, d->n, d->c, d->d, d->h, d->w, ROW_PLAIN)) goto oom;
    for (int k = 0; k < d->nheads && !st; k++) {
        c->d.heads[k].blocks = d->heads[k].blocks; /* read during planning only */
        st = plan_head(c, k, &widest, err);
        c->d.heads[k].blocks = NULL;
    }
    if (st) goto fail;
    c->code_plain = malloc((size_t)d->n * (size_t)d->c * (size_t)d->d * (size_t)d->h *
                           (size_t)d->w * sizeof(float));
    c->out_plain = malloc(c->out_floats * sizeof(float));
    c->acc_per_thread = round16(widest);
    c->acc = aligned_alloc(C3_ALIGN, (size_t)c->threads * c->acc_per_thread * sizeof(float));
    if (!c->code_plain || !c->out_plain || !c->acc) goto oom;
    for (int k = 0; k < d->nheads; k++) c->steps[k][c->nsteps[k] - 1].out = c->out_plain;
    *out = c;
    return BCAE_OK;
oom:
    st = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "3D decoder chain: out of memory");
fail:
    cpu_dechain3d_destroy(c);
    return st;
}

bcae_status cpu_dechain3d_forward(nn_dechain3d *c, const nn_tensor5 *code,
                                  nn_tensor5 *const *out)
{
    const nn_dechain3d_desc *d = &c->d;
    int ok = code->n == d->n && code->c == d->c && code->d == d->d && code->h == d->h &&
             code->w == d->w;
    for (int k = 0; k < d->nheads; k++) {
        const conv_step *so = &c->steps[k][c->nsteps[k] - 1];
        ok = ok && out[k]->n == d->n && out[k]->c == so->cout && out[k]->d == so->od &&
             out[k]->h == so->oh && out[k]->w == so->ow;
    }
    if (!ok) {
        for (int k = 0; k < d->nheads; k++) {
            nn_tensor5 *y = out[k];
            size_t cnt = (size_t)y->n * (size_t)y->c * (size_t)y->d * (size_t)y->h * (size_t)y->w;
            for (size_t i = 0; i < cnt; i++) y->data[i] = NAN;
        }
        return bcae_fail(&c->owner->last_error, BCAE_ERR_SHAPE,
                         "3D decoder chain: code %dx%dx%dx%dx%d or an output of the wrong shape "
                         "(planned for the code %dx%dx%dx%dx%d)",
                         code->n, code->c, code->d, code->h, code->w, d->n, d->c, d->d, d->h,
                         d->w);
    }
    const int saved = omp_get_max_threads();
    omp_set_num_threads(c->threads);
    nn_engine *e = c->owner;
    nn_tensor fc = nn_tensor5_flat(code);
    bcae_status rc = e->ops->to_nchw(e, &fc, c->code_plain);
    const int C = d->c, D = d->d, H = d->h, W = d->w;
#pragma omp parallel for collapse(3) num_threads(c->threads)
    for (int n = 0; n < d->n; n++)
        for (int ch = 0; ch < C; ch++)
            for (int z = 0; z < D; z++)
                for (int h = 0; h < H; h++)
                    memcpy(act_row(&c->in, n, ch, z, h) + 1,
                           c->code_plain +
                               ((((size_t)n * (size_t)C + (size_t)ch) * (size_t)D + (size_t)z) *
                                    (size_t)H + (size_t)h) * (size_t)W,
                           (size_t)W * sizeof(float));
    for (int k = 0; k < d->nheads; k++) {
        for (int i = 0; i < c->nsteps[k]; i++)
            c3_run_conv(&c->steps[k][i], d->n, c->threads, c->avx512, c->acc, c->acc_per_thread);
        nn_tensor fy = nn_tensor5_flat(out[k]);
        bcae_status rk = e->ops->from_nchw(e, c->out_plain, &fy);
        if (rc == BCAE_OK) rc = rk;
    }
    omp_set_num_threads(saved);
    return rc;
}
