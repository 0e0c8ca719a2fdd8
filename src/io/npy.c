/*
 * NumPy .npy reader and writer (docs/FORMATS.md, "NumPy .npy").
 *
 * The reader treats every byte as hostile: the header is parsed within its
 * stated bounds (never as a C string), its claims are checked against the
 * real size of the file before anything is allocated, and the data size is
 * computed with overflow checks and must match the bytes present exactly.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bcae.h"
#include "core/error.h"
#include "io/fileutil.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* NumPy itself refuses headers over 10 kB by default; 1 MiB leaves room for
 * odd writers and still bounds what a hostile file can make us parse. */
#define NPY_MAX_HEADER (1u << 20)
/* Data start is aligned to this, as NumPy >= 1.14 writes it. */
#define NPY_ALIGN 64

/* What a parsed header says about the data that follows it. */
typedef struct npy_header {
    bcae_dtype dtype;
    int swap;    /* stored in the other byte order than the host's */
    int fortran; /* stored in column-major order */
    int ndim;
    size_t shape[BCAE_MAX_DIMS];
    size_t data_offset; /* from the start of the file */
    size_t data_bytes;
} npy_header;

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ------------------------------------------------------------------ */
/* Header dict: a Python literal, parsed within [p, end)               */
/* ------------------------------------------------------------------ */

typedef struct cursor {
    const char *p;
    const char *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Skips whitespace and consumes ch if it comes next. */
static int accept(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int accept_word(cursor *c, const char *w)
{
    size_t n = strlen(w);
    skip_ws(c);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return 0;
    /* "Trueish" is not True. */
    if ((size_t)(c->end - c->p) > n) {
        char nx = c->p[n];
        if ((nx >= 'a' && nx <= 'z') || (nx >= 'A' && nx <= 'Z') || (nx >= '0' && nx <= '9') ||
            nx == '_')
            return 0;
    }
    c->p += n;
    return 1;
}

/* A quoted string without escapes; the result points into the header. */
static bcae_status parse_string(cursor *c, const char *name, const char *what, const char **s,
                                size_t *n, bcae_error *err)
{
    skip_ws(c);
    if (c->p >= c->end)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header dict is not terminated", name);
    char q = *c->p;
    if (q != '\'' && q != '"')
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: expected a quoted %s", name, what);
    const char *start = ++c->p;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\')
            return bcae_fail(err, BCAE_ERR_FORMAT,
                             "%s: .npy header: escape sequences in %s are not supported", name,
                             what);
        if (*c->p == '\n')
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: unterminated %s", name, what);
        c->p++;
    }
    if (c->p >= c->end)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: unterminated %s", name, what);
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return BCAE_OK;
}

/* descr such as "<u2": byte order, kind, item size. */
static bcae_status parse_descr(cursor *c, const char *name, npy_header *h, bcae_error *err)
{
    skip_ws(c);
    if (c->p < c->end && (*c->p == '[' || *c->p == '{'))
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "%s: structured dtypes are not supported (only bool, integer, float)",
                         name);
    const char *s;
    size_t n;
    bcae_status st = parse_string(c, name, "descr", &s, &n, err);
    if (st) return st;
    char text[24];
    size_t shown = n < sizeof text - 1 ? n : sizeof text - 1;
    memcpy(text, s, shown);
    text[shown] = '\0';
    for (size_t i = 0; i < shown; i++)
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e) text[i] = '?';

    size_t i = 0;
    char order = '=';
    if (n > 0 && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) order = s[i++];
    if (i >= n)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: bad descr '%s'", name, text);
    char kind = s[i++];
    /* Complex, strings, objects, dates: NumPy writes them, but they are no numbers we use. */
    if (kind && strchr("cSUVOMmaw", kind))
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "%s: unsupported dtype '%s' (only bool, integer, float)", name, text);
    if (i >= n || n - i > 2)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: bad descr '%s'", name, text);
    size_t size = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: bad descr '%s'", name, text);
        size = size * 10 + (size_t)(s[i] - '0');
    }

    static const struct {
        char kind;
        size_t size;
        bcae_dtype dtype;
    } known[] = {
        {'b', 1, BCAE_DTYPE_BOOL}, {'u', 1, BCAE_DTYPE_U8},  {'i', 1, BCAE_DTYPE_I8},
        {'u', 2, BCAE_DTYPE_U16},  {'i', 2, BCAE_DTYPE_I16}, {'u', 4, BCAE_DTYPE_U32},
        {'i', 4, BCAE_DTYPE_I32},  {'u', 8, BCAE_DTYPE_U64}, {'i', 8, BCAE_DTYPE_I64},
        {'f', 2, BCAE_DTYPE_F16},  {'f', 4, BCAE_DTYPE_F32}, {'f', 8, BCAE_DTYPE_F64},
    };
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        if (known[k].kind != kind || known[k].size != size) continue;
        if (order == '|' && size != 1)
            return bcae_fail(err, BCAE_ERR_FORMAT,
                             "%s: .npy header: descr '%s' has no byte order but %zu-byte items",
                             name, text, size);
        int little = order == '<' || (order == '=' && host_is_little_endian());
        int big = order == '>' || (order == '=' && !host_is_little_endian());
        h->dtype = known[k].dtype;
        h->swap = size > 1 && ((little && !host_is_little_endian()) ||
                               (big && host_is_little_endian()));
        return BCAE_OK;
    }
    if (kind && strchr("biuf", kind))
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "%s: unsupported dtype '%s' (item size %zu)",
                         name, text, size);
    return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: bad descr '%s'", name, text);
}

