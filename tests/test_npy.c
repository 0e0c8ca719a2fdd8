/* The .npy reader and writer, and the array helpers: round trips, every
 * dtype / byte order / memory order / format version we can craft, and one
 * case per class of malformed input (each must fail cleanly, naming the file). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bcae.h"
#include "check.h"

static char tmpdir[64];

static char *tmp_path(const char *name)
{
    static char buf[4][256]; /* test-only scratch: a few paths alive at once */
    static int next = 0;
    char *p = buf[next++ % 4];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

static int write_bytes(const char *path, const void *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    int ok = fwrite(b, 1, n, fp) == n;
    return fclose(fp) == 0 && ok;
}

/* A .npy in memory: magic, version major.0, the dict padded like NumPy pads
 * it (spaces, '\n', data 64-aligned), then data. Caller frees. */
static unsigned char *build_npy(int major, const char *dict, const void *data, size_t dlen,
                                size_t *len)
{
    size_t prefix = major == 1 ? 10 : 12;
    size_t dl = strlen(dict);
    size_t pad = (64 - (prefix + dl + 1) % 64) % 64;
    size_t hlen = dl + pad + 1;
    unsigned char *b = malloc(prefix + hlen + dlen + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    b[8] = (unsigned char)hlen;
    b[9] = (unsigned char)(hlen >> 8);
    if (major != 1) {
        b[10] = (unsigned char)(hlen >> 16);
        b[11] = (unsigned char)(hlen >> 24);
    }
    memcpy(b + prefix, dict, dl);
    memset(b + prefix + dl, ' ', pad);
    b[prefix + hlen - 1] = '\n';
    if (dlen) memcpy(b + prefix + hlen, data, dlen);
    *len = prefix + hlen + dlen;
    return b;
}

/* Reads buf both from memory and from a file; both must fail with `status`
 * and a message that names the source and contains `what`. */
static void expect_fail_bytes(const char *label, const unsigned char *buf, size_t len,
                              bcae_status status, const char *what)
{
    bcae_array a;
    bcae_error err;
    bcae_status st = bcae_npy_read_buffer(buf, len, "crafted.npy", &a, &err);
    CHECK_MSG(st == status, "%s: buffer status %d, want %d (%s)", label, st, status, err.message);
    CHECK_MSG(st == BCAE_OK || err.status == st, "%s: err.status", label);
    CHECK_MSG(st == BCAE_OK || strstr(err.message, "crafted.npy"), "%s: message '%s'", label,
              err.message);
    CHECK_MSG(st == BCAE_OK || strstr(err.message, what), "%s: message '%s' lacks '%s'", label,
              err.message, what);
    CHECK_MSG(a.data == NULL, "%s: output not cleared on failure", label);
    if (st == BCAE_OK) bcae_array_free(&a);

    char *path = tmp_path("bad.npy");
    CHECK(write_bytes(path, buf, len));
    st = bcae_npy_read(path, &a, &err);
    CHECK_MSG(st == status, "%s: file status %d, want %d (%s)", label, st, status, err.message);
    CHECK_MSG(st == BCAE_OK || strstr(err.message, path), "%s: message '%s'", label, err.message);
    CHECK_MSG(st == BCAE_OK || strstr(err.message, what), "%s: message '%s' lacks '%s'", label,
              err.message, what);
    if (st == BCAE_OK) bcae_array_free(&a);
    unlink(path);
}

static void expect_fail_dict(const char *label, int major, const char *dict, size_t dlen,
                             bcae_status status, const char *what)
{
    unsigned char *zeros = calloc(dlen ? dlen : 1, 1);
    size_t len;
    unsigned char *b = build_npy(major, dict, zeros, dlen, &len);
    expect_fail_bytes(label, b, len, status, what);
    free(b);
    free(zeros);
}

/* ------------------------------------------------------------------ */

static void test_array_helpers(void)
{
    CHECK(bcae_dtype_size(BCAE_DTYPE_BOOL) == 1 && bcae_dtype_size(BCAE_DTYPE_I8) == 1);
    CHECK(bcae_dtype_size(BCAE_DTYPE_F16) == 2 && bcae_dtype_size(BCAE_DTYPE_U16) == 2);
    CHECK(bcae_dtype_size(BCAE_DTYPE_I32) == 4 && bcae_dtype_size(BCAE_DTYPE_F32) == 4);
    CHECK(bcae_dtype_size(BCAE_DTYPE_U64) == 8 && bcae_dtype_size(BCAE_DTYPE_F64) == 8);
    CHECK(bcae_dtype_size(BCAE_DTYPE_COUNT) == 0);
    CHECK(strcmp(bcae_dtype_name(BCAE_DTYPE_U16), "<u2") == 0);
    CHECK(strcmp(bcae_dtype_name(BCAE_DTYPE_F32), "<f4") == 0);
    CHECK(strcmp(bcae_dtype_name(BCAE_DTYPE_BOOL), "|b1") == 0);
    CHECK(strcmp(bcae_dtype_name(BCAE_DTYPE_U8), "|u1") == 0);
    CHECK(strcmp(bcae_dtype_name(BCAE_DTYPE_F16), "<f2") == 0);

    bcae_array a;
    bcae_error err;
    size_t shape[3] = {2, 3, 4};
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_F32, 3, shape, &err) == BCAE_OK);
    CHECK(bcae_array_count(&a) == 24 && a.ndim == 3 && a.shape[2] == 4);
    int zero = 1;
    for (size_t i = 0; i < 24; i++) zero &= bcae_array_get_f64(&a, i) == 0.0;
    CHECK(zero);
    bcae_array_free(&a);
    CHECK(a.data == NULL);
    bcae_array_free(&a); /* twice is harmless */

    size_t huge[2] = {SIZE_MAX / 2, 3};
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_U8, 2, huge, &err) == BCAE_ERR_OUT_OF_MEMORY);
    CHECK(strstr(err.message, "overflow") != NULL);
    size_t items[1] = {SIZE_MAX / 4};
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_F64, 1, items, &err) == BCAE_ERR_OUT_OF_MEMORY);
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_U8, BCAE_MAX_DIMS + 1, shape, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_COUNT, 1, shape, &err) == BCAE_ERR_INVALID_ARGUMENT);

    size_t zshape[2] = {0, 5};
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_U16, 2, zshape, &err) == BCAE_OK);
    CHECK(bcae_array_count(&a) == 0 && a.data != NULL);
    bcae_array_free(&a);
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_U16, 0, NULL, &err) == BCAE_OK);
    CHECK(bcae_array_count(&a) == 1);
    bcae_array_free(&a);

    /* binary16 decoding, including subnormals, infinities and NaN. */
    static const struct {
        uint16_t bits;
        double value;
    } halves[] = {
        {0x0000, 0.0},           {0x3c00, 1.0},
        {0xc000, -2.0},          {0x3555, 0.333251953125},
        {0x7bff, 65504.0},       {0xfbff, -65504.0},
        {0x0400, 6.103515625e-05}, /* smallest normal, 2^-14 */
        {0x0001, 5.9604644775390625e-08}, /* smallest subnormal, 2^-24 */
        {0x03ff, 6.097555160522461e-05},  /* largest subnormal, 1023 * 2^-24 */
        {0x8001, -5.9604644775390625e-08},
        {0x7c00, INFINITY},      {0xfc00, -INFINITY},
    };
    size_t one = sizeof halves / sizeof halves[0] + 3;
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_F16, 1, &one, &err) == BCAE_OK);
    uint16_t *h = a.data;
    for (size_t i = 0; i < one - 3; i++) h[i] = halves[i].bits;
    h[one - 3] = 0x7e00; /* quiet NaN */
    h[one - 2] = 0xfc01; /* signalling-pattern NaN */
    h[one - 1] = 0x8000; /* -0 */
    for (size_t i = 0; i < one - 3; i++)
        CHECK_MSG(bcae_array_get_f64(&a, i) == halves[i].value, "half 0x%04x -> %.17g",
                  halves[i].bits, bcae_array_get_f64(&a, i));
    CHECK(isnan(bcae_array_get_f64(&a, one - 3)));
    CHECK(isnan(bcae_array_get_f64(&a, one - 2)));
    CHECK(bcae_array_get_f64(&a, one - 1) == 0.0 && signbit(bcae_array_get_f64(&a, one - 1)));
    bcae_array_free(&a);
}

