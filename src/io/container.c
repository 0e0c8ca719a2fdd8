/*
 * The .bcae container: the reader, and the checks and layouts it shares
 * with the writer (container_write.c). docs/FORMAT.md is the byte-exact
 * specification; "the checks in order" there is read_header and
 * bcae_ctr_reader_next here.
 *
 * The reader treats every byte as hostile, as src/io/npy.c does: lengths
 * are checked against fixed caps and against the code size the header
 * declares before anything is allocated or read; each record's 40-byte
 * header has its own CRC, checked before its lengths are trusted, so a
 * flipped length bit is reported as such rather than as a huge read; the
 * payload is decompressed only after the record CRC matches.
 */
#include "io/container.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zstd.h>

#include "core/crc32c.h"
#include "core/error.h"
#include "io/container_internal.h"
#include "io/fileutil.h"

/* ------------------------------------------------------------------ */
/* Shapes, architecture strings, paths                                 */
/* ------------------------------------------------------------------ */

size_t bcae_ctr_code_count(const bcae_ctr_info *info)
{
    if (!info || info->code_ndim < 1 || info->code_ndim > BCAE_CTR_MAX_NDIM) return 0;
    size_t n = 1;
    for (int d = 0; d < info->code_ndim; d++) {
        size_t k = info->code_shape[d];
        if (k == 0 || k > UINT32_MAX || n > BCAE_CTR_MAX_CODE_BYTES / 2 / k) return 0;
        n *= k;
    }
    return n;
}

static const char *arch_problem(const char *s, size_t n)
{
    if (n == 0) return "empty";
    if (n > BCAE_CTR_ARCH_MAX) return "longer than 64 bytes";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return "not printable ASCII";
    return NULL;
}

/* Why a path is not a valid record path, or NULL. Strict UTF-8 (no
 * overlong forms, surrogates or values past U+10FFFF), because readers in
 * other languages decode it; no C0/C1 control characters, because `bcae
 * inspect` prints it to terminals; relative without "." or ".." so that
 * extracting a record can never write outside the output folder. */
static const char *path_problem(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    if (n == 0) return "empty";
    if (n > BCAE_CTR_PATH_MAX) return "longer than 4096 bytes";
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == 0) return "contains a NUL byte";
        if (c < 0x20 || c == 0x7f) return "contains a control character";
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (len == 0 || i + len > n) return "is not valid UTF-8";
        unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c == 0xe0) lo = 0xa0;      /* overlong */
        if (c == 0xed) hi = 0x9f;      /* UTF-16 surrogates */
        if (c == 0xf0) lo = 0x90;      /* overlong */
        if (c == 0xf4) hi = 0x8f;      /* past U+10FFFF */
        if (s[i + 1] < lo || s[i + 1] > hi) return "is not valid UTF-8";
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf) return "is not valid UTF-8";
        if (c == 0xc2 && s[i + 1] <= 0x9f) return "contains a control character"; /* C1 */
        i += len;
    }
    if (s[0] == '/') return "is absolute";
    for (size_t a = 0; a <= n;) {
        size_t b = a;
        while (b < n && s[b] != '/') b++;
        if (b == a) return "has an empty component ('//' or a trailing '/')";
        if (b - a == 1 && s[a] == '.') return "has a '.' component";
        if (b - a == 2 && s[a] == '.' && s[a + 1] == '.') return "has a '..' component";
        a = b + 1;
    }
    return NULL;
}

/* A path for a message: printable ASCII as is, anything else (and quotes
 * and backslashes) as \xNN, at most ~100 bytes of it. */
static void quote_path(char *out, size_t cap, const char *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (o + 8 >= cap || o > 100) {
            memcpy(out + o, "...", 4);
            return;
        }
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    out[o] = '\0';
}

bcae_status bcae_ctr_check_path(const char *path, size_t len, bcae_error *err)
{
    if (!path) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "record path is NULL");
    const char *why = path_problem(path, len);
    if (!why) return BCAE_OK;
    char q[128];
    quote_path(q, sizeof q, path, len);
    return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "invalid record path \"%s\": %s", q, why);
}

static int all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

void bcae_ctr_sparse_info(bcae_ctr_info *info)
{
    memset(info, 0, sizeof *info);
    info->version = BCAE_CTR_VERSION_SPARSE;
    snprintf(info->arch, sizeof info->arch, "%s", BCAE_CTR_SPARSE_ARCH);
    info->code_dtype = BCAE_CTR_DTYPE_SPARSE;
}

/* The version a writer writes: the lowest that describes the file. */
unsigned bcae_ctr_version_for(const bcae_ctr_info *info)
{
    return info->code_dtype == BCAE_CTR_DTYPE_SPARSE ? BCAE_CTR_VERSION_SPARSE
                                                      : BCAE_CTR_VERSION_CODES;
}

