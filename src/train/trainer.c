/* The training loop, its log and its checkpoints. */
#include "bcae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/comm.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "nn/engine.h"
#include "train/optim.h"
#include "model/model.h"
#include "train/train_step.h"


void bcae_train_config_default(bcae_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->arch = "bcae-2d";
    c->m = 4;
    c->n = 8;
    c->d = 3;
    c->clf_threshold = 0.5f;
    c->num_epochs = 500;
    c->num_warmup_epochs = 50;
    c->sched_steps = 10;
    c->sched_gamma = 0.95f;
    c->batch_size = 4;
    c->learning_rate = 1e-3f;
    c->validation_batches_per_epoch = 8;
    c->seed = 1;
    c->shuffle = 1;
}

typedef struct train_state {
    long step;  /* steps done */
    double coef;
} train_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- checkpoints: the model, the AdamW moments and the loop position ---- */

#define CKPT_M "optim.exp_avg."
#define CKPT_V "optim.exp_avg_sq."

static bcae_status checkpoint_write(const char *path, const bcae_model *model, const float *m,
                                    const float *v, const train_state *st,
                                    const bcae_train_config *cfg, bcae_error *err)
{
    int np = model->t.nparams;
    bcae_st_entry *e = calloc((size_t)np * 3, sizeof *e);
    char(*names)[160] = calloc((size_t)np * 2, sizeof *names);
    if (!e || !names) {
        free(e);
        free(names);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "checkpoint: out of memory");
    }
    for (int i = 0; i < np; i++) {
        const model_param *p = &model->t.params[i];
        snprintf(names[2 * i], sizeof names[0], CKPT_M "%s", p->name);
        snprintf(names[2 * i + 1], sizeof names[0], CKPT_V "%s", p->name);
        const float *src[3] = {model->t.weights, m, v};
        const char *nm[3] = {p->name, names[2 * i], names[2 * i + 1]};
        for (int k = 0; k < 3; k++) {
            bcae_st_entry *x = &e[k * np + i];
            x->name = nm[k];
            x->dtype = BCAE_DTYPE_F32;
            x->ndim = p->ndim;
            x->shape = p->shape;
            x->data = src[k] + p->offset;
        }
    }
    char step[32], coef[48], seed[32], batch[16], bpe[32], shuffle[8], bufs[8][64];
    const char *precision = bcae_precision_name(cfg->precision);
    snprintf(step, sizeof step, "%ld", st->step);
    snprintf(coef, sizeof coef, "%.17g", st->coef);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg->seed);
    snprintf(batch, sizeof batch, "%d", cfg->batch_size);
    snprintf(bpe, sizeof bpe, "%ld", cfg->batches_per_epoch);
    snprintf(shuffle, sizeof shuffle, "%d", cfg->shuffle);
    /* The weights file's own metadata, then the loop position. */
    const char *keys[16], *vals[16];
    int nk = model->arch->metadata(model, keys, vals, bufs);
    const char *k2[] = {"checkpoint", "step",    "coef",     "seed", "batch_size",
                        "batches_per_epoch", "shuffle", "precision"};
    const char *v2[] = {"1", step, coef, seed, batch, bpe, shuffle, precision};
    for (int i = 0; i < 8; i++) {
        keys[nk] = k2[i];
        vals[nk++] = v2[i];
    }
    bcae_status s = bcae_st_write(path, e, (size_t)np * 3, keys, vals, (size_t)nk, err);
    free(e);
    free(names);
    return s;
}

static bcae_status meta_check(const char *path, const bcae_st_file *f, const char *key,
                              const char *want, bcae_error *err)
{
    const char *got = bcae_st_meta(f, key);
    if (!got || strcmp(got, want))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "%s: checkpoint has %s = %s but this run asks for %s; resuming would "
                         "not continue the same trajectory",
                         path, key, got ? got : "(none)", want);
    return BCAE_OK;
}