/* ------------------------------------------------------------------ */

static void test_write_read_roundtrip(void)
{
    static const size_t shapes[][4] = {{0}, {7}, {2, 3}, {4, 5, 6}, {0, 3}, {3, 0, 2}, {1, 1, 1, 1}};
    static const int ndims[] = {0, 1, 2, 3, 2, 3, 4};
    bcae_error err;
    for (int dt = 0; dt < 2; dt++) {
        bcae_dtype dtype = dt ? BCAE_DTYPE_F32 : BCAE_DTYPE_U16;
        for (size_t s = 0; s < sizeof ndims / sizeof ndims[0]; s++) {
            bcae_array a, b;
            CHECK(bcae_array_alloc(&a, dtype, ndims[s], shapes[s], &err) == BCAE_OK);
            size_t n = bcae_array_count(&a);
            for (size_t i = 0; i < n; i++) {
                if (dt) ((float *)a.data)[i] = (float)i * 0.25f - 3.0f;
                else ((uint16_t *)a.data)[i] = (uint16_t)(i * 2654435761u);
            }
            char *path = tmp_path("rt.npy");
            CHECK_MSG(bcae_npy_write(path, &a, &err) == BCAE_OK, "%s", err.message);

            /* On disk: format 1.0, data 64-aligned, NumPy's dict text. */
            unsigned char head[256];
            FILE *fp = fopen(path, "rb");
            size_t got = fp ? fread(head, 1, sizeof head, fp) : 0;
            if (fp) fclose(fp);
            CHECK(got >= 10 && memcmp(head, "\x93NUMPY\x01\x00", 8) == 0);
            size_t hlen = (size_t)head[8] | (size_t)head[9] << 8;
            CHECK((10 + hlen) % 64 == 0);
            CHECK(head[10 + hlen - 1] == '\n');
            CHECK(memcmp(head + 10, dt ? "{'descr': '<f4'" : "{'descr': '<u2'", 15) == 0);
            if (ndims[s] == 1) CHECK(strstr((char *)head + 10, "'shape': (7,)") != NULL);
            if (ndims[s] == 0) CHECK(strstr((char *)head + 10, "'shape': ()") != NULL);

            CHECK_MSG(bcae_npy_read(path, &b, &err) == BCAE_OK, "%s", err.message);
            CHECK(b.dtype == dtype && b.ndim == ndims[s]);
            for (int d = 0; d < ndims[s]; d++) CHECK(b.shape[d] == shapes[s][d]);
            CHECK(n == 0 || memcmp(a.data, b.data, n * bcae_dtype_size(dtype)) == 0);
            bcae_array_free(&b);
            bcae_array_free(&a);
            unlink(path);
        }
    }

    /* Only <u2 and <f4 are written; the destination is left alone on failure. */
    size_t three = 3;
    bcae_array a;
    for (int dt = 0; dt < BCAE_DTYPE_COUNT; dt++) {
        if (dt == BCAE_DTYPE_U16 || dt == BCAE_DTYPE_F32) continue;
        CHECK(bcae_array_alloc(&a, (bcae_dtype)dt, 1, &three, &err) == BCAE_OK);
        char *path = tmp_path("never.npy");
        CHECK(bcae_npy_write(path, &a, &err) == BCAE_ERR_UNSUPPORTED);
        CHECK(strstr(err.message, path) != NULL);
        CHECK(access(path, F_OK) != 0);
        bcae_array_free(&a);
    }
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_U16, 1, &three, &err) == BCAE_OK);
    CHECK(bcae_npy_write("/nonexistent-dir/x.npy", &a, &err) == BCAE_ERR_IO);
    CHECK(strstr(err.message, "/nonexistent-dir/x.npy") != NULL);
    bcae_array_free(&a);

    CHECK(bcae_npy_read(tmp_path("missing.npy"), &a, &err) == BCAE_ERR_IO);
    CHECK(strstr(err.message, "missing.npy") != NULL);
    CHECK(bcae_npy_read(tmpdir, &a, &err) == BCAE_ERR_IO); /* a folder */
}

