/* The 3D models' halves of bcae forward and bcae bench (verb_forward3d.c,
 * verb_bench3d.c), called by those verbs when the model is 3D. */
#ifndef BCAE_TOOLS_VERB3D_H
#define BCAE_TOOLS_VERB3D_H

#include <stdint.h>

#include "model/bcae3d.h"

/* 1 if the weights file's arch is a 3D model; 0 if not; -1 (message
 * printed) if the file cannot be read. */
int cli_model_is_3d(const char *verb, const char *path);

int forward3d_run(const char *verb, const char *model_path, const char *out, int half,
                  int batch, int threads, int nw, char **wedges);

typedef struct bench3d_args {
    const char *model_path; /* or NULL: random weights of arch */
    const char *arch;
    int batch, threads, train, json;
    double seconds;
    uint64_t seed;
    const char *algo;    /* "auto", "direct", "shuffle" */
    const char *encoder; /* "fused", "dense", "layers" */
    const char *decoder; /* "fused", "shuffle", "rows", "layers" */
    const char *conv3d;  /* "auto", "onednn" */
} bench3d_args;

/* Timing of one bench pass (verb_bench.c), for both bench verbs: one
 * untimed run, then runs until `seconds` have passed and at least
 * BENCH_MIN_REPS were timed; samples holds BENCH_MAX_REPS. */
enum {
    BENCH_MIN_REPS = 3,     /* a median of fewer says little */
    BENCH_MAX_REPS = 100000 /* bounds the sample array of a very fast pass */
};
typedef struct bench_pass_stats {
    long reps;
    double median_s, min_s;
} bench_pass_stats;
void bench_time_pass(void (*fn)(void *ctx), void *ctx, double seconds, double *samples,
                     bench_pass_stats *st);

int bench3d_run(const char *verb, const bench3d_args *a);

#endif
