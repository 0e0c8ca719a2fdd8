/*
 * safetensors writer (docs/FORMATS.md, "Model files (safetensors)"): the
 * header as the reference implementation lays it out (tensors in the
 * order given, contiguous data offsets, spaces up to a multiple of 8
 * bytes), then the data little-endian, all through an atomic replace.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/sha256.h"
#include "io/fileutil.h"
#include "io/safetensors.h"
#include "io/safetensors_internal.h"

/* A growing text buffer; `failed` is sticky, so the header is built with
 * plain calls and checked once. */
typedef struct text {
    char *p;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->failed) return;
    if (n > SIZE_MAX / 2 - t->len) {
        t->failed = 1;
        return;
    }
    if (t->len + n > t->cap) {
        size_t c = t->cap ? t->cap : 256;
        while (c < t->len + n) c *= 2;
        char *q = realloc(t->p, c);
        if (!q) {
            t->failed = 1;
            return;
        }
        t->p = q;
        t->cap = c;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
}

static void puts_(text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void put_uint(text *t, size_t v)
{
    char b[32];
    int n = snprintf(b, sizeof b, "%zu", v);
    put(t, b, (size_t)n);
}

/* A JSON string: quotes and backslashes escaped, control characters as
 * \u00XX, everything else (valid UTF-8, checked by the caller) raw. */
static void put_json_string(text *t, const char *s)
{
    put(t, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(t, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            put(t, e, 6);
        } else {
            put(t, s, 1);
        }
    }
    put(t, "\"", 1);
}

static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    while (p < end) {
        size_t k = bcae_st_utf8_len(p, end);
        if (!k) return 0;
        p += k;
    }
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Refuses a set of names with a repeat (sorted copy, neighbours). */
static bcae_status check_unique(const char *path, const char *const *names, size_t n,
                                const char *what, bcae_error *err)
{
    if (n < 2) return BCAE_OK;
    const char **sorted = malloc(n * sizeof *sorted);
    if (!sorted) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(sorted[i], sorted[i - 1])) {
            char a[ST_NAME_SHOWN + 4];
            bcae_st_shown(a, sorted[i]);
            free(sorted);
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: duplicate %s '%s'", path, what,
                             a);
        }
    free(sorted);
    return BCAE_OK;
}

/* Checks the entries and computes each one's byte size into bytes[n]. */
static bcae_status check_entries(const char *path, const bcae_st_entry *e, size_t n,
                                 size_t *bytes, bcae_error *err)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        char a[ST_NAME_SHOWN + 4];
        if (!e[i].name)
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: tensor %zu has no name", path,
                             i);
        bcae_st_shown(a, e[i].name);
        if (!valid_utf8(e[i].name))
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                             "%s: tensor name '%s' is not valid UTF-8", path, a);
        if (!strcmp(e[i].name, ST_META))
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                             "%s: '%s' is reserved, not a tensor name", path, ST_META);
        if (!bcae_st_dtype_name(e[i].dtype))
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: tensor '%s': bad dtype %d",
                             path, a, (int)e[i].dtype);
        if (e[i].ndim < 0 || e[i].ndim > BCAE_MAX_DIMS || (e[i].ndim && !e[i].shape))
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: tensor '%s': bad shape", path,
                             a);
        int overflow;
        bytes[i] = bcae_st_shape_bytes(e[i].ndim, e[i].shape, bcae_st_itemsize(e[i].dtype),
                                       &overflow);
        if (overflow || bytes[i] > SIZE_MAX - total)
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: tensor '%s' is too large",
                             path, a);
        total += bytes[i];
        if (bytes[i] && !e[i].data)
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: tensor '%s' has no data",
                             path, a);
    }
    return BCAE_OK;
}

/* The JSON header, padded with spaces so that the data starts at a
 * multiple of 8 bytes (the reference implementation does the same). */
static void build_header(text *t, const bcae_st_entry *e, size_t n, const size_t *bytes,
                         const char *const *keys, const char *const *values, size_t nmeta)
{
    puts_(t, "{");
    if (nmeta) {
        puts_(t, "\"" ST_META "\":{");
        for (size_t i = 0; i < nmeta; i++) {
            if (i) puts_(t, ",");
            put_json_string(t, keys[i]);
            puts_(t, ":");
            put_json_string(t, values[i]);
        }
        puts_(t, "}");
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (i || nmeta) puts_(t, ",");
        put_json_string(t, e[i].name);
        puts_(t, ":{\"dtype\":\"");
        puts_(t, bcae_st_dtype_name(e[i].dtype));
        puts_(t, "\",\"shape\":[");
        for (int d = 0; d < e[i].ndim; d++) {
            if (d) puts_(t, ",");
            put_uint(t, e[i].shape[d]);
        }
        puts_(t, "],\"data_offsets\":[");
        put_uint(t, at);
        puts_(t, ",");
        put_uint(t, at + bytes[i]);
        puts_(t, "]}");
        at += bytes[i];
    }
    puts_(t, "}");
    while (!t->failed && t->len % ST_ALIGN) puts_(t, " ");
}

