/*
 * The .bcae container: CRC-32C, path rules, round trips (raw, zstd levels
 * 1/3/19, many records, streaming, append), the compression ratio of
 * BCAE-2D-sized records, and every class of damage: truncation at every
 * byte, a bit flip at every bit, wrong magic, future version, absurd
 * lengths, hostile paths, a model mismatch on append, torn appends and
 * their repair, aborted and unwritable writers. Each must be an error whose
 * message names the file and, once past the header, the record.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/crc32c.h"
#include "core/half.h"
#include "core/sha256.h"
#include "io/container.h"

static char work[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", work, name);
    return buf[k];
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, fp);
    fclose(fp);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) return;
    fwrite(b, 1, n, fp);
    fclose(fp);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Files in the work folder whose name starts with prefix. */
static int count_files(const char *prefix)
{
    DIR *d = opendir(work);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    if (d) closedir(d);
    return n;
}

static uint32_t rd32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void wr32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static void make_info(bcae_ctr_info *info, int ndim, const size_t *shape, const char *arch,
                      const char *model_seed)
{
    memset(info, 0, sizeof *info);
    bcae_sha256(model_seed, strlen(model_seed), info->fingerprint);
    snprintf(info->arch, sizeof info->arch, "%s", arch);
    info->code_dtype = BCAE_CTR_DTYPE_F16;
    info->code_ndim = ndim;
    for (int d = 0; d < ndim; d++) info->code_shape[d] = shape[d];
}

/* Deterministic codes: record r, element i. `smooth` ones (few distinct
 * values, like a quantised code) compress; the others are every fp16 bit
 * pattern in turn, NaNs, infinities and subnormals included. */
static void fill_code(uint16_t *code, size_t n, int r, int smooth)
{
    for (size_t i = 0; i < n; i++)
        code[i] = smooth ? bcae_f32_to_f16((float)((i / 7 + (size_t)r) % 13) * 0.125f - 0.5f)
                         : (uint16_t)((i * 40503u + (size_t)r * 977u) & 0xffffu);
}

static void wedge_path(char *out, size_t cap, int i)
{
    snprintf(out, cap, "12-2_%d-%d/sim1_%06d.npy", i % 12, (i / 12) % 2, i);
}

static const size_t WEDGE[3] = {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};

