/*
 * Drives the .bcae writer and reader for tests/container_reader_test.py
 * (not a unit test):
 *
 *   container_tool write  OUT.bcae CODE.npy [--zstd L] [--arch A] [--fingerprint HEX]
 *   container_tool append OUT.bcae CODE.npy [--zstd L] [--arch A] [--fingerprint HEX]
 *       CODE.npy is float32 (N, d1, ..., dk), k <= 4: each of the N codes is
 *       rounded to fp16 and written as record i with the path
 *       "12-2_<i % 12>-<(i / 12) % 2>/sim1_<i, 6 digits>.npy" (an append
 *       continues the numbering from the file's record count) and original
 *       shape (192, 249, 16). The fingerprint defaults to SHA-256("bcae
 *       container_tool"), the arch to "bcae-2d".
 *   container_tool dump IN.bcae OUT.npy
 *       every record's code as float32 (N, d1, ..., dk); one line per record
 *       on stdout: index, encoding, stored bytes, path.
 *   container_tool seeds DIR
 *       writes the fuzz seed corpus (tests/fuzz/corpus_container/).
 *
 * Exit status 0 on success, 1 with the library's message on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "core/half.h"
#include "core/sha256.h"
#include "io/container.h"

static int fail(const bcae_error *err)
{
    fprintf(stderr, "container_tool: %s\n", err->message);
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: container_tool write|append OUT.bcae CODE.npy [--zstd L] [--arch A] "
                    "[--fingerprint HEX]\n"
                    "       container_tool dump IN.bcae OUT.npy\n"
                    "       container_tool seeds DIR\n");
    return 2;
}

static int parse_hex32(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64) return 0;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return 0;
        out[i] = (uint8_t)v;
    }
    return 1;
}

static void default_info(bcae_ctr_info *info)
{
    memset(info, 0, sizeof *info);
    const char *seed = "bcae container_tool";
    bcae_sha256(seed, strlen(seed), info->fingerprint);
    strcpy(info->arch, "bcae-2d");
    info->code_dtype = BCAE_CTR_DTYPE_F16;
}

static void wedge_path(char *out, size_t cap, uint64_t i)
{
    snprintf(out, cap, "12-2_%d-%d/sim1_%06llu.npy", (int)(i % 12), (int)((i / 12) % 2),
             (unsigned long long)i);
}

static int write_codes(int append, int argc, char **argv)
{
    if (argc < 4) return usage();
    const char *out = argv[2], *in = argv[3];
    bcae_ctr_info info;
    default_info(&info);
    int level = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--zstd") && i + 1 < argc) {
            level = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--arch") && i + 1 < argc) {
            snprintf(info.arch, sizeof info.arch, "%s", argv[++i]);
        } else if (!strcmp(argv[i], "--fingerprint") && i + 1 < argc) {
            if (!parse_hex32(argv[++i], info.fingerprint)) return usage();
        } else {
            return usage();
        }
    }
    bcae_error err;
    bcae_array a;
    if (bcae_npy_read(in, &a, &err)) return fail(&err);
    if (a.dtype != BCAE_DTYPE_F32 || a.ndim < 2 || a.ndim > 1 + BCAE_CTR_MAX_NDIM) {
        fprintf(stderr, "container_tool: %s: expected float32 (N, d1, ..., dk), k <= 4\n", in);
        bcae_array_free(&a);
        return 1;
    }
    info.code_ndim = a.ndim - 1;
    for (int d = 1; d < a.ndim; d++) info.code_shape[d - 1] = a.shape[d];
    size_t n = bcae_ctr_code_count(&info);
    uint16_t *code = malloc((n ? n : 1) * sizeof *code);
    bcae_ctr_writer *w;
    bcae_status st = code ? BCAE_OK : BCAE_ERR_OUT_OF_MEMORY;
    if (st == BCAE_OK)
        st = append ? bcae_ctr_append_open(out, &info, 0, &w, &err)
                    : bcae_ctr_writer_open(out, &info, &w, &err);
    if (st) {
        free(code);
        bcae_array_free(&a);
        return fail(&err);
    }
    bcae_ctr_stats stats;
    bcae_ctr_writer_stats(w, &stats);
    const size_t wedge[3] = {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
    const float *src = a.data;
    for (size_t r = 0; r < a.shape[0] && st == BCAE_OK; r++) {
        for (size_t k = 0; k < n; k++) code[k] = bcae_f32_to_f16(src[r * n + k]);
        char path[64];
        wedge_path(path, sizeof path, stats.records + r);
        st = bcae_ctr_writer_append(w, path, wedge, 3, code, level, &err);
    }
    free(code);
    bcae_array_free(&a);
    if (st) {
        bcae_ctr_writer_abort(w);
        return fail(&err);
    }
    if (bcae_ctr_writer_finish(w, &err)) return fail(&err);
    return 0;
}

static int dump(int argc, char **argv)
{
    if (argc != 4) return usage();
    bcae_error err;
    bcae_ctr_reader *r;
    if (bcae_ctr_reader_open(argv[2], &r, &err)) return fail(&err);
    const bcae_ctr_info *info = bcae_ctr_reader_info(r);
    size_t n = bcae_ctr_code_count(info);
    uint16_t *code = malloc(n * sizeof *code);
    bcae_ctr_record *rec = malloc(sizeof *rec);
    float *all = NULL;
    size_t count = 0;
    int end = 0;
    bcae_status st = code && rec ? BCAE_OK : BCAE_ERR_OUT_OF_MEMORY;
    while (st == BCAE_OK && !(st = bcae_ctr_reader_next(r, rec, code, &end, &err)) && !end) {
        float *grown = realloc(all, (count + 1) * n * sizeof *all);
        if (!grown) {
            st = BCAE_ERR_OUT_OF_MEMORY;
            break;
        }
        all = grown;
        for (size_t k = 0; k < n; k++) all[count * n + k] = bcae_f16_to_f32(code[k]);
        count++;
        printf("%llu %s %zu %s\n", (unsigned long long)rec->index,
               rec->encoding == BCAE_CTR_ZSTD ? "zstd" : "raw", rec->stored_bytes, rec->path);
    }
    bcae_array a = {BCAE_DTYPE_F32, 1 + info->code_ndim, {count}, all};
    for (int d = 0; d < info->code_ndim; d++) a.shape[1 + d] = info->code_shape[d];
    bcae_ctr_reader_close(r);
    free(code);
    free(rec);
    if (st == BCAE_OK) st = bcae_npy_write(argv[3], &a, &err);
    free(all);
    return st ? fail(&err) : 0;
}

/* Seeds for fuzzing: small files (under libFuzzer's 4 KiB max_len) that
 * between them use every field: raw and zstd payloads, 1- to 4-dimensional
 * codes and originals, a UTF-8 path, no records, and a few broken ones. */