static bcae_status checkpoint_read(const char *path, bcae_model *model, float *m, float *v,
                                   train_state *st, const bcae_train_config *cfg,
                                   bcae_error *err)
{
    bcae_st_file f;
    bcae_status s = bcae_st_read(path, &f, err);
    if (s) return s;
    char seed[32], batch[16], bpe[32], shuffle[8];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg->seed);
    snprintf(batch, sizeof batch, "%d", cfg->batch_size);
    snprintf(bpe, sizeof bpe, "%ld", cfg->batches_per_epoch);
    snprintf(shuffle, sizeof shuffle, "%d", cfg->shuffle);
    const char *step = bcae_st_meta(&f, "step"), *coef = bcae_st_meta(&f, "coef");
    if (!bcae_st_meta(&f, "checkpoint") || !step || !coef)
        s = bcae_fail(err, BCAE_ERR_FORMAT, "%s: not a training checkpoint", path);
    /* The checkpoint must hold this very model: its architecture and shape. */
    const char *arch = bcae_st_meta(&f, "arch");
    if (!s && (!arch || strcmp(arch, model->arch->name)))
        s = bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                      "%s: checkpoint of architecture %s, but this run trains %s", path,
                      arch ? arch : "(none)", model->arch->name);
    if (!s) s = meta_check(path, &f, "seed", seed, err);
    if (!s) s = meta_check(path, &f, "batch_size", batch, err);
    if (!s) s = meta_check(path, &f, "batches_per_epoch", bpe, err);
    if (!s) s = meta_check(path, &f, "shuffle", shuffle, err);
    /* Checkpoints from before mixed precision were fp32. A run continues in
     * the precision it started in: another one would leave its trajectory
     * (to switch, start a new run with --init from the weights). */
    if (!s) {
        const char *want = bcae_precision_name(cfg->precision);
        const char *got = bcae_st_meta(&f, "precision");
        if (!got) got = "fp32";
        if (strcmp(got, want))
            s = bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                          "%s: checkpoint of a %s run, but this run asks for --precision %s; "
                          "resume with --precision %s, or start a new run with --init",
                          path, got, want, got);
    }
    float *dst[3] = {model->t.weights, m, v};
    const char *prefix[3] = {"", CKPT_M, CKPT_V};
    for (int k = 0; k < 3 && !s; k++)
        s = model_copy_tensors(model, &f, path, prefix[k], dst[k], err);
    if (!s) {
        st->step = strtol(step, NULL, 10);
        st->coef = strtod(coef, NULL);
        if (st->step < 0) s = bcae_fail(err, BCAE_ERR_FORMAT, "%s: bad step %s", path, step);
    }
    bcae_st_free(&f);
    return s;
}

/* ---- data ---- */

static void epoch_order(size_t *order, size_t n, uint64_t seed, int epoch, int shuffle)
{
    for (size_t i = 0; i < n; i++) order[i] = i;
    if (!shuffle) return;
    bcae_rng r;
    bcae_rng_seed(&r, bcae_hash3(seed, 0x73687566ULL, (uint64_t)epoch, 0));
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(bcae_rng_uniform(&r) * (double)(i + 1));
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static bcae_status load_batch(const bcae_dataset *ds, const size_t *idx, int b, uint16_t *adc,
                              float *host, model_runner *r, bcae_error *err)
{
    for (int i = 0; i < b; i++) {
        bcae_status s = bcae_dataset_load(ds, idx[i], adc + (size_t)i * BCAE_WEDGE_VOXELS, err);
        if (s) return s;
    }
    return model_runner_load_wedges(r, adc, (size_t)b, 0, host, err);
}

/* ---- the loop ---- */

/* Collective: every rank's weights must be the same bytes (each applies the
 * same AdamW step to the same allreduced gradient; an MPI whose allreduce
 * gave ranks different sums would break that): compared by CRC-32C before
 * rank 0 writes them for all. */
static bcae_status replicas_agree(const bcae_comm *comm, const bcae_model *m, bcae_error *err)
{
    int n = comm_size(comm);
    if (n == 1) return BCAE_OK;
    uint64_t *all = malloc((size_t)n * sizeof *all);
    if (!all) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "train: out of memory");
    uint64_t crc = bcae_crc32c(m->t.weights, m->t.nfloats * sizeof(float));
    bcae_status s = comm_allgather_u64(comm, crc, all, err);
    for (int r = 1; r < n && !s; r++)
        if (all[r] != all[0])
            s = bcae_fail(err, BCAE_ERR_INTERNAL,
                          "train: the weights of rank %d differ from rank 0's (the ranks' "
                          "allreduce did not give every rank the same sum)",
                          r);
    free(all);
    return s;
}


