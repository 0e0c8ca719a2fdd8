/*
 * bcae_h5z.h — the BCAE HDF5 filter's identity, its cd_values and the byte
 * layout of a filtered chunk (docs/HDF5.md).
 *
 * Shared by the plugin (H5Zbcae.c) and the Python package (which exposes the
 * id as bcae.HDF5_FILTER_ID and packs cd_values for h5py), so that the two
 * cannot disagree. Plain C, no HDF5 or Python headers: both include it.
 */
#ifndef BCAE_H5Z_H
#define BCAE_H5Z_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The HDF Group leaves 32768..65535 unregistered, "for non-distributed uses
 * (e.g., internal company usage) or for application usage when testing a
 * feature"; 0xBCAE lies there. A file written with it is readable wherever
 * this plugin is, and nowhere else. */
#define BCAE_H5Z_FILTER_ID 48302 /* 0xBCAE */
#define BCAE_H5Z_NAME "bcae: BCAE neural autoencoder or sparse codec (uint16 TPC wedges)"

/* cd_values[0] names the codec and the layout of the other cd_values and of
 * the stored chunk: 1 (BCAE_H5Z_VERSION, what every dataset written before
 * the sparse mode holds) for a model's codes, 2 (BCAE_H5Z_SPARSE) for the
 * sparse codec's streams. A plugin that knows only 1 refuses 2 with an
 * error, never a wrong wedge. */
#define BCAE_H5Z_VERSION 1
#define BCAE_H5Z_SPARSE 2

/* cd_values of a model's codes, each an unsigned int:
 *   [0]      BCAE_H5Z_VERSION
 *   [1]      the encoder's precision (bcae_precision: 0 fp32, 1 bf16, 2 int8)
 *   [2..9]   the model's fingerprint (SHA-256 of its weights), 32 bytes as 8
 *            big-endian 32-bit words, so that "%08x" x 8 prints the hex
 *   [10]     wedges per chunk (the product of the chunk's leading dims)
 * A user may give the first 1, 2, 10 or all 11: set_local fills in the
 * default precision (fp32), the fingerprint of the model found by the
 * search (docs/HDF5.md) and the wedges per chunk. */
enum {
    BCAE_H5Z_CD_VERSION = 0,
    BCAE_H5Z_CD_PRECISION = 1,
    BCAE_H5Z_CD_FINGERPRINT = 2,
    BCAE_H5Z_CD_WEDGES = 10,
    BCAE_H5Z_CD_COUNT = 11
};

/* cd_values of the sparse codec (docs/SPARSE.md), each an unsigned int:
 *   [0]      BCAE_H5Z_SPARSE
 *   [1]      the bound E in millionths: 0..8,000,000 (0: lossless); the
 *            plugin codes with E = [1] / 1e6, so "0.05" is 50000 and gives
 *            the bytes of `bcae compress --codec sparse --max-error 0.05`
 *   [2]      the ratio R in thousandths, 0 = none; > 0: per wedge the finest
 *            bound meeting R (--ratio), and [1] must be 0
 *   [3]      wedges per chunk, as [10] above
 * A user may give the first 1, 2, 3 or all 4; set_local fills in 0 for a
 * missing bound or ratio (so {2} alone is lossless) and the wedges per
 * chunk. No model is involved. */
enum {
    BCAE_H5Z_SPARSE_CD_ERROR = 1,
    BCAE_H5Z_SPARSE_CD_RATIO = 2,
    BCAE_H5Z_SPARSE_CD_WEDGES = 3,
    BCAE_H5Z_SPARSE_CD_COUNT = 4
};
#define BCAE_H5Z_SPARSE_ERROR_SCALE 1000000.0
#define BCAE_H5Z_SPARSE_RATIO_SCALE 1000.0

static inline void bcae_h5z_pack_fingerprint(const uint8_t fp[32], unsigned *words)
{
    for (int i = 0; i < 8; i++)
        words[i] = (unsigned)fp[4 * i] << 24 | (unsigned)fp[4 * i + 1] << 16 |
                   (unsigned)fp[4 * i + 2] << 8 | (unsigned)fp[4 * i + 3];
}

static inline void bcae_h5z_unpack_fingerprint(const unsigned *words, uint8_t fp[32])
{
    for (int i = 0; i < 8; i++)
        for (int b = 0; b < 4; b++) fp[4 * i + b] = (uint8_t)(words[i] >> (24 - 8 * b));
}

/* A filtered chunk: a 16-byte header of four little-endian u32 — magic
 * "BCH5", BCAE_H5Z_VERSION, wedges n, code elements per wedge C — then the
 * n codes, n * C IEEE binary16 values, little-endian. The header repeats
 * what cd_values say so that a chunk written under other cd_values (or
 * damaged) is refused rather than decoded into the wrong wedges. */
#define BCAE_H5Z_CHUNK_MAGIC 0x35484342u /* "BCH5" as bytes */
#define BCAE_H5Z_CHUNK_HEADER 16

/* A sparse chunk: the 16-byte header of four little-endian u32 — magic
 * "BCH5", BCAE_H5Z_SPARSE, wedges n, 0 — then n u32 stream lengths, then the
 * n streams back to back, each the bytes bcae_sparse_encode makes (its own
 * CRC-32C inside): the records of a `bcae compress --codec sparse`
 * container. */

static inline void bcae_h5z_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t bcae_h5z_get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