/* Checks a header's fields (reader and writer alike); "" or a reason. */
const char *bcae_ctr_info_problem(const bcae_ctr_info *info)
{
    if (info->code_dtype == BCAE_CTR_DTYPE_SPARSE) {
        /* No model and no fixed code: each record holds its own stream. */
        if (info->code_ndim != 0) return "a sparse file has no code shape (ndim must be 0)";
        for (int d = 0; d < BCAE_CTR_MAX_NDIM; d++)
            if (info->code_shape[d]) return "a sparse file has no code shape (dimensions must be 0)";
        if (!all_zero(info->fingerprint, 32))
            return "a sparse file names no model (its fingerprint must be zero)";
        return arch_problem(info->arch, strnlen(info->arch, sizeof info->arch));
    }
    if (info->code_dtype != BCAE_CTR_DTYPE_F16) return "code dtype is not float16";
    if (info->code_ndim < 1 || info->code_ndim > BCAE_CTR_MAX_NDIM)
        return "code must have 1 to 4 dimensions";
    for (int d = 0; d < info->code_ndim; d++)
        if (info->code_shape[d] == 0 || info->code_shape[d] > UINT32_MAX)
            return "code dimension is 0 or over 2^32 - 1";
    if (bcae_ctr_code_count(info) == 0) return "code is larger than 64 MiB";
    return arch_problem(info->arch, strnlen(info->arch, sizeof info->arch));
}

static void hex32(const uint8_t *d, char out[65])
{
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void shape_text(char *out, size_t cap, const size_t *shape, int ndim)
{
    size_t o = (size_t)snprintf(out, cap, "(");
    for (int d = 0; d < ndim && o < cap; d++)
        o += (size_t)snprintf(out + o, cap - o, d ? ", %zu" : "%zu", shape[d]);
    if (o < cap) snprintf(out + o, cap - o, ")");
}

bcae_status bcae_ctr_check_model(const bcae_ctr_info *file, const bcae_ctr_info *model,
                                 const char *name, bcae_error *err)
{
    if (!file || !model)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_ctr_check_model: NULL argument");
    name = name ? name : "<container>";
    if (memcmp(file->fingerprint, model->fingerprint, 32) != 0) {
        char a[65], b[65];
        hex32(file->fingerprint, a);
        hex32(model->fingerprint, b);
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "%s: written by another model (fingerprint %s, arch %s), not by this "
                         "one (fingerprint %s, arch %s)",
                         name, a, file->arch, b, model->arch);
    }
    if (strcmp(file->arch, model->arch) != 0)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "%s: architecture '%s' differs from the model's '%s'", name, file->arch,
                         model->arch);
    int same = file->code_dtype == model->code_dtype && file->code_ndim == model->code_ndim;
    for (int d = 0; same && d < file->code_ndim && d < BCAE_CTR_MAX_NDIM; d++)
        same = file->code_shape[d] == model->code_shape[d];
    if (!same) {
        char a[96], b[96];
        shape_text(a, sizeof a, file->code_shape, file->code_ndim);
        shape_text(b, sizeof b, model->code_shape, model->code_ndim);
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "%s: code shape %s differs from the model's %s", name, a, b);
    }
    return BCAE_OK;
}

/* ------------------------------------------------------------------ */
/* Byte layouts                                                        */
/* ------------------------------------------------------------------ */

/* File header: 64 fixed bytes, the arch string, CRC-32C of all before it. */
size_t bcae_ctr_encode_header(const bcae_ctr_info *info, unsigned char *b)
{
    size_t alen = strlen(info->arch);
    memset(b, 0, BCAE_CTR_HEADER_FIXED);
    memcpy(b, BCAE_CTR_MAGIC, 4);
    put16(b + 4, bcae_ctr_version_for(info));
    put16(b + 6, 0); /* flags */
    memcpy(b + 8, info->fingerprint, 32);
    b[40] = (unsigned char)info->code_dtype;
    b[41] = (unsigned char)info->code_ndim;
    b[42] = (unsigned char)alen;
    for (int d = 0; d < info->code_ndim; d++) put32(b + 44 + 4 * d, (uint32_t)info->code_shape[d]);
    memcpy(b + BCAE_CTR_HEADER_FIXED, info->arch, alen);
    size_t n = BCAE_CTR_HEADER_FIXED + alen;
    put32(b + n, bcae_crc32c(b, n));
    return n + 4;
}

void bcae_ctr_encode_end(unsigned char b[BCAE_CTR_END_BYTES], uint64_t records)
{
    memcpy(b, END_TAG, 4);
    put64(b + 4, records);
    put32(b + 12, bcae_crc32c(b, 12));
}

