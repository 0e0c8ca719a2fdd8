/*
 * safetensors reader/writer and SHA-256: round trips of every dtype, the
 * writer's layout, one hostile file per class of malformation (each must
 * fail with a message naming the file and, where one is at fault, the
 * tensor), and the model fingerprint.
 *
 * Two extra modes serve tests/torch_ref/safetensors_interop.py, which
 * checks us against the Python reference's own reader and writer:
 *   test_safetensors dump FILE      one JSON object: tensors (name, dtype,
 *                                   shape, sha256 of the little-endian
 *                                   data), metadata, fingerprint
 *   test_safetensors copy IN OUT    read IN and write it again as OUT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "core/sha256.h"
#include "io/safetensors.h"

/* ------------------------------------------------------------------ */
/* SHA-256                                                             */
/* ------------------------------------------------------------------ */

static int digest_is(const uint8_t d[32], const char *hex)
{
    char got[65];
    bcae_sha256_hex(d, got);
    if (strcmp(got, hex)) {
        fprintf(stderr, "sha256 %s, expected %s\n", got, hex);
        return 0;
    }
    return 1;
}

static void test_sha256(void)
{
    uint8_t d[32];
    /* FIPS 180-4 examples (NIST's "SHA256.pdf") and the classic long ones. */
    bcae_sha256("abc", 3, d);
    CHECK(digest_is(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    bcae_sha256("", 0, d);
    CHECK(digest_is(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    bcae_sha256(m448, strlen(m448), d);
    CHECK(digest_is(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    bcae_sha256(m896, strlen(m896), d);
    CHECK(digest_is(d, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));

    /* One million 'a', fed in uneven pieces to exercise the block buffer. */
    static char a[1000000];
    memset(a, 'a', sizeof a);
    bcae_sha256_ctx c;
    bcae_sha256_init(&c);
    size_t at = 0, step = 1;
    while (at < sizeof a) {
        size_t n = step < sizeof a - at ? step : sizeof a - at;
        bcae_sha256_update(&c, a + at, n);
        at += n;
        step = step * 7 % 191 + 1;
    }
    bcae_sha256_final(&c, d);
    CHECK(digest_is(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));

    /* Lengths around the padding boundary (55, 56, 63, 64 bytes) agree
     * between one-shot and byte-at-a-time hashing. */
    for (size_t n = 50; n <= 130; n++) {
        uint8_t one[32], many[32];
        bcae_sha256(a, n, one);
        bcae_sha256_init(&c);
        for (size_t i = 0; i < n; i++) bcae_sha256_update(&c, a + i, 1);
        bcae_sha256_final(&c, many);
        CHECK(!memcmp(one, many, 32));
    }
}

/* ------------------------------------------------------------------ */
/* Round trips                                                         */
/* ------------------------------------------------------------------ */

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

#define NDT 13
static const bcae_dtype all_dtypes[NDT] = {
    BCAE_DTYPE_BOOL, BCAE_DTYPE_U8,  BCAE_DTYPE_I8,  BCAE_DTYPE_U16, BCAE_DTYPE_I16,
    BCAE_DTYPE_U32,  BCAE_DTYPE_I32, BCAE_DTYPE_U64, BCAE_DTYPE_I64, BCAE_DTYPE_F16,
    BCAE_ST_DTYPE_BF16, BCAE_DTYPE_F32, BCAE_DTYPE_F64};

static void test_round_trip(void)
{
    const char *path = "test_safetensors_roundtrip.safetensors";
    /* One tensor per dtype, shapes of several ranks; then a scalar, an
     * empty tensor and a name that needs escaping. */
    static const size_t shapes[NDT][3] = {{3, 1, 1}, {2, 3, 1}, {5, 1, 1}, {2, 2, 2},
                                          {7, 1, 1}, {1, 1, 1}, {4, 3, 1}, {3, 1, 1},
                                          {2, 2, 1}, {3, 3, 1}, {5, 1, 1}, {2, 3, 4},
                                          {6, 1, 1}};
    static const int ndims[NDT] = {1, 2, 1, 3, 1, 3, 2, 1, 2, 2, 1, 3, 1};
    bcae_st_entry e[NDT + 3];
    char names[NDT][32];
    unsigned char *bufs[NDT];
    size_t total = 0;
    for (int i = 0; i < NDT; i++) {
        size_t item = bcae_st_itemsize(all_dtypes[i]);
        size_t count = 1;
        for (int d = 0; d < ndims[i]; d++) count *= shapes[i][d];
        bufs[i] = malloc(count * item);
        for (size_t k = 0; k < count * item; k++) bufs[i][k] = (unsigned char)(k * 37 + i);
        if (all_dtypes[i] == BCAE_DTYPE_BOOL)
            for (size_t k = 0; k < count; k++) bufs[i][k] &= 1;
        snprintf(names[i], sizeof names[i], "layer.%d.%s", i, bcae_st_dtype_name(all_dtypes[i]));
        e[i] = (bcae_st_entry){names[i], all_dtypes[i], ndims[i], shapes[i], bufs[i]};
        total += count * item;
    }
    const float scalar = 3.5f;
    const size_t zero_shape[2] = {4, 0};
    e[NDT] = (bcae_st_entry){"scalar", BCAE_DTYPE_F32, 0, NULL, &scalar};
    e[NDT + 1] = (bcae_st_entry){"empty", BCAE_DTYPE_F64, 2, zero_shape, NULL};
    const double odd_value = -1.25;
    const size_t one = 1;
    e[NDT + 2] = (bcae_st_entry){"quote\" back\\slash tab\t \xc3\xa9 \xf0\x9f\x98\x80",
                                 BCAE_DTYPE_F64, 1, &one, &odd_value};
    const char *keys[] = {"arch", "note", "\xce\xbb"};
    const char *values[] = {"bcae-2d", "line1\nline2 \"q\" \x01", ""};
    bcae_error err;
    CHECK(bcae_st_write(path, e, NDT + 3, keys, values, 3, &err) == BCAE_OK);

    /* The layout the writer promises. */
    size_t len;
    unsigned char *raw = slurp(path, &len);
    CHECK(raw != NULL && len >= 8);
    if (!raw) return;
    uint64_t hlen = le64(raw);
    CHECK(hlen % 8 == 0);
    CHECK(len == 8 + hlen + total + sizeof scalar + sizeof odd_value);
    CHECK(raw[8] == '{');
    CHECK(raw[8 + hlen - 1] == ' ' || raw[8 + hlen - 1] == '}');

    bcae_st_file f;
    CHECK(bcae_st_read(path, &f, &err) == BCAE_OK);
    CHECK(f.count == NDT + 3);
    for (int i = 0; i < NDT && i < (int)f.count; i++) {
        const bcae_st_tensor *t = &f.tensors[i]; /* the writer keeps the order */
        CHECK(!strcmp(t->name, names[i]));
        CHECK(t->dtype == all_dtypes[i]);
        CHECK(t->ndim == ndims[i]);
        for (int d = 0; d < ndims[i]; d++) CHECK(t->shape[d] == shapes[i][d]);
        CHECK(t->nbytes == bcae_st_count(t) * bcae_st_itemsize(t->dtype));
        CHECK(!memcmp(t->data, bufs[i], t->nbytes));
        CHECK((uintptr_t)t->data % bcae_st_itemsize(t->dtype) == 0);
        CHECK(bcae_st_find(&f, names[i]) == t);
    }
    const bcae_st_tensor *s = bcae_st_find(&f, "scalar");
    CHECK(s && s->ndim == 0 && s->nbytes == 4 && !memcmp(s->data, &scalar, 4));
    const bcae_st_tensor *z = bcae_st_find(&f, "empty");
    CHECK(z && z->ndim == 2 && z->shape[1] == 0 && z->nbytes == 0 && bcae_st_count(z) == 0);
    const bcae_st_tensor *q = bcae_st_find(&f, e[NDT + 2].name);
    CHECK(q && q->nbytes == 8 && !memcmp(q->data, &odd_value, 8));
    CHECK(bcae_st_find(&f, "missing") == NULL);
    /* The three given, then the checksum the writer adds. */
    CHECK(f.nmeta == 4 && !strcmp(f.meta_keys[3], BCAE_ST_CHECKSUM_KEY));
    CHECK(bcae_st_meta(&f, "arch") && !strcmp(bcae_st_meta(&f, "arch"), "bcae-2d"));
    CHECK(bcae_st_meta(&f, "note") && !strcmp(bcae_st_meta(&f, "note"), values[1]));
    CHECK(bcae_st_meta(&f, "\xce\xbb") && !strcmp(bcae_st_meta(&f, "\xce\xbb"), ""));
    CHECK(bcae_st_meta(&f, "missing") == NULL);

    /* The same bytes through the buffer reader. */
    bcae_st_file g;
    CHECK(bcae_st_read_buffer(raw, len, "mem", &g, &err) == BCAE_OK);
    CHECK(g.count == f.count && g.nmeta == f.nmeta);

    /* The fingerprint is the SHA-256 of the data buffer as stored... */
    uint8_t fp[32], fp2[32], want[32];
    bcae_sha256(raw + 8 + hlen, len - 8 - hlen, want);
    CHECK(bcae_st_fingerprint(&f, fp) == BCAE_OK);
    CHECK(!memcmp(fp, want, 32));
    CHECK(bcae_st_fingerprint(&g, fp2) == BCAE_OK);
    CHECK(!memcmp(fp2, want, 32));
    bcae_st_free(&g);
    /* ...so metadata does not change it and one weight does. */
    CHECK(bcae_st_write(path, e, NDT + 3, keys, values, 1, &err) == BCAE_OK);
    CHECK(bcae_st_read(path, &g, &err) == BCAE_OK);
    CHECK(bcae_st_fingerprint(&g, fp2) == BCAE_OK && !memcmp(fp, fp2, 32));
    bcae_st_free(&g);
    bufs[11][5] ^= 1;
    CHECK(bcae_st_write(path, e, NDT + 3, keys, values, 3, &err) == BCAE_OK);
    CHECK(bcae_st_read(path, &g, &err) == BCAE_OK);
    CHECK(bcae_st_fingerprint(&g, fp2) == BCAE_OK && memcmp(fp, fp2, 32) != 0);
    bcae_st_free(&g);

    bcae_st_free(&f);
    bcae_st_free(&f); /* twice is harmless */
    free(raw);
    for (int i = 0; i < NDT; i++) free(bufs[i]);
    remove(path);

    /* No tensors, no metadata: only the checksum of no data, padded. */
    CHECK(bcae_st_write(path, NULL, 0, NULL, NULL, 0, &err) == BCAE_OK);
    raw = slurp(path, &len);
    static const char empty_header[] =
        "{\"__metadata__\":{\"bcae.sha256\":"
        "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}}";
    size_t eh = sizeof empty_header - 1, padded = (eh + 7) / 8 * 8;
    CHECK(raw && len == 8 + padded && le64(raw) == padded &&
          !memcmp(raw + 8, empty_header, eh));
    free(raw);
    CHECK(bcae_st_read(path, &f, &err) == BCAE_OK && f.count == 0 && f.nmeta == 1);
    CHECK(bcae_st_fingerprint(&f, fp) == BCAE_OK);
    CHECK(digest_is(fp, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    bcae_st_free(&f);
    remove(path);
}

static void test_write_refusals(void)
{
    const char *path = "test_safetensors_refused.safetensors";
    float v[2] = {1, 2};
    size_t shape[1] = {2};
    bcae_error err;
    bcae_st_entry dup[2] = {{"a", BCAE_DTYPE_F32, 1, shape, v}, {"a", BCAE_DTYPE_F32, 1, shape, v}};
    CHECK(bcae_st_write(path, dup, 2, NULL, NULL, 0, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "duplicate") && strstr(err.message, "'a'"));
    bcae_st_entry reserved = {"__metadata__", BCAE_DTYPE_F32, 1, shape, v};
    CHECK(bcae_st_write(path, &reserved, 1, NULL, NULL, 0, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bcae_st_entry bad_utf8 = {"a\xff", BCAE_DTYPE_F32, 1, shape, v};
    CHECK(bcae_st_write(path, &bad_utf8, 1, NULL, NULL, 0, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bcae_st_entry bad_dtype = {"a", (bcae_dtype)99, 1, shape, v};
    CHECK(bcae_st_write(path, &bad_dtype, 1, NULL, NULL, 0, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bcae_st_entry no_data = {"a", BCAE_DTYPE_F32, 1, shape, NULL};
    CHECK(bcae_st_write(path, &no_data, 1, NULL, NULL, 0, &err) == BCAE_ERR_INVALID_ARGUMENT);
    size_t huge[2] = {SIZE_MAX / 2, 4};
    bcae_st_entry too_big = {"a", BCAE_DTYPE_F32, 2, huge, v};
    CHECK(bcae_st_write(path, &too_big, 1, NULL, NULL, 0, &err) == BCAE_ERR_INVALID_ARGUMENT);
    const char *keys[] = {"k", "k"}, *values[] = {"1", "2"};
    bcae_st_entry ok = {"a", BCAE_DTYPE_F32, 1, shape, v};
    CHECK(bcae_st_write(path, &ok, 1, keys, values, 2, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_st_write("/nonexistent-dir/x.safetensors", &ok, 1, NULL, NULL, 0, &err) ==
          BCAE_ERR_IO);
    /* Nothing was left behind by the refusals. */
    FILE *fp = fopen(path, "rb");
    CHECK(fp == NULL);
    if (fp) fclose(fp);
}

/* ------------------------------------------------------------------ */
/* Hostile files                                                       */
/* ------------------------------------------------------------------ */

/* A file of the given header (padded to 8 with spaces unless raw) and
 * data_len bytes of data valued 0, 1, 2, ... */
static unsigned char *make_file(const char *json, size_t data_len, int raw, size_t *len)
{
    size_t n = strlen(json);
    size_t padded = raw ? n : (n + 7) / 8 * 8;
    *len = 8 + padded + data_len;
    unsigned char *b = malloc(*len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(b + 8, json, n);
    memset(b + 8 + n, ' ', padded - n);
    for (size_t i = 0; i < data_len; i++) b[8 + padded + i] = (unsigned char)i;
    return b;
}

/* Reads json + data and checks the status and that the message holds
 * every fragment given (and always the file's name). */
static void expect_status(const char *json, size_t data_len, bcae_status want, const char *frag1,
                          const char *frag2, int line)
{
    size_t len;
    unsigned char *b = make_file(json, data_len, 0, &len);
    bcae_st_file f;
    bcae_error err = {0, ""};
    bcae_status st = bcae_st_read_buffer(b, len, "hostile.safetensors", &f, &err);
    CHECK_MSG(st == want, "line %d: status %d, expected %d (%s) for %s", line, st, want,
              err.message, json);
    if (st != BCAE_OK) {
        CHECK_MSG(strstr(err.message, "hostile.safetensors") != NULL, "line %d: %s", line,
                  err.message);
        CHECK_MSG(!frag1 || strstr(err.message, frag1), "line %d: '%s' lacks '%s'", line,
                  err.message, frag1);
        CHECK_MSG(!frag2 || strstr(err.message, frag2), "line %d: '%s' lacks '%s'", line,
                  err.message, frag2);
        CHECK(f.count == 0 && f.tensors == NULL && f.blob == NULL);
    }
    bcae_st_free(&f);
    free(b);
}

#define OK(json, n) expect_status(json, n, BCAE_OK, NULL, NULL, __LINE__)
#define BAD(json, n, frag) expect_status(json, n, BCAE_ERR_FORMAT, frag, NULL, __LINE__)
#define BAD_T(json, n, tensor, frag) expect_status(json, n, BCAE_ERR_FORMAT, tensor, frag, __LINE__)
#define UNSUP(json, n, frag) expect_status(json, n, BCAE_ERR_UNSUPPORTED, frag, NULL, __LINE__)

static void test_hostile_prefix(void)
{
    bcae_st_file f;
    bcae_error err;
    unsigned char tiny[5] = {1, 0, 0, 0, 0};
    CHECK(bcae_st_read_buffer(tiny, sizeof tiny, "t", &f, &err) == BCAE_ERR_FORMAT);
    CHECK(bcae_st_read_buffer(NULL, 0, "t", &f, &err) == BCAE_ERR_FORMAT);
    CHECK(bcae_st_read_buffer(NULL, 5, "t", &f, &err) == BCAE_ERR_INVALID_ARGUMENT);

    size_t len;
    unsigned char *b = make_file("{}", 0, 0, &len);
    /* Header length past the end of the file, and past the 100 MiB cap. */
    b[0] = 9;
    CHECK(bcae_st_read_buffer(b, len, "t", &f, &err) == BCAE_ERR_FORMAT);
    CHECK(strstr(err.message, "truncated") != NULL);
    const uint64_t lengths[] = {(uint64_t)200 << 20, UINT64_MAX, (uint64_t)1 << 63};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        for (int k = 0; k < 8; k++) b[k] = (unsigned char)(lengths[i] >> (8 * k));
        CHECK(bcae_st_read_buffer(b, len, "t", &f, &err) == BCAE_ERR_FORMAT);
        CHECK(strstr(err.message, "exceeds the limit") != NULL);
    }
    /* A zero-length header is no JSON object. */
    memset(b, 0, 8);
    CHECK(bcae_st_read_buffer(b, 8, "t", &f, &err) == BCAE_ERR_FORMAT);
    free(b);

    /* The file reader: missing, a folder, truncated on disk. */
    CHECK(bcae_st_read("/nonexistent/x.safetensors", &f, &err) == BCAE_ERR_IO);
    CHECK(strstr(err.message, "/nonexistent/x.safetensors") != NULL);
    CHECK(bcae_st_read(".", &f, &err) == BCAE_ERR_IO);
    const char *path = "test_safetensors_trunc.safetensors";
    b = make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, 0,
                  &len);
    for (size_t cut = 0; cut < len; cut += 3) {
        FILE *fp = fopen(path, "wb");
        fwrite(b, 1, cut, fp);
        fclose(fp);
        CHECK(bcae_st_read(path, &f, &err) == BCAE_ERR_FORMAT);
        CHECK(strstr(err.message, path) != NULL);
    }
    FILE *fp = fopen(path, "wb");
    fwrite(b, 1, len, fp);
    fclose(fp);
    CHECK(bcae_st_read(path, &f, &err) == BCAE_OK && f.count == 1);
    bcae_st_free(&f);
    remove(path);
    free(b);
}

/* One tensor entry "w" with the given body, for the JSON cases below. */
#define W(body) "{\"w\":{" body "}}"
#define F32x2 "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"

static void test_hostile_json(void)
{
    OK(W(F32x2), 8);
    OK("{}", 0);
    OK("{ \"w\" : { \"shape\" : [ 2 ] ,\n\t\"data_offsets\":[0 , 8],\r\"dtype\":\"F32\" } }", 8);
    OK("{\"__metadata__\":{},\"w\":{" F32x2 "}}", 8);

    /* Not an object, not where it should start, not where it should end. */
    BAD(" {}", 0, "not a JSON object");
    BAD("[]", 0, "not a JSON object");
    BAD("{", 0, "end of the header");
    BAD("{\"w\":{" F32x2 "}", 8, "end of the header");
    BAD("{}x", 0, "after the header object");
    BAD("{},", 0, "after the header object");
    BAD(W(F32x2) "{}", 8, "after the header object");
    BAD("{\"w\":{" F32x2 "},}", 8, "expected a string");
    BAD("{\"w\" {" F32x2 "}}", 8, "expected ':'");
    BAD("{\"w\":{" F32x2 "} \"v\":1}", 8, "expected ',' or '}'");
    BAD("{w:{" F32x2 "}}", 8, "expected a string");
    {   /* NUL padding instead of spaces. */
        size_t len;
        unsigned char *b = make_file("{}\0\0\0\0\0\0", 0, 0, &len);
        bcae_st_file f;
        bcae_error err;
        memset(b + 10, 0, 6);
        CHECK(bcae_st_read_buffer(b, len, "x", &f, &err) == BCAE_ERR_FORMAT);
        free(b);
    }

    /* Values of the wrong JSON type. */
    BAD("{\"w\":1}", 0, "must be an object");
    BAD("{\"w\":\"F32\"}", 0, "must be an object");
    BAD("{\"w\":[1]}", 0, "must be an object");
    BAD("{\"w\":null}", 0, "must be an object");
    BAD(W("\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]"), 8, "expected a string");
    BAD(W("\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]"), 8, "shape must be an array");
    BAD(W("\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]"), 8, "integer");
    BAD(W("\"dtype\":\"F32\",\"shape\":[[2]],\"data_offsets\":[0,8]"), 8, "integer");
    BAD(W("\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,8]"), 8, "integer");
    BAD_T(W("\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]"), 8, "'w'", "fraction");
    BAD(W("\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]"), 8, "fraction");
    BAD_T(W("\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]"), 8, "'w'", "negative");
    BAD(W("\"dtype\":\"F32\",\"shape\":[+2],\"data_offsets\":[0,8]"), 8, "integer");
    BAD(W("\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]"), 8, "leading zero");
    BAD(W("\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]"), 8, "integer");
    BAD(W("\"dtype\":\"F32\",\"shape\":[2 2],\"data_offsets\":[0,8]"), 8, "expected ','");
    BAD(W("\"dtype\":\"F32\",\"shape\":[99999999999999999999999],\"data_offsets\":[0,8]"), 8,
        "too large");
    BAD(W("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{}"), 8, "must be an array");

    /* Strings: escapes, UTF-8, control characters. */
    OK("{\"\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t\":{" F32x2 "}}", 8);
    BAD("{\"\\x41\":{" F32x2 "}}", 8, "bad escape");
    BAD("{\"\\u12\":{" F32x2 "}}", 8, "bad \\u escape");
    BAD("{\"\\u12G4\":{" F32x2 "}}", 8, "bad \\u escape");
    BAD("{\"\\ud800\":{" F32x2 "}}", 8, "lone surrogate");
    BAD("{\"\\ud800\\u0041\":{" F32x2 "}}", 8, "lone surrogate");
    BAD("{\"\\udc00\":{" F32x2 "}}", 8, "lone surrogate");
    BAD("{\"a\\u0000b\":{" F32x2 "}}", 8, "NUL");
    BAD("{\"a\tb\":{" F32x2 "}}", 8, "control character");
    BAD("{\"a\xff\":{" F32x2 "}}", 8, "UTF-8");
    BAD("{\"a\xc0\x80\":{" F32x2 "}}", 8, "UTF-8");            /* overlong NUL */
    BAD("{\"a\xed\xa0\x80\":{" F32x2 "}}", 8, "UTF-8");        /* encoded surrogate */
    BAD("{\"a\xf4\x90\x80\x80\":{" F32x2 "}}", 8, "UTF-8");    /* above U+10FFFF */
    BAD("{\"a\xe2\x82\":{" F32x2 "}}", 8, "UTF-8");            /* cut short */
    BAD("{\"abc", 0, "unterminated string");
    BAD("{\"abc\\\"}", 0, "unterminated string");
    {   /* The decoded name is what the escapes say. */
        size_t len;
        unsigned char *b = make_file("{\"\\u00e9\\ud83d\\ude00 \\\"q\\\" \\\\\":{" F32x2 "}}", 8,
                                     0, &len);
        bcae_st_file f;
        bcae_error err;
        CHECK(bcae_st_read_buffer(b, len, "x", &f, &err) == BCAE_OK);
        CHECK(f.count == 1 && !strcmp(f.tensors[0].name, "\xc3\xa9\xf0\x9f\x98\x80 \"q\" \\"));
        bcae_st_free(&f);
        free(b);
    }

    /* Keys of a tensor: duplicates, unknown, missing. */
    BAD_T(W("\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, "'w'",
          "duplicate key 'dtype'");
    BAD_T(W(F32x2 ",\"extra\":\"x\""), 8, "'w'", "unexpected key 'extra'");
    BAD_T(W("\"dtype\":\"F32\",\"shape\":[2]"), 8, "'w'", "lacks 'data_offsets'");
    BAD_T(W("\"shape\":[2],\"data_offsets\":[0,8]"), 8, "'w'", "lacks 'dtype'");
    BAD_T(W("\"dtype\":\"F32\",\"data_offsets\":[0,8]"), 8, "'w'", "lacks 'shape'");
    BAD_T(W(""), 0, "'w'", "lacks");

    /* dtypes. */
    BAD_T(W("\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, "'w'",
          "unknown dtype 'F33'");
    BAD_T(W("\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, "'w'", "unknown dtype");
    UNSUP(W("\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]"), 2, "'w'");
    UNSUP(W("\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]"), 8,
          "more than 8 dimensions");
    OK(W("\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]"), 8);

    /* Names: duplicates and the metadata. */
    BAD("{\"w\":{" F32x2 "},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
        "duplicate tensor name 'w'");
    BAD("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate __metadata__");
    BAD("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, "duplicate metadata key 'a'");
    BAD("{\"__metadata__\":{\"a\":1}}", 0, "metadata value of 'a' is not a string");
    BAD("{\"__metadata__\":{\"a\":null}}", 0, "not a string");
    BAD("{\"__metadata__\":{\"a\":[\"x\"]}}", 0, "not a string");
    BAD("{\"__metadata__\":{\"a\":{}}}", 0, "not a string");
    BAD("{\"__metadata__\":{\"a\"}}", 0, "expected ':'");
    BAD("{\"__metadata__\":[]}", 0, "__metadata__ must be an object");
    BAD("{\"__metadata__\":\"x\"}", 0, "__metadata__ must be an object");
    BAD("{\"__metadata__\":{1:\"x\"}}", 0, "expected a string");
}

/* Sizes and offsets: each tensor against itself, the tensors against each
 * other, and all of them against the data present. */
static void test_hostile_layout(void)
{
    BAD_T(W("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]"), 16, "'w'",
          "[begin, end]");
    BAD_T(W("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]"), 8, "'w'", "[begin, end]");
    BAD_T(W("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]"), 8, "'w'", "end before");
    BAD_T(W("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"), 4, "'w'", "beyond");
    BAD_T(W("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]"), 8,
          "'w'", "beyond");
    BAD_T(W("\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]"), 8, "'w'",
          "span 8 bytes, its dtype and shape need 12");
    BAD_T(W("\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, "'w'", "need 16");
    BAD_T(W("\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]"), 8,
          "'w'", "overflows");
    BAD_T(W("\"dtype\":\"U8\",\"shape\":[18446744073709551615,2],\"data_offsets\":[0,8]"), 8,
          "'w'", "overflows");
    /* A zero dimension makes any other legal, as in NumPy. */
    OK(W("\"dtype\":\"F32\",\"shape\":[18446744073709551615,0],\"data_offsets\":[0,0]"), 0);

    /* Two tensors: overlap, gap, not covering, covering in another order. */
#define TWO(b1, e1, b2, e2)                                                        \
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" #b1 "," #e1 "]}," \
    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" #b2 "," #e2 "]}}"
    OK(TWO(0, 8, 8, 16), 16);
    OK(TWO(8, 16, 0, 8), 16);
    BAD_T(TWO(0, 8, 4, 12), 12, "'b'", "overlap");
    BAD_T(TWO(0, 8, 0, 8), 16, "'b'", "overlap");
    BAD_T(TWO(0, 8, 12, 20), 20, "'b'", "gap");
    BAD_T(TWO(4, 12, 12, 20), 20, "'a'", "gap");
    BAD(TWO(0, 8, 8, 16), 20, "cover 16 bytes of data, the file has 20");
    BAD("{}", 1, "cover 0 bytes");
    /* Empty tensors may sit anywhere a tensor boundary is. */
    OK("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"e\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[8,8]},"
       "\"z\":{\"dtype\":\"I8\",\"shape\":[0,3],\"data_offsets\":[0,0]}}",
       8);
    BAD_T("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
          "\"e\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[4,4]}}",
          8, "'e'", "overlap");
#undef TWO
}

/* Offsets not aligned to the item size (legal, if unusual): the reader
 * repacks, so every data pointer is aligned and the values are right. */
static void test_alignment_and_conversion(void)
{
    /* 1 F16 (2 bytes), then 2 F32 at offset 2, then 1 F64 at offset 10,
     * then 2 BF16 at 18. */
    const char *json = "{\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]},"
                       "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[2,10]},"
                       "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[10,18]},"
                       "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[18,22]}}";
    size_t len;
    unsigned char *buf = make_file(json, 22, 0, &len);
    unsigned char *data = buf + len - 22;
    const uint16_t h = 0x3c00; /* 1.0 */
    const float fv[2] = {-2.5f, 1e-3f};
    const double dv = 1.0 / 3.0;
    const uint16_t bv[2] = {0x3f80, 0xc0a0}; /* 1.0, -5.0 */
    memcpy(data, &h, 2);
    memcpy(data + 2, fv, 8);
    memcpy(data + 10, &dv, 8);
    memcpy(data + 18, bv, 4);
    bcae_st_file f;
    bcae_error err;
    CHECK(bcae_st_read_buffer(buf, len, "aligned", &f, &err) == BCAE_OK);
    float out[2];
    for (size_t i = 0; i < f.count; i++) {
        const bcae_st_tensor *t = &f.tensors[i];
        CHECK((uintptr_t)t->data % bcae_st_itemsize(t->dtype) == 0);
    }
    const bcae_st_tensor *t = bcae_st_find(&f, "f");
    CHECK(t && !memcmp(t->data, fv, 8));
    CHECK(t && bcae_st_to_f32(t, out, &err) == BCAE_OK && out[0] == -2.5f && out[1] == 1e-3f);
    t = bcae_st_find(&f, "h");
    CHECK(t && bcae_st_to_f32(t, out, &err) == BCAE_OK && out[0] == 1.0f);
    t = bcae_st_find(&f, "d");
    CHECK(t && bcae_st_count(t) == 1 && bcae_st_to_f32(t, out, &err) == BCAE_OK &&
          out[0] == (float)(1.0 / 3.0));
    t = bcae_st_find(&f, "b");
    CHECK(t && bcae_st_to_f32(t, out, &err) == BCAE_OK && out[0] == 1.0f && out[1] == -5.0f);
    /* The fingerprint still hashes the data as stored. */
    uint8_t fp[32], want[32];
    bcae_sha256(data, 22, want);
    CHECK(bcae_st_fingerprint(&f, fp) == BCAE_OK && !memcmp(fp, want, 32));
    bcae_st_free(&f);
    free(buf);

    /* Half-precision corner cases. */
    const uint16_t halves[] = {0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0xc000};
    const float want_f[] = {5.9604644775390625e-8f, 6.0975551605224609e-5f,
                            6.103515625e-5f,        65504.0f,
                            INFINITY,               -INFINITY,
                            -0.0f,                  -2.0f};
    bcae_st_tensor ht = {"h", BCAE_DTYPE_F16, 1, {8}, (const unsigned char *)halves, 16};
    float hf[8];
    CHECK(bcae_st_to_f32(&ht, hf, &err) == BCAE_OK);
    for (int i = 0; i < 8; i++) CHECK_MSG(hf[i] == want_f[i], "half %d: %g", i, (double)hf[i]);
    CHECK(signbit(hf[6]));
    const uint16_t nan_half = 0x7e00;
    bcae_st_tensor nt = {"n", BCAE_DTYPE_F16, 0, {0}, (const unsigned char *)&nan_half, 2};
    CHECK(bcae_st_to_f32(&nt, hf, &err) == BCAE_OK && isnan(hf[0]));
    const int32_t iv = 3;
    bcae_st_tensor it = {"i", BCAE_DTYPE_I32, 0, {0}, (const unsigned char *)&iv, 4};
    CHECK(bcae_st_to_f32(&it, hf, &err) == BCAE_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "'i'") != NULL);

    const char *bf16 = bcae_st_dtype_name(BCAE_ST_DTYPE_BF16);
    CHECK(bf16 && !strcmp(bf16, "BF16"));
    CHECK(bcae_st_itemsize(BCAE_ST_DTYPE_BF16) == 2);
    CHECK(bcae_st_dtype_name((bcae_dtype)77) == NULL && bcae_st_itemsize((bcae_dtype)77) == 0);
}

/* ------------------------------------------------------------------ */
/* Modes for the Python interop test                                   */
/* ------------------------------------------------------------------ */

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

/* Prints the file as one JSON object; the data as a SHA-256 of its
 * little-endian bytes per tensor (what NumPy's tobytes() gives). */
static int dump(const char *path)
{
    bcae_st_file f;
    bcae_error err;
    if (bcae_st_read(path, &f, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    printf("{\"tensors\": [");
    for (size_t i = 0; i < f.count; i++) {
        const bcae_st_tensor *t = &f.tensors[i];
        uint8_t d[32];
        char hex[65];
        bcae_sha256(t->data, t->nbytes, d); /* little-endian host: the bytes as stored */
        bcae_sha256_hex(d, hex);
        printf("%s{\"name\": ", i ? ", " : "");
        print_json_string(t->name);
        printf(", \"dtype\": \"%s\", \"shape\": [", bcae_st_dtype_name(t->dtype));
        for (int k = 0; k < t->ndim; k++) printf("%s%zu", k ? ", " : "", t->shape[k]);
        printf("], \"sha256\": \"%s\"}", hex);
    }
    printf("], \"metadata\": {");
    for (size_t i = 0; i < f.nmeta; i++) {
        printf("%s", i ? ", " : "");
        print_json_string(f.meta_keys[i]);
        printf(": ");
        print_json_string(f.meta_values[i]);
    }
    uint8_t fp[32];
    char hex[65];
    bcae_st_fingerprint(&f, fp);
    bcae_sha256_hex(fp, hex);
    printf("}, \"fingerprint\": \"%s\"}\n", hex);
    bcae_st_free(&f);
    return 0;
}

/* Reads a file and writes it again with our writer (same order). */
static int copy(const char *in, const char *out)
{
    bcae_st_file f;
    bcae_error err;
    if (bcae_st_read(in, &f, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    bcae_st_entry *e = calloc(f.count ? f.count : 1, sizeof *e);
    for (size_t i = 0; i < f.count; i++) {
        const bcae_st_tensor *t = &f.tensors[i];
        e[i] = (bcae_st_entry){t->name, t->dtype, t->ndim, t->shape, t->data};
    }
    bcae_status st = bcae_st_write(out, e, f.count, (const char *const *)f.meta_keys,
                                   (const char *const *)f.meta_values, f.nmeta, &err);
    if (st) fprintf(stderr, "%s\n", err.message);
    free(e);
    bcae_st_free(&f);
    return st ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* The checksum (BCAE_ST_CHECKSUM_KEY) and non-regular files          */
/* ------------------------------------------------------------------ */

static void write_raw(const char *path, const unsigned char *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite(b, 1, n, fp) == n);
    if (fp) fclose(fp);
}

static void test_checksum(void)
{
    const char *path = "test_safetensors_sum.safetensors";
    float w[64];
    for (int i = 0; i < 64; i++) w[i] = (float)i * 0.25f - 3.0f;
    const size_t shape[2] = {8, 8};
    bcae_st_entry e = {"w", BCAE_DTYPE_F32, 2, shape, w};
    /* A caller's own value for the key is replaced by the real one. */
    const char *keys[] = {"arch", BCAE_ST_CHECKSUM_KEY};
    const char *values[] = {"x", "0000000000000000000000000000000000000000000000000000000000000000"};
    bcae_error err;
    CHECK(bcae_st_write(path, &e, 1, keys, values, 2, &err) == BCAE_OK);
    bcae_st_file f;
    CHECK_MSG(bcae_st_read(path, &f, &err) == BCAE_OK, "%s", err.message);
    uint8_t fp[32];
    char hex[65];
    CHECK(bcae_st_fingerprint(&f, fp) == BCAE_OK);
    bcae_sha256_hex(fp, hex);
    const char *sum = bcae_st_meta(&f, BCAE_ST_CHECKSUM_KEY);
    CHECK(f.nmeta == 2 && sum && !strcmp(sum, hex));
    bcae_st_free(&f);

    size_t len;
    unsigned char *raw = slurp(path, &len);
    if (!raw) return;
    /* One flipped data bit: the file reader and the buffer reader refuse it,
     * naming the file and the mismatch. */
    raw[len - 5] ^= 0x10;
    write_raw(path, raw, len);
    CHECK(bcae_st_read(path, &f, &err) == BCAE_ERR_FORMAT);
    CHECK_MSG(strstr(err.message, path) && strstr(err.message, "checksum mismatch"), "%s",
              err.message);
    CHECK(f.count == 0 && f.blob == NULL);
    CHECK(bcae_st_read_buffer(raw, len, "mem.safetensors", &f, &err) == BCAE_ERR_FORMAT);
    CHECK(strstr(err.message, "mem.safetensors: checksum mismatch") != NULL);

    /* The same damaged data without the entry (blanked to spaces, which
     * JSON allows): nothing to check against, so it loads. The failure
     * above was the checksum's doing, not the flipped bit's. */
    uint64_t hlen = le64(raw);
    char *h = (char *)raw + 8;
    static const char key[] = ",\"" BCAE_ST_CHECKSUM_KEY "\":\"";
    const size_t klen = sizeof key - 1;
    char *at = NULL;
    for (size_t i = 0; !at && i + klen <= hlen; i++)
        if (!memcmp(h + i, key, klen)) at = h + i;
    CHECK(at != NULL);
    if (at) {
        unsigned char *stripped = malloc(len);
        memcpy(stripped, raw, len);
        char *sh = (char *)stripped + 8;
        size_t off = (size_t)(at - h), cut = klen + 64 + 1; /* ,"bcae.sha256":" hex " */
        memmove(sh + off, sh + off + cut, hlen - off - cut);
        memset(sh + hlen - cut, ' ', cut);
        write_raw(path, stripped, len);
        CHECK_MSG(bcae_st_read(path, &f, &err) == BCAE_OK, "%s", err.message);
        CHECK(f.nmeta == 1 && bcae_st_meta(&f, BCAE_ST_CHECKSUM_KEY) == NULL);
        bcae_st_free(&f);
        free(stripped);
    }
    /* A checksum that is not 64 lower-case hex digits is malformed. */
    raw[len - 5] ^= 0x10; /* the data are good again */
    char *hexat = at ? at + klen : NULL;
    if (hexat) {
        char saved = hexat[0];
        hexat[0] = 'A';
        write_raw(path, raw, len);
        CHECK(bcae_st_read(path, &f, &err) == BCAE_ERR_FORMAT);
        CHECK_MSG(strstr(err.message, "not 64 lowercase"), "%s", err.message);
        hexat[0] = saved;
        write_raw(path, raw, len);
        CHECK_MSG(bcae_st_read(path, &f, &err) == BCAE_OK, "%s", err.message);
        bcae_st_free(&f);
    }
    free(raw);
    remove(path);

    /* A FIFO is refused at once (without O_NONBLOCK this would hang). */
    const char *fifo = "test_safetensors.fifo";
    remove(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK(bcae_st_read(fifo, &f, &err) == BCAE_ERR_IO);
    CHECK_MSG(strstr(err.message, fifo) && strstr(err.message, "FIFO"), "%s", err.message);
    remove(fifo);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "dump")) return dump(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "copy")) return copy(argv[2], argv[3]);
    if (argc != 1) {
        fprintf(stderr, "usage: test_safetensors [dump FILE | copy IN OUT]\n");
        return 2;
    }
    test_sha256();
    test_round_trip();
    test_write_refusals();
    test_hostile_prefix();
    test_hostile_json();
    test_hostile_layout();
    test_alignment_and_conversion();
    test_checksum();
    return check_report("test_safetensors");
}
