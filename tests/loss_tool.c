/*
 * loss_tool — runs the CPU backend's BCAE heads and loss on .npy inputs for
 * tests/loss_reference.py (which checks them against float64 PyTorch), and
 * times those kernels and ReZero's at training size.
 *
 *   loss_tool parity DIR Z_VALID SHIFT SCALE THRESHOLD GAMMA EPS COEF
 *       reads DIR/logit.npy, DIR/raw.npy, DIR/target.npy (any float dtype,
 *       shape (n, c, h, w), plain NCHW), writes DIR/seg.npy, reg.npy,
 *       recon.npy, dseg.npy, dreg.npy (float32, NCHW) and prints the loss
 *       sums as one JSON object on stdout.
 *   loss_tool time [THREADS [REPS]]
 *       milliseconds per call (mean and best of REPS, default 2 threads and
 *       10 repetitions) of bcae_heads, bcae_loss_sums and bcae_loss_backward
 *       on (4, 16, 192, 256), z_valid 249, and of rezero_forward/backward on
 *       (4, 32, 192, 256).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bcae.h"
#include "core/rng.h"
#include "nn/engine.h"

static int fail(const char *what, const bcae_error *err)
{
    fprintf(stderr, "loss_tool: %s: %s\n", what, err ? err->message : "out of memory");
    return 1;
}

static nn_tensor tensor_new(nn_engine *e, int n, int c, int h, int w)
{
    nn_tensor t = {n, c, h, w, NULL};
    t.data = malloc(nn_tensor_floats(e, n, c, h, w) * sizeof(float));
    return t;
}

/* Reads DIR/NAME.npy, a 4-D array, into a new tensor. */
static int load(nn_engine *e, const char *dir, const char *name, nn_tensor *t)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    bcae_array a;
    bcae_error err;
    if (bcae_npy_read(path, &a, &err) != BCAE_OK) return fail(path, &err);
    if (a.ndim != 4) {
        fprintf(stderr, "loss_tool: %s: expected 4 dimensions, got %d\n", path, a.ndim);
        bcae_array_free(&a);
        return 1;
    }
    size_t count = bcae_array_count(&a);
    float *host = malloc(count * sizeof(float));
    *t = tensor_new(e, (int)a.shape[0], (int)a.shape[1], (int)a.shape[2], (int)a.shape[3]);
    if (!host || !t->data) {
        free(host);
        bcae_array_free(&a);
        return fail(path, NULL);
    }
    for (size_t i = 0; i < count; i++) host[i] = (float)bcae_array_get_f64(&a, i);
    e->ops->from_nchw(e, host, t);
    free(host);
    bcae_array_free(&a);
    return 0;
}

static int save(nn_engine *e, const char *dir, const char *name, const nn_tensor *t)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    size_t shape[4] = {(size_t)t->n, (size_t)t->c, (size_t)t->h, (size_t)t->w};
    bcae_array a;
    bcae_error err;
    if (bcae_array_alloc(&a, BCAE_DTYPE_F32, 4, shape, &err) != BCAE_OK) return fail(path, &err);
    e->ops->to_nchw(e, t, a.data);
    bcae_status st = bcae_npy_write(path, &a, &err);
    bcae_array_free(&a);
    return st == BCAE_OK ? 0 : fail(path, &err);
}

static int parity(nn_engine *e, int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: loss_tool parity DIR Z_VALID SHIFT SCALE THRESHOLD GAMMA EPS COEF\n");
        return 2;
    }
    const char *dir = argv[2];
    int z_valid = atoi(argv[3]);
    float shift = strtof(argv[4], NULL), scale = strtof(argv[5], NULL);
    float threshold = strtof(argv[6], NULL), gamma = strtof(argv[7], NULL);
    float eps = strtof(argv[8], NULL), coef = strtof(argv[9], NULL);
    nn_tensor lg, rw, tg;
    if (load(e, dir, "logit", &lg) || load(e, dir, "raw", &rw) || load(e, dir, "target", &tg))
        return 1;
    if (rw.n != lg.n || rw.c != lg.c || rw.h != lg.h || rw.w != lg.w || tg.n != lg.n ||
        tg.c != lg.c || tg.h != lg.h || tg.w != lg.w) {
        fprintf(stderr, "loss_tool: logit, raw and target shapes differ\n");
        return 1;
    }
    nn_tensor seg = tensor_new(e, lg.n, lg.c, lg.h, lg.w), reg = tensor_new(e, lg.n, lg.c, lg.h, lg.w);
    nn_tensor rec = tensor_new(e, lg.n, lg.c, lg.h, lg.w), dl = tensor_new(e, lg.n, lg.c, lg.h, lg.w);
    nn_tensor dr = tensor_new(e, lg.n, lg.c, lg.h, lg.w);
    if (!seg.data || !reg.data || !rec.data || !dl.data || !dr.data) return fail("tensors", NULL);

    e->ops->bcae_heads(e, &lg, &rw, shift, scale, threshold, &seg, &reg, &rec);
    nn_loss_sums s;
    e->ops->bcae_loss_sums(e, &lg, &rw, &tg, z_valid, shift, scale, threshold, gamma, eps, &s);
    e->ops->bcae_loss_backward(e, &lg, &rw, &tg, z_valid, shift, scale, threshold, gamma, eps,
                               coef, &dl, &dr);
    if (save(e, dir, "seg", &seg) || save(e, dir, "reg", &reg) || save(e, dir, "recon", &rec) ||
        save(e, dir, "dseg", &dl) || save(e, dir, "dreg", &dr))
        return 1;
    printf("{\"focal\": %.17g, \"l1\": %.17g, \"sq\": %.17g, \"voxels\": %.17g, \"pos\": %.17g, "
           "\"truth\": %.17g, \"true_pos\": %.17g}\n",
           s.focal, s.l1, s.sq, s.voxels, s.pos, s.truth, s.true_pos);
    nn_tensor *all[] = {&lg, &rw, &tg, &seg, &reg, &rec, &dl, &dr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]->data);
    return 0;
}

