/*
 * The .bcae writer: new files (temporary name, then rename) and appending
 * in place to an existing one (docs/FORMAT.md, "Writing and appending").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "core/comm.h"
#include "io/shared_file.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "io/container_internal.h"
#include "io/fileutil.h"

/* ------------------------------------------------------------------ */
/* Writer                                                              */
/* ------------------------------------------------------------------ */

struct bcae_ctr_writer {
    char *path;
    bcae_atomic_file af; /* new file */
    FILE *fp;            /* af.fp, or the appended file */
    int appending;
    bcae_ctr_info info;
    size_t raw_bytes;
    unsigned char *buf; /* one whole record: header, path, payload, CRC */
    size_t buf_cap;
    unsigned char *le; /* the code in little-endian order (big-endian hosts) */
    ZSTD_CCtx *cctx;
    int failed;
    bcae_ctr_stats st;
    /* Appending: where the old end marker was, and its bytes, to put back
     * on abort; whether anything was written over it yet. */
    uint64_t end_off;
    unsigned char old_end[BCAE_CTR_END_BYTES];
    int touched;
    /* Every record path in the file, so that none is written twice: two
     * records with one path would overwrite each other on decompression. */
    bcae_pathset *paths;
    /* Shared (bcae_ctr_writer_open_shared): records go to mem, and each
     * flush writes every rank's mem in rank order; st is then the whole
     * file's as of the last flush and st_local this rank's own counts. */
    bcae_shared_file *shared;
    unsigned char *mem;
    size_t mem_len, mem_cap;
    bcae_ctr_stats st_local, st_flushed;
};

static bcae_status writer_alloc(const char *path, const bcae_ctr_info *info,
                                bcae_ctr_writer **out, bcae_error *err)
{
    bcae_ctr_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path) + 1;
    if (w) w->path = malloc(n);
    if (!w || !w->path) {
        free(w);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    memcpy(w->path, path, n);
    w->info = *info;
    w->info.version = bcae_ctr_version_for(info);
    int sparse = info->code_dtype == BCAE_CTR_DTYPE_SPARSE;
    w->raw_bytes = sparse ? 0 : 2 * bcae_ctr_code_count(info);
    w->buf_cap = BCAE_CTR_RECORD_OVERHEAD + BCAE_CTR_PATH_MAX +
                 (sparse ? BCAE_CTR_STREAM_MAX : zstd_stored_max(w->raw_bytes));
    w->buf = malloc(w->buf_cap);
    w->paths = bcae_pathset_new();
    if (!w->buf || !w->paths) {
        bcae_pathset_free(w->paths);
        free(w->buf);
        free(w->path);
        free(w);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    *out = w;
    return BCAE_OK;
}

static void writer_free(bcae_ctr_writer *w)
{
    free(w->mem);
    ZSTD_freeCCtx(w->cctx);
    bcae_pathset_free(w->paths);
    free(w->le);
    free(w->buf);
    free(w->path);
    free(w);
}

static bcae_status check_info(const bcae_ctr_info *info, const char *path, bcae_error *err)
{
    const char *why = bcae_ctr_info_problem(info);
    if (why)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: bad container header: %s", path,
                         why);
    return BCAE_OK;
}

