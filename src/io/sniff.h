/* What a file is, by its first bytes: how `bcae inspect` picks a reader and,
 * for a file that is none of ours, says what it found instead of blaming
 * the wrong format's magic. */
#ifndef BCAE_IO_SNIFF_H
#define BCAE_IO_SNIFF_H

#include <stddef.h>

#include "bcae.h"

typedef enum bcae_file_kind {
    BCAE_FILE_UNKNOWN = 0,
    BCAE_FILE_EMPTY,
    BCAE_FILE_NPY,         /* \x93NUMPY (or a file cut inside it) */
    BCAE_FILE_BCAE,        /* BCAE (or a file cut inside it) */
    BCAE_FILE_SAFETENSORS, /* a plausible u64 header length, then '{' */
    BCAE_FILE_ZIP,         /* .npz, PyTorch .pth / .pt */
    BCAE_FILE_ZSTD,
    BCAE_FILE_GZIP,
    BCAE_FILE_PNG,
    BCAE_FILE_TEXT,        /* printable ASCII and whitespace only */
} bcae_file_kind;

/* Bytes sniffed from the start of a file. */
#define BCAE_SNIFF_BYTES 16

/* The kind that the first n bytes of a file say (n may be less than
 * BCAE_SNIFF_BYTES for a short file). */
bcae_file_kind bcae_sniff_bytes(const unsigned char *b, size_t n);
/* Opens path (a regular file; anything else is refused before it can
 * block), reads up to BCAE_SNIFF_BYTES into first (*n of them) and tells
 * the kind. */
bcae_status bcae_sniff_file(const char *path, bcae_file_kind *kind, unsigned char *first,
                            size_t *n, bcae_error *err);
/* "a NumPy .npy file", "a .bcae container", "a safetensors file", ... */
const char *bcae_file_kind_name(bcae_file_kind k);

#endif