static bcae_status parse_bool(cursor *c, const char *name, int *v, bcae_error *err)
{
    if (accept_word(c, "True")) {
        *v = 1;
        return BCAE_OK;
    }
    if (accept_word(c, "False")) {
        *v = 0;
        return BCAE_OK;
    }
    return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: fortran_order is not True or False",
                     name);
}

/* A tuple of non-negative ints: (), (5,), (2, 3), (2, 3,). */
static bcae_status parse_shape(cursor *c, const char *name, npy_header *h, bcae_error *err)
{
    if (!accept(c, '('))
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: shape is not a tuple", name);
    h->ndim = 0;
    int trailing_comma = 0;
    for (;;) {
        if (accept(c, ')')) break;
        skip_ws(c);
        if (c->p >= c->end)
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: shape tuple is not closed",
                             name);
        if (*c->p == '-')
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: negative dimension in shape",
                             name);
        if (*c->p < '0' || *c->p > '9')
            return bcae_fail(err, BCAE_ERR_FORMAT,
                             "%s: .npy header: shape must be a tuple of integers", name);
        uint64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            unsigned d = (unsigned)(*c->p - '0');
            if (v > (UINT64_MAX - d) / 10 || v * 10 + d > (uint64_t)SIZE_MAX)
                return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: dimension too large",
                                 name);
            v = v * 10 + d;
            c->p++;
        }
        if (h->ndim >= BCAE_MAX_DIMS)
            return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "%s: more than %d dimensions", name,
                             BCAE_MAX_DIMS);
        h->shape[h->ndim++] = (size_t)v;
        trailing_comma = 0;
        if (accept(c, ',')) {
            trailing_comma = 1;
            continue;
        }
        if (accept(c, ')')) break;
        skip_ws(c);
        if (c->p >= c->end)
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: shape tuple is not closed",
                             name);
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: bad shape tuple", name);
    }
    /* In Python "(5)" is the int 5, not a tuple. */
    if (h->ndim == 1 && !trailing_comma)
        return bcae_fail(err, BCAE_ERR_FORMAT,
                         "%s: .npy header: shape (n) is not a tuple (write (n,))", name);
    return BCAE_OK;
}

/* The dict: exactly the keys descr, fortran_order, shape, in any order.
 * Unknown keys are rejected as NumPy does, so a file we accept is one
 * NumPy accepts. */
