/*
 * Files of sparse streams in the .bcae container (format version 2,
 * docs/FORMAT.md): written as version 2 while files of codes stay version 1;
 * a round trip whose records give back the streams byte for byte and decode
 * to the wedges within their bounds; appending to one and repairing a torn
 * one; and what must be refused: codes in a sparse file and streams in a
 * code file, a wedge of another shape, a sparse header in a version-1 file
 * or with a model fingerprint or a code shape, a record of another
 * encoding, stream lengths out of range, code_out on a sparse reader, and
 * every truncation.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/crc32c.h"
#include "io/container.h"

#define V ((size_t)BCAE_WEDGE_VOXELS)
#define NREC 3

static const size_t WEDGE[3] = {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
static char work[256];

static void wr32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 64);
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

/* Wedge r: a few pulses, different in each. */
static void make_wedge(uint16_t *w, int r)
{
    memset(w, 0, V * sizeof *w);
    for (int p = 0; p < 40 + 20 * r; p++) {
        size_t a = (size_t)(p * 37 + r * 11) % 192, z = (size_t)(p * 53 + r) % 240,
               l = (size_t)(p + r) % 16;
        for (size_t k = 0; k < 5; k++)
            w[(a * BCAE_WEDGE_Z + z + k) * BCAE_WEDGE_LAYERS + l] =
                (uint16_t)(70 + (p * 131 + (int)k * 97 + r) % 950);
    }
}

/* Streams of NREC wedges at bound E = 0.02 r. */
static uint8_t *streams[NREC];
static size_t stream_len[NREC];
static uint16_t *wedges;

static void make_streams(void)
{
    wedges = malloc(NREC * V * sizeof *wedges);
    for (int r = 0; r < NREC; r++) {
        make_wedge(wedges + r * V, r);
        streams[r] = malloc(bcae_sparse_bound());
        bcae_sparse_options opt = {0.02 * r, 0};
        bcae_error err;
        CHECK(bcae_sparse_encode(NULL, wedges + r * V, &opt, streams[r], bcae_sparse_bound(),
                                 &stream_len[r], NULL, &err) == BCAE_OK);
    }
}

static void rel_of(char *out, size_t cap, int r)
{
    snprintf(out, cap, "12-2_%d-0/sparse_%06d.npy", r, r);
}