/* ------------------------------------------------------------------ */
/* Crafted files in every dtype, byte order, memory order and version   */
/* ------------------------------------------------------------------ */

/* A normal (or zero) double that is exact in binary16, as its bits. */
static uint16_t half_bits(double v)
{
    if (v == 0) return 0;
    uint16_t sign = v < 0 ? 0x8000 : 0;
    if (v < 0) v = -v;
    int e;
    double m = frexp(v, &e); /* v = m 2^e, m in [0.5, 1) */
    unsigned frac = (unsigned)((m * 2 - 1) * 1024);
    return (uint16_t)(sign | (unsigned)(e - 1 + 15) << 10 | frac);
}

/* Value of element i of the test arrays: representable in every dtype. */
static double crafted_value(bcae_dtype dt, size_t i)
{
    if (dt == BCAE_DTYPE_BOOL) return (double)(i % 3 == 0);
    int is_signed = dt == BCAE_DTYPE_I8 || dt == BCAE_DTYPE_I16 || dt == BCAE_DTYPE_I32 ||
                    dt == BCAE_DTYPE_I64;
    int is_float = dt == BCAE_DTYPE_F16 || dt == BCAE_DTYPE_F32 || dt == BCAE_DTYPE_F64;
    if (is_float) return (double)i * 0.5 - 4.0;
    if (is_signed) return (double)i - 10.0;
    return (double)(i * 5);
}