bcae_status bcae_ctr_writer_open(const char *path, const bcae_ctr_info *info,
                                 bcae_ctr_writer **out, bcae_error *err)
{
    if (!path || !info || !out)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_ctr_writer_open: NULL argument");
    *out = NULL;
    bcae_status st = check_info(info, path, err);
    if (st) return st;
    bcae_ctr_writer *w;
    if ((st = writer_alloc(path, info, &w, err))) return st;
    if ((st = bcae_atomic_open(&w->af, path, err))) {
        writer_free(w);
        return st;
    }
    w->fp = w->af.fp;
    unsigned char h[BCAE_CTR_HEADER_FIXED + BCAE_CTR_ARCH_MAX + 4];
    size_t n = bcae_ctr_encode_header(&w->info, h);
    if (fwrite(h, 1, n, w->fp) != n) {
        st = bcae_fail(err, BCAE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        bcae_atomic_abort(&w->af);
        writer_free(w);
        return st;
    }
    w->st.file_bytes = n;
    *out = w;
    return BCAE_OK;
}

/* The checks every record's arguments get; *count receives the original
 * array's values. */
static bcae_status check_record(bcae_ctr_writer *w, const char *relpath, size_t plen,
                                const size_t *orig_shape, int orig_ndim, uint64_t *count,
                                bcae_error *err)
{
    if (w->failed)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "%s: an earlier write failed; the container can only be aborted",
                         w->path);
    bcae_status st = bcae_ctr_check_path(relpath, plen, err);
    if (st) return st;
    if (orig_ndim < 1 || orig_ndim > BCAE_CTR_MAX_NDIM)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "%s: original array has %d dimensions (1 to 4 allowed)", relpath,
                         orig_ndim);
    *count = 1;
    for (int d = 0; d < orig_ndim; d++) {
        size_t k = orig_shape[d];
        if (k == 0 || k > UINT32_MAX || *count > ORIG_MAX_COUNT / k)
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                             "%s: original dimension %d is %zu (the array must have 1 to 2^40 "
                             "values)",
                             relpath, d, k);
        *count *= k;
    }
    return BCAE_OK;
}

/* Shared writer: bytes onto this rank's part of the next flush. */
static bcae_status mem_put(bcae_ctr_writer *w, const void *b, size_t n, bcae_error *err)
{
    if (w->mem_len + n > w->mem_cap) {
        size_t cap = w->mem_cap ? w->mem_cap : (size_t)1 << 20;
        while (cap < w->mem_len + n) cap *= 2;
        unsigned char *m = realloc(w->mem, cap);
        if (!m) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", w->path);
        w->mem = m;
        w->mem_cap = cap;
    }
    memcpy(w->mem + w->mem_len, b, n);
    w->mem_len += n;
    return BCAE_OK;
}

/* Writes the record whose payload (stored bytes) is already in w->buf after
 * the header and path: fills in the header, path and CRCs. */
static bcae_status write_record(bcae_ctr_writer *w, const char *relpath, size_t plen,
                                const size_t *orig_shape, int orig_ndim, int encoding,
                                size_t raw, size_t stored, uint64_t count, bcae_error *err)
{
    unsigned char *b = w->buf;
    memset(b, 0, REC_HEADER);
    memcpy(b, REC_TAG, 4);
    put16(b + 4, (unsigned)plen);
    b[6] = (unsigned char)encoding;
    b[7] = BCAE_CTR_DTYPE_U16;
    b[8] = (unsigned char)orig_ndim;
    for (int d = 0; d < orig_ndim; d++) put32(b + 12 + 4 * d, (uint32_t)orig_shape[d]);
    put32(b + 28, (uint32_t)raw);
    put32(b + 32, (uint32_t)stored);
    put32(b + 36, bcae_crc32c(b, 36));
    memcpy(b + REC_HEADER, relpath, plen);
    size_t body = REC_HEADER + plen + stored;
    put32(b + body, bcae_crc32c(b, body));
    size_t total = body + 4;

    int added = bcae_pathset_add(w->paths, relpath);
    if (added < 0) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", w->path);
    if (added == 0)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "%s: a record with the path \"%s\" is already in the container (a "
                         "second one would overwrite it on decompression)",
                         w->path, relpath);
    w->touched = 1;
    if (w->shared) {
        if (mem_put(w, b, total, err)) {
            w->failed = 1;
            return BCAE_ERR_OUT_OF_MEMORY;
        }
        w->st_local.records++;
        w->st_local.new_records++;
        w->st_local.new_orig_bytes += 2 * count;
        w->st_local.new_bytes += total;
        return BCAE_OK;
    }
    if (fwrite(b, 1, total, w->fp) != total) {
        w->failed = 1;
        return bcae_fail(err, BCAE_ERR_IO, "%s: record %llu (\"%s\"): write failed: %s", w->path,
                         (unsigned long long)w->st.records, relpath, strerror(errno));
    }
    w->st.records++;
    w->st.new_records++;
    w->st.new_orig_bytes += 2 * count;
    w->st.new_bytes += total;
    w->st.file_bytes += total;
    return BCAE_OK;
}

