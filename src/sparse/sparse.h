/* Internals of the sparse codec that the benchmarks see (not the public API). */
#ifndef BCAE_SPARSE_SPARSE_H
#define BCAE_SPARSE_SPARSE_H

#include <stdint.h>

#include "bcae.h"
#include "sparse/grid.h"

/* The stream header (docs/SPARSE.md section 1). */
#define SPARSE_MAGIC "BCSP"
#define SPARSE_VERSION 1
#define SPARSE_HEADER_BYTES 36
#define SPARSE_CRC_BYTES 4
enum { SPARSE_METHOD_STORED = 0, SPARSE_METHOD_CODED = 1 };

/* Bit-model statistics of later encodes: counts[m][bit] is incremented for
 * every bit coded with model m (0..SG_MODELS-1: the occupancy's models
 * first, SG_OCC_MODELS of them, then the values'), and counts[SG_MODELS][0]
 * for every value bit coded without a model; so counts has SG_MODELS + 1
 * rows. NULL stops counting. In ratio mode only the chosen bound's values
 * are counted. */
void sparse_coder_count_bits(bcae_sparse_coder *coder, uint32_t (*counts)[2]);

/* Decodes the two sections of a coded stream under quantiser multiplier
 * mult and pedestal ped: what bcae_sparse_decode does after the header and CRC checks, for
 * the fuzz target (which reaches the values this way with any occupancy).
 * expect_hits: the header's count, or SIZE_MAX to accept any; *hits_out
 * (may be NULL) receives the occupancy's. */
bcae_status sparse_decode_sections(bcae_sparse_coder *c, uint64_t mult, uint32_t ped,
                                   const uint8_t *occ, size_t occ_len, const uint8_t *val,
                                   size_t val_len, size_t expect_hits, uint16_t *w,
                                   size_t *hits_out, bcae_error *err);

/* Checks encoding options (NULL is lossless), with bcae_sparse_encode's
 * messages; bcae_sparse_encode_many checks them once for the batch. */
bcae_status sparse_options_check(const bcae_sparse_options *opt, bcae_error *err);

#endif
