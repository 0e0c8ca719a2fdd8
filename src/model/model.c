/* The model interface: the registry, the parameter table, weights files and
 * initialisation shared by every architecture, and the runner's helpers. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"

/* ---- the registry ------------------------------------------------------------ */

extern const model_arch model_arch_bcae2d, model_arch_bcaepp, model_arch_bcaeht,
    model_arch_bcae;

static const model_arch *const ARCHS[] = {&model_arch_bcae2d, &model_arch_bcaepp,
                                          &model_arch_bcaeht, &model_arch_bcae};

const model_arch *model_arch_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (!strcmp(ARCHS[i]->name, name)) return ARCHS[i];
    return NULL;
}

const char *model_arch_names(void) { return "bcae-2d, bcae++, bcae-ht, bcae"; }

/* ---- the parameter table ------------------------------------------------------ */

int model_table_add(model_table *t, const char *name, int ndim, const size_t *shape)
{
    if (t->fail) return -1;
    if (t->nparams == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        model_param *p = realloc(t->params, (size_t)cap * sizeof *p);
        if (!p) {
            t->fail = 1;
            return -1;
        }
        t->params = p;
        t->cap = cap;
    }
    model_param *q = &t->params[t->nparams];
    memset(q, 0, sizeof *q);
    size_t len = strlen(name);
    if (len >= sizeof q->name) len = sizeof q->name - 1;
    memcpy(q->name, name, len);
    q->name[len] = 0;
    q->ndim = ndim;
    q->count = 1;
    for (int i = 0; i < ndim; i++) {
        q->shape[i] = shape[i];
        q->count *= shape[i];
    }
    q->offset = t->nfloats;
    t->nfloats += q->count;
    return t->nparams++;
}

int model_table_add_conv(model_table *t, const char *prefix, int a, int b, int nk, const int *k,
                         int bias_len, int *w, int *bias)
{
    char name[160];
    size_t ws[MODEL_MAX_DIMS] = {(size_t)a, (size_t)b};
    for (int i = 0; i < nk; i++) ws[2 + i] = (size_t)k[i];
    size_t bs[1] = {(size_t)bias_len};
    snprintf(name, sizeof name, "%s.weight", prefix);
    *w = model_table_add(t, name, 2 + nk, ws);
    snprintf(name, sizeof name, "%s.bias", prefix);
    *bias = model_table_add(t, name, 1, bs);
    return *w < 0 || *bias < 0 ? -1 : 0;
}

bcae_status model_table_alloc(model_table *t, bcae_error *err)
{
    if (t->fail) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "model: out of memory");
    t->weights = calloc(t->nfloats ? t->nfloats : 1, sizeof *t->weights);
    if (!t->weights) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "model: out of memory");
    return BCAE_OK;
}

void model_table_free(model_table *t)
{
    free(t->params);
    free(t->weights);
    memset(t, 0, sizeof *t);
}

int model_table_find(const model_table *t, const char *name)
{
    for (int i = 0; i < t->nparams; i++)
        if (!strcmp(t->params[i].name, name)) return i;
    return -1;
}

int model_find(const bcae_model *m, const char *name) { return model_table_find(&m->t, name); }

size_t model_encoder_params(const bcae_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->t.nparams; i++)
        if (!strncmp(m->t.params[i].name, "encoder.", 8)) n += m->t.params[i].count;
    return n;
}

/* The classifier head is the first decoder in every architecture's table;
 * its output bias is that head's last parameter. */
int model_clf_bias(const bcae_model *m)
{
    int last = -1;
    const char *head = NULL;
    for (int i = 0; i < m->t.nparams; i++) {
        const char *name = m->t.params[i].name;
        if (strncmp(name, "decoder.", 8)) continue;
        if (!head) head = name;
        size_t hl = strcspn(head + 8, ".") + 8;
        if (strncmp(name, head, hl)) break;
        last = i;
    }
    if (last < 0 || strcmp(m->t.params[last].name + strlen(m->t.params[last].name) - 5, ".bias"))
        return -1;
    return last;
}

