/*
 * CRC-32C (Castagnoli), the checksum of the .bcae container
 * (docs/FORMAT.md): reflected polynomial 0x82F63B78, initial value and
 * final XOR 0xFFFFFFFF, so CRC-32C("123456789") = 0xE3069283. Chosen over
 * zlib's CRC-32 because it detects more error patterns at these lengths
 * and is what iSCSI, ext4 and Snappy's framing use, so every language has
 * an implementation to check an independent reader against.
 */
#ifndef BCAE_CORE_CRC32C_H
#define BCAE_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a finished CRC over n more bytes, zlib-style: crc32c(A || B) ==
 * bcae_crc32c_update(bcae_crc32c(A), B), and bcae_crc32c_update(0, ...)
 * starts a new one. */
uint32_t bcae_crc32c_update(uint32_t crc, const void *data, size_t n);

/* CRC-32C of n bytes. */
static inline uint32_t bcae_crc32c(const void *data, size_t n)
{
    return bcae_crc32c_update(0, data, n);
}

#endif
