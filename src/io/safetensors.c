/*
 * safetensors reader (docs/FORMATS.md, "Model files (safetensors)"); the
 * header's JSON parser is safetensors_header.c, the writer
 * safetensors_write.c.
 *
 * The reader treats every byte as hostile. The header length is checked
 * against its cap and the real file size before anything is allocated; the
 * header is parsed strictly; then every tensor's claims are checked against
 * each other and against the data present: sizes with overflow checks,
 * names unique, offsets that tile the data buffer exactly (as the reference
 * implementation requires). Only then is the data allocated, with the size
 * the file has vouched for.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "core/half.h"
#include "core/sha256.h"
#include "io/safetensors_internal.h"

int bcae_st_host_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ------------------------------------------------------------------ */
/* dtypes                                                              */
/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    bcae_dtype dtype;
} st_dtypes[] = {
    {"BOOL", BCAE_DTYPE_BOOL}, {"U8", BCAE_DTYPE_U8},   {"I8", BCAE_DTYPE_I8},
    {"U16", BCAE_DTYPE_U16},   {"I16", BCAE_DTYPE_I16}, {"U32", BCAE_DTYPE_U32},
    {"I32", BCAE_DTYPE_I32},   {"U64", BCAE_DTYPE_U64}, {"I64", BCAE_DTYPE_I64},
    {"F16", BCAE_DTYPE_F16},   {"BF16", BCAE_ST_DTYPE_BF16}, {"F32", BCAE_DTYPE_F32},
    {"F64", BCAE_DTYPE_F64},
};
#define ST_NDTYPES (sizeof st_dtypes / sizeof st_dtypes[0])

/* dtypes the format defines that we read as "well-formed but unsupported". */
static const char *const st_other_dtypes[] = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3",
                                              "F6_E3M2", "F4", "C64"};

int bcae_st_dtype_parse(const char *s, bcae_dtype *dtype)
{
    for (size_t i = 0; i < ST_NDTYPES; i++)
        if (!strcmp(s, st_dtypes[i].name)) {
            *dtype = st_dtypes[i].dtype;
            return 1;
        }
    for (size_t i = 0; i < sizeof st_other_dtypes / sizeof st_other_dtypes[0]; i++)
        if (!strcmp(s, st_other_dtypes[i])) return -1;
    return 0;
}

const char *bcae_st_dtype_name(bcae_dtype dtype)
{
    for (size_t i = 0; i < ST_NDTYPES; i++)
        if (st_dtypes[i].dtype == dtype) return st_dtypes[i].name;
    return NULL;
}

size_t bcae_st_itemsize(bcae_dtype dtype)
{
    if (dtype == BCAE_ST_DTYPE_BF16) return 2;
    if ((unsigned)dtype >= BCAE_DTYPE_COUNT) return 0;
    return bcae_dtype_size(dtype);
}

size_t bcae_st_count(const bcae_st_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

/* Items of shape times item size, or 0 with *overflow set. A zero
 * dimension anywhere makes the product 0 whatever the others are. */
size_t bcae_st_shape_bytes(int ndim, const size_t *shape, size_t item, int *overflow)
{
    *overflow = 0;
    for (int d = 0; d < ndim; d++)
        if (shape[d] == 0) return 0;
    size_t bytes = item;
    for (int d = 0; d < ndim; d++) {
        if (bytes > SIZE_MAX / shape[d]) {
            *overflow = 1;
            return 0;
        }
        bytes *= shape[d];
    }
    return bytes;
}

/* A name as it can be quoted in a message: printable ASCII, bounded. */
void bcae_st_shown(char dst[ST_NAME_SHOWN + 4], const char *s)
{
    size_t i = 0;
    for (; s[i] && i < ST_NAME_SHOWN; i++)
        dst[i] = (s[i] >= 0x20 && s[i] <= 0x7e) ? s[i] : '?';
    if (s[i]) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
}

void bcae_st_swap_items(unsigned char *p, size_t bytes, size_t item)
{
    if (item < 2) return;
    for (size_t off = 0; off + item <= bytes; off += item)
        for (size_t a = off, b = off + item - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* ------------------------------------------------------------------ */
/* Cross-checks: sizes, offsets, names                                 */
/* ------------------------------------------------------------------ */

typedef struct by_key {
    const char *name;
    size_t begin, end, index;
} by_key;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const by_key *)a)->name, ((const by_key *)b)->name);
}