/* Writes `records` records of fill_code(smooth) at zstd `level`. */
static int write_file(const char *path, const bcae_ctr_info *info, int records, int level,
                      int smooth)
{
    bcae_error err;
    bcae_ctr_writer *w;
    if (bcae_ctr_writer_open(path, info, &w, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 0;
    }
    size_t n = bcae_ctr_code_count(info);
    uint16_t *code = malloc(n * sizeof *code);
    for (int r = 0; r < records; r++) {
        char rel[64];
        wedge_path(rel, sizeof rel, r);
        fill_code(code, n, r, smooth);
        if (bcae_ctr_writer_append(w, rel, WEDGE, 3, code, level, &err)) {
            fprintf(stderr, "%s\n", err.message);
            free(code);
            bcae_ctr_writer_abort(w);
            return 0;
        }
    }
    free(code);
    if (bcae_ctr_writer_finish(w, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 0;
    }
    return 1;
}

/* Reads a whole container (file or memory); returns the number of records
 * whose path and code match what write_file wrote, -1 on an error (message
 * in *err) after counting them. */
static long read_back(bcae_ctr_reader *r, int smooth, bcae_error *err, int *encodings)
{
    size_t n = bcae_ctr_code_count(bcae_ctr_reader_info(r));
    uint16_t *code = malloc(n * sizeof *code), *want = malloc(n * sizeof *want);
    bcae_ctr_record *rec = malloc(sizeof *rec);
    long good = 0;
    int end = 0;
    for (;;) {
        if (bcae_ctr_reader_next(r, rec, code, &end, err) != BCAE_OK) {
            good = -1 - good;
            break;
        }
        if (end) break;
        char rel[64];
        wedge_path(rel, sizeof rel, (int)rec->index);
        fill_code(want, n, (int)rec->index, smooth);
        if (strcmp(rec->path, rel) || memcmp(code, want, n * 2) || rec->orig_ndim != 3 ||
            rec->orig_shape[0] != 192 || rec->orig_shape[1] != 249 || rec->orig_shape[2] != 16 ||
            rec->raw_bytes != 2 * n)
            break;
        if (encodings) encodings[rec->encoding]++;
        good++;
    }
    free(code);
    free(want);
    free(rec);
    return good;
}

static long read_file(const char *path, int smooth, bcae_error *err, int *encodings)
{
    bcae_ctr_reader *r;
    if (bcae_ctr_reader_open(path, &r, err)) return -1000000;
    long n = read_back(r, smooth, err, encodings);
    bcae_ctr_reader_close(r);
    return n;
}

/* ------------------------------------------------------------------ */

static uint32_t crc_bitwise(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
}

static void test_crc32c(void)
{
    CHECK(bcae_crc32c("123456789", 9) == 0xe3069283u);
    CHECK(bcae_crc32c("", 0) == 0);
    /* RFC 3720 (iSCSI) B.4 vectors. */
    unsigned char b[32];
    memset(b, 0, 32);
    CHECK(bcae_crc32c(b, 32) == 0x8a9136aau);
    memset(b, 0xff, 32);
    CHECK(bcae_crc32c(b, 32) == 0x62a8ab43u);
    for (int i = 0; i < 32; i++) b[i] = (unsigned char)i;
    CHECK(bcae_crc32c(b, 32) == 0x46dd794eu);
    for (int i = 0; i < 32; i++) b[i] = (unsigned char)(31 - i);
    CHECK(bcae_crc32c(b, 32) == 0x113fdb5cu);
    /* Chaining equals one pass; the table equals the bitwise definition. */
    unsigned char big[1000];
    for (int i = 0; i < 1000; i++) big[i] = (unsigned char)(i * 131 + 7);
    for (size_t cut = 0; cut <= 1000; cut += 37)
        CHECK(bcae_crc32c_update(bcae_crc32c(big, cut), big + cut, 1000 - cut) ==
              bcae_crc32c(big, 1000));
    for (size_t n = 0; n <= 1000; n += 111)
        CHECK(bcae_crc32c(big, n) == crc_bitwise(big, n));
}

static void test_paths(void)
{
    const char *good[] = {"a.npy", "12-2_11-1/sim1_000123.npy", "a/b/c/d.npy", "...",
                          "..a", "a..", ".hidden", "caf\xc3\xa9/\xe2\x82\xac.npy",
                          "\xf0\x9f\x98\x80", "back\\slash", "sp ace"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_MSG(bcae_ctr_check_path(good[i], strlen(good[i]), NULL) == BCAE_OK, "%s", good[i]);
    const char *bad[] = {"", "/abs.npy", "../x", "a/../b", "a/..", "..", ".", "./a", "a/./b",
                         "a//b", "a/", "a\tb", "a\x7f", "\xc2\x9b", "\xff", "\xc0\xaf",
                         "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3",
                         "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bcae_error err;
        CHECK_MSG(bcae_ctr_check_path(bad[i], strlen(bad[i]), &err) == BCAE_ERR_INVALID_ARGUMENT,
                  "bad path %zu accepted", i);
    }
    bcae_error err;
    CHECK(bcae_ctr_check_path("a\0b", 3, &err) != BCAE_OK && strstr(err.message, "NUL"));
    char *lng = malloc(5000);
    memset(lng, 'a', 5000);
    CHECK(bcae_ctr_check_path(lng, 4096, NULL) == BCAE_OK);
    CHECK(bcae_ctr_check_path(lng, 4097, NULL) != BCAE_OK);
    free(lng);
}

static void test_round_trips(void)
{
    const size_t s3[3] = {4, 3, 5};
    bcae_ctr_info info;
    make_info(&info, 3, s3, "bcae-2d", "model A");
    bcae_error err;
    /* Raw, every fp16 bit pattern class. */
    const char *p = tmp_path("raw.bcae");
    CHECK(write_file(p, &info, 10, 0, 0));
    int enc[2] = {0, 0};
    CHECK(read_file(p, 0, &err, enc) == 10);
    CHECK(enc[BCAE_CTR_RAW] == 10);
    size_t len;
    unsigned char *b = slurp(p, &len);
    size_t want = BCAE_CTR_HEADER_FIXED + 7 + 4 + BCAE_CTR_END_BYTES;
    for (int r = 0; r < 10; r++) {
        char rel[64];
        wedge_path(rel, sizeof rel, r);
        want += BCAE_CTR_RECORD_OVERHEAD + strlen(rel) + 120;
    }
    CHECK(b && len == want);
    /* The header as read. */
    bcae_ctr_reader *r;
    CHECK(bcae_ctr_reader_open_mem(b, len, "mem", &r, &err) == BCAE_OK);
    const bcae_ctr_info *ri = bcae_ctr_reader_info(r);
    CHECK(ri->version == 1 && !strcmp(ri->arch, "bcae-2d") && ri->code_ndim == 3 &&
          ri->code_shape[0] == 4 && ri->code_shape[2] == 5 &&
          !memcmp(ri->fingerprint, info.fingerprint, 32));
    CHECK(bcae_ctr_check_model(ri, &info, "mem", &err) == BCAE_OK);
    CHECK(read_back(r, 0, &err, NULL) == 10);
    CHECK(bcae_ctr_reader_offset(r) == len && bcae_ctr_reader_records(r) == 10);
    /* After the end: end again, no error. */
    bcae_ctr_record rec;
    int end = 0;
    CHECK(bcae_ctr_reader_next(r, &rec, NULL, &end, &err) == BCAE_OK && end);
    bcae_ctr_reader_close(r);
    free(b);

    /* zstd: levels 1, 3, 19 on a BCAE-2D-shaped smooth code; identical codes. */
    const size_t s2d[3] = {32, 24, 32};
    make_info(&info, 3, s2d, "bcae-2d", "model A");
    size_t sizes[3];
    int levels[3] = {1, 3, 19};
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "zstd%d.bcae", levels[k]);
        p = tmp_path(name);
        CHECK(write_file(p, &info, 5, levels[k], 1));
        int e2[2] = {0, 0};
        CHECK(read_file(p, 1, &err, e2) == 5);
        CHECK_MSG(e2[BCAE_CTR_ZSTD] == 5, "level %d: %d zstd records", levels[k],
                  e2[BCAE_CTR_ZSTD]);
        free(slurp(p, &sizes[k]));
    }
    CHECK(sizes[0] < 5 * 49152 / 4 && sizes[2] <= sizes[0]);
    /* zstd on incompressible bits falls back to raw. */
    p = tmp_path("zstd_noise.bcae");
    CHECK(write_file(p, &info, 3, 3, 0));
    int e3[2] = {0, 0};
    CHECK(read_file(p, 0, &err, e3) == 3 && e3[BCAE_CTR_RAW] == 3);

    /* Many records, read from a file (streaming through FILE*). */
    const size_t s1[1] = {3};
    make_info(&info, 1, s1, "x", "model B");
    p = tmp_path("many.bcae");
    CHECK(write_file(p, &info, 3000, 0, 0));
    CHECK(read_file(p, 0, &err, NULL) == 3000);
    /* No records at all, and a 4-dimensional code. */
    const size_t s4[4] = {2, 1, 3, 2};
    make_info(&info, 4, s4, "bcae++", "model C");
    p = tmp_path("empty.bcae");
    CHECK(write_file(p, &info, 0, 0, 0));
    CHECK(read_file(p, 0, &err, NULL) == 0);
    free(slurp(p, &len));
    CHECK(len == BCAE_CTR_HEADER_FIXED + 6 + 4 + BCAE_CTR_END_BYTES);
    /* A code_out of NULL still verifies (and decompresses) every record. */
    make_info(&info, 3, s2d, "bcae-2d", "model A");
    CHECK(bcae_ctr_reader_open(tmp_path("zstd3.bcae"), &r, &err) == BCAE_OK);
    int n = 0;
    while (bcae_ctr_reader_next(r, &rec, NULL, &end, &err) == BCAE_OK && !end) n++;
    CHECK(n == 5 && end);
    bcae_ctr_reader_close(r);
}

/* BCAE-2D: (32, 24, 32) fp16 codes of (192, 249, 16) wedges, 100 records
 * with release-style paths: the whole file must stay at ratio >= 31. */
static void test_ratio(void)
{
    const size_t s2d[3] = {32, 24, 32};
    bcae_ctr_info info;
    make_info(&info, 3, s2d, "bcae-2d", "model A");
    const char *p = tmp_path("ratio.bcae");
    bcae_error err;
    bcae_ctr_writer *w;
    CHECK(bcae_ctr_writer_open(p, &info, &w, &err) == BCAE_OK);
    uint16_t *code = malloc(49152);
    size_t path_bytes = 0;
    for (int i = 0; i < 100; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "12-2_%d-%d/sim1_%06d.npy", i % 12, i % 2, 100 + i);
        path_bytes += strlen(rel);
        fill_code(code, 24576, i, 0);
        CHECK(bcae_ctr_writer_append(w, rel, WEDGE, 3, code, 0, &err) == BCAE_OK);
    }
    free(code);
    bcae_ctr_stats st;
    bcae_ctr_writer_stats(w, &st);
    CHECK(bcae_ctr_writer_finish(w, &err) == BCAE_OK);
    size_t len;
    free(slurp(p, &len));
    double ratio = 100.0 * 192 * 249 * 16 * 2 / (double)len;
    printf("BCAE-2D, 100 records, raw: %zu bytes, ratio %.4f (31.125 without overhead)\n", len,
           ratio);
    CHECK(ratio >= 31.0);
    CHECK(st.file_bytes == len && st.records == 100 && st.new_records == 100 &&
          st.new_orig_bytes == 100ull * 1529856);
    /* 75-byte header (64 + "bcae-2d" + CRC), 16-byte end marker, 100 x (44 + path + 49152). */
    CHECK(len == 75 + 16 + path_bytes + 100 * (44 + 49152));
}