void model_init(bcae_model *m, uint64_t seed)
{
    const model_table *t = &m->t;
    for (int i = 0; i < t->nparams; i++) {
        const model_param *p = &t->params[i];
        float *v = t->weights + p->offset;
        if (strstr(p->name, "rezero_alpha")) {
            v[0] = 0.0f;
            continue;
        }
        /* fan_in of the convolution this weight or bias belongs to: PyTorch
         * takes weight.size(1), also for transposed convs. */
        const model_param *wp = p->ndim >= 3 ? p : &t->params[i - 1]; /* weight precedes bias */
        size_t fan_in = 1;
        for (int d = 1; d < wp->ndim; d++) fan_in *= wp->shape[d];
        double bound = 1.0 / sqrt((double)fan_in);
        bcae_rng r;
        bcae_rng_seed(&r, bcae_hash3(seed, m->arch->init_salt, (uint64_t)i, 0));
        for (size_t k = 0; k < p->count; k++)
            v[k] = (float)(bound * (2.0 * bcae_rng_uniform(&r) - 1.0));
    }
}

/* ---- models ---------------------------------------------------------------------- */

bcae_status model_create(const model_arch *a, const model_config *cfg, bcae_model **out,
                         bcae_error *err)
{
    *out = NULL;
    bcae_model *m = calloc(1, sizeof *m);
    if (!m) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "model: out of memory");
    m->arch = a;
    bcae_status s = a->create(a, cfg, m, err);
    if (!s) s = model_table_alloc(&m->t, err);
    if (s) {
        bcae_model_free(m);
        return s;
    }
    *out = m;
    return BCAE_OK;
}

void bcae_model_free(bcae_model *m)
{
    if (!m) return;
    if (m->arch && m->impl) m->arch->destroy(m);
    model_table_free(&m->t);
    free(m);
}

static void shape_text(char *buf, size_t size, const char *dtype, int ndim, const size_t *shape)
{
    int a = snprintf(buf, size, "%s (", dtype);
    for (int d = 0; d < ndim && a >= 0 && (size_t)a < size; d++)
        a += snprintf(buf + a, size - (size_t)a, d ? ", %zu" : "%zu", shape[d]);
    if (a >= 0 && (size_t)a < size) snprintf(buf + a, size - (size_t)a, ")");
}

bcae_status model_copy_tensors(bcae_model *m, const bcae_st_file *f, const char *path,
                               const char *prefix, float *dst, bcae_error *err)
{
    for (int i = 0; i < m->t.nparams; i++) {
        const model_param *p = &m->t.params[i];
        char name[192], old[192];
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        const bcae_st_tensor *t = bcae_st_find(f, name);
        if (!t && m->arch->alias) {
            char buf[160];
            const char *o = m->arch->alias(m, p->name, buf, sizeof buf);
            if (o) {
                snprintf(old, sizeof old, "%s%s", prefix, o);
                t = bcae_st_find(f, old);
            }
        }
        if (!t)
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: tensor '%s' is missing", path, name);
        int same = t->dtype == BCAE_DTYPE_F32 && t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same || t->nbytes != p->count * sizeof(float)) {
            char want[96], got[96];
            shape_text(want, sizeof want, "F32", p->ndim, p->shape);
            shape_text(got, sizeof got, bcae_st_dtype_name(t->dtype), t->ndim < 8 ? t->ndim : 8,
                       t->shape);
            return bcae_fail(err, BCAE_ERR_SHAPE, "%s: tensor '%s' is %s, expected %s", path,
                             name, got, want);
        }
        memcpy(dst + p->offset, t->data, t->nbytes);
        /* A NaN or infinity in a weight (a diverged run, a flipped bit)
         * would turn every code into NaN and every decoded wedge into zeros
         * without a signal: refuse it here, where the tensor has a name. */
        for (size_t k = 0; k < p->count; k++)
            if (!isfinite(dst[p->offset + k]))
                return bcae_fail(err, BCAE_ERR_RANGE,
                                 "%s: tensor '%s' holds a non-finite value (%g) at element %zu",
                                 path, name, (double)dst[p->offset + k], k);
    }
    return BCAE_OK;
}