static int write_sparse(const char *path, int records)
{
    bcae_ctr_info info;
    bcae_ctr_sparse_info(&info);
    bcae_ctr_writer *w;
    bcae_error err;
    if (bcae_ctr_writer_open(path, &info, &w, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 0;
    }
    for (int r = 0; r < records; r++) {
        char rel[64];
        rel_of(rel, sizeof rel, r);
        if (bcae_ctr_writer_append_stream(w, rel, WEDGE, 3, streams[r], stream_len[r], &err)) {
            fprintf(stderr, "%s\n", err.message);
            bcae_ctr_writer_abort(w);
            return 0;
        }
    }
    return bcae_ctr_writer_finish(w, &err) == BCAE_OK;
}

/* Reads every record, checking each stream and its decoded wedge; returns
 * the records read, or -1 on an error (in *err). */
static long read_back(const char *path, bcae_error *err)
{
    bcae_ctr_reader *r;
    if (bcae_ctr_reader_open(path, &r, err)) return -1;
    const bcae_ctr_info *info = bcae_ctr_reader_info(r);
    CHECK(info->version == 2 && info->code_dtype == BCAE_CTR_DTYPE_SPARSE &&
          info->code_ndim == 0 && !strcmp(info->arch, "sparse"));
    uint16_t *out = malloc(V * sizeof *out);
    long n = 0;
    for (;;) {
        bcae_ctr_record rec;
        int end = 0;
        if (bcae_ctr_reader_next(r, &rec, NULL, &end, err)) {
            n = -1;
            break;
        }
        if (end) break;
        size_t len;
        const uint8_t *p = bcae_ctr_reader_payload(r, &len);
        int k = (int)(n % NREC);
        CHECK(rec.encoding == BCAE_CTR_SPARSE && rec.stored_bytes == len &&
              rec.raw_bytes == len && rec.orig_ndim == 3);
        CHECK_MSG(p && len == stream_len[k] && !memcmp(p, streams[k], len),
                  "record %ld: the stream differs", n);
        bcae_sparse_info si;
        CHECK(bcae_sparse_decode(NULL, p, len, out, &si, err) == BCAE_OK);
        size_t bad = 0;
        for (size_t i = 0; i < V; i++) {
            const uint16_t a = wedges[(size_t)k * V + i], b = out[i];
            bad += (a == 0) != (b == 0) || (k == 0 && a != b);
        }
        CHECK_MSG(bad == 0, "record %ld: %zu voxels wrong", n, bad);
        n++;
    }
    CHECK(bcae_ctr_reader_payload(r, NULL) == NULL); /* at the end: none */
    free(out);
    bcae_ctr_reader_close(r);
    return n;
}

static void test_round_trip(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/sparse.bcae", work);
    CHECK(write_sparse(path, NREC));
    bcae_error err;
    long n = read_back(path, &err);
    CHECK_MSG(n == NREC, "read %ld records: %s", n, n < 0 ? err.message : "");
    size_t len;
    unsigned char *b = slurp(path, &len);
    CHECK(b && b[4] == 2 && b[5] == 0 && b[40] == BCAE_CTR_DTYPE_SPARSE && b[41] == 0);
    free(b);

    /* Appending: the same header (no model); a second file half the
     * length grows to the full one. */
    char path2[512];
    snprintf(path2, sizeof path2, "%s/append.bcae", work);
    CHECK(write_sparse(path2, 1));
    bcae_ctr_info info;
    bcae_ctr_sparse_info(&info);
    bcae_ctr_writer *w;
    CHECK(bcae_ctr_append_open(path2, &info, 0, &w, &err) == BCAE_OK);
    for (int r = 1; r < NREC; r++) {
        char rel[64];
        rel_of(rel, sizeof rel, r);
        CHECK(bcae_ctr_writer_append_stream(w, rel, WEDGE, 3, streams[r], stream_len[r], &err) ==
              BCAE_OK);
    }
    CHECK(bcae_ctr_writer_finish(w, &err) == BCAE_OK);
    CHECK(read_back(path2, &err) == NREC);
    /* A code file's header does not open a sparse file for appending. */
    bcae_ctr_info codes = {0};
    snprintf(codes.arch, sizeof codes.arch, "bcae-2d");
    codes.code_dtype = BCAE_CTR_DTYPE_F16;
    codes.code_ndim = 1;
    codes.code_shape[0] = 8;
    CHECK(bcae_ctr_append_open(path2, &codes, 0, &w, &err) == BCAE_ERR_UNSUPPORTED);

    /* A torn sparse file: repair keeps the intact records. */
    unsigned char *t = slurp(path, &len);
    char torn[512];
    snprintf(torn, sizeof torn, "%s/torn.bcae", work);
    spit(torn, t, len - 16 - 7); /* no end marker, the last record cut */
    bcae_ctr_repair_report rep;
    CHECK(bcae_ctr_repair(torn, &rep, &err) == BCAE_OK && rep.records == NREC - 1);
    CHECK(read_back(torn, &err) == NREC - 1);
    free(t);
}

static void test_writer_refusals(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/refuse.bcae", work);
    bcae_error err;
    bcae_ctr_info info;
    bcae_ctr_sparse_info(&info);
    bcae_ctr_writer *w;
    CHECK(bcae_ctr_writer_open(path, &info, &w, &err) == BCAE_OK);
    uint16_t code[8] = {0};
    CHECK(bcae_ctr_writer_append(w, "a.npy", WEDGE, 3, code, 0, &err) == BCAE_ERR_INVALID_ARGUMENT);
    const size_t other[3] = {192, 249, 15};
    CHECK(bcae_ctr_writer_append_stream(w, "a.npy", other, 3, streams[0], stream_len[0], &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_ctr_writer_append_stream(w, "a.npy", WEDGE, 3, streams[0], 0, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_ctr_writer_append_stream(w, "a.npy", WEDGE, 3, streams[0], BCAE_CTR_STREAM_MAX + 1,
                                        &err) == BCAE_ERR_INVALID_ARGUMENT);
    bcae_ctr_writer_abort(w);
    /* A sparse header with a model or a code shape is refused. */
    bcae_ctr_info bad = info;
    bad.fingerprint[3] = 1;
    CHECK(bcae_ctr_writer_open(path, &bad, &w, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bad = info;
    bad.code_ndim = 1;
    bad.code_shape[0] = 4;
    CHECK(bcae_ctr_writer_open(path, &bad, &w, &err) == BCAE_ERR_INVALID_ARGUMENT);
    /* Streams in a file of codes are refused. */
    bcae_ctr_info codes = {0};
    snprintf(codes.arch, sizeof codes.arch, "bcae-2d");
    codes.code_dtype = BCAE_CTR_DTYPE_F16;
    codes.code_ndim = 1;
    codes.code_shape[0] = 8;
    CHECK(bcae_ctr_writer_open(path, &codes, &w, &err) == BCAE_OK);
    CHECK(bcae_ctr_writer_append_stream(w, "a.npy", WEDGE, 3, streams[0], stream_len[0], &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_ctr_writer_append(w, "a.npy", WEDGE, 3, code, 0, &err) == BCAE_OK);
    CHECK(bcae_ctr_writer_finish(w, &err) == BCAE_OK);
    /* ... and a file of codes is still written as version 1. */
    size_t len;
    unsigned char *b = slurp(path, &len);
    CHECK(b && b[4] == 1 && b[5] == 0);
    free(b);
}

/* Reads a file in memory to its end; returns records or -1 with *err. */
static long read_mem(const unsigned char *b, size_t len, bcae_error *err)
{
    bcae_ctr_reader *r;
    if (bcae_ctr_reader_open_mem(b, len, "mem.bcae", &r, err)) return -1;
    long n = 0;
    for (;;) {
        bcae_ctr_record rec;
        int end = 0;
        if (bcae_ctr_reader_next(r, &rec, NULL, &end, err)) {
            n = -1;
            break;
        }
        if (end) break;
        n++;
    }
    bcae_ctr_reader_close(r);
    return n;
}

static void expect(const unsigned char *b, size_t len, bcae_status status, const char *text,
                   const char *what)
{
    bcae_error err = {BCAE_OK, ""};
    long got = read_mem(b, len, &err);
    CHECK_MSG(got < 0 && err.status == status && strstr(err.message, text),
              "%s: got %ld, status %d: %s", what, got, (int)err.status, err.message);
}

static void test_reader_refusals(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/sparse.bcae", work);
    size_t len;
    unsigned char *orig = slurp(path, &len), *b = malloc(len + 64);
    size_t h = BCAE_CTR_HEADER_FIXED + orig[42], rec0 = h + 4;
#define FRESH() memcpy(b, orig, len)
#define HEADER_CRC() wr32(b + h, bcae_crc32c(b, h))
#define RECORD_CRCS()                                                                      \
    do {                                                                                   \
        wr32(b + rec0 + 36, bcae_crc32c(b + rec0, 36));                                    \
        size_t body_ = 40 + (size_t)(b[rec0 + 4] | b[rec0 + 5] << 8) +                      \
                       ((size_t)b[rec0 + 32] | (size_t)b[rec0 + 33] << 8 |                 \
                        (size_t)b[rec0 + 34] << 16 | (size_t)b[rec0 + 35] << 24);          \
        if (rec0 + body_ + 4 <= len) wr32(b + rec0 + body_, bcae_crc32c(b + rec0, body_)); \
    } while (0)
    FRESH();
    b[4] = 1;
    HEADER_CRC();
    expect(b, len, BCAE_ERR_FORMAT, "needs version 2", "sparse dtype in a version-1 file");
    FRESH();
    b[9] = 0x5a;
    HEADER_CRC();
    expect(b, len, BCAE_ERR_FORMAT, "fingerprint must be zero", "a fingerprint");
    FRESH();
    b[41] = 1;
    HEADER_CRC();
    expect(b, len, BCAE_ERR_FORMAT, "no code shape", "a code shape");
    FRESH();
    b[rec0 + 6] = BCAE_CTR_RAW;
    RECORD_CRCS();
    expect(b, len, BCAE_ERR_UNSUPPORTED, "encoding 0", "a raw record in a sparse file");
    FRESH();
    b[rec0 + 12 + 8] = 15; /* layers */
    RECORD_CRCS();
    expect(b, len, BCAE_ERR_FORMAT, "(192, 249, 16)", "another original shape");
    FRESH();
    wr32(b + rec0 + 28, (uint32_t)stream_len[0] + 1); /* raw != stored */
    RECORD_CRCS();
    expect(b, len, BCAE_ERR_FORMAT, "sparse stream length", "raw and stored lengths differ");
    FRESH();
    wr32(b + rec0 + 28, 0);
    wr32(b + rec0 + 32, 0);
    RECORD_CRCS();
    expect(b, len, BCAE_ERR_FORMAT, "sparse stream length", "an empty stream");
    /* A stream damaged under a record CRC made right again reaches the
     * stream's own CRC. */
    FRESH();
    b[rec0 + 40 + (b[rec0 + 4] | b[rec0 + 5] << 8) + 20] ^= 0x40;
    RECORD_CRCS();
    bcae_ctr_reader *r;
    bcae_error err;
    CHECK(bcae_ctr_reader_open_mem(b, len, "mem.bcae", &r, &err) == BCAE_OK);
    bcae_ctr_record rec;
    int end = 0;
    CHECK(bcae_ctr_reader_next(r, &rec, NULL, &end, &err) == BCAE_OK && !end);
    size_t plen;
    const uint8_t *p = bcae_ctr_reader_payload(r, &plen);
    uint16_t *out = malloc(V * sizeof *out);
    CHECK(p && bcae_sparse_decode(NULL, p, plen, out, NULL, &err) == BCAE_ERR_FORMAT);
    free(out);
    bcae_ctr_reader_close(r);
    /* code_out on a sparse file is a misuse, refused without ending the read. */
    CHECK(bcae_ctr_reader_open_mem(orig, len, "mem.bcae", &r, &err) == BCAE_OK);
    uint16_t code[4];
    CHECK(bcae_ctr_reader_next(r, &rec, code, &end, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_ctr_reader_next(r, &rec, NULL, &end, &err) == BCAE_OK && !end);
    bcae_ctr_reader_close(r);
    /* Every truncation is an error. */
    size_t accepted = 0;
    for (size_t cut = 0; cut < len; cut += cut < 200 ? 1 : 97)
        accepted += read_mem(orig, cut, &err) >= 0;
    CHECK_MSG(accepted == 0, "%zu truncations accepted", accepted);
    CHECK(read_mem(orig, len, &err) == NREC);
    free(b);
    free(orig);
}

int main(void)
{
    snprintf(work, sizeof work, "test_container_sparse_work");
    if (system("rm -rf test_container_sparse_work && mkdir -p test_container_sparse_work")) {
        fprintf(stderr, "cannot make %s\n", work);
        return 1;
    }
    make_streams();
    test_round_trip();
    test_writer_refusals();
    test_reader_refusals();
    for (int r = 0; r < NREC; r++) free(streams[r]);
    free(wedges);
    return check_report("test_container_sparse");
}