/* ------------------------------------------------------------------ */
/* Damage                                                              */
/* ------------------------------------------------------------------ */

/* A small file: header (4, 3) code, three records of which the middle one
 * is zstd; with each record's start offset. */
static unsigned char *small_file(size_t *len, size_t starts[4])
{
    const size_t s2[2] = {4, 3};
    bcae_ctr_info info;
    make_info(&info, 2, s2, "bcae-2d", "model A");
    const char *p = tmp_path("small.bcae");
    bcae_error err;
    bcae_ctr_writer *w;
    if (bcae_ctr_writer_open(p, &info, &w, &err)) return NULL;
    uint16_t code[12];
    const char *rels[3] = {"a/x.npy", "12-2_0-0/y.npy", "b.npy"};
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < 12; i++) code[i] = bcae_f32_to_f16(r == 1 ? 0.5f : (float)(i + r));
        bcae_ctr_writer_append(w, rels[r], WEDGE, 3, code, r == 1 ? 19 : 0, &err);
    }
    bcae_ctr_writer_finish(w, &err);
    unsigned char *b = slurp(p, len);
    size_t off = BCAE_CTR_HEADER_FIXED + 7 + 4;
    for (int r = 0; r < 3; r++) {
        starts[r] = off;
        off += 44 + (size_t)(b[off + 4] | b[off + 5] << 8) + rd32(b + off + 32);
    }
    starts[3] = off; /* the end marker */
    return b;
}

/* Reads to the end; returns the records read before the outcome, and -1 -
 * that if it ended in an error (message in err). Closes r. */
static long drain(bcae_ctr_reader *r, bcae_error *err)
{
    uint16_t code[12];
    bcae_ctr_record rec;
    int end = 0;
    long good = 0;
    while (bcae_ctr_reader_next(r, &rec, code, &end, err) == BCAE_OK) {
        if (end) break;
        good++;
    }
    if (!end) good = -1 - good;
    bcae_ctr_reader_close(r);
    return good;
}

static long read_mem(const unsigned char *b, size_t n, bcae_error *err)
{
    bcae_ctr_reader *r;
    if (bcae_ctr_reader_open_mem(b, n, "small.bcae", &r, err)) return -1;
    return drain(r, err);
}

static void test_truncation(void)
{
    size_t len, st[4];
    unsigned char *b = small_file(&len, st);
    if (!b) {
        CHECK(0);
        return;
    }
    bcae_error err;
    CHECK(read_mem(b, len, &err) == 3);
    int bad = 0;
    for (size_t cut = 0; cut < len; cut++) {
        long got = read_mem(b, cut, &err);
        /* Which record the cut falls in, and how many are whole before it. */
        int whole = cut >= st[3] ? 3 : cut >= st[2] ? 2 : cut >= st[1] ? 1 : 0;
        char want[64] = "";
        if (cut < st[0])
            snprintf(want, sizeof want, cut == 0 ? "empty" : "file header");
        else if (cut == st[whole] && whole > 0)
            snprintf(want, sizeof want, "missing after record %d", whole - 1);
        else if (cut == st[0])
            snprintf(want, sizeof want, "no records and no end marker");
        else if (whole == 3)
            snprintf(want, sizeof want, "end marker");
        else
            snprintf(want, sizeof want, "record %d", whole);
        int ok = got == (cut < st[0] ? -1 : -1 - whole) && strstr(err.message, "small.bcae") &&
                 strstr(err.message, want) &&
                 (cut < 4 || strstr(err.message, "truncated") || strstr(err.message, "empty"));
        if (!ok && bad++ < 5)
            fprintf(stderr, "cut %zu: got %ld, want '%s': %s\n", cut, got, want, err.message);
    }
    CHECK_MSG(bad == 0, "%d truncations misreported", bad);
    /* Through a FILE*, where the size check fails before the payload read. */
    const char *p = tmp_path("cut.bcae");
    spit(p, b, st[1] + 60);
    bcae_ctr_reader *r;
    CHECK(bcae_ctr_reader_open(p, &r, &err) == BCAE_OK);
    CHECK(drain(r, &err) == -2);
    CHECK(strstr(err.message, "cut.bcae: record 1: truncated: the record needs"));
    free(b);
}