static bcae_status parse_dict(const char *text, size_t len, const char *name, npy_header *h,
                              bcae_error *err)
{
    cursor c = {text, text + len};
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    if (!accept(&c, '{'))
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header is not a dict", name);
    for (;;) {
        if (accept(&c, '}')) break;
        const char *key;
        size_t klen;
        bcae_status st = parse_string(&c, name, "key", &key, &klen, err);
        if (st) return st;
        if (!accept(&c, ':'))
            return bcae_fail(err, BCAE_ERR_FORMAT,
                             c.p >= c.end ? "%s: .npy header dict is not terminated"
                                          : "%s: .npy header: expected ':' after a key",
                             name);
        int *seen;
        if (klen == 5 && memcmp(key, "descr", 5) == 0) {
            seen = &have_descr;
            if (!*seen) st = parse_descr(&c, name, h, err);
        } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
            seen = &have_fortran;
            if (!*seen) st = parse_bool(&c, name, &h->fortran, err);
        } else if (klen == 5 && memcmp(key, "shape", 5) == 0) {
            seen = &have_shape;
            if (!*seen) st = parse_shape(&c, name, h, err);
        } else {
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: unexpected key '%.*s'", name,
                             (int)(klen < 40 ? klen : 40), key);
        }
        if (*seen)
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: duplicate key '%.*s'", name,
                             (int)klen, key);
        if (st) return st;
        *seen = 1;
        if (accept(&c, ',')) continue;
        if (accept(&c, '}')) break;
        return bcae_fail(err, BCAE_ERR_FORMAT,
                         c.p >= c.end ? "%s: .npy header dict is not terminated"
                                      : "%s: .npy header: expected ',' or '}'",
                         name);
    }
    skip_ws(&c);
    if (c.p != c.end)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header: unexpected bytes after the dict",
                         name);
    if (!have_descr || !have_fortran || !have_shape)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header lacks key '%s'", name,
                         !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    return BCAE_OK;
}

/* ------------------------------------------------------------------ */
/* Prefix, header and size checks                                      */
/* ------------------------------------------------------------------ */

/* Bytes before the header dict for a given major version (0: unknown). */
static size_t prefix_len(int major)
{
    return major == 1 ? 10 : (major == 2 || major == 3) ? 12 : 0;
}

/* Checks magic and version in the first 8 bytes; sets *prefix. */
static bcae_status parse_magic(const unsigned char *b, size_t len, const char *name,
                               size_t *prefix, bcae_error *err)
{
    if (len < NPY_MAGIC_LEN || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: not a .npy file (bad magic)", name);
    if (len < 8) return bcae_fail(err, BCAE_ERR_FORMAT, "%s: truncated .npy header", name);
    *prefix = prefix_len(b[6]);
    if (*prefix == 0 || b[7] != 0)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "%s: unsupported .npy format version %u.%u",
                         name, b[6], b[7]);
    return BCAE_OK;
}

/* Header length from the prefix (which must be in b[0..prefix)). */
static size_t header_len(const unsigned char *b, size_t prefix)
{
    if (prefix == 10) return (size_t)b[8] | (size_t)b[9] << 8;
    return (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
}

/* Given the header text (hlen bytes after a prefix of `prefix` bytes) and
 * the total size of the file, fills h and checks the data size. */
static bcae_status parse_header(const char *text, size_t prefix, size_t hlen, size_t total,
                                const char *name, npy_header *h, bcae_error *err)
{
    memset(h, 0, sizeof *h);
    bcae_status st = parse_dict(text, hlen, name, h, err);
    if (st) return st;
    size_t bytes = bcae_dtype_size(h->dtype);
    for (int d = 0; d < h->ndim; d++) {
        if (h->shape[d] != 0 && bytes > SIZE_MAX / h->shape[d]) {
            /* A zero elsewhere would make it legal; look for one first. */
            int zero = 0;
            for (int k = 0; k < h->ndim; k++) zero |= h->shape[k] == 0;
            if (zero) {
                bytes = 0;
                break;
            }
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy shape's size overflows", name);
        }
        bytes *= h->shape[d];
    }
    h->data_offset = prefix + hlen;
    h->data_bytes = bytes;
    size_t have = total - h->data_offset; /* check_header_len vouched for it */
    if (have < bytes)
        return bcae_fail(err, BCAE_ERR_FORMAT,
                         "%s: truncated .npy data: header says %zu bytes, file has %zu", name,
                         bytes, have);
    if (have > bytes)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: %zu extra bytes after the .npy data", name,
                         have - bytes);
    return BCAE_OK;
}

