/*
 * A new file written by every rank of a communicator in rank order
 * (include/bcae.h, bcae_shared_file_*): rank 0 creates it under a temporary
 * name (bcae_atomic_open) and tells the others the name; each write
 * exchanges the ranks' lengths, and each rank writes its bytes at the sum
 * of the lengths before it; commit closes it on every rank (data synced)
 * and rank 0 renames it into place.
 *
 * Every entry (write, commit, abort) starts with the same exchange of one
 * number per rank, a length or FAILED, so a rank that gave up and aborts
 * meets the others' write or commit there: they learn it and fail instead
 * of waiting for it forever.
 */
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "core/comm.h"
#include "core/error.h"
#include "io/shared_file.h"

#define FAILED UINT64_MAX

struct bcae_shared_file {
    const bcae_comm *comm;
    bcae_atomic_file af; /* rank 0: the temporary file and its rename */
    void *file;          /* every rank: the comm's handle on it (NULL once closed) */
    uint64_t size;
    uint64_t *lens; /* one per rank */
    uint64_t *tags; /* three per rank: the numbers bcae_shared_file_write_tagged sums */
    char path[BCAE_CTR_PATH_MAX + 64];
};

static void release(bcae_shared_file *f, int unlink_temp)
{
    if (f->comm->rank == 0 && f->af.fp) {
        if (unlink_temp) bcae_atomic_abort(&f->af);
    }
    free(f->lens);
    free(f->tags);
    free(f);
}

bcae_status bcae_shared_file_open(const char *path, const bcae_comm *comm, bcae_shared_file **out,
                                  bcae_error *err)
{
    if (!path || !out)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_shared_file_open: NULL argument");
    *out = NULL;
    comm = comm_or_serial(comm);
    bcae_shared_file *f = calloc(1, sizeof *f);
    if (f) {
        f->comm = comm;
        f->lens = calloc((size_t)comm->size, sizeof *f->lens);
        f->tags = calloc(3 * (size_t)comm->size, sizeof *f->tags);
    }
    bcae_status s = BCAE_OK;
    if (!f || !f->lens || !f->tags)
        s = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    /* Rank 0 creates the temporary file; the others learn its name. */
    char name[BCAE_CTR_PATH_MAX + 64] = {0};
    if (!s && comm->rank == 0) {
        if (strlen(path) + 16 > sizeof name)
            s = bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: path too long", path);
        else if (!(s = bcae_atomic_open(&f->af, path, err)))
            snprintf(name, sizeof name, "%s", f->af.temp_path);
    }
    if (!f) {
        /* Still take part, so that the others fail with us. */
        comm_agree(comm, s, path, NULL);
        return s;
    }
    s = comm_agree(comm, s, path, err);
    if (!s) s = comm_broadcast(comm, name, sizeof name, 0, err);
    if (!s) {
        memcpy(f->path, name, sizeof f->path);
        bcae_status o = comm->ops->file_open(comm, name, &f->file, err);
        if (o) f->file = NULL;
        /* MPI_File_open is collective: a failure is seen by all. Agree
         * anyway, for implementations where it is not. */
        s = comm_agree(comm, o, path, err);
        if (s && f->file) {
            comm->ops->file_close(comm, f->file, NULL);
            f->file = NULL;
        }
    }
    if (s) {
        release(f, 1);
        return s;
    }
    *out = f;
    return BCAE_OK;
}

/* The exchange every entry starts with; on a failure anywhere the file is
 * closed on every rank (a collective, done here while all are together)
 * and discarded. */
static bcae_status exchange(bcae_shared_file *f, uint64_t mine, const uint64_t tag[3],
                            bcae_error *err)
{
    const bcae_comm *c = f->comm;
    if (!f->file)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: shared file already failed",
                         f->path);
    /* Always all four, whoever fails: the collectives must pair up. */
    bcae_status s = comm_allgather_u64(c, mine, f->lens, err);
    for (int k = 0; k < 3 && !s; k++)
        s = comm_allgather_u64(c, tag ? tag[k] : 0, f->tags + (size_t)k * (size_t)c->size, err);
    if (s) return s; /* the communicator itself failed: nothing more is safe */
    int failed = -1;
    for (int r = 0; r < c->size && failed < 0; r++)
        if (f->lens[r] == FAILED) failed = r;
    if (failed < 0) return BCAE_OK;
    c->ops->file_close(c, f->file, NULL);
    f->file = NULL;
    if (c->rank == 0 && f->af.fp) bcae_atomic_abort(&f->af);
    if (mine == FAILED) return BCAE_ERR_IO; /* the caller's own error stands */
    return bcae_fail(err, BCAE_ERR_IO, "%s: rank %d of %d failed (see its message); nothing "
                                       "written",
                     f->path, failed, c->size);
}

bcae_status shared_file_write_tagged(bcae_shared_file *f, const void *buf, size_t len,
                                    const uint64_t tag[3], uint64_t sum[3], bcae_error *err)
{
    if (!f) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_shared_file_write: NULL");
    bcae_status s = exchange(f, len, tag, err);
    if (s) return s;
    for (int k = 0; k < 3 && sum; k++) {
        sum[k] = 0;
        const uint64_t *t = f->tags + (size_t)k * (size_t)f->comm->size;
        for (int r = 0; r < f->comm->size; r++) sum[k] += t[r];
    }
    const bcae_comm *c = f->comm;
    uint64_t off = f->size, total = 0;
    for (int r = 0; r < c->size; r++) {
        if (r < c->rank) off += f->lens[r];
        total += f->lens[r];
    }
    if (len) s = c->ops->file_write_at(c, f->file, off, buf, len, err);
    f->size += total;
    return s;
}

bcae_status bcae_shared_file_write(bcae_shared_file *f, const void *buf, size_t len,
                                   bcae_error *err)
{
    return shared_file_write_tagged(f, buf, len, NULL, NULL, err);
}

uint64_t bcae_shared_file_size(const bcae_shared_file *f) { return f ? f->size : 0; }

const bcae_comm *shared_file_comm(const bcae_shared_file *f) { return f->comm; }

bcae_status bcae_shared_file_commit(bcae_shared_file *f, bcae_error *err)
{
    if (!f) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_shared_file_commit: NULL");
    const bcae_comm *c = f->comm;
    bcae_status s = exchange(f, 0, NULL, err);
    if (s) {
        release(f, 1);
        return s;
    }
    s = c->ops->file_close(c, f->file, err);
    f->file = NULL;
    if (c->rank == 0) s = s ? s : bcae_atomic_commit(&f->af, err);
    if (c->rank == 0 && s) bcae_atomic_abort(&f->af);
    s = comm_agree(c, s, f->path, err);
    f->af.fp = NULL; /* committed or aborted: nothing left to undo */
    release(f, 0);
    return s;
}

void bcae_shared_file_abort(bcae_shared_file *f)
{
    if (!f) return;
    if (f->file) exchange(f, FAILED, NULL, NULL);
    release(f, 1);
}