typedef struct trainer {
    const bcae_train_config *cfg;
    const bcae_comm *comm; /* NULL: one process */
    int rank, local_batch;  /* this rank's share of each global batch: wedges
                               [rank * local_batch, (rank + 1) * local_batch) */
    bcae_model *model;
    model_runner *runner;
    train_step step;
    nn_engine *engine;
    bcae_dataset *train, *test;
    float *host;
    uint16_t *adc;
    size_t *order;
    FILE *log;
} trainer;

static void trainer_free(trainer *t)
{
    if (t->log) fclose(t->log);
    train_step_free(&t->step);
    model_runner_destroy(t->runner); /* before the engine */
    nn_engine_destroy(t->engine);
    bcae_model_free(t->model);
    bcae_dataset_close(t->train);
    bcae_dataset_close(t->test);
    free(t->host);
    free(t->adc);
    free(t->order);
}

/* Rank 0 writes the model (and, when ckpt, the checkpoint); every rank
 * learns whether that worked. */
static bcae_status save_on_rank0(trainer *t, const char *ckpt, const train_state *st,
                                 const bcae_train_config *cfg, bcae_error *err)
{
    bcae_status s = replicas_agree(t->comm, t->model, err);
    if (s) return s;
    if (t->rank == 0) {
        s = ckpt ? checkpoint_write(ckpt, t->model, t->step.m, t->step.v, st, cfg, err)
                 : model_save(t->model, cfg->out, err);
    }
    return comm_agree(t->comm, s, ckpt ? ckpt : cfg->out, err);
}

static bcae_status validate(trainer *t, int epoch, long step, double coef,
                            bcae_train_callback cb, void *ctx, bcae_error *err)
{
    const bcae_train_config *cfg = t->cfg;
    size_t n = bcae_dataset_size(t->test);
    long batches = (long)(n / (size_t)cfg->batch_size);
    if (batches > cfg->validation_batches_per_epoch) batches = cfg->validation_batches_per_epoch;
    nn_loss_sums tot = {0};
    bcae_train_progress p = {0};
    p.validation = 1;
    p.epoch = epoch;
    p.step = step;
    p.batches = batches;
    p.coef = coef;
    for (long b = 0; b < batches; b++) {
        size_t idx[64];
        /* This rank's share of the global batch b. */
        for (int i = 0; i < t->local_batch; i++)
            idx[i] = (size_t)b * (size_t)cfg->batch_size +
                     (size_t)t->rank * (size_t)t->local_batch + (size_t)i;
        double t0 = now_s();
        nn_loss_sums ls = {0};
        model_runner *r = t->runner;
        bcae_status s = load_batch(t->test, idx, t->local_batch, t->adc, t->host, r, err);
        if (!s) s = r->ops->encode(r, err);
        if (!s) s = r->ops->decode(r, err);
        if (!s) s = r->ops->loss_sums(r, &ls, err);
        s = train_reduce_sums(t->comm, &ls, s, err);
        if (s) return s;
        tot.focal += ls.focal;
        tot.l1 += ls.l1;
        tot.voxels += ls.voxels;
        tot.pos += ls.pos;
        tot.truth += ls.truth;
        tot.true_pos += ls.true_pos;
        p.batch = b + 1;
        p.loss_seg = tot.focal / tot.voxels;
        p.loss_reg = tot.l1 / tot.voxels;
        p.mae = p.loss_reg;
        p.loss = p.loss_reg + coef * p.loss_seg;
        p.precision = tot.pos > 0 ? tot.true_pos / tot.pos : NAN;
        p.recall = tot.truth > 0 ? tot.true_pos / tot.truth : NAN;
        p.step_seconds = now_s() - t0;
        p.epoch_done = b == batches - 1;
        if (cb) cb(ctx, &p);
    }
    return BCAE_OK;
}