static void test_bit_flips(void)
{
    size_t len, st[4];
    unsigned char *b = small_file(&len, st);
    if (!b) {
        CHECK(0);
        return;
    }
    bcae_error err;
    int silent = 0, unnamed = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (unsigned char)(1u << bit);
            long got = read_mem(b, len, &err);
            b[i] ^= (unsigned char)(1u << bit);
            if (got >= 0) {
                if (silent++ < 5) fprintf(stderr, "flip of byte %zu bit %d passed\n", i, bit);
                continue;
            }
            /* Past the header, the message names the record (or end marker). */
            int in_rec = i >= st[0] && i < st[3];
            char want[32];
            int idx = i >= st[2] ? 2 : i >= st[1] ? 1 : 0;
            snprintf(want, sizeof want, "record %d", idx);
            if (in_rec ? !strstr(err.message, want)
                       : i >= st[3] ? !strstr(err.message, "end marker")
                                    : strstr(err.message, "record") != NULL) {
                if (unnamed++ < 5) fprintf(stderr, "flip at %zu: %s\n", i, err.message);
            }
        }
    }
    CHECK_MSG(silent == 0, "%d bit flips went undetected", silent);
    CHECK_MSG(unnamed == 0, "%d bit flips reported without their record", unnamed);
    /* The classes, by message. */
    b[st[1] + 40 + 15] ^= 1; /* in record 1's payload */
    CHECK(read_mem(b, len, &err) == -2 && strstr(err.message, "record 1 (\"12-2_0-0/y.npy\")") &&
          strstr(err.message, "CRC mismatch"));
    b[st[1] + 40 + 15] ^= 1;
    b[st[0] + 33] ^= 0x40; /* record 0's stored length */
    CHECK(read_mem(b, len, &err) == -1 && strstr(err.message, "record 0: record header CRC"));
    b[st[0] + 33] ^= 0x40;
    b[20] ^= 2; /* the fingerprint */
    CHECK(read_mem(b, len, &err) == -1 && strstr(err.message, "file header CRC mismatch"));
    b[20] ^= 2;
    b[st[3] + 5] ^= 1; /* the end marker's count */
    CHECK(read_mem(b, len, &err) == -4 && strstr(err.message, "end marker: CRC"));
    b[st[3] + 5] ^= 1;
    CHECK(read_mem(b, len, &err) == 3);
    free(b);
}

/* Sets a field and recomputes the CRCs that cover it, as a hostile writer
 * would: the structural checks behind the CRCs must catch it. */
static void refix(unsigned char *b, size_t len, const size_t st[4])
{
    size_t h = BCAE_CTR_HEADER_FIXED + b[42];
    if (h + 4 <= len) wr32(b + h, bcae_crc32c(b, h));
    for (int r = 0; r < 3; r++) {
        size_t o = st[r];
        if (o + 40 > len) return;
        wr32(b + o + 36, bcae_crc32c(b + o, 36));
        size_t body = 40 + (size_t)(b[o + 4] | b[o + 5] << 8) + rd32(b + o + 32);
        if (o + body + 4 <= len) wr32(b + o + body, bcae_crc32c(b + o, body));
    }
    if (st[3] + 16 <= len) wr32(b + st[3] + 12, bcae_crc32c(b + st[3], 12));
}

static void expect_error(const unsigned char *b, size_t len, bcae_status status,
                         const char *text, const char *what)
{
    bcae_error err;
    err.status = BCAE_OK;
    err.message[0] = '\0';
    long got = read_mem(b, len, &err);
    CHECK_MSG(got < 0 && err.status == status && strstr(err.message, text),
              "%s: got %ld, status %d: %s", what, got, (int)err.status, err.message);
}