static int seeds(int argc, char **argv)
{
    if (argc != 3) return usage();
    const char *dir = argv[2];
    bcae_error err;
    struct {
        const char *name;
        int ndim;
        size_t shape[4];
        int records, level;
        const char *arch;
    } kinds[] = {
        {"raw_2d.bcae", 2, {4, 6}, 3, 0, "bcae-2d"},
        {"zstd_3d.bcae", 3, {2, 4, 8}, 4, 3, "bcae-2d"},
        {"zstd19_4d.bcae", 4, {2, 2, 3, 4}, 2, 19, "bcae++"},
        {"raw_1d_one.bcae", 1, {5}, 1, 0, "bcae-ht"},
        {"empty.bcae", 3, {8, 12, 16}, 0, 0, "bcae"},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        bcae_ctr_info info;
        default_info(&info);
        snprintf(info.arch, sizeof info.arch, "%s", kinds[k].arch);
        info.code_ndim = kinds[k].ndim;
        memcpy(info.code_shape, kinds[k].shape, sizeof info.code_shape);
        size_t n = bcae_ctr_code_count(&info);
        uint16_t code[256];
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, kinds[k].name);
        bcae_ctr_writer *w;
        if (bcae_ctr_writer_open(path, &info, &w, &err)) return fail(&err);
        for (int i = 0; i < kinds[k].records; i++) {
            /* Smooth values with repeats, so zstd has something to find. */
            for (size_t e = 0; e < n; e++)
                code[e] = bcae_f32_to_f16((float)((e * 7 + (size_t)i) % 11) * 0.25f - 1.0f);
            char rel[64];
            const size_t orig3[3] = {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
            const size_t orig1[1] = {100};
            if (k == 3)
                snprintf(rel, sizeof rel, "caf\xc3\xa9/\xe2\x82\xac_%d.npy", i);
            else
                wedge_path(rel, sizeof rel, (uint64_t)i);
            if (bcae_ctr_writer_append(w, rel, k == 3 ? orig1 : orig3, k == 3 ? 1 : 3, code,
                                       kinds[k].level, &err)) {
                bcae_ctr_writer_abort(w);
                return fail(&err);
            }
        }
        if (bcae_ctr_writer_finish(w, &err)) return fail(&err);
    }
    /* Damaged copies of the first: cut inside record 1, and one bit of
     * record 0's payload flipped (the fuzz target also tries each with its
     * CRCs recomputed, which makes the flip reach the decoder). */
    char src[512], dst[512];
    snprintf(src, sizeof src, "%s/%s", dir, kinds[0].name);
    FILE *fp = fopen(src, "rb");
    unsigned char buf[4096];
    size_t len = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp) fclose(fp);
    size_t rec1 = BCAE_CTR_HEADER_FIXED + 7 + 4 + (BCAE_CTR_RECORD_OVERHEAD + 24 + 48);
    if (len < rec1 + 60) {
        fprintf(stderr, "container_tool: %s: unexpected size %zu\n", src, len);
        return 1;
    }
    snprintf(dst, sizeof dst, "%s/truncated.bcae", dir);
    fp = fopen(dst, "wb");
    if (!fp || fwrite(buf, 1, rec1 + 50, fp) != rec1 + 50 || fclose(fp)) return 1;
    buf[BCAE_CTR_HEADER_FIXED + 7 + 4 + 40 + 24 + 3] ^= 0x10;
    snprintf(dst, sizeof dst, "%s/flipped.bcae", dir);
    fp = fopen(dst, "wb");
    if (!fp || fwrite(buf, 1, len, fp) != len || fclose(fp)) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage();
    if (!strcmp(argv[1], "write")) return write_codes(0, argc, argv);
    if (!strcmp(argv[1], "append")) return write_codes(1, argc, argv);
    if (!strcmp(argv[1], "dump")) return dump(argc, argv);
    if (!strcmp(argv[1], "seeds")) return seeds(argc, argv);
    return usage();
}