static int cmp_offset(const void *a, const void *b)
{
    const by_key *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Each tensor's size against its offsets, names unique, and the offsets
 * tiling [0, data_len) exactly. Fills f->by_name and f->by_offset. */
static bcae_status check_tensors(const char *file, st_info *infos, size_t n, size_t data_len,
                                 bcae_st_file *f, bcae_error *err)
{
    char a[ST_NAME_SHOWN + 4];
    for (size_t i = 0; i < n; i++) {
        st_info *in = &infos[i];
        bcae_st_shown(a, in->t.name);
        int overflow;
        size_t bytes = bcae_st_shape_bytes(in->t.ndim, in->t.shape,
                                           bcae_st_itemsize(in->t.dtype), &overflow);
        if (overflow)
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: tensor '%s': shape's size overflows",
                             file, a);
        if (in->end < in->begin)
            return bcae_fail(err, BCAE_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets [%zu, %zu] end before they start",
                             file, a, in->begin, in->end);
        if (in->end > data_len)
            return bcae_fail(err, BCAE_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets [%zu, %zu] beyond the %zu bytes "
                             "of data",
                             file, a, in->begin, in->end, data_len);
        if (in->end - in->begin != bytes)
            return bcae_fail(err, BCAE_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets span %zu bytes, its dtype and shape "
                             "need %zu",
                             file, a, in->end - in->begin, bytes);
        in->t.nbytes = bytes;
    }

    by_key *keys = malloc((n ? n : 1) * sizeof *keys);
    f->by_name = malloc((n ? n : 1) * sizeof *f->by_name);
    f->by_offset = malloc((n ? n : 1) * sizeof *f->by_offset);
    if (!keys || !f->by_name || !f->by_offset) {
        free(keys);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    }
    for (size_t i = 0; i < n; i++)
        keys[i] = (by_key){infos[i].t.name, infos[i].begin, infos[i].end, i};
    qsort(keys, n, sizeof *keys, cmp_name);
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(keys[i].name, keys[i - 1].name)) {
            bcae_st_shown(a, keys[i].name);
            free(keys);
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: duplicate tensor name '%s'", file, a);
        }
        f->by_name[i] = keys[i].index;
    }
    qsort(keys, n, sizeof *keys, cmp_offset);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (keys[i].begin != at) {
            bcae_st_shown(a, keys[i].name);
            bcae_status s = bcae_fail(
                err, BCAE_ERR_FORMAT,
                keys[i].begin < at
                    ? "%s: tensor '%s': data_offsets [%zu, %zu] overlap another tensor's"
                    : "%s: tensor '%s': data_offsets [%zu, %zu] leave a gap before them",
                file, a, keys[i].begin, keys[i].end);
            free(keys);
            return s;
        }
        at = keys[i].end;
        f->by_offset[i] = keys[i].index;
    }
    free(keys);
    if (at != data_len)
        return bcae_fail(err, BCAE_ERR_FORMAT,
                         "%s: the tensors cover %zu bytes of data, the file has %zu", file, at,
                         data_len);
    return BCAE_OK;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

void bcae_st_free(bcae_st_file *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->count; i++) free(f->tensors[i].name);
    for (size_t i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->blob);
    free(f->by_name);
    free(f->by_offset);
    memset(f, 0, sizeof *f);
}

/* The header length from the prefix, checked against the cap and the file. */
static bcae_status header_len(const unsigned char *pre, size_t total, const char *file,
                              size_t *hlen, bcae_error *err)
{
    if (total < ST_PREFIX)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: not a safetensors file (%zu bytes)", file,
                         total);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | pre[i];
    if (n > BCAE_ST_MAX_HEADER)
        return bcae_fail(err, BCAE_ERR_FORMAT,
                         "%s: safetensors header length %llu exceeds the limit %zu", file,
                         (unsigned long long)n, BCAE_ST_MAX_HEADER);
    if (n > total - ST_PREFIX)
        return bcae_fail(err, BCAE_ERR_FORMAT,
                         "%s: truncated safetensors file: header length %llu, %zu bytes follow",
                         file, (unsigned long long)n, total - ST_PREFIX);
    *hlen = (size_t)n;
    return BCAE_OK;
}

/* Parses and checks the header; on success f holds the tensors (data
 * pointers still unset) and the metadata. */