/* ---- timing ------------------------------------------------------------------------ */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

typedef struct timing_ctx {
    nn_engine *e;
    nn_tensor lg, rw, tg, o1, o2, o3; /* loss shapes */
    nn_tensor h, x, y, dh, dx;        /* ReZero shapes */
} timing_ctx;

static void run_op(timing_ctx *c, int op)
{
    nn_engine *e = c->e;
    nn_loss_sums s;
    double da;
    switch (op) {
    case 0: e->ops->bcae_heads(e, &c->lg, &c->rw, 6, 3, 0.5f, &c->o1, &c->o2, &c->o3); break;
    case 1: e->ops->bcae_loss_sums(e, &c->lg, &c->rw, &c->tg, 249, 6, 3, 0.5f, 2, 1e-8f, &s); break;
    case 2:
        e->ops->bcae_loss_backward(e, &c->lg, &c->rw, &c->tg, 249, 6, 3, 0.5f, 2, 1e-8f, 2000,
                                   &c->o1, &c->o2);
        break;
    case 3: e->ops->rezero_forward(e, 0.3f, &c->h, &c->x, &c->y); break;
    default: e->ops->rezero_backward(e, 0.3f, &c->h, &c->y, &c->x, &c->dh, &c->dx, &da); break;
    }
}

static void fill(bcae_rng *r, nn_tensor *t, double lo, double hi, double zero_fraction)
{
    size_t n = (size_t)t->n * (size_t)t->c * (size_t)t->h * (size_t)t->w;
    for (size_t i = 0; i < n; i++) {
        double v = lo + (hi - lo) * bcae_rng_uniform(r);
        t->data[i] = bcae_rng_uniform(r) < zero_fraction ? 0.0f : (float)v;
    }
}

static int timing(nn_engine *e, int threads, int reps)
{
    timing_ctx c = {.e = e};
    nn_tensor *loss[] = {&c.lg, &c.rw, &c.tg, &c.o1, &c.o2, &c.o3};
    nn_tensor *rz[] = {&c.h, &c.x, &c.y, &c.dh, &c.dx};
    for (int i = 0; i < 6; i++) {
        *loss[i] = tensor_new(e, 4, 16, 192, 256);
        if (!loss[i]->data) return fail("tensors", NULL);
    }
    for (int i = 0; i < 5; i++) {
        *rz[i] = tensor_new(e, 4, 32, 192, 256);
        if (!rz[i]->data) return fail("tensors", NULL);
    }
    bcae_rng r;
    bcae_rng_seed(&r, 1);
    fill(&r, &c.lg, -4, 4, 0);
    fill(&r, &c.rw, -1.5, 1, 0);
    fill(&r, &c.tg, 6, 10, 0.89); /* the data's ~11% occupancy */
    fill(&r, &c.h, -1, 1, 0);
    fill(&r, &c.x, -1, 1, 0);
    static const char *names[] = {"bcae_heads (4,16,192,256)", "bcae_loss_sums (4,16,192,256)",
                                  "bcae_loss_backward (4,16,192,256)",
                                  "rezero_forward (4,32,192,256)", "rezero_backward (4,32,192,256)"};
    printf("threads %d, %d repetitions: ms per call, mean / best\n", threads, reps);
    for (int op = 0; op < 5; op++) {
        run_op(&c, op); /* warm: first touch of the outputs, thread pool start */
        double total = 0, best = INFINITY;
        for (int k = 0; k < reps; k++) {
            double t0 = now_ms();
            run_op(&c, op);
            double dt = now_ms() - t0;
            total += dt;
            if (dt < best) best = dt;
        }
        printf("  %-36s %8.2f / %8.2f\n", names[op], total / reps, best);
    }
    for (int i = 0; i < 6; i++) free(loss[i]->data);
    for (int i = 0; i < 5; i++) free(rz[i]->data);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "parity") != 0 && strcmp(argv[1], "time") != 0)) {
        fprintf(stderr, "usage: loss_tool parity DIR Z_VALID SHIFT SCALE THRESHOLD GAMMA EPS COEF\n"
                        "       loss_tool time [THREADS [REPS]]\n");
        return 2;
    }
    int timing_mode = strcmp(argv[1], "time") == 0;
    int threads = timing_mode && argc > 2 ? atoi(argv[2]) : 2;
    int reps = timing_mode && argc > 3 ? atoi(argv[3]) : 10;
    if (reps < 1) reps = 1;
    nn_engine *e = NULL;
    bcae_error err;
    const nn_engine_options opt = {.device = BCAE_DEVICE_CPU, .threads = threads};
    if (nn_engine_create(&opt, &e, NULL, &err) != BCAE_OK) return fail("engine", &err);
    int rc = timing_mode ? timing(e, threads, reps) : parity(e, argc, argv);
    nn_engine_destroy(e);
    return rc;
}