bcae_status bcae_ctr_writer_append(bcae_ctr_writer *w, const char *relpath,
                                   const size_t *orig_shape, int orig_ndim,
                                   const uint16_t *code_f16, int zstd_level, bcae_error *err)
{
    if (!w || !relpath || !orig_shape || !code_f16)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_ctr_writer_append: NULL argument");
    if (w->info.code_dtype == BCAE_CTR_DTYPE_SPARSE)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "%s: a file of sparse streams takes streams "
                         "(bcae_ctr_writer_append_stream), not codes",
                         w->path);
    size_t plen = strlen(relpath);
    uint64_t count;
    bcae_status st = check_record(w, relpath, plen, orig_shape, orig_ndim, &count, err);
    if (st) return st;
    if (zstd_level < 0 || zstd_level > ZSTD_maxCLevel())
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "zstd level %d (0 = none, 1 to %d)",
                         zstd_level, ZSTD_maxCLevel());

    unsigned char *b = w->buf;
    size_t raw = w->raw_bytes, n = raw / 2;
    unsigned char *payload = b + REC_HEADER + plen;
    const void *le = code_f16;
    if (!host_is_little_endian()) {
        if (!w->le && !(w->le = malloc(raw)))
            return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", w->path);
        f16_to_le(w->le, code_f16, n);
        le = w->le;
    }
    int encoding = BCAE_CTR_RAW;
    size_t stored = raw;
    if (zstd_level > 0) {
        if (!w->cctx && !(w->cctx = ZSTD_createCCtx()))
            return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory (zstd)", w->path);
        size_t z = ZSTD_compressCCtx(w->cctx, payload, zstd_stored_max(raw), le, raw, zstd_level);
        if (ZSTD_isError(z))
            return bcae_fail(err, BCAE_ERR_INTERNAL, "%s: record %llu (\"%s\"): zstd: %s",
                             w->path, (unsigned long long)w->st.records, relpath,
                             ZSTD_getErrorName(z));
        /* Noise-like codes can grow a little: then raw is the smaller. */
        if (z < raw) {
            encoding = BCAE_CTR_ZSTD;
            stored = z;
        }
    }
    if (encoding == BCAE_CTR_RAW) memcpy(payload, le, raw);
    return write_record(w, relpath, plen, orig_shape, orig_ndim, encoding, raw, stored, count, err);
}

bcae_status bcae_ctr_writer_append_stream(bcae_ctr_writer *w, const char *relpath,
                                          const size_t *orig_shape, int orig_ndim,
                                          const uint8_t *stream, size_t len, bcae_error *err)
{
    if (!w || !relpath || !orig_shape || !stream)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "bcae_ctr_writer_append_stream: NULL argument");
    if (w->info.code_dtype != BCAE_CTR_DTYPE_SPARSE)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "%s: a file of BCAE codes takes codes (bcae_ctr_writer_append), not "
                         "sparse streams",
                         w->path);
    size_t plen = strlen(relpath);
    uint64_t count;
    bcae_status st = check_record(w, relpath, plen, orig_shape, orig_ndim, &count, err);
    if (st) return st;
    if (orig_ndim != 3 || orig_shape[0] != BCAE_WEDGE_AZIMUTH || orig_shape[1] != BCAE_WEDGE_Z ||
        orig_shape[2] != BCAE_WEDGE_LAYERS)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "%s: a sparse stream holds a wedge: the original shape must be (192, "
                         "249, 16)",
                         relpath);
    if (len == 0 || len > BCAE_CTR_STREAM_MAX)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: stream of %zu bytes (1 to %zu)",
                         relpath, len, BCAE_CTR_STREAM_MAX);
    memcpy(w->buf + REC_HEADER + plen, stream, len);
    return write_record(w, relpath, plen, orig_shape, orig_ndim, BCAE_CTR_SPARSE, len, len, count,
                        err);
}

