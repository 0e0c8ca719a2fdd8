/* Fuzz target for the sparse codec's decoder (libFuzzer entry point; also
 * driven by fuzz_sparse_replay.c in every normal build). Each input is
 * decoded three ways, so that the arithmetic decoders are reached and not
 * only the checks in front of them:
 *   1. as a stream, as it is;
 *   2. as a stream with its CRC recomputed (damage behind a valid CRC);
 *   3. as the two sections of a coded stream, with no header to agree with
 *      (sparse_decode_sections, which bcae_sparse_decode runs after its
 *      checks): the first byte picks the quantiser (lossless, or a bound up
 *      to log2(128.5)), the second where the occupancy section ends, the
 *      third the pedestal.
 * Whatever the bytes, decoding must return a status, never read or write
 * out of bounds (the sanitizers make that a crash), and a wedge it accepts
 * must have as many hits as it says. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "core/crc32c.h"
#include "sparse/sparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_hits(const uint16_t *w)
{
    size_t hits = 0;
    for (size_t i = 0; i < (size_t)BCAE_WEDGE_VOXELS; i++) hits += w[i] != 0;
    return hits;
}

static void decode(bcae_sparse_coder *c, const uint8_t *b, size_t n, uint16_t *w)
{
    bcae_error err;
    bcae_sparse_info info;
    if (bcae_sparse_decode(c, b, n, w, &info, &err) != BCAE_OK) {
        volatile size_t k = 0; /* the message is a terminated string */
        while (err.message[k]) k++;
        return;
    }
    if (count_hits(w) != info.hits) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* One coder and wedge for every input (creating ~6 MB of grids per input
     * would be most of the time): this also checks that a coder is clean
     * after any input, as the decoder promises, since a stale cell would
     * change a later decode and the replay driver's results with it. */
    static bcae_sparse_coder *c = NULL;
    static uint16_t *w = NULL;
    if (!c && bcae_sparse_coder_create(&c, NULL) != BCAE_OK) abort();
    if (!w && !(w = malloc((size_t)BCAE_WEDGE_VOXELS * sizeof *w))) abort();
    uint8_t *b = malloc(size + 1);
    if (!b) abort();
    decode(c, data, size, w);
    if (size >= 40) {
        memcpy(b, data, size);
        uint32_t crc = bcae_crc32c(b, size - 4);
        for (int i = 0; i < 4; i++) b[size - 4 + i] = (uint8_t)(crc >> (8 * i));
        decode(c, b, size, w);
    }
    if (size >= 2) {
        uint64_t mult = ((uint64_t)1 << 32) + ((uint64_t)data[0] << 31);
        size_t body = size - 2, occ = (size_t)data[1] * body / 255;
        size_t hits = 0;
        bcae_error err;
        uint32_t ped = size > 2 ? data[2] : 0; /* the pedestal: any u16 is valid */
        if (sparse_decode_sections(c, data[0] ? mult : (uint64_t)1 << 32, ped, data + 2, occ,
                                   data + 2 + occ, body - occ, SIZE_MAX, w, &hits, &err) == BCAE_OK &&
            count_hits(w) != hits)
            abort();
    }
    free(b);
    return 0;
}