static void test_hostile(void)
{
    size_t len, st[4];
    unsigned char *orig = small_file(&len, st);
    if (!orig) {
        CHECK(0);
        return;
    }
    unsigned char *b = malloc(len + 64);
#define FRESH() memcpy(b, orig, len)
    FRESH();
    memcpy(b, "BCAF", 4);
    expect_error(b, len, BCAE_ERR_FORMAT, "not a .bcae container (bad magic)", "magic");
    expect_error((const unsigned char *)"\x93NUMPY\x01\x00", 8, BCAE_ERR_FORMAT, "bad magic",
                 "npy");
    FRESH();
    b[4] = 3;
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_UNSUPPORTED, "unsupported .bcae format version 3", "version");
    FRESH();
    b[4] = 0;
    b[5] = 1;
    expect_error(b, len, BCAE_ERR_UNSUPPORTED, "version 256", "version 256");
    FRESH();
    b[6] = 1;
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_UNSUPPORTED, "unknown header flags", "flags");
    FRESH();
    b[40] = BCAE_CTR_DTYPE_U16;
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "not float16", "code dtype");
    FRESH();
    b[41] = 5;
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "5 dimensions", "code ndim");
    FRESH();
    wr32(b + 44, 0xffffffffu);
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "absurd code size", "code dims");
    FRESH();
    wr32(b + 44, 0);
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "code dimension 0 is 0", "zero dim");
    FRESH();
    b[64] = 0x07;
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "not printable", "arch byte");
    FRESH();
    b[43] = 1;
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "reserved header byte 43", "byte 43");
    /* Bytes 60..63, after the four u32 of the code shape, are reserved too:
     * each one alone is refused under a good CRC (and the untouched file
     * reads: refix alone changes nothing). */
    for (int k = 60; k < 64; k++) {
        FRESH();
        b[k] = 0x80;
        refix(b, len, st);
        expect_error(b, len, BCAE_ERR_FORMAT, "reserved header bytes 60..63", "bytes 60..63");
    }
    FRESH();
    refix(b, len, st);
    {
        bcae_error e2;
        CHECK(read_mem(b, len, &e2) == 3);
    }
    FRESH();
    b[42] = 200; /* arch length: the CRC is then looked for elsewhere */
    expect_error(b, len, BCAE_ERR_FORMAT, "file header CRC mismatch", "arch length");

    /* Record fields. */
    size_t r0 = st[0], r1 = st[1];
    FRESH();
    wr32(b + r0 + 32, 0xfffffff0u);
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "record 0: absurd payload length 4294967280", "stored");
    FRESH();
    wr32(b + r1 + 32, 24 + 24 / 256 + 65);
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "record 1: absurd payload length", "zstd stored");
    FRESH();
    wr32(b + r0 + 28, 26);
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "raw length 26 differs", "raw length");
    FRESH();
    b[r0 + 4] = 0x01;
    b[r0 + 5] = 0x10; /* path length 4097 */
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "record 0: path length 4097", "path length");
    FRESH();
    b[r0 + 4] = 0xf0;
    b[r0 + 5] = 0x0f; /* 4080: legal, but past the end of the file */
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "record 0: truncated: the record needs", "long path");
    FRESH();
    b[r0 + 6] = 7;
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_UNSUPPORTED, "unknown payload encoding 7", "encoding");
    FRESH();
    b[r0 + 6] = BCAE_CTR_ZSTD; /* raw bytes read as a zstd frame */
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "record 0 (\"a/x.npy\"): ", "raw as zstd");
    FRESH();
    b[r0 + 7] = BCAE_CTR_DTYPE_F16;
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "not uint16", "orig dtype");
    FRESH();
    b[r0 + 8] = 0;
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "0 dimensions", "orig ndim");
    FRESH();
    wr32(b + r0 + 12, 0x100000);
    wr32(b + r0 + 16, 0x100000);
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "absurd original shape", "orig dims");
    FRESH();
    b[r0 + 10] = 1;
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "reserved", "reserved");
    FRESH();
    memcpy(b + r0, "BRED", 4);
    expect_error(b, len, BCAE_ERR_FORMAT, "record 0: bad record tag \"BRED\"", "tag");
    /* Hostile paths under good CRCs: "a/x.npy" -> "../x.npy" (same length + 1
     * does not fit; use "a/../..": 7 bytes). */
    const char *hostile[] = {"../x.np", "/ax.npy", "a/./x.n", "a//x.np", "a\x01x.np",
                             "a\xffx.np"};
    for (size_t k = 0; k < sizeof hostile / sizeof hostile[0]; k++) {
        FRESH();
        memcpy(b + r0 + 40, hostile[k], 7);
        refix(b, len, st);
        expect_error(b, len, BCAE_ERR_FORMAT, "record 0 (\"", "hostile path");
        expect_error(b, len, BCAE_ERR_FORMAT, "invalid path", "hostile path");
    }
    /* zstd payload garbage under a good CRC: the decoder reports it. */
    FRESH();
    CHECK(b[r1 + 6] == BCAE_CTR_ZSTD);
    b[r1 + 40 + 14] ^= 0x55; /* the frame's magic number */
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "record 1 (\"12-2_0-0/y.npy\")", "zstd garbage");
    /* The end marker: wrong count, trailing bytes, missing. */
    FRESH();
    b[st[3] + 4] = 2;
    refix(b, len, st);
    expect_error(b, len, BCAE_ERR_FORMAT, "counts 2 records but the file has 3", "count");
    FRESH();
    memcpy(b + len, "xyz", 3);
    expect_error(b, len + 3, BCAE_ERR_FORMAT, "3 bytes follow it", "trailing");
    /* A record dropped: the count catches it. */
    FRESH();
    memmove(b + r1, b + st[2], len - st[2]);
    expect_error(b, len - (st[2] - r1), BCAE_ERR_FORMAT, "counts 3 records but the file has 2",
                 "dropped record");
#undef FRESH
    free(b);
    free(orig);

    /* Errors are final, and the offset marks the intact prefix. */
    size_t l2, s2[4];
    unsigned char *c = small_file(&l2, s2);
    c[s2[1] + 50] ^= 1;
    bcae_ctr_reader *r;
    bcae_error err, again;
    CHECK(bcae_ctr_reader_open_mem(c, l2, "x", &r, &err) == BCAE_OK);
    bcae_ctr_record rec;
    int end;
    CHECK(bcae_ctr_reader_next(r, &rec, NULL, &end, &err) == BCAE_OK && !end);
    CHECK(bcae_ctr_reader_next(r, &rec, NULL, &end, &err) == BCAE_ERR_FORMAT);
    CHECK(bcae_ctr_reader_next(r, &rec, NULL, &end, &again) == BCAE_ERR_FORMAT &&
          !strcmp(err.message, again.message));
    CHECK(bcae_ctr_reader_offset(r) == s2[1] && bcae_ctr_reader_records(r) == 1);
    bcae_ctr_reader_close(r);
    free(c);

    /* Opening: missing file, a folder. */
    CHECK(bcae_ctr_reader_open(tmp_path("nope.bcae"), &r, &err) == BCAE_ERR_IO &&
          strstr(err.message, "nope.bcae"));
    CHECK(bcae_ctr_reader_open(work, &r, &err) == BCAE_ERR_IO);
}