int bcae_ctr_writer_has_path(const bcae_ctr_writer *w, const char *relpath)
{
    return w && relpath && bcae_pathset_has(w->paths, relpath);
}

void bcae_ctr_writer_stats(const bcae_ctr_writer *w, bcae_ctr_stats *st)
{
    if (!st) return;
    memset(st, 0, sizeof *st);
    if (!w) return;
    *st = w->st;
    st->file_bytes += BCAE_CTR_END_BYTES;
}

/* ------------------------------------------------------------------ */
/* Shared: one file from every rank of a communicator                  */
/* ------------------------------------------------------------------ */

bcae_status bcae_ctr_writer_open_shared(const char *path, const bcae_ctr_info *info,
                                        const bcae_comm *comm, bcae_ctr_writer **out,
                                        bcae_error *err)
{
    if (!path || !info || !out)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "bcae_ctr_writer_open_shared: NULL argument");
    *out = NULL;
    comm = comm_or_serial(comm);
    bcae_ctr_writer *w = NULL;
    /* Every rank checks the same header, so they agree without a word. */
    bcae_status st = check_info(info, path, err);
    if (st) return st;
    st = writer_alloc(path, info, &w, err);
    st = comm_agree(comm, st, path, err);
    if (!st) st = bcae_shared_file_open(path, comm, &w->shared, err);
    if (st) {
        if (w) writer_free(w);
        return st;
    }
    if (comm->rank == 0) {
        /* The header leads rank 0's part of the first flush. */
        unsigned char h[BCAE_CTR_HEADER_FIXED + BCAE_CTR_ARCH_MAX + 4];
        size_t n = bcae_ctr_encode_header(&w->info, h);
        if ((st = mem_put(w, h, n, err))) {
            bcae_ctr_writer_abort(w);
            return st;
        }
    }
    *out = w;
    return BCAE_OK;
}

bcae_status bcae_ctr_writer_flush(bcae_ctr_writer *w, bcae_error *err)
{
    if (!w) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_ctr_writer_flush: NULL");
    if (!w->shared) return BCAE_OK;
    if (w->failed) {
        bcae_shared_file_abort(w->shared);
        w->shared = NULL;
        return bcae_fail(err, BCAE_ERR_IO, "%s: an earlier write failed", w->path);
    }
    /* The whole file's counts ride on the exchange of lengths: this
     * flush's records and record bytes summed over the ranks. */
    const uint64_t tag[3] = {w->st_local.new_records - w->st_flushed.new_records,
                             w->st_local.new_orig_bytes - w->st_flushed.new_orig_bytes,
                             w->st_local.new_bytes - w->st_flushed.new_bytes};
    uint64_t sum[3];
    bcae_status st = shared_file_write_tagged(w->shared, w->mem, w->mem_len, tag, sum, err);
    if (st) {
        w->failed = 1;
        return st;
    }
    w->mem_len = 0;
    w->st_flushed = w->st_local;
    w->st.records += sum[0];
    w->st.new_records += sum[0];
    w->st.new_orig_bytes += sum[1];
    w->st.new_bytes += sum[2];
    w->st.file_bytes = bcae_shared_file_size(w->shared);
    return BCAE_OK;
}

