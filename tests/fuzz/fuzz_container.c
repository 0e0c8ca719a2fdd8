/* Fuzz target for the .bcae reader (libFuzzer entry point; also driven by
 * fuzz_container_replay.c in every normal build).
 *
 * Each input is read twice: as it is, and with every CRC it has recomputed
 * in a copy. Random bytes almost never carry a matching CRC-32C, so
 * without the second pass nothing past the CRC checks (field validation,
 * path rules, the zstd decoder, the end-marker count) would ever run.
 *
 * Whatever the bytes, the reader must return a status with a terminated
 * message that names the file; records it hands back must be consistent
 * (sizes within bounds, the path a terminated string of the stated rules),
 * and the code every element of which the sanitizers let us read.
 *
 * Built plain, it fuzzes bcae_ctr_reader_open_mem. Built with
 * BCAE_FUZZ_FILE, each input is a file (fuzz_file.h) and goes through what
 * the CLI does with a file: bcae_ctr_reader_open (inspect, decompress),
 * bcae_ctr_append_open with the file's own header as the model and then an
 * abort, which must leave the file byte for byte as it was (compress
 * --append, and its path scan), and bcae_ctr_repair, after which, if it
 * succeeded, the file must read to its end marker without an error
 * (`bcae repair`). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "core/crc32c.h"
#include "io/container.h"
#ifdef BCAE_FUZZ_FILE
#include "fuzz_file.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rd32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void wr32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}

/* Walks the layout as far as it makes sense and rewrites each CRC field
 * (file header, each record's header and body, the end marker). */
static void fix_crcs(uint8_t *b, size_t n)
{
    if (n < BCAE_CTR_HEADER_FIXED) return;
    size_t h = BCAE_CTR_HEADER_FIXED + b[42];
    if (h + 4 > n) return;
    wr32(b + h, bcae_crc32c(b, h));
    size_t off = h + 4;
    while (off + 16 <= n) {
        if (!memcmp(b + off, "BEND", 4)) {
            wr32(b + off + 12, bcae_crc32c(b + off, 12));
            off += 16;
            continue;
        }
        if (off + 40 > n) return;
        wr32(b + off + 36, bcae_crc32c(b + off, 36));
        size_t plen = (size_t)b[off + 4] | (size_t)b[off + 5] << 8;
        size_t body = 40 + plen + rd32(b + off + 32);
        if (body > n - off || n - off - body < 4) return;
        wr32(b + off + body, bcae_crc32c(b + off, body));
        off += body + 4;
    }
}

/* Reads the whole input (a file's path when name is one, else the bytes);
 * returns 1 if it read to a valid end marker, and the header in *info_out
 * when it has one. */
static int read_all(const char *name, const uint8_t *data, size_t size, bcae_ctr_info *info_out,
                    int *have_info)
{
    bcae_ctr_reader *r;
    bcae_error err;
    volatile unsigned sink = 0;
    size_t nlen = strlen(name);
    *have_info = 0;
#ifdef BCAE_FUZZ_FILE
    (void)data;
    bcae_status opened = bcae_ctr_reader_open(name, &r, &err);
#else
    bcae_status opened = bcae_ctr_reader_open_mem(data, size, name, &r, &err);
#endif
    if (opened != BCAE_OK) {
        if (strncmp(err.message, name, nlen) != 0) abort();
        return 0;
    }
    const bcae_ctr_info *info = bcae_ctr_reader_info(r);
    size_t count = bcae_ctr_code_count(info);
    if (count == 0 || 2 * count > BCAE_CTR_MAX_CODE_BYTES) abort();
    if (bcae_ctr_check_model(info, info, name, &err) != BCAE_OK) abort();
    *info_out = *info;
    *have_info = 1;
    /* Big codes are read without a code buffer (the reader still checks
     * and decompresses them), so one input cannot make us allocate 64 MiB. */
    uint16_t *code = count <= (1u << 16) ? malloc(count * sizeof *code) : NULL;
    bcae_ctr_record *rec = malloc(sizeof *rec);
    if (!rec) abort();
    int end = 0;
    uint64_t last_end = bcae_ctr_reader_offset(r);
    while (bcae_ctr_reader_next(r, rec, code, &end, &err) == BCAE_OK && !end) {
        if (rec->raw_bytes != 2 * count || rec->stored_bytes > rec->record_bytes) abort();
        if (rec->offset != last_end || rec->offset + rec->record_bytes > size) abort();
        if (bcae_ctr_check_path(rec->path, strlen(rec->path), &err) != BCAE_OK) abort();
        if (rec->orig_ndim < 1 || rec->orig_ndim > BCAE_CTR_MAX_NDIM) abort();
        last_end = rec->offset + rec->record_bytes;
        if (bcae_ctr_reader_offset(r) != last_end) abort();
        for (size_t k = 0; code && k < count; k++) sink += code[k];
    }
    if (end) {
        if (bcae_ctr_reader_offset(r) != size) abort();
    } else {
        volatile size_t n = 0;
        while (err.message[n]) n++;
        if (strncmp(err.message, name, nlen) != 0) abort();
        /* An error is final. */
        bcae_error again;
        if (bcae_ctr_reader_next(r, rec, code, &end, &again) == BCAE_OK || end) abort();
        if (strcmp(again.message, err.message) != 0) abort();
    }
    (void)sink;
    free(code);
    free(rec);
    bcae_ctr_reader_close(r);
    return end;
}

/* One input through every entry point of its build. */
static void check_input(const uint8_t *data, size_t size)
{
    bcae_ctr_info info;
    int have_info;
#ifndef BCAE_FUZZ_FILE
    read_all("fuzz.bcae", data, size, &info, &have_info);
#else
    const char *path = fuzz_write_file("fuzz.bcae", data, size);
    read_all(path, data, size, &info, &have_info);
    bcae_error err;
    if (have_info) {
        /* Appending and then giving up leaves the file as it was. */
        bcae_ctr_writer *w;
        if (bcae_ctr_append_open(path, &info, 0, &w, &err) == BCAE_OK) {
            bcae_ctr_writer_abort(w);
        } else if (strncmp(err.message, path, strlen(path)) != 0) {
            abort();
        }
        size_t n;
        uint8_t *now = fuzz_read_back(path, &n);
        if (n != size || (size && memcmp(now, data, size) != 0)) abort();
        free(now);
    }
    /* A repair that succeeds leaves a file that reads to its end. */
    bcae_ctr_repair_report rep;
    if (bcae_ctr_repair(path, &rep, &err) == BCAE_OK) {
        size_t n;
        uint8_t *now = fuzz_read_back(path, &n);
        if (n != rep.file_bytes) abort();
        if (rep.was_complete && (n != size || memcmp(now, data, size) != 0)) abort();
        if (!read_all(path, now, n, &info, &have_info)) abort();
        free(now);
    } else if (strncmp(err.message, path, strlen(path)) != 0) {
        abort();
    }
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_input(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed) return 0;
    if (size) memcpy(fixed, data, size);
    fix_crcs(fixed, size);
    if (size == 0 || memcmp(fixed, data, size) != 0) check_input(fixed, size);
    free(fixed);
    return 0;
}
