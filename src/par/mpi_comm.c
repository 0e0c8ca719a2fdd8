/*
 * The MPI communicator (include/bcae.h, "Communicators"): the only file of
 * bcae that calls MPI. Built with -DBCAE_MPI=ON (src/par/mpi_none.c stands
 * in otherwise). Collectives run on a duplicate of MPI_COMM_WORLD with
 * MPI_ERRORS_RETURN, so an MPI error comes back as a status and a message
 * instead of ending the process; MPI-IO files return errors by default.
 */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "core/error.h"

typedef struct mpi_ctx {
    MPI_Comm comm;
    int finalize; /* we initialised MPI, so we finalise it */
} mpi_ctx;

/* The largest count one MPI call takes (an int); bigger buffers go in pieces. */
#define CHUNK ((size_t)1 << 28)

static MPI_Comm comm_of(const bcae_comm *c) { return ((const mpi_ctx *)c->ctx)->comm; }

static bcae_status mpi_fail(bcae_error *err, int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
    return bcae_fail(err, BCAE_ERR_IO, "MPI: %s: %s", what, msg);
}

static bcae_status allreduce(const bcae_comm *c, void *x, size_t n, size_t elem, MPI_Datatype t,
                             MPI_Op op, bcae_error *err)
{
    char *p = x;
    for (size_t i = 0; i < n; i += CHUNK) {
        int k = (int)(n - i < CHUNK ? n - i : CHUNK);
        int rc = MPI_Allreduce(MPI_IN_PLACE, p + i * elem, k, t, op, comm_of(c));
        if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "MPI_Allreduce");
    }
    return BCAE_OK;
}

static bcae_status sum_f64(const bcae_comm *c, double *x, size_t n, bcae_error *err)
{
    return allreduce(c, x, n, sizeof *x, MPI_DOUBLE, MPI_SUM, err);
}

static bcae_status sum_f32(const bcae_comm *c, float *x, size_t n, bcae_error *err)
{
    return allreduce(c, x, n, sizeof *x, MPI_FLOAT, MPI_SUM, err);
}

static bcae_status max_f64(const bcae_comm *c, double *x, size_t n, bcae_error *err)
{
    return allreduce(c, x, n, sizeof *x, MPI_DOUBLE, MPI_MAX, err);
}

static bcae_status bcast(const bcae_comm *c, void *buf, size_t bytes, int root, bcae_error *err)
{
    char *p = buf;
    for (size_t i = 0; i < bytes; i += CHUNK) {
        int k = (int)(bytes - i < CHUNK ? bytes - i : CHUNK);
        int rc = MPI_Bcast(p + i, k, MPI_BYTE, root, comm_of(c));
        if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "MPI_Bcast");
    }
    return BCAE_OK;
}

static bcae_status allgather_u64(const bcae_comm *c, uint64_t mine, uint64_t *all,
                                 bcae_error *err)
{
    int rc = MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, comm_of(c));
    return rc == MPI_SUCCESS ? BCAE_OK : mpi_fail(err, rc, "MPI_Allgather");
}

static bcae_status barrier(const bcae_comm *c, bcae_error *err)
{
    int rc = MPI_Barrier(comm_of(c));
    return rc == MPI_SUCCESS ? BCAE_OK : mpi_fail(err, rc, "MPI_Barrier");
}

static bcae_status file_open(const bcae_comm *c, const char *path, void **file, bcae_error *err)
{
    MPI_File *fh = malloc(sizeof *fh);
    if (!fh) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    int rc = MPI_File_open(comm_of(c), path, MPI_MODE_WRONLY, MPI_INFO_NULL, fh);
    if (rc != MPI_SUCCESS) {
        free(fh);
        char what[4200];
        snprintf(what, sizeof what, "MPI_File_open %s", path);
        return mpi_fail(err, rc, what);
    }
    *file = fh;
    return BCAE_OK;
}

static bcae_status file_write_at(const bcae_comm *c, void *file, uint64_t offset, const void *buf,
                                 size_t len, bcae_error *err)
{
    MPI_File *fh = file;
    const char *p = buf;
    for (size_t i = 0; i < len; i += CHUNK) {
        int k = (int)(len - i < CHUNK ? len - i : CHUNK);
        MPI_Status st;
        int rc = MPI_File_write_at(*fh, (MPI_Offset)(offset + i), p + i, k, MPI_BYTE, &st);
        if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "MPI_File_write_at");
        int done = 0;
        MPI_Get_count(&st, MPI_BYTE, &done);
        if (done != k)
            return bcae_fail(err, BCAE_ERR_IO, "MPI_File_write_at: wrote %d of %d bytes", done, k);
    }
    return BCAE_OK;
}

static bcae_status file_close(const bcae_comm *c, void *file, bcae_error *err)
{
    MPI_File *fh = file;
    int rc = MPI_File_sync(*fh);
    int rc2 = MPI_File_close(fh);
    free(fh);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "MPI_File_sync");
    if (rc2 != MPI_SUCCESS) return mpi_fail(err, rc2, "MPI_File_close");
    return BCAE_OK;
}

static void abort_all(const bcae_comm *c, int code) { MPI_Abort(comm_of(c), code); }

static void destroy(bcae_comm *c)
{
    mpi_ctx *x = c->ctx;
    int fin = x->finalize;
    MPI_Comm_free(&x->comm);
    free(x);
    free(c);
    int done = 0;
    MPI_Finalized(&done);
    if (fin && !done) MPI_Finalize();
}

static const bcae_comm_ops mpi_ops = {sum_f64,  sum_f32,       max_f64,    bcast,
                                      allgather_u64, barrier, file_open, file_write_at,
                                      file_close, abort_all, destroy};

int bcae_comm_mpi_compiled(void) { return 1; }

bcae_status bcae_comm_mpi_init(int *argc, char ***argv, bcae_comm **out, bcae_error *err)
{
    if (!out) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_comm_mpi_init: NULL out");
    *out = NULL;
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "MPI was already finalised");
    if (!inited) {
        /* Only the thread that called this makes MPI calls; OpenMP threads
         * inside a rank never do. */
        int provided = 0;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return bcae_fail(err, BCAE_ERR_IO, "MPI_Init_thread failed (%d)", rc);
    }
    bcae_comm *c = calloc(1, sizeof *c);
    mpi_ctx *x = calloc(1, sizeof *x);
    if (!c || !x) {
        free(c);
        free(x);
        if (!inited) MPI_Finalize();
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "MPI communicator: out of memory");
    }
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &x->comm);
    if (rc != MPI_SUCCESS) {
        free(c);
        free(x);
        if (!inited) MPI_Finalize();
        return mpi_fail(err, rc, "MPI_Comm_dup");
    }
    MPI_Comm_set_errhandler(x->comm, MPI_ERRORS_RETURN);
    x->finalize = !inited;
    MPI_Comm_rank(x->comm, &c->rank);
    MPI_Comm_size(x->comm, &c->size);
    c->ops = &mpi_ops;
    c->ctx = x;
    *out = c;
    return BCAE_OK;
}