static bcae_status load_header(const char *text, size_t hlen, size_t data_len, const char *file,
                               bcae_st_file *f, st_info **infos, bcae_error *err)
{
    size_t n;
    bcae_status st = bcae_st_parse_header(text, hlen, file, f, infos, &n, err);
    if (!st) st = check_tensors(file, *infos, n, data_len, f, err);
    /* The names move into f either way, so that one free path owns them. */
    f->tensors = malloc((n ? n : 1) * sizeof *f->tensors);
    if (!f->tensors) {
        for (size_t i = 0; i < n; i++) free((*infos)[i].t.name);
        return st ? st : bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    }
    for (size_t i = 0; i < n; i++) f->tensors[i] = (*infos)[i].t;
    f->count = n;
    return st;
}

/* Points the tensors into the blob (which holds the data buffer as
 * stored), repacking first if some tensor is not aligned to its item size,
 * and turns the data into the host's byte order. */
static bcae_status place_data(bcae_st_file *f, const st_info *infos, const char *file,
                              bcae_error *err)
{
    int aligned = 1;
    for (size_t i = 0; i < f->count; i++) {
        size_t item = bcae_st_itemsize(f->tensors[i].dtype);
        if (f->tensors[i].nbytes && infos[i].begin % item) aligned = 0;
    }
    if (!aligned) {
        /* Another writer's layout: give each tensor an 8-aligned home. */
        size_t total = 0;
        for (size_t k = 0; k < f->count; k++) {
            size_t nb = f->tensors[f->by_offset[k]].nbytes;
            size_t padded = (nb + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN;
            if (padded < nb || total > SIZE_MAX - padded)
                return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
            total += padded;
        }
        unsigned char *blob = malloc(total ? total : 1);
        if (!blob) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
        size_t at = 0;
        for (size_t k = 0; k < f->count; k++) {
            size_t i = f->by_offset[k];
            if (f->tensors[i].nbytes)
                memcpy(blob + at, f->blob + infos[i].begin, f->tensors[i].nbytes);
            f->tensors[i].data = f->tensors[i].nbytes ? blob + at : NULL;
            at += (f->tensors[i].nbytes + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN;
        }
        free(f->blob);
        f->blob = blob;
        f->blob_len = total;
    } else {
        for (size_t i = 0; i < f->count; i++)
            f->tensors[i].data = f->tensors[i].nbytes ? f->blob + infos[i].begin : NULL;
    }
    if (!bcae_st_host_le())
        for (size_t i = 0; i < f->count; i++)
            bcae_st_swap_items((unsigned char *)f->tensors[i].data, f->tensors[i].nbytes,
                               bcae_st_itemsize(f->tensors[i].dtype));
    return BCAE_OK;
}

static void free_infos(st_info *infos)
{
    free(infos); /* the names belong to f->tensors by now */
}

/* The metadata checksum, when the file has one: the data section's SHA-256
 * (the fingerprint) must be the one the writer recorded. */
static bcae_status verify_checksum(const bcae_st_file *f, const char *file, bcae_error *err)
{
    const char *want = bcae_st_meta(f, BCAE_ST_CHECKSUM_KEY);
    if (!want) return BCAE_OK;
    int hex = strlen(want) == 64;
    for (size_t i = 0; hex && i < 64; i++)
        hex = (want[i] >= '0' && want[i] <= '9') || (want[i] >= 'a' && want[i] <= 'f');
    if (!hex)
        return bcae_fail(err, BCAE_ERR_FORMAT,
                         "%s: metadata " BCAE_ST_CHECKSUM_KEY
                         " is not 64 lowercase hexadecimal digits",
                         file);
    uint8_t d[32];
    bcae_st_fingerprint(f, d);
    char got[65];
    bcae_sha256_hex(d, got);
    if (strcmp(got, want) != 0)
        return bcae_fail(err, BCAE_ERR_FORMAT,
                         "%s: checksum mismatch: the data's SHA-256 is %s, its "
                         BCAE_ST_CHECKSUM_KEY " says %s (the file is damaged)",
                         file, got, want);
    return BCAE_OK;
}

/* The one reader behind both entry points: the header length, checked
 * against its cap and the size known up front (the file's, the buffer's)
 * before the header is read; the header, checked before the data buffer
 * is allocated at the size the tensors and the file agree on; the data;
 * the checksum when there is one. */
static bcae_status read_st(bcae_src *s, bcae_st_file *out, bcae_error *err)
{
    const char *file = s->name;
    unsigned char pre[ST_PREFIX] = {0};
    size_t hlen = 0, total = s->len;
    bcae_status st = bcae_src_read(s, pre, total < ST_PREFIX ? total : ST_PREFIX, err);
    if (!st) st = header_len(pre, total, file, &hlen, err);
    if (st) return st;
    size_t data_len = total - ST_PREFIX - hlen; /* header_len vouched for it */
    char *text = malloc(hlen ? hlen : 1);
    if (!text) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    st_info *infos = NULL;
    st = bcae_src_read(s, text, hlen, err);
    if (!st) st = load_header(text, hlen, data_len, file, out, &infos, err);
    free(text);
    if (!st) {
        out->blob = malloc(data_len ? data_len : 1);
        out->blob_len = data_len;
        if (!out->blob) st = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    }
    if (!st) st = bcae_src_read(s, out->blob, data_len, err);
    if (!st) st = bcae_src_expect_end(s, err);
    if (!st) st = place_data(out, infos, file, err);
    free_infos(infos);
    if (!st) st = verify_checksum(out, file, err);
    if (st) bcae_st_free(out);
    return st;
}

bcae_status bcae_st_read_buffer(const void *buf, size_t len, const char *name,
                                bcae_st_file *out, bcae_error *err)
{
    const char *file = name ? name : "<buffer>";
    if (!out) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: no output", file);
    memset(out, 0, sizeof *out);
    if (!buf && len) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: no buffer", file);
    bcae_src s;
    bcae_src_mem(&s, buf, len, file);
    return read_st(&s, out, err);
}

bcae_status bcae_st_read(const char *path, bcae_st_file *out, bcae_error *err)
{
    if (!out || !path)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_st_read: NULL argument");
    memset(out, 0, sizeof *out);
    bcae_src s;
    bcae_status st = bcae_src_open(&s, path, err);
    if (st) return st;
    st = read_st(&s, out, err);
    bcae_src_close(&s);
    return st;
}

const bcae_st_tensor *bcae_st_find(const bcae_st_file *f, const char *name)
{
    if (!f || !name || !f->by_name) return NULL;
    size_t lo = 0, hi = f->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const bcae_st_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *bcae_st_meta(const bcae_st_file *f, const char *key)
{
    if (!f || !key) return NULL;
    for (size_t i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

bcae_status bcae_st_fingerprint(const bcae_st_file *f, uint8_t out[32])
{
    if (!f || !out) return bcae_fail(NULL, BCAE_ERR_INVALID_ARGUMENT, "NULL argument");
    bcae_sha256_ctx c;
    bcae_sha256_init(&c);
    int swap = !bcae_st_host_le();
    for (size_t k = 0; k < f->count; k++) {
        const bcae_st_tensor *t = &f->tensors[f->by_offset[k]];
        size_t item = bcae_st_itemsize(t->dtype);
        if (!swap || item < 2) {
            if (t->nbytes) bcae_sha256_update(&c, t->data, t->nbytes);
            continue;
        }
        /* Hash the bytes as stored: little-endian, in bounded chunks. */
        unsigned char chunk[4096];
        for (size_t off = 0; off < t->nbytes;) {
            size_t n = t->nbytes - off < sizeof chunk ? t->nbytes - off : sizeof chunk;
            memcpy(chunk, t->data + off, n);
            bcae_st_swap_items(chunk, n, item);
            bcae_sha256_update(&c, chunk, n);
            off += n;
        }
    }
    bcae_sha256_final(&c, out);
    return BCAE_OK;
}

/* ------------------------------------------------------------------ */
/* Conversion to float                                                 */
/* ------------------------------------------------------------------ */

bcae_status bcae_st_to_f32(const bcae_st_tensor *t, float *out, bcae_error *err)
{
    if (!t || !out) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "bcae_st_to_f32: NULL");
    size_t n = bcae_st_count(t);
    const unsigned char *p = t->data;
    for (size_t i = 0; i < n; i++) {
        switch ((int)t->dtype) {
        case BCAE_DTYPE_F32: memcpy(&out[i], p + 4 * i, 4); break;
        case BCAE_DTYPE_F64: {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
            break;
        }
        case BCAE_DTYPE_F16: {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = bcae_f16_to_f32(h);
            break;
        }
        case BCAE_ST_DTYPE_BF16: {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16; /* bfloat16 is float's top half */
            memcpy(&out[i], &bits, 4);
            break;
        }
        default: {
            const char *dn = bcae_st_dtype_name(t->dtype);
            char a[ST_NAME_SHOWN + 4];
            bcae_st_shown(a, t->name ? t->name : "");
            return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                             "tensor '%s': dtype %s is not floating point", a, dn ? dn : "?");
        }
        }
    }
    return BCAE_OK;
}