/* Checks a 16-byte end marker; returns 1 and its count if it is one. */
int bcae_ctr_decode_end(const unsigned char b[BCAE_CTR_END_BYTES], uint64_t *records)
{
    if (memcmp(b, END_TAG, 4) != 0 || get32(b + 12) != bcae_crc32c(b, 12)) return 0;
    *records = get64(b + 4);
    return 1;
}

int bcae_ctr_peek_count(const char *path, uint64_t *records)
{
    FILE *fp;
    size_t size;
    if (bcae_open_regular(path, &fp, &size, NULL)) return 0;
    unsigned char b[BCAE_CTR_END_BYTES];
    int ok = fseeko(fp, -(off_t)BCAE_CTR_END_BYTES, SEEK_END) == 0 &&
             fread(b, 1, sizeof b, fp) == sizeof b && bcae_ctr_decode_end(b, records);
    fclose(fp);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Reader                                                              */
/* ------------------------------------------------------------------ */

struct bcae_ctr_reader {
    char *name;
    FILE *fp; /* NULL when reading memory */
    int own_fp;
    const unsigned char *mem;
    size_t mem_len, mem_pos;
    int have_size; /* the total size is known (regular file or memory) */
    uint64_t size;
    uint64_t pos;    /* bytes consumed */
    uint64_t offset; /* end of the last verified record (or header) */
    bcae_ctr_info info;
    size_t raw_bytes;
    uint64_t index; /* of the next record */
    unsigned char *payload; /* grows to the largest payload seen */
    size_t payload_cap;
    unsigned char *decoded; /* zstd output when the caller wants no code */
    int have_payload;       /* payload holds the last record's (verified) */
    size_t payload_len;
    ZSTD_DCtx *dctx;
    int done;
    int failed;
    int truncated; /* the failure was the data ending early */
    int skip_payloads; /* path scan: seek over payloads, unverified */
    bcae_error failure;
    char where[160]; /* "record 3 (\"a/b.npy\")" for messages */
};

/* Reads up to n bytes; returns how many (fewer only at the end or on a
 * read error, which sets *ioerr). */
static size_t src_read(bcae_ctr_reader *r, void *dst, size_t n, int *ioerr)
{
    size_t got;
    if (r->fp) {
        got = n ? fread(dst, 1, n, r->fp) : 0;
        if (got < n && ferror(r->fp)) *ioerr = 1;
    } else {
        size_t left = r->mem_len - r->mem_pos;
        got = n < left ? n : left;
        if (got) memcpy(dst, r->mem + r->mem_pos, got);
        r->mem_pos += got;
    }
    r->pos += got;
    return got;
}

/* Records the reader's final error ("NAME: [WHERE: ]what") and returns it. */
static bcae_status rfail(bcae_ctr_reader *r, bcae_error *err, bcae_status st, int truncated,
                         const char *fmt, ...) BCAE_PRINTF(5, 6);

static bcae_status rfail(bcae_ctr_reader *r, bcae_error *err, bcae_status st, int truncated,
                         const char *fmt, ...)
{
    char what[BCAE_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (r->where[0])
        bcae_fail(&r->failure, st, "%s: %s: %s", r->name, r->where, what);
    else
        bcae_fail(&r->failure, st, "%s: %s", r->name, what);
    r->failed = 1;
    r->truncated = truncated;
    if (err) *err = r->failure;
    return st;
}

/* Reads exactly n bytes of `part` of a `unit` (record, file header, end
 * marker) that starts at unit_start, or fails as truncated (or I/O). */
static bcae_status read_part(bcae_ctr_reader *r, void *dst, size_t n, const char *unit,
                             const char *part, uint64_t unit_start, bcae_error *err)
{
    int ioerr = 0;
    size_t got = src_read(r, dst, n, &ioerr);
    if (ioerr)
        return rfail(r, err, BCAE_ERR_IO, 0, "read failed in the %s's %s: %s", unit, part,
                     strerror(errno));
    if (got < n)
        return rfail(r, err, BCAE_ERR_FORMAT, 1,
                     "truncated: the file ends %llu bytes into the %s, %zu bytes short of the "
                     "end of its %s",
                     (unsigned long long)(r->pos - unit_start), unit, n - got, part);
    return BCAE_OK;
}

static bcae_status read_header(bcae_ctr_reader *r, bcae_error *err)
{
    unsigned char b[BCAE_CTR_HEADER_FIXED + 255 + 4];
    int ioerr = 0;
    size_t got = src_read(r, b, 8, &ioerr);
    if (ioerr) return rfail(r, err, BCAE_ERR_IO, 0, "read failed: %s", strerror(errno));
    if (got == 0) return rfail(r, err, BCAE_ERR_FORMAT, 1, "empty file, not a .bcae container");
    if (memcmp(b, BCAE_CTR_MAGIC, got < 4 ? got : 4) != 0)
        return rfail(r, err, BCAE_ERR_FORMAT, 0, "not a .bcae container (bad magic)");
    if (got < 8)
        return rfail(r, err, BCAE_ERR_FORMAT, 1,
                     "truncated: the file ends %zu bytes into the file header", got);
    /* The version first: a later version may lay out the rest differently. */
    unsigned version = get16(b + 4);
    if (version < BCAE_CTR_VERSION_CODES || version > BCAE_CTR_VERSION)
        return rfail(r, err, BCAE_ERR_UNSUPPORTED, 0,
                     "unsupported .bcae format version %u (this reader knows versions 1 and %d)",
                     version, BCAE_CTR_VERSION);
    bcae_status st =
        read_part(r, b + 8, BCAE_CTR_HEADER_FIXED - 8, "file header", "fixed fields", 0, err);
    if (st) return st;
    size_t alen = b[42];
    st = read_part(r, b + BCAE_CTR_HEADER_FIXED, alen + 4, "file header", "arch string and CRC", 0,
                   err);
    if (st) return st;
    size_t n = BCAE_CTR_HEADER_FIXED + alen;
    uint32_t stored = get32(b + n), crc = bcae_crc32c(b, n);
    if (stored != crc)
        return rfail(r, err, BCAE_ERR_FORMAT, 0,
                     "file header CRC mismatch (stored 0x%08x, computed 0x%08x)",
                     (unsigned)stored, (unsigned)crc);
    /* The CRC matched: the fields are what a writer put there. */
    if (get16(b + 6) != 0)
        return rfail(r, err, BCAE_ERR_UNSUPPORTED, 0, "unknown header flags 0x%04x",
                     get16(b + 6));
    if (b[43] != 0)
        return rfail(r, err, BCAE_ERR_FORMAT, 0, "reserved header byte 43 is %u, not 0", b[43]);
    if (get32(b + 60) != 0)
        return rfail(r, err, BCAE_ERR_FORMAT, 0, "reserved header bytes 60..63 are 0x%08x, not 0",
                     (unsigned)get32(b + 60));
    bcae_ctr_info *info = &r->info;
    memset(info, 0, sizeof *info);
    info->version = version;
    memcpy(info->fingerprint, b + 8, 32);
    info->code_dtype = b[40];
    info->code_ndim = b[41];
    if (info->code_dtype == BCAE_CTR_DTYPE_SPARSE) {
        /* Version 2's kind: streams of the sparse codec, no model. */
        if (version < BCAE_CTR_VERSION_SPARSE)
            return rfail(r, err, BCAE_ERR_FORMAT, 0,
                         "code dtype %d (sparse streams) in a version-%u file (it needs version %d)",
                         info->code_dtype, version, BCAE_CTR_VERSION_SPARSE);
        for (int d = 0; d < BCAE_CTR_MAX_NDIM; d++)
            info->code_shape[d] = get32(b + 44 + 4 * d);
        memcpy(info->arch, b + BCAE_CTR_HEADER_FIXED, alen < sizeof info->arch ? alen : 0);
        const char *why = arch_problem((const char *)b + BCAE_CTR_HEADER_FIXED, alen);
        if (!why) why = bcae_ctr_info_problem(info);
        if (why) return rfail(r, err, BCAE_ERR_FORMAT, 0, "bad sparse-file header: %s", why);
        r->raw_bytes = 0;
        r->offset = r->pos;
        return BCAE_OK;
    }
    if (info->code_ndim < 1 || info->code_ndim > BCAE_CTR_MAX_NDIM)
        return rfail(r, err, BCAE_ERR_FORMAT, 0, "code has %d dimensions (1 to 4 allowed)",
                     info->code_ndim);
    for (int d = 0; d < BCAE_CTR_MAX_NDIM; d++) {
        uint32_t k = get32(b + 44 + 4 * d);
        if (d < info->code_ndim) info->code_shape[d] = k;
        else if (k != 0)
            return rfail(r, err, BCAE_ERR_FORMAT, 0, "unused code dimension %d is %u, not 0", d,
                         (unsigned)k);
    }
    memcpy(info->arch, b + BCAE_CTR_HEADER_FIXED, alen < sizeof info->arch ? alen : 0);
    const char *why = arch_problem((const char *)b + BCAE_CTR_HEADER_FIXED, alen);
    if (why) return rfail(r, err, BCAE_ERR_FORMAT, 0, "architecture string is %s", why);
    if (info->code_dtype != BCAE_CTR_DTYPE_F16)
        return rfail(r, err, BCAE_ERR_FORMAT, 0, "code dtype %d is not float16 (%d)",
                     info->code_dtype, BCAE_CTR_DTYPE_F16);
    for (int d = 0; d < info->code_ndim; d++)
        if (info->code_shape[d] == 0)
            return rfail(r, err, BCAE_ERR_FORMAT, 0, "code dimension %d is 0", d);
    size_t count = bcae_ctr_code_count(info);
    if (count == 0)
        return rfail(r, err, BCAE_ERR_FORMAT, 0,
                     "absurd code size (over the 64 MiB a code may have)");
    r->raw_bytes = 2 * count;
    r->offset = r->pos;
    return BCAE_OK;
}

static bcae_status reader_start(bcae_ctr_reader *r, const char *name, bcae_ctr_reader **out,
                                bcae_error *err)
{
    size_t n = strlen(name) + 1;
    r->name = malloc(n);
    if (!r->name) {
        bcae_ctr_reader_close(r);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    }
    memcpy(r->name, name, n);
    bcae_status st = read_header(r, err);
    if (st) {
        bcae_ctr_reader_close(r);
        return st;
    }
    *out = r;
    return BCAE_OK;
}

bcae_status bcae_ctr_reader_open(const char *path, bcae_ctr_reader **out, bcae_error *err)
{
    if (!path || !out)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_ctr_reader_open: NULL argument");
    *out = NULL;
    FILE *fp;
    size_t size;
    bcae_status st = bcae_open_regular(path, &fp, &size, err);
    if (st) return st;
    bcae_ctr_reader *r = calloc(1, sizeof *r);
    if (!r) {
        fclose(fp);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    r->fp = fp;
    r->own_fp = 1;
    r->have_size = 1;
    r->size = size;
    return reader_start(r, path, out, err);
}

bcae_status bcae_ctr_reader_open_mem(const void *buf, size_t len, const char *name,
                                     bcae_ctr_reader **out, bcae_error *err)
{
    name = name ? name : "<buffer>";
    if (!out || (!buf && len))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: no buffer", name);
    *out = NULL;
    bcae_ctr_reader *r = calloc(1, sizeof *r);
    if (!r) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    r->mem = buf;
    r->mem_len = len;
    r->have_size = 1;
    r->size = len;
    return reader_start(r, name, out, err);
}

bcae_status bcae_ctr_reader_on_stream(FILE *fp, const char *name, uint64_t size,
                                      bcae_ctr_reader **out, bcae_error *err)
{
    bcae_ctr_reader *r = calloc(1, sizeof *r);
    if (!r) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    r->fp = fp;
    r->have_size = 1;
    r->size = size;
    return reader_start(r, name, out, err);
}

const bcae_ctr_info *bcae_ctr_reader_info(const bcae_ctr_reader *r)
{
    return r ? &r->info : NULL;
}

uint64_t bcae_ctr_reader_offset(const bcae_ctr_reader *r)
{
    return r ? r->offset : 0;
}

uint64_t bcae_ctr_reader_records(const bcae_ctr_reader *r)
{
    return r ? r->index : 0;
}

const uint8_t *bcae_ctr_reader_payload(const bcae_ctr_reader *r, size_t *len)
{
    if (len) *len = 0;
    if (!r || !r->have_payload || r->failed || r->done) return NULL;
    if (len) *len = r->payload_len;
    return r->payload;
}

void bcae_ctr_reader_skip_payloads(bcae_ctr_reader *r)
{
    if (r) r->skip_payloads = 1;
}

int bcae_ctr_reader_truncated(const bcae_ctr_reader *r)
{
    return r && r->failed && r->truncated;
}

void bcae_ctr_reader_close(bcae_ctr_reader *r)
{
    if (!r) return;
    if (r->fp && r->own_fp) fclose(r->fp);
    ZSTD_freeDCtx(r->dctx);
    free(r->payload);
    free(r->decoded);
    free(r->name);
    free(r);
}

/* "after record N-1" for a file that stops where the next thing starts. */
static bcae_status missing_end(bcae_ctr_reader *r, bcae_error *err)
{
    if (r->index == 0)
        return rfail(r, err, BCAE_ERR_FORMAT, 1,
                     "truncated: the file ends after its header, with no records and no end "
                     "marker");
    return rfail(r, err, BCAE_ERR_FORMAT, 1,
                 "truncated: the end marker is missing after record %llu (the first %llu "
                 "records, %llu bytes, are intact)",
                 (unsigned long long)(r->index - 1), (unsigned long long)r->index,
                 (unsigned long long)r->offset);
}

static bcae_status read_end(bcae_ctr_reader *r, const unsigned char *tag, int *end,
                            bcae_error *err)
{
    unsigned char b[BCAE_CTR_END_BYTES];
    uint64_t start = r->pos - 4;
    memcpy(b, tag, 4);
    snprintf(r->where, sizeof r->where, "end marker");
    bcae_status st =
        read_part(r, b + 4, BCAE_CTR_END_BYTES - 4, "end marker", "count and CRC", start, err);
    if (st) return st;
    uint32_t stored = get32(b + 12), crc = bcae_crc32c(b, 12);
    if (stored != crc)
        return rfail(r, err, BCAE_ERR_FORMAT, 0,
                     "CRC mismatch (stored 0x%08x, computed 0x%08x)", (unsigned)stored,
                     (unsigned)crc);
    uint64_t count = get64(b + 4);
    if (count != r->index)
        return rfail(r, err, BCAE_ERR_FORMAT, 0,
                     "counts %llu records but the file has %llu (records were lost or spliced)",
                     (unsigned long long)count, (unsigned long long)r->index);
    unsigned char extra[64];
    int ioerr = 0;
    size_t more = src_read(r, extra, sizeof extra, &ioerr);
    if (ioerr) return rfail(r, err, BCAE_ERR_IO, 0, "read failed: %s", strerror(errno));
    if (more)
        return rfail(r, err, BCAE_ERR_FORMAT, 0, "%s%zu bytes follow it (the file must end there)",
                     more == sizeof extra ? "at least " : "", more);
    r->offset = r->pos;
    r->where[0] = '\0';
    r->done = 1;
    *end = 1;
    return BCAE_OK;
}

/* The record's fixed header (CRC already checked): fields into rec. */
static bcae_status parse_record_header(bcae_ctr_reader *r, const unsigned char *b,
                                       bcae_ctr_record *rec, bcae_error *err)
{
    size_t plen = get16(b + 4);
    if (plen == 0 || plen > BCAE_CTR_PATH_MAX)
        return rfail(r, err, BCAE_ERR_FORMAT, 0, "path length %zu (1 to 4096 allowed)", plen);
    rec->encoding = b[6];
    int sparse = r->info.code_dtype == BCAE_CTR_DTYPE_SPARSE;
    if (sparse ? rec->encoding != BCAE_CTR_SPARSE
               : rec->encoding != BCAE_CTR_RAW && rec->encoding != BCAE_CTR_ZSTD)
        return rfail(r, err, BCAE_ERR_UNSUPPORTED, 0, "unknown payload encoding %d%s",
                     rec->encoding, sparse ? " (a sparse file's records have encoding 2)" : "");
    rec->orig_dtype = b[7];
    if (rec->orig_dtype != BCAE_CTR_DTYPE_U16)
        return rfail(r, err, BCAE_ERR_FORMAT, 0, "original dtype %d is not uint16 (%d)",
                     rec->orig_dtype, BCAE_CTR_DTYPE_U16);
    rec->orig_ndim = b[8];
    if (rec->orig_ndim < 1 || rec->orig_ndim > BCAE_CTR_MAX_NDIM)
        return rfail(r, err, BCAE_ERR_FORMAT, 0, "original array has %d dimensions (1 to 4)",
                     rec->orig_ndim);
    if (b[9] || b[10] || b[11])
        return rfail(r, err, BCAE_ERR_FORMAT, 0, "reserved bytes 9..11 are not 0");
    uint64_t count = 1;
    for (int d = 0; d < BCAE_CTR_MAX_NDIM; d++) {
        uint32_t k = get32(b + 12 + 4 * d);
        rec->orig_shape[d] = d < rec->orig_ndim ? k : 0;
        if (d >= rec->orig_ndim) {
            if (k)
                return rfail(r, err, BCAE_ERR_FORMAT, 0, "unused original dimension %d is not 0",
                             d);
            continue;
        }
        if (k == 0 || count > ORIG_MAX_COUNT / k)
            return rfail(r, err, BCAE_ERR_FORMAT, 0,
                         "absurd original shape (dimension %d is %u; 1 to 2^40 values allowed)",
                         d, (unsigned)k);
        count *= k;
    }
    size_t raw = get32(b + 28), stored = get32(b + 32);
    if (sparse) {
        /* A stream holds one wedge, stored as it is. */
        if (rec->orig_ndim != 3 || rec->orig_shape[0] != BCAE_WEDGE_AZIMUTH ||
            rec->orig_shape[1] != BCAE_WEDGE_Z || rec->orig_shape[2] != BCAE_WEDGE_LAYERS)
            return rfail(r, err, BCAE_ERR_FORMAT, 0,
                         "a sparse record's original shape must be (192, 249, 16)");
        if (stored == 0 || stored > BCAE_CTR_STREAM_MAX || raw != stored)
            return rfail(r, err, BCAE_ERR_FORMAT, 0,
                         "absurd sparse stream length %zu (raw length %zu; 1 to %zu, the two equal)",
                         stored, raw, BCAE_CTR_STREAM_MAX);
        rec->raw_bytes = raw;
        rec->stored_bytes = stored;
        rec->record_bytes = BCAE_CTR_RECORD_OVERHEAD + plen + stored;
        return BCAE_OK;
    }
    if (raw != r->raw_bytes)
        return rfail(r, err, BCAE_ERR_FORMAT, 0,
                     "raw length %zu differs from the header's code size %zu bytes", raw,
                     r->raw_bytes);
    size_t max = rec->encoding == BCAE_CTR_RAW ? raw : zstd_stored_max(raw);
    if (stored > max || stored == 0 || (rec->encoding == BCAE_CTR_RAW && stored != raw))
        return rfail(r, err, BCAE_ERR_FORMAT, 0,
                     "absurd payload length %zu (%s payload of a %zu-byte code: %s%zu)", stored,
                     rec->encoding == BCAE_CTR_RAW ? "a raw" : "a zstd", raw,
                     rec->encoding == BCAE_CTR_RAW ? "exactly " : "1 to ", max);
    rec->raw_bytes = raw;
    rec->stored_bytes = stored;
    rec->record_bytes = BCAE_CTR_RECORD_OVERHEAD + plen + stored;
    return BCAE_OK;
}

/* Decompresses a verified zstd payload into dst (raw_bytes). */
static bcae_status unzstd(bcae_ctr_reader *r, void *dst, size_t stored, bcae_error *err)
{
    /* Exactly one frame, nothing after it: what the format allows. */
    size_t fsize = ZSTD_findFrameCompressedSize(r->payload, stored);
    if (ZSTD_isError(fsize))
        return rfail(r, err, BCAE_ERR_FORMAT, 0, "bad zstd frame: %s", ZSTD_getErrorName(fsize));
    if (fsize != stored)
        return rfail(r, err, BCAE_ERR_FORMAT, 0,
                     "zstd frame is %zu bytes but the payload has %zu", fsize, stored);
    unsigned long long content = ZSTD_getFrameContentSize(r->payload, stored);
    if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != r->raw_bytes)
        return rfail(r, err, BCAE_ERR_FORMAT, 0,
                     "zstd frame declares %llu bytes, the code has %zu", content, r->raw_bytes);
    if (!r->dctx && !(r->dctx = ZSTD_createDCtx()))
        return rfail(r, err, BCAE_ERR_OUT_OF_MEMORY, 0, "out of memory (zstd context)");
    size_t got = ZSTD_decompressDCtx(r->dctx, dst, r->raw_bytes, r->payload, stored);
    if (ZSTD_isError(got))
        return rfail(r, err, BCAE_ERR_FORMAT, 0, "zstd: %s", ZSTD_getErrorName(got));
    if (got != r->raw_bytes)
        return rfail(r, err, BCAE_ERR_FORMAT, 0,
                     "zstd payload decompressed to %zu bytes, not %zu", got, r->raw_bytes);
    return BCAE_OK;
}

bcae_status bcae_ctr_reader_next(bcae_ctr_reader *r, bcae_ctr_record *rec, uint16_t *code_out,
                                 int *end, bcae_error *err)
{
    if (!r || !rec || !end)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_ctr_reader_next: NULL argument");
    *end = 0;
    if (r->failed) {
        if (err) *err = r->failure;
        return r->failure.status;
    }
    if (r->done) {
        *end = 1;
        return BCAE_OK;
    }
    if (code_out && r->info.code_dtype == BCAE_CTR_DTYPE_SPARSE)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "%s: a file of sparse streams has no codes (read its records' streams "
                         "with bcae_ctr_reader_payload)",
                         r->name);
    r->have_payload = 0;
    unsigned char b[REC_HEADER];
    uint64_t start = r->pos;
    int ioerr = 0;
    r->where[0] = '\0';
    size_t got = src_read(r, b, 4, &ioerr);
    if (ioerr) return rfail(r, err, BCAE_ERR_IO, 0, "read failed: %s", strerror(errno));
    if (got == 0) return missing_end(r, err);
    snprintf(r->where, sizeof r->where, "record %llu", (unsigned long long)r->index);
    if (got < 4)
        return rfail(r, err, BCAE_ERR_FORMAT, 1,
                     "truncated: the file ends %zu bytes into the record (or end marker)", got);
    if (!memcmp(b, END_TAG, 4)) return read_end(r, b, end, err);
    if (memcmp(b, REC_TAG, 4) != 0) {
        char q[32];
        quote_path(q, sizeof q, (const char *)b, 4);
        return rfail(r, err, BCAE_ERR_FORMAT, 0,
                     "bad record tag \"%s\" (expected \"BREC\" or the end marker \"BEND\")", q);
    }
    bcae_status st = read_part(r, b + 4, REC_HEADER - 4, "record", "header", start, err);
    if (st) return st;
    uint32_t stored_crc = get32(b + 36), crc = bcae_crc32c(b, 36);
    if (stored_crc != crc)
        return rfail(r, err, BCAE_ERR_FORMAT, 0,
                     "record header CRC mismatch (stored 0x%08x, computed 0x%08x)",
                     (unsigned)stored_crc, (unsigned)crc);
    memset(rec, 0, sizeof *rec);
    if ((st = parse_record_header(r, b, rec, err))) return st;
    size_t plen = get16(b + 4), stored = rec->stored_bytes;
    rec->index = r->index;
    rec->offset = start;
    /* A known size turns a cut-off payload into an error before any
     * allocation or read of it. */
    uint64_t need = (uint64_t)plen + stored + 4;
    if (r->have_size && r->size >= r->pos && need > r->size - r->pos)
        return rfail(r, err, BCAE_ERR_FORMAT, 1,
                     "truncated: the record needs %llu more bytes (path, payload, CRC), the file "
                     "has %llu",
                     (unsigned long long)need, (unsigned long long)(r->size - r->pos));
    if ((st = read_part(r, rec->path, plen, "record", "path", start, err))) return st;
    rec->path[plen] = '\0';
    char q[128];
    quote_path(q, sizeof q, rec->path, plen);
    snprintf(r->where, sizeof r->where, "record %llu (\"%s\")", (unsigned long long)r->index, q);
    if (r->skip_payloads) {
        /* The size check above vouched that payload and CRC are there. */
        if (r->fp ? fseeko(r->fp, (off_t)(stored + 4), SEEK_CUR) != 0 : !r->have_size)
            return rfail(r, err, BCAE_ERR_IO, 0, "seek failed: %s", strerror(errno));
        if (!r->fp) r->mem_pos += stored + 4;
        r->pos += stored + 4;
        const char *bad = path_problem(rec->path, plen);
        if (bad) return rfail(r, err, BCAE_ERR_FORMAT, 0, "invalid path: %s", bad);
        r->index++;
        r->offset = r->pos;
        r->where[0] = '\0';
        return BCAE_OK;
    }
    if (stored > r->payload_cap) {
        unsigned char *p = realloc(r->payload, stored);
        if (!p)
            return rfail(r, err, BCAE_ERR_OUT_OF_MEMORY, 0, "out of memory (%zu bytes)", stored);
        r->payload = p;
        r->payload_cap = stored;
    }
    if ((st = read_part(r, r->payload, stored, "record", "payload", start, err))) return st;
    unsigned char cb[4];
    if ((st = read_part(r, cb, 4, "record", "CRC", start, err))) return st;
    crc = bcae_crc32c_update(bcae_crc32c(b, REC_HEADER), rec->path, plen);
    crc = bcae_crc32c_update(crc, r->payload, stored);
    if (get32(cb) != crc)
        return rfail(r, err, BCAE_ERR_FORMAT, 0,
                     "CRC mismatch (stored 0x%08x, computed 0x%08x): the path or code is corrupt",
                     (unsigned)get32(cb), (unsigned)crc);
    /* Only a writer could have put a bad path under a good CRC: a hostile
     * file, not a damaged one. */
    const char *why = path_problem(rec->path, plen);
    if (why) return rfail(r, err, BCAE_ERR_FORMAT, 0, "invalid path: %s", why);
    size_t count = r->raw_bytes / 2;
    r->have_payload = 1;
    r->payload_len = stored;
    if (rec->encoding == BCAE_CTR_SPARSE) {
        /* The stream is the payload: its own decoder checks it. */
    } else if (rec->encoding == BCAE_CTR_RAW) {
        if (code_out) f16_from_le(code_out, r->payload, count);
    } else if (code_out && host_is_little_endian()) {
        if ((st = unzstd(r, code_out, stored, err))) return st;
    } else {
        if (!r->decoded && !(r->decoded = malloc(r->raw_bytes)))
            return rfail(r, err, BCAE_ERR_OUT_OF_MEMORY, 0, "out of memory (%zu bytes)",
                         r->raw_bytes);
        if ((st = unzstd(r, r->decoded, stored, err))) return st;
        if (code_out) f16_from_le(code_out, r->decoded, count);
    }
    r->index++;
    r->offset = r->pos;
    r->where[0] = '\0';
    return BCAE_OK;
}