/* Checks the header length against its cap and the file size. */
static bcae_status check_header_len(size_t prefix, size_t hlen, size_t total, const char *name,
                                    bcae_error *err)
{
    if (hlen > NPY_MAX_HEADER)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: .npy header length %zu exceeds the limit %u",
                         name, hlen, NPY_MAX_HEADER);
    if (hlen > total - prefix)
        return bcae_fail(err, BCAE_ERR_FORMAT,
                         "%s: truncated .npy header: length %zu beyond the end of the file", name,
                         hlen);
    return BCAE_OK;
}

/* ------------------------------------------------------------------ */
/* Data: byte order and Fortran -> C order                             */
/* ------------------------------------------------------------------ */

static void swap_bytes(unsigned char *p, size_t count, size_t item)
{
    for (size_t i = 0; i < count; i++, p += item)
        for (size_t a = 0, b = item - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* dst (C order) <- src (Fortran order) of the same shape. Walks dst in
 * order and steps the source offset like an odometer, so each element costs
 * O(1) and no index is ever outside [0, count). */
static void fortran_to_c(unsigned char *dst, const unsigned char *src, int ndim,
                         const size_t *shape, size_t item)
{
    size_t fstride[BCAE_MAX_DIMS], idx[BCAE_MAX_DIMS] = {0};
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        fstride[d] = count;
        count *= shape[d];
    }
    if (count == 0) return;
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        memcpy(dst + i * item, src + off * item, item);
        for (int d = ndim - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) {
                off += fstride[d];
                break;
            }
            idx[d] = 0;
            off -= (shape[d] - 1) * fstride[d];
        }
    }
}

/* Turns raw data already in out->data into native C order. */
static bcae_status finish_data(const npy_header *h, bcae_array *out, const char *name,
                               bcae_error *err)
{
    size_t item = bcae_dtype_size(h->dtype);
    size_t count = bcae_array_count(out);
    if (h->swap) swap_bytes(out->data, count, item);
    if (h->fortran && h->ndim > 1 && count > 1) {
        unsigned char *tmp = malloc(h->data_bytes);
        if (!tmp)
            return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory (%zu bytes)", name,
                             h->data_bytes);
        fortran_to_c(tmp, out->data, h->ndim, h->shape, item);
        free(out->data);
        out->data = tmp;
    }
    return BCAE_OK;
}

/* The one reader behind both entry points: the prefix in two steps (the
 * magic and version say how long the rest of it is), the header, then the
 * data straight into the array. Every read is bounded by what the size
 * known up front (the file's, the buffer's) has room for, checked before
 * the read and before any allocation: the data allocation is the size the
 * file has vouched for, the header's at most NPY_MAX_HEADER. */
static bcae_status read_npy(bcae_src *s, bcae_array *out, bcae_error *err)
{
    const char *name = s->name;
    size_t total = s->len;
    unsigned char pre[12];
    size_t first = total < 8 ? total : 8;
    bcae_status st = bcae_src_read(s, pre, first, err);
    size_t prefix = 0;
    if (!st) st = parse_magic(pre, first, name, &prefix, err);
    if (!st && total < prefix)
        st = bcae_fail(err, BCAE_ERR_FORMAT, "%s: truncated .npy header", name);
    if (!st) st = bcae_src_read(s, pre + 8, prefix - 8, err);
    if (st) return st;
    size_t hlen = header_len(pre, prefix);
    if ((st = check_header_len(prefix, hlen, total, name, err))) return st;
    char *text = malloc(hlen ? hlen : 1);
    if (!text) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    npy_header h;
    st = bcae_src_read(s, text, hlen, err);
    if (!st) st = parse_header(text, prefix, hlen, total, name, &h, err);
    free(text);
    if (!st) st = bcae_array_alloc(out, h.dtype, h.ndim, h.shape, err);
    if (!st) st = bcae_src_read(s, out->data, h.data_bytes, err);
    if (!st) st = bcae_src_expect_end(s, err);
    if (!st) st = finish_data(&h, out, name, err);
    if (st) bcae_array_free(out);
    return st;
}

bcae_status bcae_npy_read_buffer(const void *buf, size_t len, const char *name,
                                 bcae_array *out, bcae_error *err)
{
    name = name ? name : "<buffer>";
    if (!out) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: no output array", name);
    memset(out, 0, sizeof *out);
    if (!buf && len) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: no buffer", name);
    bcae_src s;
    bcae_src_mem(&s, buf, len, name);
    return read_npy(&s, out, err);
}