/* A run stopped after its last checkpoint logged steps that the resumed
 * run takes again: drop the rows past the checkpoint's step, so the log
 * holds each step once, as one uninterrupted run would have written it.
 * Rows are "epoch,step,..."; the header and anything unparsable stay. */
static bcae_status log_cut_after(FILE *fp, const char *path, long step, bcae_error *err)
{
    char line[512];
    long keep = 0;
    int ended = 1; /* the previous fgets read a whole line */
    rewind(fp);
    for (;;) {
        long at = ftell(fp);
        if (at < 0) return bcae_fail(err, BCAE_ERR_IO, "%s: cannot tell the log's position", path);
        if (!fgets(line, sizeof line, fp)) break;
        int starts = ended;
        ended = strchr(line, '\n') != NULL;
        if (!ended && feof(fp)) { /* a row cut short when the run died */
            keep = at;
            break;
        }
        int epoch;
        long row_step;
        if (starts && sscanf(line, "%d,%ld,", &epoch, &row_step) == 2 && row_step > step) {
            keep = at;
            break;
        }
        keep = ftell(fp);
        if (keep < 0) return bcae_fail(err, BCAE_ERR_IO, "%s: cannot tell the log's position", path);
    }
    if (ferror(fp))
        return bcae_fail(err, BCAE_ERR_IO, "%s: cannot read the log", path);
    if (fflush(fp) != 0 || ftruncate(fileno(fp), (off_t)keep) != 0)
        return bcae_fail(err, BCAE_ERR_IO, "%s: cannot cut the log at step %ld", path, step);
    return BCAE_OK;
}

static bcae_status setup(trainer *t, const bcae_train_config *cfg, train_state *st,
                         bcae_error *err)
{
    bcae_status s = bcae_dataset_open(cfg->data_dir, "train", &t->train, err);
    if (!s && cfg->validation_batches_per_epoch > 0)
        s = bcae_dataset_open(cfg->data_dir, "test", &t->test, err);
    if (s) return s;
    if (bcae_dataset_size(t->train) < (size_t)cfg->batch_size)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "%s: %zu training wedges, fewer than one batch of %d", cfg->data_dir,
                         bcae_dataset_size(t->train), cfg->batch_size);
    const model_arch *arch = model_arch_find(cfg->arch ? cfg->arch : "bcae-2d");
    if (!arch)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "train: unknown architecture '%s' (%s)",
                         cfg->arch, model_arch_names());
    model_config mc = {cfg->m, cfg->n, cfg->d, {0}, cfg->clf_threshold, MODEL_INPUT_DEFAULT};
    memcpy(mc.features, cfg->features, sizeof mc.features);
    s = model_create(arch, &mc, &t->model, err);
    if (s) return s;
    t->host = malloc((size_t)t->local_batch * t->model->input_floats * sizeof(float));
    t->adc = malloc((size_t)t->local_batch * BCAE_WEDGE_VOXELS * sizeof(uint16_t));
    t->order = malloc(bcae_dataset_size(t->train) * sizeof(size_t));
    if (!t->host || !t->adc || !t->order)
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "train: out of memory");
    nn_engine_options eo = {.device = cfg->device, .threads = cfg->threads};
    s = nn_engine_create(&eo, &t->engine, NULL, err);
    if (!s) {
        runner_options ro = {cfg->precision, RUNNER_ENCODER_FAST, RUNNER_DECODER_FAST,
                             NN_CONV3D_AUTO, BCAE_PRECISION_FP32};
        s = model_runner_create(t->engine, t->model, t->local_batch, RUNNER_TRAIN, &ro,
                                &t->runner, err);
    }
    if (!s) s = train_step_init(&t->step, t->model, t->runner, cfg->threads, t->comm, err);
    if (s) return s;
    st->step = 0;
    st->coef = TRAIN_COEF0;
    if (cfg->resume) {
        s = checkpoint_read(cfg->resume, t->model, t->step.m, t->step.v, st, cfg, err);
    } else if (cfg->init) {
        s = model_load_weights_into(t->model, cfg->init, err);
    } else {
        model_init(t->model, cfg->seed);
        if (cfg->clf_bias_init > 0 && cfg->clf_bias_init < 1) {
            /* Start the classifier at the data's occupancy rather than at
             * 50%: the focal loss then begins near its minimum for an
             * uninformed guess instead of spending steps to get there. */
            int b = model_clf_bias(t->model);
            float logit = logf(cfg->clf_bias_init / (1.0f - cfg->clf_bias_init));
            const model_param *bp = b >= 0 ? &t->model->t.params[b] : NULL;
            for (size_t k = 0; bp && k < bp->count; k++) t->model->t.weights[bp->offset + k] = logit;
        }
    }
    if (!s) s = t->runner->ops->sync_weights(t->runner, err);
    t->step.step = st->step;
    t->step.coef = st->coef;
    if (s) return s;
    if (cfg->log_path && t->rank == 0) {
        /* A resumed run appends to its log; a new one starts it afresh. */
        t->log = fopen(cfg->log_path, cfg->resume ? "r+" : "w");
        int existed = t->log != NULL;
        if (!t->log && cfg->resume) t->log = fopen(cfg->log_path, "w"); /* a new log */
        if (!t->log)
            return bcae_fail(err, BCAE_ERR_IO, "%s: cannot open the log for writing",
                             cfg->log_path);
        if (cfg->resume && existed) {
            s = log_cut_after(t->log, cfg->log_path, st->step, err);
            if (s) return s;
        }
        fseek(t->log, 0, SEEK_END);
        if (ftell(t->log) == 0)
            fprintf(t->log, "epoch,step,lr,loss,loss_seg,loss_reg,coef\n");
    }
    return BCAE_OK;
}

