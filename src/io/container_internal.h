/* Helpers shared by the .bcae reader (container.c) and writer
 * (container_write.c); not for other modules. */
#ifndef BCAE_IO_CONTAINER_INTERNAL_H
#define BCAE_IO_CONTAINER_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bcae.h"
#include "io/container.h"

#define REC_TAG "BREC"
#define END_TAG "BEND"
#define REC_HEADER 40 /* the CRC-protected fixed part of a record */
/* Original arrays: at most 2^40 values, so byte counts and sums over many
 * records stay exact in 64 bits and in doubles. */
#define ORIG_MAX_COUNT ((uint64_t)1 << 40)

/* ------------------------------------------------------------------ */
/* Little-endian fields                                                */
/* ------------------------------------------------------------------ */

static inline void put16(unsigned char *b, unsigned v)
{
    b[0] = (unsigned char)v;
    b[1] = (unsigned char)(v >> 8);
}

static inline void put32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static inline void put64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static inline unsigned get16(const unsigned char *b)
{
    return (unsigned)b[0] | (unsigned)b[1] << 8;
}

static inline uint32_t get32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t get64(const unsigned char *b)
{
    return (uint64_t)get32(b) | (uint64_t)get32(b + 4) << 32;
}

static inline int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* n fp16 values: little-endian bytes <-> native uint16. */
static inline void f16_from_le(uint16_t *dst, const unsigned char *src, size_t n)
{
    if (host_is_little_endian()) {
        memcpy(dst, src, 2 * n);
        return;
    }
    for (size_t i = 0; i < n; i++) dst[i] = (uint16_t)get16(src + 2 * i);
}

static inline void f16_to_le(unsigned char *dst, const uint16_t *src, size_t n)
{
    if (host_is_little_endian()) {
        memcpy(dst, src, 2 * n);
        return;
    }
    for (size_t i = 0; i < n; i++) put16(dst + 2 * i, src[i]);
}

/* The largest stored payload of a zstd record: ZSTD_compressBound is at
 * most this for every size, so any conforming zstd writer fits. */
static inline size_t zstd_stored_max(size_t raw)
{
    return raw + raw / 256 + 64;
}

/* ------------------------------------------------------------------ */
/* Shared between reader and writer                                    */
/* ------------------------------------------------------------------ */

/* Why a header's fields are invalid, or NULL. */
const char *bcae_ctr_info_problem(const bcae_ctr_info *info);
/* The version a file with this header is written as: 1 for codes, 2 for
 * sparse streams. */
unsigned bcae_ctr_version_for(const bcae_ctr_info *info);
/* The file header of info into b (room for 64 + 64 + 4); returns its size. */
size_t bcae_ctr_encode_header(const bcae_ctr_info *info, unsigned char *b);
void bcae_ctr_encode_end(unsigned char b[BCAE_CTR_END_BYTES], uint64_t records);
/* 1 and the record count if b is a valid end marker, else 0. */
int bcae_ctr_decode_end(const unsigned char b[BCAE_CTR_END_BYTES], uint64_t *records);

/* A reader on an open stream positioned at offset 0 of a file of `size`
 * bytes, not owning it (the appender's repair walk). */
bcae_status bcae_ctr_reader_on_stream(FILE *fp, const char *name, uint64_t size,
                                      bcae_ctr_reader **out, bcae_error *err);
/* Makes the reader a path scanner: records come back with their header
 * (CRC-checked) and path, but payloads and record CRCs are skipped (not
 * read, not verified). Only for a reader whose size is known. */
void bcae_ctr_reader_skip_payloads(bcae_ctr_reader *r);
/* Whether the reader's error was the data ending early (a torn write)
 * rather than corrupt or hostile bytes. */
int bcae_ctr_reader_truncated(const bcae_ctr_reader *r);

#endif