/* Element bytes in little-endian order. */
static void encode_le(bcae_dtype dt, double v, unsigned char *out)
{
    uint64_t bits = 0;
    switch (dt) {
    case BCAE_DTYPE_F16: bits = half_bits(v); break;
    case BCAE_DTYPE_F32: {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, 4);
        bits = u;
        break;
    }
    case BCAE_DTYPE_F64: memcpy(&bits, &v, 8); break;
    default: bits = (uint64_t)(int64_t)v; break;
    }
    for (size_t k = 0; k < bcae_dtype_size(dt); k++) out[k] = (unsigned char)(bits >> (8 * k));
}

static const char *kind_of(bcae_dtype dt)
{
    switch (dt) {
    case BCAE_DTYPE_BOOL: return "b";
    case BCAE_DTYPE_U8: case BCAE_DTYPE_U16: case BCAE_DTYPE_U32: case BCAE_DTYPE_U64: return "u";
    case BCAE_DTYPE_I8: case BCAE_DTYPE_I16: case BCAE_DTYPE_I32: case BCAE_DTYPE_I64: return "i";
    default: return "f";
    }
}

static int host_little(void)
{
    uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b;
}

static void test_crafted_dtypes(void)
{
    const size_t shape[3] = {2, 3, 4};
    const size_t n = 24;
    const char orders[] = {'<', '>', '|', '=', 0};
    int cases = 0;
    for (int dt = 0; dt < BCAE_DTYPE_COUNT; dt++) {
        size_t item = bcae_dtype_size((bcae_dtype)dt);
        for (size_t oi = 0; oi < sizeof orders; oi++) {
            char order = orders[oi]; /* 0: no byte-order character at all */
            if (order == '|' && item != 1) continue;
            int big = order == '>' || ((order == '=' || order == 0) && !host_little());
            for (int fortran = 0; fortran < 2; fortran++)
                for (int major = 1; major <= 3; major++) {
                    unsigned char data[24 * 8];
                    for (size_t i = 0; i < n; i++) {
                        size_t a0 = i / 12, a1 = i / 4 % 3, a2 = i % 4;
                        size_t pos = fortran ? a0 + 2 * a1 + 6 * a2 : i;
                        unsigned char le[8];
                        encode_le((bcae_dtype)dt, crafted_value((bcae_dtype)dt, i), le);
                        for (size_t k = 0; k < item; k++)
                            data[pos * item + k] = big ? le[item - 1 - k] : le[k];
                    }
                    char descr[8], dict[160];
                    if (order) snprintf(descr, sizeof descr, "%c%s%zu", order, kind_of((bcae_dtype)dt), item);
                    else snprintf(descr, sizeof descr, "%s%zu", kind_of((bcae_dtype)dt), item);
                    snprintf(dict, sizeof dict,
                             "{'descr': '%s', 'fortran_order': %s, 'shape': (2, 3, 4), }", descr,
                             fortran ? "True" : "False");
                    size_t len;
                    unsigned char *b = build_npy(major, dict, data, n * item, &len);
                    bcae_array a;
                    bcae_error err;
                    bcae_status st = bcae_npy_read_buffer(b, len, "crafted.npy", &a, &err);
                    CHECK_MSG(st == BCAE_OK, "%s v%d: %s", dict, major, err.message);
                    if (st == BCAE_OK) {
                        CHECK(a.dtype == (bcae_dtype)dt && a.ndim == 3);
                        CHECK(a.shape[0] == shape[0] && a.shape[1] == shape[1] &&
                              a.shape[2] == shape[2]);
                        int same = 1;
                        for (size_t i = 0; i < n; i++)
                            same &= bcae_array_get_f64(&a, i) == crafted_value((bcae_dtype)dt, i);
                        CHECK_MSG(same, "%s v%d: values differ", dict, major);
                        bcae_array_free(&a);
                    }
                    /* The same bytes through the file reader. */
                    char *path = tmp_path("crafted.npy");
                    CHECK(write_bytes(path, b, len));
                    st = bcae_npy_read(path, &a, &err);
                    CHECK_MSG(st == BCAE_OK, "%s v%d file: %s", dict, major, err.message);
                    if (st == BCAE_OK) {
                        int same = 1;
                        for (size_t i = 0; i < n; i++)
                            same &= bcae_array_get_f64(&a, i) == crafted_value((bcae_dtype)dt, i);
                        CHECK_MSG(same, "%s v%d file: values differ", dict, major);
                        bcae_array_free(&a);
                    }
                    free(b);
                    cases++;
                }
        }
    }
    /* 12 dtypes x {<, >, =, none}, and the 3 one-byte dtypes x '|'; x C/F x 3 versions. */
    CHECK(cases == (12 * 4 + 3) * 2 * 3);
    unlink(tmp_path("crafted.npy"));
}

/* Header syntax NumPy (Python's literal_eval) accepts: any key order,
 * whitespace, double quotes, trailing commas, 0-d and 1-d tuples. */
