/* The serial communicator (rank 0 of 1) and the helpers of core/comm.h. */
#include "core/comm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

/* ---- the serial communicator: reductions are the identity ---- */

static bcae_status serial_f64(const bcae_comm *c, double *x, size_t n, bcae_error *err)
{
    (void)c, (void)x, (void)n, (void)err;
    return BCAE_OK;
}

static bcae_status serial_f32(const bcae_comm *c, float *x, size_t n, bcae_error *err)
{
    (void)c, (void)x, (void)n, (void)err;
    return BCAE_OK;
}

static bcae_status serial_bcast(const bcae_comm *c, void *buf, size_t bytes, int root,
                                bcae_error *err)
{
    (void)c, (void)buf, (void)bytes;
    return root == 0 ? BCAE_OK
                     : bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "broadcast from rank %d of 1",
                                 root);
}

static bcae_status serial_allgather(const bcae_comm *c, uint64_t mine, uint64_t *all,
                                    bcae_error *err)
{
    (void)c, (void)err;
    all[0] = mine;
    return BCAE_OK;
}

static bcae_status serial_barrier(const bcae_comm *c, bcae_error *err)
{
    (void)c, (void)err;
    return BCAE_OK;
}

typedef struct serial_file {
    int fd;
    char *path;
} serial_file;

static bcae_status serial_open(const bcae_comm *c, const char *path, void **file, bcae_error *err)
{
    (void)c;
    serial_file *f = malloc(sizeof *f);
    size_t n = strlen(path) + 1;
    char *p = malloc(n);
    if (!f || !p) {
        free(f);
        free(p);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    memcpy(p, path, n);
    f->path = p;
    f->fd = open(path, O_WRONLY | O_CLOEXEC);
    if (f->fd < 0) {
        int e = errno;
        free(p);
        free(f);
        return bcae_fail(err, BCAE_ERR_IO, "%s: cannot open for writing: %s", path, strerror(e));
    }
    *file = f;
    return BCAE_OK;
}

static bcae_status serial_write_at(const bcae_comm *c, void *file, uint64_t offset,
                                   const void *buf, size_t len, bcae_error *err)
{
    (void)c;
    serial_file *f = file;
    const unsigned char *b = buf;
    while (len > 0) {
        ssize_t k = pwrite(f->fd, b, len, (off_t)offset);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return bcae_fail(err, BCAE_ERR_IO, "%s: write at offset %llu failed: %s", f->path,
                             (unsigned long long)offset, k < 0 ? strerror(errno) : "no progress");
        b += k;
        len -= (size_t)k;
        offset += (uint64_t)k;
    }
    return BCAE_OK;
}

static bcae_status serial_close(const bcae_comm *c, void *file, bcae_error *err)
{
    (void)c;
    serial_file *f = file;
    bcae_status s = BCAE_OK;
    if (fsync(f->fd) != 0)
        s = bcae_fail(err, BCAE_ERR_IO, "%s: fsync failed: %s", f->path, strerror(errno));
    if (close(f->fd) != 0 && !s)
        s = bcae_fail(err, BCAE_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
    free(f->path);
    free(f);
    return s;
}

static void serial_abort(const bcae_comm *c, int code) { (void)c, (void)code; }

static const bcae_comm_ops serial_ops = {serial_f64,   serial_f32,       serial_f64,
                                         serial_bcast, serial_allgather, serial_barrier,
                                         serial_open,  serial_write_at,  serial_close,
                                         serial_abort, NULL};
static const bcae_comm serial_comm = {0, 1, &serial_ops, NULL};

const bcae_comm *bcae_comm_serial(void) { return &serial_comm; }

void bcae_comm_free(bcae_comm *c)
{
    if (!c || c == &serial_comm) return;
    if (c->ops && c->ops->destroy) c->ops->destroy(c);
}

/* ---- helpers ---- */

bcae_status comm_sum_f64(const bcae_comm *c, double *x, size_t n, bcae_error *err)
{
    return comm_size(c) > 1 ? c->ops->allreduce_sum_f64(c, x, n, err) : BCAE_OK;
}

bcae_status comm_sum_f32(const bcae_comm *c, float *x, size_t n, bcae_error *err)
{
    return comm_size(c) > 1 ? c->ops->allreduce_sum_f32(c, x, n, err) : BCAE_OK;
}

bcae_status comm_max_f64(const bcae_comm *c, double *x, size_t n, bcae_error *err)
{
    return comm_size(c) > 1 ? c->ops->allreduce_max_f64(c, x, n, err) : BCAE_OK;
}

bcae_status comm_broadcast(const bcae_comm *c, void *buf, size_t bytes, int root,
                           bcae_error *err)
{
    return comm_size(c) > 1 ? c->ops->broadcast(c, buf, bytes, root, err) : BCAE_OK;
}

bcae_status comm_allgather_u64(const bcae_comm *c, uint64_t mine, uint64_t *all,
                               bcae_error *err)
{
    if (comm_size(c) > 1) return c->ops->allgather_u64(c, mine, all, err);
    all[0] = mine;
    return BCAE_OK;
}

bcae_status comm_agree(const bcae_comm *c, bcae_status s, const char *what, bcae_error *err)
{
    if (comm_size(c) == 1) return s;
    /* The lowest failed rank, or size when none failed (a max of -rank). */
    double x = s ? -(double)c->rank : -(double)c->size;
    bcae_error mine;
    bcae_status cs = c->ops->allreduce_max_f64(c, &x, 1, &mine);
    if (cs) {
        if (!s && err) *err = mine;
        return s ? s : cs;
    }
    int failed = (int)-x;
    if (s) return s;
    if (failed < c->size)
        return bcae_fail(err, BCAE_ERR_IO, "%s: rank %d of %d failed (see its message)",
                         what, failed, c->size);
    return BCAE_OK;
}