/* ------------------------------------------------------------------ */
/* Writers: append, abort, failures                                    */
/* ------------------------------------------------------------------ */

static int append_records(const char *path, const bcae_ctr_info *info, int first, int count,
                          int flags, int finish, bcae_error *err)
{
    bcae_ctr_writer *w;
    if (bcae_ctr_append_open(path, info, flags, &w, err)) return 0;
    size_t n = bcae_ctr_code_count(info);
    uint16_t *code = malloc(n * 2);
    int ok = 1;
    for (int r = first; r < first + count && ok; r++) {
        char rel[64];
        wedge_path(rel, sizeof rel, r);
        fill_code(code, n, r, 1);
        ok = bcae_ctr_writer_append(w, rel, WEDGE, 3, code, r % 2 ? 3 : 0, err) == BCAE_OK;
    }
    free(code);
    if (!finish || !ok) {
        bcae_ctr_writer_abort(w);
        return ok && !finish;
    }
    return bcae_ctr_writer_finish(w, err) == BCAE_OK;
}

static void test_append(void)
{
    const size_t s3[3] = {8, 6, 4};
    bcae_ctr_info info, other;
    make_info(&info, 3, s3, "bcae-2d", "model A");
    make_info(&other, 3, s3, "bcae-2d", "model B");
    bcae_error err;
    const char *p = tmp_path("append.bcae");
    CHECK(write_file(p, &info, 3, 0, 1));
    CHECK(append_records(p, &info, 3, 2, 0, 1, &err));
    CHECK(append_records(p, &info, 5, 4, 0, 1, &err));
    int enc[2] = {0, 0};
    CHECK(read_file(p, 1, &err, enc) == 9);
    CHECK(enc[BCAE_CTR_ZSTD] == 3);
    size_t len0, len1;
    unsigned char *before = slurp(p, &len0);

    /* Another model: refused, file untouched. */
    CHECK(!append_records(p, &other, 9, 1, 0, 1, &err));
    CHECK(err.status == BCAE_ERR_UNSUPPORTED && strstr(err.message, "written by another model") &&
          strstr(err.message, "append.bcae"));
    other = info;
    other.code_shape[0] = 9;
    CHECK(!append_records(p, &other, 9, 1, 0, 1, &err) && strstr(err.message, "code shape"));
    other = info;
    strcpy(other.arch, "bcae++");
    CHECK(!append_records(p, &other, 9, 1, 0, 1, &err) && strstr(err.message, "architecture"));
    /* Aborted after writing records: restored byte for byte. */
    CHECK(append_records(p, &info, 9, 3, 0, 0, &err));
    unsigned char *after = slurp(p, &len1);
    CHECK(len0 == len1 && !memcmp(before, after, len0));
    free(after);
    /* A second appender is locked out while one is open. fcntl locks are
     * per process, so this is checked from a child. */
    bcae_ctr_writer *w;
    CHECK(bcae_ctr_append_open(p, &info, 0, &w, &err) == BCAE_OK);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        bcae_ctr_writer *w2;
        bcae_error e2;
        int locked = bcae_ctr_append_open(p, &info, 0, &w2, &e2) == BCAE_ERR_IO &&
                     strstr(e2.message, "lock");
        _exit(locked ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    bcae_ctr_writer_abort(w);

    /* A torn append (as a crash leaves it): old records, one new complete
     * record, half of another, no end marker. */
    size_t n = 8 * 6 * 4 * 2, rec = 44 + 24 + n;
    unsigned char *torn = malloc(len0 + 2 * rec);
    memcpy(torn, before, len0 - 16);
    size_t tl = len0 - 16;
    {
        const char *q = tmp_path("donor.bcae");
        CHECK(write_file(q, &info, 11, 0, 1));
        size_t dl;
        unsigned char *d = slurp(q, &dl);
        /* Records 9 and 10 of the donor have the paths and codes that
         * read_back expects at those indices. */
        size_t hdr = 64 + 7 + 4;
        memcpy(torn + tl, d + hdr + 9 * rec, rec + rec / 2);
        tl += rec + rec / 2;
        free(d);
    }
    spit(p, torn, tl);
    CHECK(read_file(p, 1, &err, NULL) == -11 && strstr(err.message, "record 10") &&
          strstr(err.message, "truncated"));
    CHECK(!append_records(p, &info, 10, 1, 0, 1, &err) &&
          strstr(err.message, "does not end with a valid end marker"));
    /* Repair drops the half record, keeps the whole one, then appends. */
    CHECK(bcae_ctr_append_open(p, &info, BCAE_CTR_APPEND_REPAIR, &w, &err) == BCAE_OK);
    bcae_ctr_stats stats;
    bcae_ctr_writer_stats(w, &stats);
    CHECK(stats.records == 10 && stats.repaired_bytes == rec / 2);
    bcae_ctr_writer_abort(w); /* restores the repaired state, not the torn one */
    CHECK(read_file(p, 1, &err, NULL) == 10);
    CHECK(append_records(p, &info, 10, 2, 0, 1, &err));
    CHECK(read_file(p, 1, &err, NULL) == 12);
    /* Repair refuses corruption that is not a cut. */
    memcpy(torn + len0 - 16 + 50, "XX", 2);
    spit(p, torn, tl);
    CHECK(!append_records(p, &info, 10, 1, BCAE_CTR_APPEND_REPAIR, 1, &err) &&
          strstr(err.message, "record 9") && strstr(err.message, "CRC"));
    free(torn);
    free(before);
    /* Not a container at all. */
    spit(p, (const unsigned char *)"hello", 5);
    CHECK(!append_records(p, &info, 0, 1, 0, 1, &err) && strstr(err.message, "bad magic"));
}

static void test_writer_errors(void)
{
    const size_t s2[2] = {4, 3};
    bcae_ctr_info info;
    make_info(&info, 2, s2, "bcae-2d", "model A");
    bcae_error err;
    bcae_ctr_writer *w;
    uint16_t code[12] = {0};
    /* Abort leaves nothing: no file, no temporary. */
    const char *p = tmp_path("aborted.bcae");
    CHECK(bcae_ctr_writer_open(p, &info, &w, &err) == BCAE_OK);
    CHECK(bcae_ctr_writer_append(w, "a.npy", WEDGE, 3, code, 0, &err) == BCAE_OK);
    CHECK(count_files("aborted.bcae") == 1); /* the temporary */
    bcae_ctr_writer_abort(w);
    CHECK(!file_exists(p) && count_files("aborted.bcae") == 0);
    /* An existing file survives an aborted rewrite. */
    CHECK(write_file(p, &info, 2, 0, 0));
    size_t l0, l1;
    unsigned char *b0 = slurp(p, &l0);
    CHECK(bcae_ctr_writer_open(p, &info, &w, &err) == BCAE_OK);
    bcae_ctr_writer_abort(w);
    unsigned char *b1 = slurp(p, &l1);
    CHECK(l0 == l1 && !memcmp(b0, b1, l0));
    free(b0);
    free(b1);
    /* Unwritable destination. */
    CHECK(bcae_ctr_writer_open("/nonexistent-dir/x.bcae", &info, &w, &err) == BCAE_ERR_IO &&
          strstr(err.message, "/nonexistent-dir/x.bcae"));
    /* Bad arguments. */
    bcae_ctr_info bad = info;
    bad.code_dtype = 0;
    CHECK(bcae_ctr_writer_open(p, &bad, &w, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bad = info;
    bad.arch[0] = '\0';
    CHECK(bcae_ctr_writer_open(p, &bad, &w, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bad = info;
    bad.code_shape[1] = 0;
    CHECK(bcae_ctr_writer_open(p, &bad, &w, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bad = info;
    bad.code_ndim = 2;
    bad.code_shape[0] = 1u << 20;
    bad.code_shape[1] = 1u << 20;
    CHECK(bcae_ctr_writer_open(p, &bad, &w, &err) == BCAE_ERR_INVALID_ARGUMENT &&
          strstr(err.message, "64 MiB"));
    CHECK(bcae_ctr_writer_open(tmp_path("args.bcae"), &info, &w, &err) == BCAE_OK);
    CHECK(bcae_ctr_writer_append(w, "../up.npy", WEDGE, 3, code, 0, &err) ==
              BCAE_ERR_INVALID_ARGUMENT &&
          strstr(err.message, "'..'"));
    CHECK(bcae_ctr_writer_append(w, "/abs.npy", WEDGE, 3, code, 0, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_ctr_writer_append(w, "a.npy", WEDGE, 3, code, 23, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_ctr_writer_append(w, "a.npy", WEDGE, 0, code, 0, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    const size_t zero[3] = {192, 0, 16};
    CHECK(bcae_ctr_writer_append(w, "a.npy", zero, 3, code, 0, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    /* Bad arguments do not poison the writer. */
    CHECK(bcae_ctr_writer_append(w, "ok.npy", WEDGE, 3, code, 0, &err) == BCAE_OK);
    CHECK(bcae_ctr_writer_finish(w, &err) == BCAE_OK);
    bcae_ctr_reader *r;
    CHECK(bcae_ctr_reader_open(tmp_path("args.bcae"), &r, &err) == BCAE_OK);
    bcae_ctr_record rec;
    int end;
    CHECK(bcae_ctr_reader_next(r, &rec, code, &end, &err) == BCAE_OK && !end &&
          !strcmp(rec.path, "ok.npy"));
    CHECK(bcae_ctr_reader_next(r, &rec, code, &end, &err) == BCAE_OK && end);
    bcae_ctr_reader_close(r);
}

/* ------------------------------------------------------------------ */
/* Hostile files: FIFOs, repeated paths, repair                        */
/* ------------------------------------------------------------------ */

/* A FIFO without a writer: every entry point refuses it at once (the test
 * would hang if one blocked in open). */
static void test_fifo(void)
{
    const char *f = tmp_path("fifo.bcae");
    CHECK(mkfifo(f, 0600) == 0);
    bcae_error err;
    bcae_ctr_reader *r = NULL;
    CHECK(bcae_ctr_reader_open(f, &r, &err) == BCAE_ERR_IO && r == NULL);
    CHECK_MSG(strstr(err.message, f) && strstr(err.message, "FIFO"), "%s", err.message);
    uint64_t count = 0;
    CHECK(bcae_ctr_peek_count(f, &count) == 0);
    const size_t s2[2] = {4, 3};
    bcae_ctr_info info;
    make_info(&info, 2, s2, "bcae-2d", "model A");
    bcae_ctr_writer *w;
    CHECK(bcae_ctr_append_open(f, &info, 0, &w, &err) == BCAE_ERR_IO &&
          strstr(err.message, "FIFO"));
    bcae_ctr_repair_report rep;
    CHECK(bcae_ctr_repair(f, &rep, &err) == BCAE_ERR_IO && strstr(err.message, "FIFO"));
    unlink(f);
}

static void test_duplicate_paths(void)
{
    const size_t s2[2] = {4, 3};
    bcae_ctr_info info;
    make_info(&info, 2, s2, "bcae-2d", "model A");
    uint16_t code[12] = {0};
    bcae_error err;
    bcae_ctr_writer *w;
    const char *p = tmp_path("dup.bcae");
    CHECK(bcae_ctr_writer_open(p, &info, &w, &err) == BCAE_OK);
    CHECK(!bcae_ctr_writer_has_path(w, "a/x.npy"));
    CHECK(bcae_ctr_writer_append(w, "a/x.npy", WEDGE, 3, code, 0, &err) == BCAE_OK);
    CHECK(bcae_ctr_writer_has_path(w, "a/x.npy") && !bcae_ctr_writer_has_path(w, "a/y.npy"));
    CHECK(bcae_ctr_writer_append(w, "a/x.npy", WEDGE, 3, code, 0, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK_MSG(strstr(err.message, p) && strstr(err.message, "\"a/x.npy\" is already"), "%s",
              err.message);
    /* Refused, not poisoned: another path still goes in. */
    CHECK(bcae_ctr_writer_append(w, "a/y.npy", WEDGE, 3, code, 0, &err) == BCAE_OK);
    CHECK(bcae_ctr_writer_finish(w, &err) == BCAE_OK);
    /* Appending knows the old paths (from a scan of the file). */
    CHECK(bcae_ctr_append_open(p, &info, 0, &w, &err) == BCAE_OK);
    CHECK(bcae_ctr_writer_has_path(w, "a/x.npy") && bcae_ctr_writer_has_path(w, "a/y.npy"));
    CHECK(bcae_ctr_writer_append(w, "a/y.npy", WEDGE, 3, code, 0, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_ctr_writer_append(w, "b.npy", WEDGE, 3, code, 0, &err) == BCAE_OK);
    CHECK(bcae_ctr_writer_finish(w, &err) == BCAE_OK);
    bcae_ctr_reader *r;
    CHECK(bcae_ctr_reader_open(p, &r, &err) == BCAE_OK);
    CHECK(drain(r, &err) == 3);
    /* The scan checks each record's header CRC and path: a damaged record
     * in the middle makes appending refuse (it did not look before). */
    size_t len;
    unsigned char *b = slurp(p, &len);
    size_t r1 = BCAE_CTR_HEADER_FIXED + 7 + 4 + 44 + 7 + 24; /* record 1 */
    b[r1 + 20] ^= 1;
    spit(p, b, len);
    CHECK(bcae_ctr_append_open(p, &info, 0, &w, &err) == BCAE_ERR_FORMAT);
    CHECK_MSG(strstr(err.message, "record 1") && strstr(err.message, "CRC"), "%s", err.message);
    free(b);
}

static void test_repair(void)
{
    const size_t s3[3] = {8, 6, 4};
    bcae_ctr_info info;
    make_info(&info, 3, s3, "bcae-2d", "model A");
    const char *p = tmp_path("repair.bcae");
    CHECK(write_file(p, &info, 3, 0, 1));
    size_t len;
    unsigned char *whole = slurp(p, &len);
    size_t rec = 44 + 24 + 8 * 6 * 4 * 2, hdr = 64 + 7 + 4;
    CHECK(len == hdr + 3 * rec + 16);
    bcae_error err;
    bcae_ctr_repair_report rep;

    /* Complete: verified, left as it is. */
    CHECK(bcae_ctr_repair(p, &rep, &err) == BCAE_OK && rep.was_complete && rep.records == 3 &&
          rep.dropped_bytes == 0 && rep.file_bytes == len);
    size_t l2;
    unsigned char *now = slurp(p, &l2);
    CHECK(l2 == len && !memcmp(now, whole, len));
    free(now);

    /* Torn inside record 2: records 0 and 1 kept, the rest dropped. */
    size_t cut = hdr + 2 * rec + 30;
    spit(p, whole, cut);
    CHECK(read_file(p, 1, &err, NULL) == -3);
    CHECK_MSG(bcae_ctr_repair(p, &rep, &err) == BCAE_OK, "%s", err.message);
    CHECK(!rep.was_complete && rep.records == 2 && rep.dropped_bytes == 30 &&
          rep.file_bytes == hdr + 2 * rec + 16);
    CHECK(read_file(p, 1, &err, NULL) == 2);
    now = slurp(p, &l2);
    CHECK(l2 == hdr + 2 * rec + 16 && !memcmp(now, whole, hdr + 2 * rec));
    free(now);

    /* Cut exactly between records: nothing dropped, an end marker added. */
    spit(p, whole, hdr + 3 * rec);
    CHECK(bcae_ctr_repair(p, &rep, &err) == BCAE_OK && !rep.was_complete && rep.records == 3 &&
          rep.dropped_bytes == 0);
    now = slurp(p, &l2);
    CHECK(l2 == len && !memcmp(now, whole, len));
    free(now);

    /* Damage that is not a cut: refused, the file untouched. */
    unsigned char *bad = malloc(len);
    memcpy(bad, whole, len);
    bad[hdr + rec + 50] ^= 0x04;
    spit(p, bad, len - 20);
    CHECK(bcae_ctr_repair(p, &rep, &err) == BCAE_ERR_FORMAT);
    CHECK_MSG(strstr(err.message, p) && strstr(err.message, "record 1") &&
                  strstr(err.message, "CRC"),
              "%s", err.message);
    now = slurp(p, &l2);
    CHECK(l2 == len - 20 && !memcmp(now, bad, l2));
    free(now);
    /* A header cut short has nothing to keep: refused. */
    spit(p, whole, 40);
    CHECK(bcae_ctr_repair(p, &rep, &err) == BCAE_ERR_FORMAT && strstr(err.message, "truncated"));
    free(bad);
    free(whole);
    CHECK(bcae_ctr_repair(tmp_path("missing.bcae"), &rep, &err) == BCAE_ERR_IO);
}

int main(void)
{
    snprintf(work, sizeof work, "test_container_work_XXXXXX");
    if (!mkdtemp(work)) {
        perror("mkdtemp");
        return 1;
    }
    test_crc32c();
    test_paths();
    test_round_trips();
    test_ratio();
    test_truncation();
    test_bit_flips();
    test_hostile();
    test_append();
    test_writer_errors();
    test_fifo();
    test_duplicate_paths();
    test_repair();
    /* Clean up the work folder (only our own files are in it). */
    DIR *d = opendir(work);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') unlink(tmp_path(e->d_name));
    if (d) closedir(d);
    rmdir(work);
    return check_report("test_container");
}