static void test_header_syntax(void)
{
    static const struct {
        const char *dict;
        int ndim;
        size_t shape[3];
        int fortran;
    } ok[] = {
        {"{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }", 2, {2, 3}, 0},
        {"{'shape': (2, 3), 'descr': '<u2', 'fortran_order': True}", 2, {2, 3}, 1},
        {"{ \"fortran_order\" :False ,\n\t\"shape\":( 2 ,3 , ) ,\"descr\" : \"<u2\" , }", 2, {2, 3}, 0},
        {"{'descr':'<u2','fortran_order':False,'shape':(6,)}", 1, {6}, 0},
        {"{'descr': '<u2', 'fortran_order': False, 'shape': ( 6 , ), }", 1, {6}, 0},
        {"  {'descr': '<u2', 'fortran_order': False, 'shape': (1, 6)}\r\n", 2, {1, 6}, 0},
        {"{'descr': '<u2', 'fortran_order': True, 'shape': (3, 2, 1)}", 3, {3, 2, 1}, 1},
    };
    uint16_t data[6] = {1, 2, 3, 4, 5, 6};
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        size_t len;
        unsigned char *b = build_npy(1, ok[k].dict, data, sizeof data, &len);
        bcae_array a;
        bcae_error err;
        bcae_status st = bcae_npy_read_buffer(b, len, "syntax.npy", &a, &err);
        CHECK_MSG(st == BCAE_OK, "%s: %s", ok[k].dict, err.message);
        if (st == BCAE_OK) {
            CHECK(a.ndim == ok[k].ndim);
            for (int d = 0; d < a.ndim; d++) CHECK(a.shape[d] == ok[k].shape[d]);
            /* (2,3) Fortran: element (i,j) is at i + 2j. */
            if (ok[k].fortran && a.ndim == 2) CHECK(((uint16_t *)a.data)[1] == 3);
            if (!ok[k].fortran) CHECK(((uint16_t *)a.data)[1] == 2);
            bcae_array_free(&a);
        }
        free(b);
    }

    /* 0-d arrays (one element) and zero-size arrays of any rank. */
    size_t len;
    float f = 2.5f;
    unsigned char *b = build_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", &f, 4, &len);
    bcae_array a;
    bcae_error err;
    CHECK(bcae_npy_read_buffer(b, len, "scalar.npy", &a, &err) == BCAE_OK);
    CHECK(a.ndim == 0 && bcae_array_count(&a) == 1 && bcae_array_get_f64(&a, 0) == 2.5);
    bcae_array_free(&a);
    free(b);
    b = build_npy(1, "{'descr': '>f8', 'fortran_order': True, 'shape': (3, 0, 18446744073709551615), }",
                  NULL, 0, &len);
    CHECK_MSG(bcae_npy_read_buffer(b, len, "empty.npy", &a, &err) == BCAE_OK, "%s", err.message);
    CHECK(a.ndim == 3 && bcae_array_count(&a) == 0 && a.shape[2] == SIZE_MAX);
    bcae_array_free(&a);
    free(b);
    /* The zero last, after dimensions whose product overflows: empty all the
     * same (libFuzzer found the array layer refusing it, in a message that
     * did not name the file). */
    b = build_npy(1, "{'descr': '<u2', 'fortran_order': True, 'shape': (15, 3838615082087, 355158, 55158, 0), }",
                  NULL, 0, &len);
    CHECK_MSG(bcae_npy_read_buffer(b, len, "empty.npy", &a, &err) == BCAE_OK, "%s", err.message);
    CHECK(a.ndim == 5 && bcae_array_count(&a) == 0 && a.shape[1] == 3838615082087u);
    bcae_array_free(&a);
    free(b);
}

/* ------------------------------------------------------------------ */
/* Malformed input: one case per class                                  */
/* ------------------------------------------------------------------ */

static const char *good_dict = "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }";

static void test_bad_magic(void)
{
    size_t len;
    unsigned char *b = build_npy(1, good_dict, "\0\0\0\0\0\0\0\0\0\0\0\0", 12, &len);
    b[1] = 'n';
    expect_fail_bytes("bad magic", b, len, BCAE_ERR_FORMAT, "bad magic");
    expect_fail_bytes("empty file", b, 0, BCAE_ERR_FORMAT, "bad magic");
    expect_fail_bytes("magic cut short", (const unsigned char *)"\x93NUM", 4, BCAE_ERR_FORMAT,
                      "bad magic");
    free(b);
}

static void test_truncated_prefix(void)
{
    expect_fail_bytes("no version", (const unsigned char *)"\x93NUMPY\x01", 7, BCAE_ERR_FORMAT,
                      "truncated");
    expect_fail_bytes("no header length", (const unsigned char *)"\x93NUMPY\x01\x00\x10", 9,
                      BCAE_ERR_FORMAT, "truncated");
    expect_fail_bytes("v2 short length", (const unsigned char *)"\x93NUMPY\x02\x00\x10\x00\x00",
                      11, BCAE_ERR_FORMAT, "truncated");
}

