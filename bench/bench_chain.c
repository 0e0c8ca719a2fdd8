/*
 * bench_chain: the BCAE-2D encoder chain step by step, in process CPU time,
 * for each 3x3 algorithm (nn_cpu_options.chain_conv) and precision,
 * interleaved in rounds. CPU time, not wall clock: on a shared, loaded
 * machine the time a run waits for a core does not count, so the figures
 * move far less than wall-clock throughput (bench/RESULTS.md, Zen 4
 * section). With --threads 1 it is the work itself; with more threads it
 * also counts the threads' synchronisation.
 *
 *   bench_chain [--threads T] [--reps R] [--rounds N] [--batch B]
 *               [--mnd M,N,D] [--variants direct,wino2,wino4]
 *               [--precisions fp32,bf16]
 *
 * Random weights (seed 1), input ~11% non-zero with values in [6, 10) as
 * bcae bench's. Per (precision, variant): the median over rounds of each
 * round's mean CPU ms per batch, total and per step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "model/bcae2d.h"
#include "model/model.h"
#include "nn/cpu/cpu_internal.h"

enum { MAX_STEPS = 64, MAX_VARIANTS = 4, MAX_PRECS = 3, MAX_ROUNDS = 64 };

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The encoder's layers as bcae2d_runner_use_chain builds them. */
static int encoder_layers(const bcae_model *M, nn_layer *layers)
{
    const bcae2d_model *m = bcae2d_of(M);
    const bcae2d_net *net = &m->nets[NET_ENCODER];
    const float *w = m->t->weights;
    const model_param *p = m->t->params;
    for (int i = 0; i < net->nops; i++) {
        const bcae2d_op *op = &net->ops[i];
        nn_layer *l = &layers[i];
        memset(l, 0, sizeof *l);
        l->cin = op->cin, l->cout = op->cout, l->k = op->k, l->pad = op->pad;
        l->kind = op->kind == OP_CONV ? NN_LAYER_CONV : op->kind == OP_POOL ? NN_LAYER_POOL2 : NN_LAYER_RESIDUAL;
        if (op->w >= 0) l->w = w + p[op->w].offset;
        if (op->b >= 0) l->b = w + p[op->b].offset;
        if (op->w2 >= 0) l->w2 = w + p[op->w2].offset;
        if (op->b2 >= 0) l->b2 = w + p[op->b2].offset;
        if (op->alpha >= 0) l->alpha = w[p[op->alpha].offset];
    }
    return net->nops;
}

