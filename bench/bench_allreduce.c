/*
 * bench_allreduce: the time of the data-parallel trainer's one collective
 * that grows with the model, the in-place sum of the flat float gradient
 * buffer over the ranks (bcae_comm's allreduce_sum_f32, MPI_Allreduce in
 * the MPI build), for docs/SCALING.md's model.
 *
 *   mpirun -np N bench_allreduce FLOATS [REPS]
 *
 * Prints one line on rank 0: ranks, floats, MB, the mean and the best time
 * of REPS (default 50) after 5 warm-up calls, each timed between barriers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bcae.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    bcae_comm *c = NULL;
    bcae_error err;
    if (bcae_comm_mpi_init(&argc, &argv, &c, &err)) {
        fprintf(stderr, "bench_allreduce: %s\n", err.message);
        return 1;
    }
    if (argc < 2) {
        if (c->rank == 0) fprintf(stderr, "usage: mpirun -np N bench_allreduce FLOATS [REPS]\n");
        bcae_comm_free(c);
        return 2;
    }
    size_t n = (size_t)strtoull(argv[1], NULL, 10);
    int reps = argc > 2 ? atoi(argv[2]) : 50;
    float *g = malloc((n ? n : 1) * sizeof *g);
    if (!g) {
        fprintf(stderr, "bench_allreduce: out of memory\n");
        c->ops->abort(c, 1);
        return 1;
    }
    for (size_t i = 0; i < n; i++) g[i] = 1e-3f * (float)(i % 1000);
    double sum = 0, best = 1e30;
    int rc = 0;
    for (int r = -5; r < reps && !rc; r++) {
        rc = c->ops->barrier(c, &err) != BCAE_OK;
        double t0 = now_s();
        if (!rc) rc = c->ops->allreduce_sum_f32(c, g, n, &err) != BCAE_OK;
        double t = now_s() - t0;
        /* The slowest rank's time is the step's. */
        if (!rc) rc = c->ops->allreduce_max_f64(c, &t, 1, &err) != BCAE_OK;
        if (r >= 0) {
            sum += t;
            if (t < best) best = t;
        }
    }
    if (rc) fprintf(stderr, "bench_allreduce: %s\n", err.message);
    else if (c->rank == 0)
        printf("ranks %d floats %zu MB %.3f allreduce mean %.6f s best %.6f s\n", c->size, n,
               4.0 * (double)n / 1e6, sum / reps, best);
    free(g);
    bcae_comm_free(c);
    return rc;
}