/* A header length so short that the prefix the reader has already read (the
 * 12 bytes of a version-2 prefix) runs past the end of prefix + header: the
 * reader once copied those 12 bytes into a block of prefix + hlen + 1 = 11
 * and then read "prefix + hlen - got" (wrapped to ~2^64) bytes after it, a
 * heap overflow as long as the file was big enough. Every such file must
 * fail cleanly, from memory and from a file, short or long. */
static void test_tiny_header_length(void)
{
    static const size_t sizes[] = {10, 11, 12, 13, 64, 100000};
    unsigned char *b = calloc(100000, 1);
    for (int major = 1; major <= 3; major++) {
        size_t prefix = major == 1 ? 10 : 12;
        for (unsigned hlen = 0; hlen < 4; hlen++) {
            for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
                size_t len = sizes[k];
                if (len < prefix) continue;
                memset(b, 0, len);
                memcpy(b, "\x93NUMPY", 6);
                b[6] = (unsigned char)major;
                b[8] = (unsigned char)hlen;
                char label[64];
                snprintf(label, sizeof label, "v%d.0 hlen %u, %zu bytes", major, hlen, len);
                /* Zero bytes where a dict belongs: not a dict, or cut off. */
                expect_fail_bytes(label, b, len, BCAE_ERR_FORMAT, ".npy header");
            }
        }
    }
    /* The reproducer from the report, byte for byte: 10 bytes of prefix
     * with a header length of 0, then 100000 zero bytes. */
    unsigned char *r = calloc(100010, 1);
    memcpy(r, "\x93NUMPY\x01\x00\x00\x00", 10);
    expect_fail_bytes("report reproducer", r, 100010, BCAE_ERR_FORMAT, "not a dict");
    free(r);
    free(b);
}

/* A FIFO without a writer is refused at once instead of blocking the open
 * forever (the test would hang if it did). */
static void test_not_regular(void)
{
    bcae_array a;
    bcae_error err;
    char *fifo = tmp_path("fifo.npy");
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK(bcae_npy_read(fifo, &a, &err) == BCAE_ERR_IO);
    CHECK_MSG(strstr(err.message, fifo) && strstr(err.message, "FIFO"), "%s", err.message);
    CHECK(a.data == NULL);
    unlink(fifo);
    CHECK(bcae_npy_read(tmpdir, &a, &err) == BCAE_ERR_IO);
    CHECK_MSG(strstr(err.message, "folder"), "%s", err.message);
}

static void test_unsupported_version(void)
{
    size_t len;
    unsigned char *b = build_npy(1, good_dict, "\0\0\0\0\0\0\0\0\0\0\0\0", 12, &len);
    b[6] = 4;
    expect_fail_bytes("version 4.0", b, len, BCAE_ERR_UNSUPPORTED, "version 4.0");
    b[6] = 0;
    expect_fail_bytes("version 0.0", b, len, BCAE_ERR_UNSUPPORTED, "version 0.0");
    b[6] = 1;
    b[7] = 1;
    expect_fail_bytes("version 1.1", b, len, BCAE_ERR_UNSUPPORTED, "version 1.1");
    free(b);
}

static void test_header_length(void)
{
    size_t len;
    unsigned char *b = build_npy(1, good_dict, "\0\0\0\0\0\0\0\0\0\0\0\0", 12, &len);
    /* The header claims more bytes than the file holds. */
    b[8] = 0xff;
    b[9] = 0xff;
    expect_fail_bytes("header beyond file", b, len, BCAE_ERR_FORMAT, "beyond the end");
    free(b);
    /* Cut inside the header dict. */
    b = build_npy(1, good_dict, "\0\0\0\0\0\0\0\0\0\0\0\0", 12, &len);
    expect_fail_bytes("truncated header", b, 30, BCAE_ERR_FORMAT, "beyond the end");
    free(b);
    /* A 4 GiB header length (format 2.0) is refused before anything is read. */
    b = build_npy(2, good_dict, "\0\0\0\0\0\0\0\0\0\0\0\0", 12, &len);
    b[8] = b[9] = b[10] = b[11] = 0xff;
    expect_fail_bytes("huge header length", b, len, BCAE_ERR_FORMAT, "exceeds the limit");
    free(b);
    /* Header length shorter than the dict: the dict is cut. */
    b = build_npy(1, good_dict, "\0\0\0\0\0\0\0\0\0\0\0\0", 12, &len);
    b[8] = 20;
    b[9] = 0;
    expect_fail_bytes("short header length", b, len, BCAE_ERR_FORMAT, "unterminated key");
    free(b);
}

