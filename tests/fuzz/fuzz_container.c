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
 * and the code every element of which the sanitizers let us read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "core/crc32c.h"
#include "io/container.h"

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

static void read_all(const uint8_t *data, size_t size)
{
    bcae_ctr_reader *r;
    bcae_error err;
    volatile unsigned sink = 0;
    if (bcae_ctr_reader_open_mem(data, size, "fuzz.bcae", &r, &err) != BCAE_OK) {
        if (strncmp(err.message, "fuzz.bcae", 9) != 0) abort();
        return;
    }
    const bcae_ctr_info *info = bcae_ctr_reader_info(r);
    size_t count = bcae_ctr_code_count(info);
    if (count == 0 || 2 * count > BCAE_CTR_MAX_CODE_BYTES) abort();
    if (bcae_ctr_check_model(info, info, "fuzz.bcae", &err) != BCAE_OK) abort();
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
        if (strncmp(err.message, "fuzz.bcae", 9) != 0) abort();
        /* An error is final. */
        bcae_error again;
        if (bcae_ctr_reader_next(r, rec, code, &end, &again) == BCAE_OK || end) abort();
        if (strcmp(again.message, err.message) != 0) abort();
    }
    (void)sink;
    free(code);
    free(rec);
    bcae_ctr_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_all(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed) return 0;
    if (size) memcpy(fixed, data, size);
    fix_crcs(fixed, size);
    if (size == 0 || memcmp(fixed, data, size) != 0) read_all(fixed, size);
    free(fixed);
    return 0;
}