int main(int argc, char **argv)
{
    int threads = 1, reps = 5, rounds = 3, batch = 4, mm = 4, nn = 8, dd = 3;
    const char *variants = "direct,wino2,wino4", *precs = "fp32,bf16";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mnd")) sscanf(argv[i + 1], "%d,%d,%d", &mm, &nn, &dd);
        else if (!strcmp(argv[i], "--variants")) variants = argv[i + 1];
        else if (!strcmp(argv[i], "--precisions")) precs = argv[i + 1];
        else {
            fprintf(stderr, "bench_chain: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
    static const char *vnames[] = {"auto", "direct", "wino2", "wino4"};
    int var[MAX_VARIANTS], nvar = 0, prec[MAX_PRECS], nprec = 0;
    for (int v = 1; v < 4; v++)
        if (strstr(variants, vnames[v]) && nvar < MAX_VARIANTS) var[nvar++] = v;
    if (strstr(precs, "fp32")) prec[nprec++] = BCAE_PRECISION_FP32;
    if (strstr(precs, "bf16")) prec[nprec++] = BCAE_PRECISION_BF16;

    bcae_error err;
    bcae_model *M = NULL;
    model_config mc = {mm, nn, dd, {0}, 0, MODEL_INPUT_DEFAULT};
    if (model_create(&model_arch_bcae2d, &mc, &M, &err)) {
        fprintf(stderr, "bench_chain: %s\n", err.message);
        return 1;
    }
    model_init(M, 1);
    nn_layer layers[2 * BCAE2D_MAX_DEPTH + 2];
    const int nl = encoder_layers(M, layers);
    const int C = 16, H = 192, W = 256;
    const size_t nx = (size_t)batch * C * H * W;
    float *host = malloc(nx * sizeof *host);
    bcae_rng rng;
    bcae_rng_seed(&rng, 7);
    for (size_t i = 0; i < nx; i++)
        host[i] = bcae_rng_uniform(&rng) < 0.11 ? (float)(6.0 + 4.0 * bcae_rng_uniform(&rng)) : 0.0f;

    /* One engine and chain per (precision, variant), all planned first. */
    nn_engine *eng[MAX_PRECS][MAX_VARIANTS] = {{0}};
    nn_chain *ch[MAX_PRECS][MAX_VARIANTS] = {{0}};
    nn_tensor x[MAX_PRECS][MAX_VARIANTS], y[MAX_PRECS][MAX_VARIANTS];
    static double prof[MAX_PRECS][MAX_VARIANTS][MAX_STEPS];
    static char names[MAX_PRECS][MAX_VARIANTS][MAX_STEPS][32];
    static double total[MAX_PRECS][MAX_VARIANTS][MAX_ROUNDS];
    static double steps[MAX_PRECS][MAX_VARIANTS][MAX_STEPS][MAX_ROUNDS];
    int nsteps[MAX_PRECS][MAX_VARIANTS];
    for (int p = 0; p < nprec; p++)
        for (int v = 0; v < nvar; v++) {
            nn_engine_options eo = {.device = BCAE_DEVICE_CPU, .threads = threads};
            eo.cpu.chain_conv = (nn_chain_conv)var[v];
            const nn_chain_desc d = {batch, C, H, W, layers, nl, (bcae_precision)prec[p], NN_FIRST_SPARSE};
            if (nn_engine_create(&eo, &eng[p][v], NULL, &err) ||
                eng[p][v]->ops->chain_create(eng[p][v], &d, &ch[p][v], &err)) {
                fprintf(stderr, "bench_chain: %s\n", err.message);
                return 1;
            }
            nn_engine *e = eng[p][v];
            x[p][v] = (nn_tensor){batch, C, H, W, NULL};
            y[p][v] = (nn_tensor){batch, layers[nl - 1].cout, H >> dd, W >> dd, NULL};
            if (e->ops->tensor_alloc(e, &x[p][v], &err) || e->ops->tensor_alloc(e, &y[p][v], &err) ||
                e->ops->from_nchw(e, host, &x[p][v])) {
                fprintf(stderr, "bench_chain: %s\n", err.message);
                return 1;
            }
            nsteps[p][v] = cpu_chain_profile(ch[p][v], prof[p][v], MAX_STEPS, names[p][v]);
            char desc[160];
            printf("%s %s: %s\n", bcae_precision_name((bcae_precision)prec[p]), vnames[var[v]],
                   cpu_chain_describe(ch[p][v], desc, sizeof desc));
        }
    printf("BCAE-2D(%d,%d,%d) encoder chain, batch %d, %d thread(s), %d reps x %d rounds\n", mm, nn,
           dd, batch, threads, reps, rounds);
    for (int r = 0; r < rounds; r++)
        for (int p = 0; p < nprec; p++)
            for (int v = 0; v < nvar; v++) {
                nn_engine *e = eng[p][v];
                e->ops->chain_forward(ch[p][v], &x[p][v], &y[p][v]); /* warm */
                memset(prof[p][v], 0, sizeof prof[p][v]);
                double t0 = cpu_s();
                for (int k = 0; k < reps; k++) e->ops->chain_forward(ch[p][v], &x[p][v], &y[p][v]);
                total[p][v][r] = 1e3 * (cpu_s() - t0) / reps;
                for (int s = 0; s < nsteps[p][v]; s++) steps[p][v][s][r] = 1e3 * prof[p][v][s] / reps;
            }
    for (int p = 0; p < nprec; p++) {
        printf("\n%-24s", bcae_precision_name((bcae_precision)prec[p]));
        for (int v = 0; v < nvar; v++) printf(" %10s", vnames[var[v]]);
        printf("   (CPU ms per batch, median of rounds)\n");
        for (int s = 0; s < nsteps[p][0]; s++) {
            char label[32];
            snprintf(label, sizeof label, "%s", names[p][0][s]);
            /* The step's name without the algorithm (it differs by column). */
            char *w = strstr(label, " wino");
            if (w) memmove(w, w + 5, strlen(w + 5) + 1);
            printf("%-24s", label);
            for (int v = 0; v < nvar; v++) printf(" %10.3f", median(steps[p][v][s], rounds));
            printf("\n");
        }
        printf("%-24s", "total");
        double base = 0;
        for (int v = 0; v < nvar; v++) {
            double t = median(total[p][v], rounds);
            if (!v) base = t;
            printf(" %10.3f", t);
        }
        printf("\n%-24s", "speed-up vs first");
        for (int v = 0; v < nvar; v++) printf(" %10.3f", base / median(total[p][v], rounds));
        printf("\n");
    }
    for (int p = 0; p < nprec; p++)
        for (int v = 0; v < nvar; v++) {
            eng[p][v]->ops->chain_destroy(ch[p][v]);
            nn_tensor_free(eng[p][v], &x[p][v]);
            nn_tensor_free(eng[p][v], &y[p][v]);
            nn_engine_destroy(eng[p][v]);
        }
    free(host);
    bcae_model_free(M);
    return 0;
}