bcae_status bcae_npy_read(const char *path, bcae_array *out, bcae_error *err)
{
    if (!out || !path)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_npy_read: NULL argument");
    memset(out, 0, sizeof *out);
    bcae_src s;
    bcae_status st = bcae_src_open(&s, path, err);
    if (st) return st;
    st = read_npy(&s, out, err);
    bcae_src_close(&s);
    return st;
}

/* ------------------------------------------------------------------ */
/* Writer                                                              */
/* ------------------------------------------------------------------ */

/* Writes the data little-endian in bounded chunks, so a big-endian host
 * needs no second copy of the array. */
static int write_le(FILE *fp, const unsigned char *p, size_t count, size_t item)
{
    if (host_is_little_endian() || item == 1) return fwrite(p, item, count, fp) == count;
    unsigned char chunk[4096];
    size_t per = sizeof chunk / item;
    while (count) {
        size_t n = count < per ? count : per;
        memcpy(chunk, p, n * item);
        swap_bytes(chunk, n, item);
        if (fwrite(chunk, item, n, fp) != n) return 0;
        p += n * item;
        count -= n;
    }
    return 1;
}

/* Writes a into f (any atomic file: a path's, or one beneath an output
 * folder) and commits it; on failure f is discarded. */
static bcae_status check_writable(const char *path, const bcae_array *a, bcae_error *err)
{
    if (a->dtype != BCAE_DTYPE_U16 && a->dtype != BCAE_DTYPE_F32)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "%s: writing dtype %s is not supported (only <u2 and <f4)", path,
                         (unsigned)a->dtype < BCAE_DTYPE_COUNT ? bcae_dtype_name(a->dtype)
                                                               : "unknown");
    if (a->ndim < 0 || a->ndim > BCAE_MAX_DIMS)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: array has %d dimensions", path,
                         a->ndim);
    if (bcae_array_count(a) && !a->data)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: array has no data", path);
    return BCAE_OK;
}

bcae_status bcae_npy_write_atomic(bcae_atomic_file *f, const bcae_array *a, bcae_error *err)
{
    const char *path = f->final_path;
    bcae_status st = a ? check_writable(path, a, err)
                       : bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: no array", path);
    if (st) {
        bcae_atomic_abort(f);
        return st;
    }
    size_t count = bcae_array_count(a);

    /* The dict as NumPy spells it (keys sorted, trailing ", "). */
    char dict[64 + BCAE_MAX_DIMS * 24];
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                bcae_dtype_name(a->dtype));
    for (int d = 0; d < a->ndim; d++)
        n += (size_t)snprintf(dict + n, sizeof dict - n, d ? ", %zu" : "%zu", a->shape[d]);
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", a->ndim == 1 ? "," : "");
    /* Pad with spaces and end with '\n' so the data starts 64-aligned. */
    size_t total = 10 + n + 1;
    size_t pad = (NPY_ALIGN - total % NPY_ALIGN) % NPY_ALIGN;
    size_t hlen = n + pad + 1;
    unsigned char head[10 + sizeof dict + NPY_ALIGN + 1];
    memcpy(head, NPY_MAGIC, NPY_MAGIC_LEN);
    head[6] = 1;
    head[7] = 0;
    head[8] = (unsigned char)(hlen & 0xff);
    head[9] = (unsigned char)(hlen >> 8);
    memcpy(head + 10, dict, n);
    memset(head + 10 + n, ' ', pad);
    head[10 + hlen - 1] = '\n';

    if (fwrite(head, 1, 10 + hlen, f->fp) != 10 + hlen ||
        !write_le(f->fp, a->data, count, bcae_dtype_size(a->dtype))) {
        bcae_status s = bcae_fail(err, BCAE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        bcae_atomic_abort(f);
        return s;
    }
    return bcae_atomic_commit(f, err);
}

bcae_status bcae_npy_write(const char *path, const bcae_array *a, bcae_error *err)
{
    if (!path || !a)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_npy_write: NULL argument");
    /* Refuse what cannot be written before creating anything. */
    bcae_status st = check_writable(path, a, err);
    if (st) return st;
    bcae_atomic_file f;
    st = bcae_atomic_open(&f, path, err);
    if (st) return st;
    return bcae_npy_write_atomic(&f, a, err);
}