static bcae_status shared_finish(bcae_ctr_writer *w, bcae_error *err)
{
    bcae_status st = bcae_ctr_writer_flush(w, err);
    if (!st) {
        /* Rank 0 writes the end marker; the others add nothing. */
        unsigned char e[BCAE_CTR_END_BYTES];
        bcae_ctr_encode_end(e, w->st.records);
        int r0 = shared_file_comm(w->shared)->rank == 0;
        st = bcae_shared_file_write(w->shared, e, r0 ? sizeof e : 0, err);
    }
    if (!st) {
        st = bcae_shared_file_commit(w->shared, err);
        w->shared = NULL;
    } else if (w->shared) {
        /* flush failed together with the others: the file is already gone */
        bcae_shared_file_abort(w->shared);
        w->shared = NULL;
    }
    writer_free(w);
    return st;
}

/* ------------------------------------------------------------------ */
/* Appending in place                                                  */
/* ------------------------------------------------------------------ */

/* Puts the file back as append_open found it (or repaired it). */
static void append_restore(bcae_ctr_writer *w)
{
    if (w->touched) {
        int fd = fileno(w->fp);
        /* Best effort: if the disk refuses even this, the file is as a
         * crash would leave it, which readers report as truncated. */
        if (fseeko(w->fp, (off_t)w->end_off, SEEK_SET) == 0 &&
            fwrite(w->old_end, 1, BCAE_CTR_END_BYTES, w->fp) == BCAE_CTR_END_BYTES &&
            fflush(w->fp) == 0 && ftruncate(fd, (off_t)(w->end_off + BCAE_CTR_END_BYTES)) == 0)
            fsync(fd);
    }
    fclose(w->fp); /* releases the lock */
    w->fp = NULL;
}

/* Opens an existing container read-write, refusing anything but a regular
 * file, and takes an exclusive fcntl lock on it (a second appender or
 * repairer is refused, not interleaved). */