/* A model of the file's architecture and hyper-parameters, weights zero. */
static bcae_status model_for_file(const bcae_st_file *f, const char *path, bcae_model **out,
                                  bcae_error *err)
{
    const char *arch = bcae_st_meta(f, "arch");
    if (!arch)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: no 'arch' in the metadata: not a bcae model",
                         path);
    const model_arch *a = model_arch_find(arch);
    if (!a)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "%s: architecture '%s' is not supported here (this build knows %s)",
                         path, arch, model_arch_names());
    model_config cfg;
    bcae_status s = a->config_from_file(a, f, path, &cfg, err);
    return s ? s : model_create(a, &cfg, out, err);
}

bcae_status bcae_model_load(const char *path, bcae_model **out, bcae_error *err)
{
    *out = NULL;
    bcae_st_file f;
    bcae_status s = bcae_st_read(path, &f, err);
    if (s) return s;
    bcae_model *m = NULL;
    s = model_for_file(&f, path, &m, err);
    if (!s) s = model_copy_tensors(m, &f, path, "", m->t.weights, err);
    if (!s) s = bcae_st_fingerprint(&f, m->fingerprint);
    if (!s && f.count != (size_t)m->t.nparams)
        s = bcae_fail(err, BCAE_ERR_FORMAT, "%s: %zu tensors, expected %d for %s", path, f.count,
                      m->t.nparams, m->arch->title);
    bcae_st_free(&f);
    if (s) {
        bcae_model_free(m);
        return s;
    }
    *out = m;
    return BCAE_OK;
}

static int same_shape(const bcae_model *a, const bcae_model *b)
{
    if (a->arch != b->arch || a->t.nparams != b->t.nparams) return 0;
    for (int i = 0; i < a->t.nparams; i++) {
        const model_param *p = &a->t.params[i], *q = &b->t.params[i];
        if (p->ndim != q->ndim || memcmp(p->shape, q->shape, sizeof p->shape)) return 0;
    }
    return 1;
}

bcae_status model_load_weights_into(bcae_model *m, const char *path, bcae_error *err)
{
    bcae_model *other = NULL;
    bcae_status s = bcae_model_load(path, &other, err);
    if (s) return s;
    if (!same_shape(m, other)) {
        char want[8][64], got[8][64];
        const char *kw[8], *vw[8], *kg[8], *vg[8];
        int nw = m->arch->metadata(m, kw, vw, want), ng = other->arch->metadata(other, kg, vg, got);
        char a[256] = "", b[256] = "";
        for (int i = 1, o = 0; i < nw && o < (int)sizeof a; i++)
            o += snprintf(a + o, sizeof a - (size_t)o, " %s=%s", kw[i], vw[i]);
        for (int i = 1, o = 0; i < ng && o < (int)sizeof b; i++)
            o += snprintf(b + o, sizeof b - (size_t)o, " %s=%s", kg[i], vg[i]);
        s = bcae_fail(err, BCAE_ERR_SHAPE, "%s: holds %s (%s), expected %s (%s)", path,
                      other->arch->title, b + 1, m->arch->title, a + 1);
    } else {
        memcpy(m->t.weights, other->t.weights, m->t.nfloats * sizeof(float));
    }
    bcae_model_free(other);
    return s;
}

bcae_status model_save(const bcae_model *m, const char *path, bcae_error *err)
{
    bcae_st_entry *e = calloc((size_t)m->t.nparams, sizeof *e);
    if (!e) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < m->t.nparams; i++) {
        const model_param *p = &m->t.params[i];
        e[i].name = p->name;
        e[i].dtype = BCAE_DTYPE_F32;
        e[i].ndim = p->ndim;
        e[i].shape = p->shape;
        e[i].data = m->t.weights + p->offset;
    }
    const char *keys[8], *values[8];
    char bufs[8][64];
    int nm = m->arch->metadata(m, keys, values, bufs);
    bcae_status s = bcae_st_write(path, e, (size_t)m->t.nparams, keys, values, (size_t)nm, err);
    free(e);
    return s;
}

/* ---- the public view ------------------------------------------------------------- */

float bcae_model_threshold(const bcae_model *m) { return m->cfg.clf_threshold; }

bcae_status bcae_model_set_threshold(bcae_model *m, float h, bcae_error *err)
{
    if (!(h > 0.0f && h < 1.0f))
        return bcae_fail(err, BCAE_ERR_RANGE, "classification threshold %g is not in (0, 1)",
                         (double)h);
    m->cfg.clf_threshold = h;
    return BCAE_OK;
}