/* The caller's stop flag (NULL: never set), or with several ranks whether
 * any rank's is set: a collective every rank runs after every step, flag or
 * not, so that ranks given different configurations cannot deadlock. */
static bcae_status stop_requested(const trainer *t, const volatile int *flag, int *halt,
                                  bcae_error *err)
{
    double any = flag && *flag ? 1.0 : 0.0;
    bcae_status s = comm_size(t->comm) > 1 ? comm_max_f64(t->comm, &any, 1, err) : BCAE_OK;
    *halt = any > 0;
    return s;
}

bcae_status bcae_train(const bcae_train_config *cfg_in, bcae_train_callback cb, void *ctx,
                       bcae_error *err)
{
    bcae_train_config cfg = *cfg_in;
    if (!bcae_precision_name(cfg.precision) || cfg.precision == BCAE_PRECISION_INT8)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "train: precision must be fp32 or bf16");
    if (cfg.batch_size < 1 || cfg.batch_size > 64 || cfg.num_epochs < 1 ||
        cfg.num_warmup_epochs < 0 || cfg.sched_steps < 1 || !(cfg.learning_rate > 0) ||
        !(cfg.sched_gamma > 0) || !cfg.out || !cfg.data_dir)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "train: invalid configuration");
    trainer t;
    memset(&t, 0, sizeof t);
    t.cfg = &cfg;
    t.comm = cfg.comm;
    t.rank = comm_rank(cfg.comm);
    const int nranks = comm_size(cfg.comm);
    if (cfg.batch_size % nranks)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "train: the batch size %d does not split evenly over %d ranks (it is "
                         "the global batch: each rank takes batch_size / ranks wedges)",
                         cfg.batch_size, nranks);
    t.local_batch = cfg.batch_size / nranks;
    train_state st = {0, TRAIN_COEF0};
    /* batches_per_epoch must be known before a checkpoint is compared. */
    bcae_dataset *probe = NULL;
    bcae_status s = bcae_dataset_open(cfg.data_dir, "train", &probe, err);
    if (s) return s;
    long full = (long)(bcae_dataset_size(probe) / (size_t)cfg.batch_size);
    bcae_dataset_close(probe);
    if (cfg.batches_per_epoch <= 0 || cfg.batches_per_epoch > full) cfg.batches_per_epoch = full;

    s = setup(&t, &cfg, &st, err);
    /* setup has no collective: a rank that failed in it (a file it could
     * not read) is learnt here, before the first step's. */
    s = comm_agree(t.comm, s, "train", err);
    if (s) {
        trainer_free(&t);
        return s;
    }
    char ckpt_default[4096];
    const char *ckpt = cfg.checkpoint_path;
    if (!ckpt) {
        snprintf(ckpt_default, sizeof ckpt_default, "%s.ckpt", cfg.out);
        ckpt = ckpt_default;
    }
    const long bpe = cfg.batches_per_epoch;
    const long total = bpe * cfg.num_epochs;
    double tp = 0, pos = 0, truth = 0;
    int epoch_prev = -1;
    long stop = cfg.max_steps > 0 && cfg.max_steps < total ? cfg.max_steps : total;
    while (!s && st.step < stop) {
        int epoch = (int)(st.step / bpe);
        long b = st.step % bpe;
        if (epoch != epoch_prev) {
            epoch_order(t.order, bcae_dataset_size(t.train), cfg.seed, epoch, cfg.shuffle);
            tp = pos = truth = 0;
            epoch_prev = epoch;
        }
        float lr = lr_schedule(cfg.learning_rate, epoch, cfg.num_warmup_epochs, cfg.sched_steps,
                               cfg.sched_gamma);
        double t0 = now_s();
        train_step_result res;
        /* This rank's share of the global batch: the same permutation on
         * every rank and rank count, so a resume on another count continues
         * the same sequence of batches. */
        s = load_batch(t.train, t.order + b * cfg.batch_size + t.rank * t.local_batch,
                       t.local_batch, t.adc, t.host, t.runner, err);
        s = train_step_run(&t.step, lr, s, &res, err);
        if (s) break;
        st.step = t.step.step;
        st.coef = t.step.coef;
        const nn_loss_sums ls = res.sums;
        double loss = res.loss, l_seg = res.loss_seg, l_reg = res.loss_reg;
        tp += ls.true_pos;
        pos += ls.pos;
        truth += ls.truth;
        if (t.log) {
            fprintf(t.log, "%d,%ld,%.9g,%.9g,%.9g,%.9g,%.9g\n", epoch, st.step, (double)lr, loss,
                    l_seg, l_reg, st.coef);
            fflush(t.log);
        }
        if (cb) {
            bcae_train_progress p = {0};
            p.epoch = epoch;
            p.step = st.step;
            p.batch = b + 1;
            p.batches = bpe;
            p.loss = loss;
            p.loss_seg = l_seg;
            p.loss_reg = l_reg;
            p.coef = st.coef;
            p.lr = lr;
            p.precision = pos > 0 ? tp / pos : NAN;
            p.recall = truth > 0 ? tp / truth : NAN;
            p.step_seconds = now_s() - t0;
            p.comm_seconds = t.step.comm_seconds;
            p.epoch_done = b == bpe - 1;
            cb(ctx, &p);
        }
        int epoch_end = b == bpe - 1;
        if (epoch_end && t.test)
            s = validate(&t, epoch, st.step, st.coef, cb, ctx, err);
        /* After validation, whose callbacks may ask too; before the saves. */
        if (!s) {
            int halt = 0;
            s = stop_requested(&t, cfg.stop, &halt, err);
            if (s) break;
            if (halt) stop = st.step; /* the checkpoint below, then the loop ends */
        }
        if (!s && epoch_end) s = save_on_rank0(&t, NULL, &st, &cfg, err);
        if (!s && (epoch_end || st.step == stop ||
                   (cfg.checkpoint_every > 0 && st.step % cfg.checkpoint_every == 0)))
            s = save_on_rank0(&t, ckpt, &st, &cfg, err);
    }
    if (!s) s = save_on_rank0(&t, NULL, &st, &cfg, err);
    trainer_free(&t);
    return s;
}