static void test_bad_dict(void)
{
    expect_fail_dict("unterminated dict", 1,
                     "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3)", 12,
                     BCAE_ERR_FORMAT, "not terminated");
    expect_fail_dict("unterminated after comma", 1,
                     "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3),", 12,
                     BCAE_ERR_FORMAT, "not terminated");
    expect_fail_dict("not a dict", 1, "['descr', '<u2']", 12, BCAE_ERR_FORMAT, "not a dict");
    expect_fail_dict("empty header", 1, "", 12, BCAE_ERR_FORMAT, "not a dict");
    expect_fail_dict("empty dict", 1, "{}", 0, BCAE_ERR_FORMAT, "lacks key 'descr'");
    expect_fail_dict("missing shape", 1, "{'descr': '<u2', 'fortran_order': False}", 12,
                     BCAE_ERR_FORMAT, "lacks key 'shape'");
    expect_fail_dict("missing fortran_order", 1, "{'descr': '<u2', 'shape': (2, 3)}", 12,
                     BCAE_ERR_FORMAT, "lacks key 'fortran_order'");
    expect_fail_dict("unknown key", 1,
                     "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}", 12,
                     BCAE_ERR_FORMAT, "unexpected key 'extra'");
    expect_fail_dict("duplicate key", 1,
                     "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), 'shape': (2, 3)}",
                     12, BCAE_ERR_FORMAT, "duplicate key 'shape'");
    expect_fail_dict("garbage after dict", 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3)} x",
                     12, BCAE_ERR_FORMAT, "after the dict");
    expect_fail_dict("missing colon", 1, "{'descr' '<u2', 'fortran_order': False, 'shape': (2, 3)}",
                     12, BCAE_ERR_FORMAT, "expected ':'");
    expect_fail_dict("missing comma", 1, "{'descr': '<u2' 'fortran_order': False, 'shape': (2, 3)}",
                     12, BCAE_ERR_FORMAT, "expected ','");
    expect_fail_dict("unquoted key", 1, "{descr: '<u2', 'fortran_order': False, 'shape': (2, 3)}",
                     12, BCAE_ERR_FORMAT, "quoted key");
    expect_fail_dict("unterminated string", 1, "{'descr': '<u2", 12, BCAE_ERR_FORMAT,
                     "unterminated descr");
    expect_fail_dict("escape in string", 1,
                     "{'des\\cr': '<u2', 'fortran_order': False, 'shape': (2, 3)}", 12,
                     BCAE_ERR_FORMAT, "escape");
}

static void test_bad_descr(void)
{
    static const struct {
        const char *descr;
        bcae_status status;
        const char *what;
    } bad[] = {
        {"'<x4'", BCAE_ERR_FORMAT, "bad descr"},
        {"''", BCAE_ERR_FORMAT, "bad descr"},
        {"'<'", BCAE_ERR_FORMAT, "bad descr"},
        {"'<u'", BCAE_ERR_FORMAT, "bad descr"},
        {"'<u2x'", BCAE_ERR_FORMAT, "bad descr"},
        {"'<u123'", BCAE_ERR_FORMAT, "bad descr"},
        {"'|u2'", BCAE_ERR_FORMAT, "no byte order"},
        {"'<u3'", BCAE_ERR_UNSUPPORTED, "unsupported dtype '<u3'"},
        {"'<f16'", BCAE_ERR_UNSUPPORTED, "unsupported dtype '<f16'"},
        {"'<f1'", BCAE_ERR_UNSUPPORTED, "unsupported dtype"},
        {"'<c8'", BCAE_ERR_UNSUPPORTED, "unsupported dtype '<c8'"},
        {"'<U5'", BCAE_ERR_UNSUPPORTED, "unsupported dtype"},
        {"'|S3'", BCAE_ERR_UNSUPPORTED, "unsupported dtype"},
        {"'|O'", BCAE_ERR_UNSUPPORTED, "unsupported dtype '|O'"},
        {"'<M8[ns]'", BCAE_ERR_UNSUPPORTED, "unsupported dtype '<M8[ns]'"},
        {"'<m8'", BCAE_ERR_UNSUPPORTED, "unsupported dtype"},
        {"'>c16'", BCAE_ERR_UNSUPPORTED, "unsupported dtype"},
        {"'|O8'", BCAE_ERR_UNSUPPORTED, "unsupported dtype"},
        {"'<M8'", BCAE_ERR_UNSUPPORTED, "unsupported dtype"},
        {"[('a', '<u2')]", BCAE_ERR_UNSUPPORTED, "structured"},
        {"<u2", BCAE_ERR_FORMAT, "quoted descr"},
        {"'\\x3cu2'", BCAE_ERR_FORMAT, "escape"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': %s, 'fortran_order': False, 'shape': (2, 3)}",
                 bad[k].descr);
        expect_fail_dict(bad[k].descr, 1, dict, 12, bad[k].status, bad[k].what);
    }
}