bcae_status bcae_model_save(const bcae_model *m, const char *path, bcae_error *err)
{
    return model_save(m, path, err);
}

const char *bcae_model_arch(const bcae_model *m) { return m->arch->name; }

void bcae_model_fingerprint(const bcae_model *m, uint8_t out[32])
{
    memcpy(out, m->fingerprint, 32);
}

int bcae_model_code_shape(const bcae_model *m, size_t shape[4])
{
    for (int i = 0; i < m->code_ndim; i++) shape[i] = m->code_shape[i];
    return m->code_ndim;
}

size_t bcae_model_code_elements(const bcae_model *m) { return m->code_floats; }

/* ---- runners ---------------------------------------------------------------------- */

bcae_status model_runner_create(nn_engine *e, const bcae_model *m, int batch, int mode,
                                const runner_options *opt, model_runner **out, bcae_error *err)
{
    static const runner_options dflt = {BCAE_PRECISION_FP32, RUNNER_ENCODER_FAST,
                                        RUNNER_DECODER_FAST, NN_CONV3D_AUTO,
                                        BCAE_PRECISION_FP32};
    *out = NULL;
    if (batch < 1)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "runner: batch %d < 1", batch);
    return m->arch->runner_create(e, m, batch, mode, opt ? opt : &dflt, out, err);
}

void model_runner_destroy(model_runner *r)
{
    if (r) r->ops->destroy(r);
}

bcae_status model_runner_load_wedges(model_runner *r, const uint16_t *adc, size_t n,
                                     size_t first, float *host, bcae_error *err)
{
    const bcae_model *m = r->model;
    nn_engine *e = r->engine;
    memset(host, 0, (size_t)r->batch * m->input_floats * sizeof *host);
    for (size_t i = 0; i < n; i++) {
        const uint16_t *w = adc + i * BCAE_WEDGE_VOXELS;
        for (size_t k = 0; k < BCAE_WEDGE_VOXELS; k++)
            if (w[k] > BCAE_ADC_MAX)
                return bcae_fail(err, BCAE_ERR_RANGE,
                                 "encode: wedge %zu holds ADC %u at voxel %zu, above %d",
                                 first + i, w[k], k, BCAE_ADC_MAX);
        m->arch->wedge_to_input(m, w, host + i * m->input_floats);
    }
    bcae_status s = e->ops->from_nchw(e, host, &r->input);
    return s ? nn_engine_error(e, s, err) : BCAE_OK;
}

bcae_status model_runner_calibrate(model_runner *r, const uint16_t *w, size_t n, int threads,
                                   float *host, bcae_error *err)
{
    if (!r->needs_calibration) return BCAE_OK;
    uint16_t *own = NULL;
    if (!w) {
        own = malloc((size_t)BCAE_SIM_WEDGES_PER_EVENT * BCAE_WEDGE_VOXELS * sizeof *own);
        if (!own) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "calibration: out of memory");
        bcae_simulator *sim = NULL;
        bcae_status s = bcae_simulator_create(NULL, &sim, err);
        if (!s) s = bcae_simulator_run(sim, BCAE_CALIBRATION_SEED, 0, own, threads, NULL, err);
        bcae_simulator_destroy(sim);
        if (s) {
            free(own);
            return s;
        }
        w = own;
        n = BCAE_SIM_WEDGES_PER_EVENT;
    }
    bcae_status s = BCAE_OK;
    if (n == 0)
        s = bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "int8 calibration with no wedges");
    for (size_t w0 = 0; !s && w0 < n; w0 += (size_t)r->batch) {
        size_t nb = n - w0 < (size_t)r->batch ? n - w0 : (size_t)r->batch;
        s = model_runner_load_wedges(r, w + w0 * BCAE_WEDGE_VOXELS, nb, w0, host, err);
        if (s == BCAE_ERR_RANGE && err) { /* name it as calibration input */
            char msg[BCAE_ERROR_MESSAGE_MAX];
            snprintf(msg, sizeof msg, "%s", err->message);
            s = bcae_fail(err, BCAE_ERR_RANGE, "calibration %s", msg);
        }
        if (!s) s = r->ops->calibrate(r, err);
    }
    free(own);
    if (!s) s = r->ops->finish(r, err);
    if (!s) r->needs_calibration = 0;
    return s;
}