static bcae_status open_locked(const char *path, FILE **out, uint64_t *size, bcae_error *err)
{
    *out = NULL;
    int fd;
    bcae_status st = bcae_open_regular_fd(path, 1, &fd, size, err);
    if (st) return st;
    struct flock lk;
    memset(&lk, 0, sizeof lk);
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET; /* l_start = l_len = 0: the whole file */
    if (fcntl(fd, F_SETLK, &lk) != 0) {
        st = bcae_fail(err, BCAE_ERR_IO, "%s: cannot lock it (another process writing it?): %s",
                       path, strerror(errno));
        close(fd);
        return st;
    }
    FILE *fp = fdopen(fd, "r+b");
    if (!fp) {
        st = bcae_fail(err, BCAE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    *out = fp;
    return BCAE_OK;
}

/* Walks every record of a file of `size` bytes with every check. If it is
 * complete, sets *complete. If the only problem is that the data stop
 * early (a torn write), cuts the file after the last intact record and
 * writes an end marker there: first the cut, then the marker, then fsync,
 * so that a crash at any point leaves a file that is either still torn
 * (and repairable again) or repaired, never one with an end marker
 * followed by debris. Any other damage is refused. Sets *count (records
 * kept) and *end_off (where the end marker starts). */
static bcae_status repair_tail(FILE *fp, const char *path, uint64_t size, uint64_t *count,
                               uint64_t *end_off, int *complete, bcae_error *err)
{
    *complete = 0;
    bcae_ctr_reader *r = NULL;
    if (fseeko(fp, 0, SEEK_SET) != 0)
        return bcae_fail(err, BCAE_ERR_IO, "%s: seek failed: %s", path, strerror(errno));
    bcae_status st = bcae_ctr_reader_on_stream(fp, path, size, &r, err);
    if (st) return st;
    bcae_ctr_record *rec = malloc(sizeof *rec);
    int end = 0;
    if (!rec) st = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    while (st == BCAE_OK && !end) st = bcae_ctr_reader_next(r, rec, NULL, &end, err);
    free(rec);
    uint64_t keep = bcae_ctr_reader_offset(r);
    *count = bcae_ctr_reader_records(r);
    int truncated = bcae_ctr_reader_truncated(r);
    bcae_ctr_reader_close(r);
    if (st == BCAE_OK) {
        *complete = 1;
        *end_off = keep - BCAE_CTR_END_BYTES;
        return BCAE_OK;
    }
    if (!truncated) return st; /* corrupt, not cut short: refuse */
    unsigned char e[BCAE_CTR_END_BYTES];
    bcae_ctr_encode_end(e, *count);
    int fd = fileno(fp);
    if (fflush(fp) != 0 || ftruncate(fd, (off_t)keep) != 0 ||
        fseeko(fp, (off_t)keep, SEEK_SET) != 0 || fwrite(e, 1, sizeof e, fp) != sizeof e ||
        fflush(fp) != 0 || fsync(fd) != 0)
        return bcae_fail(err, BCAE_ERR_IO, "%s: repair failed: %s", path, strerror(errno));
    *end_off = keep;
    return BCAE_OK;
}

bcae_status bcae_ctr_repair(const char *path, bcae_ctr_repair_report *rep, bcae_error *err)
{
    if (!path || !rep)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_ctr_repair: NULL argument");
    memset(rep, 0, sizeof *rep);
    FILE *fp;
    uint64_t size;
    bcae_status st = open_locked(path, &fp, &size, err);
    if (st) return st;
    uint64_t count = 0, end_off = 0;
    int complete = 0;
    st = repair_tail(fp, path, size, &count, &end_off, &complete, err);
    if (fclose(fp) != 0 && st == BCAE_OK)
        st = bcae_fail(err, BCAE_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (st) return st;
    rep->records = count;
    rep->was_complete = complete;
    rep->file_bytes = end_off + BCAE_CTR_END_BYTES;
    rep->dropped_bytes = complete ? 0 : size - end_off;
    return BCAE_OK;
}

/* Collects the paths of the file's records (a scan that seeks over the
 * payloads: appending stays cheap for a large file) so that appending
 * refuses a path the file already has. The file ends at end_off + 16. */
static bcae_status scan_paths(bcae_ctr_writer *w, bcae_error *err)
{
    if (fseeko(w->fp, 0, SEEK_SET) != 0)
        return bcae_fail(err, BCAE_ERR_IO, "%s: seek failed: %s", w->path, strerror(errno));
    bcae_ctr_reader *r = NULL;
    bcae_status st =
        bcae_ctr_reader_on_stream(w->fp, w->path, w->end_off + BCAE_CTR_END_BYTES, &r, err);
    if (st) return st;
    bcae_ctr_reader_skip_payloads(r);
    bcae_ctr_record *rec = malloc(sizeof *rec);
    if (!rec) st = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", w->path);
    for (int end = 0; st == BCAE_OK && !end;) {
        st = bcae_ctr_reader_next(r, rec, NULL, &end, err);
        /* A file that already repeats a path (an older writer) is left as
         * it is; only new repeats are refused. */
        if (st == BCAE_OK && !end && bcae_pathset_add(w->paths, rec->path) < 0)
            st = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", w->path);
    }
    free(rec);
    bcae_ctr_reader_close(r);
    return st;
}

bcae_status bcae_ctr_append_open(const char *path, const bcae_ctr_info *model, int flags,
                                 bcae_ctr_writer **out, bcae_error *err)
{
    if (!path || !model || !out)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_ctr_append_open: NULL argument");
    *out = NULL;
    bcae_status st = check_info(model, path, err);
    if (st) return st;
    FILE *fp;
    uint64_t size;
    if ((st = open_locked(path, &fp, &size, err))) return st;
    bcae_ctr_writer *w;
    if ((st = writer_alloc(path, model, &w, err))) {
        fclose(fp);
        return st;
    }
    w->fp = fp;
    w->appending = 1;
    /* The header, through the reader: same checks, same messages. */
    bcae_ctr_reader *r = NULL;
    st = bcae_ctr_reader_on_stream(fp, path, size, &r, err);
    uint64_t header_end = bcae_ctr_reader_offset(r);
    if (st == BCAE_OK) st = bcae_ctr_check_model(bcae_ctr_reader_info(r), model, path, err);
    bcae_ctr_reader_close(r);
    uint64_t count = 0;
    int have_end = 0;
    if (st == BCAE_OK && size >= header_end + BCAE_CTR_END_BYTES) {
        have_end = fseeko(fp, (off_t)(size - BCAE_CTR_END_BYTES), SEEK_SET) == 0 &&
                   fread(w->old_end, 1, BCAE_CTR_END_BYTES, fp) == BCAE_CTR_END_BYTES &&
                   bcae_ctr_decode_end(w->old_end, &count);
        w->end_off = size - BCAE_CTR_END_BYTES;
    }
    if (st == BCAE_OK && !have_end) {
        if (flags & BCAE_CTR_APPEND_REPAIR) {
            int complete;
            st = repair_tail(fp, path, size, &count, &w->end_off, &complete, err);
            if (st == BCAE_OK && !complete) w->st.repaired_bytes = size - w->end_off;
            /* The repaired file ends with this end marker: abort restores it. */
            if (st == BCAE_OK) bcae_ctr_encode_end(w->old_end, count);
        } else {
            st = bcae_fail(err, BCAE_ERR_FORMAT,
                           "%s: does not end with a valid end marker (an interrupted write or "
                           "append, or a damaged file); not appending ('bcae repair' drops an "
                           "incomplete tail)",
                           path);
        }
    }
    if (st == BCAE_OK) st = scan_paths(w, err);
    if (st == BCAE_OK && fseeko(fp, (off_t)w->end_off, SEEK_SET) != 0)
        st = bcae_fail(err, BCAE_ERR_IO, "%s: seek failed: %s", path, strerror(errno));
    if (st) {
        fclose(fp);
        writer_free(w);
        return st;
    }
    w->st.records = count;
    w->st.file_bytes = w->end_off;
    *out = w;
    return BCAE_OK;
}

bcae_status bcae_ctr_writer_finish(bcae_ctr_writer *w, bcae_error *err)
{
    if (!w) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_ctr_writer_finish: NULL");
    if (w->shared) return shared_finish(w, err);
    if (w->failed) {
        bcae_status st = bcae_fail(err, BCAE_ERR_IO,
                                   "%s: an earlier write failed; nothing was written", w->path);
        bcae_ctr_writer_abort(w);
        return st;
    }
    unsigned char e[BCAE_CTR_END_BYTES];
    bcae_ctr_encode_end(e, w->st.records);
    bcae_status st = BCAE_OK;
    if (!w->appending) {
        if (fwrite(e, 1, sizeof e, w->fp) != sizeof e) {
            st = bcae_fail(err, BCAE_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
            bcae_atomic_abort(&w->af);
        } else {
            st = bcae_atomic_commit(&w->af, err); /* removes the temporary file on failure */
        }
        writer_free(w);
        return st;
    }
    w->touched = 1;
    int fd = fileno(w->fp);
    uint64_t size = w->st.file_bytes + sizeof e;
    if (fwrite(e, 1, sizeof e, w->fp) != sizeof e || fflush(w->fp) != 0 ||
        ftruncate(fd, (off_t)size) != 0 || fsync(fd) != 0) {
        st = bcae_fail(err, BCAE_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
        append_restore(w);
    } else if (fclose(w->fp) != 0) {
        st = bcae_fail(err, BCAE_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
    }
    writer_free(w);
    return st;
}

void bcae_ctr_writer_abort(bcae_ctr_writer *w)
{
    if (!w) return;
    if (w->shared)
        bcae_shared_file_abort(w->shared);
    else if (w->appending)
        append_restore(w);
    else
        bcae_atomic_abort(&w->af);
    writer_free(w);
}
