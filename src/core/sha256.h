/*
 * SHA-256 (FIPS 180-4). Used to fingerprint model weights: the codec
 * records which model made a compressed file, so that decoding with other
 * weights is caught instead of silently producing garbage.
 */
#ifndef BCAE_CORE_SHA256_H
#define BCAE_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define BCAE_SHA256_DIGEST 32

/* Streaming state: feed any number of update() calls between init() and
 * final(). Plain data, no allocation; one per thread. */
typedef struct bcae_sha256_ctx {
    uint32_t h[8];
    uint64_t bytes;          /* message length so far */
    unsigned char block[64]; /* a partial block waiting for more bytes */
    size_t fill;             /* bytes in block */
} bcae_sha256_ctx;

void bcae_sha256_init(bcae_sha256_ctx *c);
void bcae_sha256_update(bcae_sha256_ctx *c, const void *data, size_t n);
/* Pads, writes the digest and leaves c in an unspecified state. */
void bcae_sha256_final(bcae_sha256_ctx *c, uint8_t out[BCAE_SHA256_DIGEST]);

/* One-shot digest of n bytes. */
void bcae_sha256(const void *data, size_t n, uint8_t out[BCAE_SHA256_DIGEST]);
/* Lower-case hex of a digest into hex[65] (terminated). */
void bcae_sha256_hex(const uint8_t digest[BCAE_SHA256_DIGEST], char hex[65]);

#endif