static void test_bad_shape(void)
{
    static const struct {
        const char *shape;
        bcae_status status;
        const char *what;
    } bad[] = {
        {"[2, 3]", BCAE_ERR_FORMAT, "not a tuple"},
        {"6", BCAE_ERR_FORMAT, "not a tuple"},
        {"(6)", BCAE_ERR_FORMAT, "(n,)"},
        {"(2, x)", BCAE_ERR_FORMAT, "tuple of integers"},
        {"(2,, 3)", BCAE_ERR_FORMAT, "tuple of integers"},
        {"(2 3)", BCAE_ERR_FORMAT, "bad shape tuple"},
        {"(2.0, 3)", BCAE_ERR_FORMAT, "bad shape tuple"},
        {"(2, 3", BCAE_ERR_FORMAT, "bad shape tuple"}, /* runs into '}' */
        {"(,)", BCAE_ERR_FORMAT, "tuple of integers"},
        {"(-2, 3)", BCAE_ERR_FORMAT, "negative dimension"},
        {"(2, -0)", BCAE_ERR_FORMAT, "negative dimension"},
        {"(99999999999999999999999, 1)", BCAE_ERR_FORMAT, "dimension too large"},
        /* 2^32 * 2^32 * 2 elements: the product overflows 64 bits. */
        {"(4294967296, 4294967296, 2)", BCAE_ERR_FORMAT, "size overflows"},
        /* Fits in elements but not in bytes (x2 for <u2). */
        {"(9223372036854775808,)", BCAE_ERR_FORMAT, "size overflows"},
        {"(1, 1, 1, 1, 1, 1, 1, 1, 1)", BCAE_ERR_UNSUPPORTED, "more than 8 dimensions"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '<u2', 'fortran_order': False, 'shape': %s}",
                 bad[k].shape);
        expect_fail_dict(bad[k].shape, 1, dict, 12, bad[k].status, bad[k].what);
    }
    /* A tuple that never closes before the header ends. */
    expect_fail_dict("unclosed tuple", 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3",
                     12, BCAE_ERR_FORMAT, "not closed");
}

static void test_bad_fortran_order(void)
{
    static const char *bad[] = {"0", "1", "'False'", "true", "Truex", "None", ""};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '<u2', 'fortran_order': %s, 'shape': (2, 3)}",
                 bad[k]);
        expect_fail_dict(bad[k], 1, dict, 12, BCAE_ERR_FORMAT, "fortran_order");
    }
}

static void test_data_size(void)
{
    expect_fail_dict("truncated data", 1, good_dict, 11, BCAE_ERR_FORMAT, "truncated .npy data");
    expect_fail_dict("no data", 3, good_dict, 0, BCAE_ERR_FORMAT, "truncated .npy data");
    expect_fail_dict("extra trailing bytes", 2, good_dict, 13, BCAE_ERR_FORMAT,
                     "1 extra bytes");
    /* A huge (but not overflowing) shape is refused for want of bytes,
     * before any allocation. */
    expect_fail_dict("huge shape, tiny file", 1,
                     "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000)}",
                     16, BCAE_ERR_FORMAT, "truncated .npy data");
    /* Zero-size arrays must have no data at all. */
    expect_fail_dict("zero-size with data", 1,
                     "{'descr': '<u2', 'fortran_order': False, 'shape': (0, 3)}", 2,
                     BCAE_ERR_FORMAT, "2 extra bytes");
}

static void test_null_arguments(void)
{
    bcae_array a;
    bcae_error err;
    CHECK(bcae_npy_read_buffer(NULL, 5, "x.npy", &a, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_npy_read_buffer(NULL, 0, NULL, &a, &err) == BCAE_ERR_FORMAT);
    CHECK(strstr(err.message, "<buffer>") != NULL);
    CHECK(bcae_npy_read_buffer("x", 1, "x.npy", NULL, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_npy_read(NULL, &a, NULL) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_npy_write(tmp_path("x.npy"), NULL, &err) == BCAE_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "npytest.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_array_helpers();
    test_write_read_roundtrip();
    test_crafted_dtypes();
    test_header_syntax();
    test_bad_magic();
    test_truncated_prefix();
    test_tiny_header_length();
    test_not_regular();
    test_unsupported_version();
    test_header_length();
    test_bad_dict();
    test_bad_descr();
    test_bad_shape();
    test_bad_fortran_order();
    test_data_size();
    test_null_arguments();
    rmdir(tmpdir);
    return check_report("test_npy");
}