/* Hashes n bytes of items as they will be stored (little-endian). */
static void hash_le(bcae_sha256_ctx *c, const unsigned char *p, size_t n, size_t item)
{
    if (!n) return;
    if (bcae_st_host_le() || item < 2) {
        bcae_sha256_update(c, p, n);
        return;
    }
    unsigned char chunk[4096];
    while (n) {
        size_t k = n < sizeof chunk ? n : sizeof chunk;
        memcpy(chunk, p, k);
        bcae_st_swap_items(chunk, k, item);
        bcae_sha256_update(c, chunk, k);
        p += k;
        n -= k;
    }
}

/* Writes n bytes of items little-endian, through a bounded chunk on a
 * big-endian host so the caller's data is never copied whole. */
static int write_le(FILE *fp, const unsigned char *p, size_t n, size_t item)
{
    if (!n) return 1; /* an empty tensor may have no data pointer at all */
    if (bcae_st_host_le() || item < 2) return fwrite(p, 1, n, fp) == n;
    unsigned char chunk[4096];
    while (n) {
        size_t k = n < sizeof chunk ? n : sizeof chunk;
        memcpy(chunk, p, k);
        bcae_st_swap_items(chunk, k, item);
        if (fwrite(chunk, 1, k, fp) != k) return 0;
        p += k;
        n -= k;
    }
    return 1;
}

bcae_status bcae_st_write(const char *path, const bcae_st_entry *entries, size_t n,
                          const char *const *meta_keys, const char *const *meta_values,
                          size_t nmeta, bcae_error *err)
{
    if (!path || (n && !entries) || (nmeta && (!meta_keys || !meta_values)))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_st_write: NULL argument");
    for (size_t i = 0; i < nmeta; i++) {
        if (!meta_keys[i] || !meta_values[i])
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: metadata entry %zu is NULL",
                             path, i);
        if (!valid_utf8(meta_keys[i]) || !valid_utf8(meta_values[i]))
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                             "%s: metadata entry %zu is not valid UTF-8", path, i);
    }
    size_t *bytes = malloc((n ? n : 1) * sizeof *bytes);
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!bytes || !names) {
        free(bytes);
        free(names);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    bcae_status st = check_entries(path, entries, n, bytes, err);
    for (size_t i = 0; !st && i < n; i++) names[i] = entries[i].name;
    if (!st) st = check_unique(path, names, n, "tensor name", err);
    if (!st) st = check_unique(path, meta_keys, nmeta, "metadata key", err);
    free(names);

    /* The metadata as given, less any checksum entry of the caller's (a
     * copy of a read file's, say): ours, of these data, goes last. */
    const char **keys = malloc((nmeta + 1) * sizeof *keys);
    const char **values = malloc((nmeta + 1) * sizeof *values);
    char sum[65];
    size_t nm = 0;
    if (!st && (!keys || !values))
        st = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    if (!st) {
        for (size_t i = 0; i < nmeta; i++) {
            if (!strcmp(meta_keys[i], BCAE_ST_CHECKSUM_KEY)) continue;
            keys[nm] = meta_keys[i];
            values[nm++] = meta_values[i];
        }
        bcae_sha256_ctx c;
        bcae_sha256_init(&c);
        for (size_t i = 0; i < n; i++)
            hash_le(&c, entries[i].data, bytes[i], bcae_st_itemsize(entries[i].dtype));
        uint8_t d[32];
        bcae_sha256_final(&c, d);
        bcae_sha256_hex(d, sum);
        keys[nm] = BCAE_ST_CHECKSUM_KEY;
        values[nm++] = sum;
    }

    text t = {0};
    if (!st) {
        build_header(&t, entries, n, bytes, keys, values, nm);
        if (t.failed) st = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        else if (t.len > BCAE_ST_MAX_HEADER) /* no reader would take it */
            st = bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                           "%s: header of %zu bytes exceeds the limit %zu", path, t.len,
                           BCAE_ST_MAX_HEADER);
    }
    bcae_atomic_file af;
    if (!st) st = bcae_atomic_open(&af, path, err);
    if (!st) {
        unsigned char pre[ST_PREFIX];
        for (int i = 0; i < ST_PREFIX; i++) pre[i] = (unsigned char)((uint64_t)t.len >> (8 * i));
        int ok = fwrite(pre, 1, ST_PREFIX, af.fp) == ST_PREFIX &&
                 fwrite(t.p, 1, t.len, af.fp) == t.len;
        for (size_t i = 0; ok && i < n; i++)
            ok = write_le(af.fp, entries[i].data, bytes[i], bcae_st_itemsize(entries[i].dtype));
        if (!ok) {
            st = bcae_fail(err, BCAE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
            bcae_atomic_abort(&af);
        } else {
            st = bcae_atomic_commit(&af, err);
        }
    }
    free(t.p);
    free(bytes);
    free(keys);
    free(values);
    return st;
}
