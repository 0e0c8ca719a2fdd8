/*
 * Replays the .npy fuzz target without libFuzzer: every file of a seed
 * corpus, each of its truncations, and a fixed set of pseudo-random
 * mutations (bit flips, byte sets, header-syntax bytes, truncations,
 * insertions, deletions, header-length rewrites). Deterministic, so a
 * failure reproduces; under -DBCAE_SANITIZE=ON it is a small fuzz run.
 * The loop and the blind edits are in replay_common.h.
 *
 *   fuzz_replay CORPUS_DIR [MUTATIONS_PER_SEED]
 */
#include "replay_common.h"

static const char syntax[] = "{}()[]'\",: -+0123456789\n\t<>|=TrueFalsedescrshapefortran_order";

/* A byte the header grammar cares about. */
static uint8_t syntax_byte(rng *r)
{
    return (uint8_t)syntax[below(r, sizeof syntax - 1)];
}

static uint8_t syntax_or_random(rng *r)
{
    return below(r, 2) ? syntax_byte(r) : random_byte(r);
}

/* One random edit of buf (len bytes, capacity cap); returns the new length. */
static size_t mutate(rng *r, uint8_t *buf, size_t len, size_t cap)
{
    size_t pos = below(r, len ? len : 1);
    switch (below(r, 8)) {
    case 0:
        return mut_flip_bit(r, buf, len, pos);
    case 1:
        return mut_set_byte(r, buf, len, pos);
    case 2: /* a byte the header grammar cares about */
        if (len) buf[pos] = syntax_byte(r);
        return len;
    case 3:
        return mut_truncate(r, len);
    case 4:
        return mut_insert(r, buf, len, cap, pos, syntax_or_random);
    case 5:
        return mut_delete(r, buf, len, pos, 16);
    case 6: { /* rewrite the header length field (bytes 8..11) */
        static const uint32_t v[] = {0, 1, 0xffff, 0x10000, 0xffffffffu, 0x7fffffffu, 118, 54};
        uint32_t x = v[below(r, sizeof v / sizeof v[0])];
        for (size_t i = 8; i < 12 && i < len; i++) buf[i] = (uint8_t)(x >> (8 * (i - 8)));
        return len;
    }
    default: /* change the version byte */
        if (len > 6) buf[6] = (uint8_t)below(r, 5);
        return len;
    }
}

int main(int argc, char **argv)
{
    static const replay_spec spec = {"fuzz_replay", 0x5eed0000u, 4, 4096, mutate};
    return replay_main(argc, argv, &spec);
}
