/*
 * The sparse codec on many wedges at once (bcae.h): one coder per thread,
 * as `bcae compress --codec sparse` runs it, for the callers that hold a
 * batch in memory (the Python package, the HDF5 plugin). Every stream is
 * the one bcae_sparse_encode makes alone: a wedge's stream depends on the
 * wedge and the options only, never on the thread or the batch.
 */
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/error.h"
#include "sparse/sparse.h"

/* The thread count for n items: `threads` (0: OpenMP's default, i.e.
 * $OMP_NUM_THREADS or all cores), never more than n. */
static int team_size(int threads, size_t n)
{
#ifdef _OPENMP
    int t = threads > 0 ? threads : omp_get_max_threads();
#else
    int t = 1;
    (void)threads;
#endif
    if (t < 1) t = 1;
    if ((size_t)t > n) t = (int)n;
    return t;
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* What one run on a team shares: a coder per thread, and per thread the
 * first (lowest, as each thread takes its items in increasing order) item
 * that failed, with its error, so that the run reports the lowest failing
 * item whatever the schedule. */
typedef struct team {
    int size;
    bcae_sparse_coder **coder;
    size_t *failed; /* per thread: the item, or SIZE_MAX */
    bcae_error *err;
} team;

static void team_free(team *t)
{
    for (int i = 0; t->coder && i < t->size; i++) bcae_sparse_coder_free(t->coder[i]);
    free(t->coder);
    free(t->failed);
    free(t->err);
}

static bcae_status team_create(team *t, int threads, size_t n, bcae_error *err)
{
    memset(t, 0, sizeof *t);
    t->size = team_size(threads, n);
    t->coder = calloc((size_t)t->size, sizeof *t->coder);
    t->failed = malloc((size_t)t->size * sizeof *t->failed);
    t->err = malloc((size_t)t->size * sizeof *t->err);
    if (!t->coder || !t->failed || !t->err) {
        team_free(t);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "sparse codec: out of memory");
    }
    for (int i = 0; i < t->size; i++) {
        t->failed[i] = SIZE_MAX;
        bcae_status s = bcae_sparse_coder_create(&t->coder[i], err);
        if (s) {
            team_free(t);
            return s;
        }
    }
    return BCAE_OK;
}

/* The run's outcome: the error of its lowest failing item, named by its
 * index when there are several (one item's error is the lone call's). */
static bcae_status team_finish(team *t, size_t n, const char *what, bcae_error *err)
{
    int worst = -1;
    for (int i = 0; i < t->size; i++)
        if (t->failed[i] != SIZE_MAX && (worst < 0 || t->failed[i] < t->failed[worst])) worst = i;
    bcae_status s = BCAE_OK;
    if (worst >= 0 && n == 1)
        s = bcae_fail(err, t->err[worst].status, "%s", t->err[worst].message);
    else if (worst >= 0)
        s = bcae_fail(err, t->err[worst].status, "%s %zu: %s", what, t->failed[worst],
                      t->err[worst].message);
    team_free(t);
    return s;
}

bcae_status bcae_sparse_encode_many(const uint16_t *wedges, size_t n,
                                    const bcae_sparse_options *opt, int threads, uint8_t *out,
                                    size_t stride, size_t *len, bcae_sparse_info *info,
                                    bcae_error *err)
{
    if (n == 0) return BCAE_OK;
    if (!wedges || !out || !len)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "sparse encode: NULL argument");
    if (stride < bcae_sparse_bound())
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "sparse encode: stride %zu < bcae_sparse_bound() = %zu", stride,
                         bcae_sparse_bound());
    if (threads < 0)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "sparse encode: %d threads", threads);
    /* Once, unnamed: bad options are no wedge's fault. */
    bcae_status s = sparse_options_check(opt, err);
    if (s) return s;
    team t;
    s = team_create(&t, threads, n, err);
    if (s) return s;
    const size_t V = BCAE_WEDGE_VOXELS;
#ifdef _OPENMP
#pragma omp parallel for num_threads(t.size) schedule(dynamic)
#endif
    for (size_t i = 0; i < n; i++) {
        int me = thread_id();
        bcae_status si = bcae_sparse_encode(t.coder[me], wedges + i * V, opt, out + i * stride,
                                            stride, &len[i], info ? &info[i] : NULL, &t.err[me]);
        if (si && t.failed[me] == SIZE_MAX) t.failed[me] = i;
    }
    return team_finish(&t, n, "wedge", err);
}

bcae_status bcae_sparse_decode_many(const uint8_t *const *streams, const size_t *lens, size_t n,
                                    int threads, uint16_t *wedges, bcae_sparse_info *info,
                                    bcae_error *err)
{
    if (n == 0) return BCAE_OK;
    if (!streams || !lens || !wedges)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "sparse decode: NULL argument");
    if (threads < 0)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "sparse decode: %d threads", threads);
    team t;
    bcae_status s = team_create(&t, threads, n, err);
    if (s) return s;
    const size_t V = BCAE_WEDGE_VOXELS;
#ifdef _OPENMP
#pragma omp parallel for num_threads(t.size) schedule(dynamic)
#endif
    for (size_t i = 0; i < n; i++) {
        int me = thread_id();
        bcae_status si = bcae_sparse_decode(t.coder[me], streams[i], lens[i], wedges + i * V,
                                            info ? &info[i] : NULL, &t.err[me]);
        if (si && t.failed[me] == SIZE_MAX) t.failed[me] = i;
    }
    return team_finish(&t, n, "stream", err);
}
