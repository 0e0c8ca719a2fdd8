/*
 * Replays the sparse codec's fuzz target without libFuzzer: every file of a
 * seed corpus (streams of small wedges, `test_sparse seeds DIR`), each of
 * its truncations, and a fixed set of pseudo-random mutations: blind ones
 * (bit flips, byte sets, truncations, insertions, deletions) and ones that
 * know the header (the quantiser multiplier, the hit count and the section
 * lengths set to boundary values). The target itself retries each input
 * with its CRC recomputed and as bare sections, so mutations reach the
 * arithmetic decoders. Deterministic; under -DBCAE_SANITIZE=ON a small
 * fuzz run.
 *
 *   fuzz_sparse_replay CORPUS_DIR [MUTATIONS_PER_SEED]
 */
#include "replay_common.h"

static void wr(uint8_t *b, size_t len, size_t at, uint64_t v, int n)
{
    for (int i = 0; i < n && at + (size_t)i < len; i++) b[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static size_t mutate(rng *r, uint8_t *buf, size_t len, size_t cap)
{
    size_t pos = below(r, len ? len : 1);
    static const uint64_t mults[] = {0, 1, 0xFFFFFFFFull, 0x100000000ull, 0x100000001ull,
                                     0x10000000000ull, 0x10000000001ull, 0x180000000ull};
    static const uint32_t sizes[] = {0, 1, 4, 5, 6, 0xFFFF, 764928, 764929, 0xFFFFFFFFu};
    switch (below(r, 9)) {
    case 0: return mut_flip_bit(r, buf, len, pos);
    case 1: return mut_set_byte(r, buf, len, pos);
    case 2: return mut_truncate(r, len);
    case 3: return mut_insert(r, buf, len, cap, pos, random_byte);
    case 4: return mut_delete(r, buf, len, pos, 16);
    case 5: /* quantiser multiplier */
        wr(buf, len, 16, mults[below(r, sizeof mults / sizeof mults[0])], 8);
        return len;
    case 6: /* hit count */
        wr(buf, len, 24, sizes[below(r, sizeof sizes / sizeof sizes[0])], 4);
        return len;
    case 7: /* a section length */
        wr(buf, len, below(r, 2) ? 28 : 32, sizes[below(r, sizeof sizes / sizeof sizes[0])], 4);
        return len;
    default: /* the method byte */
        if (len > 5) buf[5] = (uint8_t)below(r, 3);
        return len;
    }
}

int main(int argc, char **argv)
{
    static const replay_spec spec = {"fuzz_sparse_replay", 0x5ba75e00u, 4, 4096, mutate};
    return replay_main(argc, argv, &spec);
}
