/*
 * Replays the manifest fuzz target (fuzz_manifest.c) without libFuzzer:
 * every seed manifest, each of its truncations, and a fixed set of
 * pseudo-random mutations, most of them with the bytes a path grammar
 * cares about ('/', '.', "..", line ends, whitespace, NUL) so that the
 * normalisation's cases (".", "..", "//", leading '/', CRLF, blank lines)
 * come up often. Deterministic; the loop and the blind edits are in
 * replay_common.h.
 *
 *   fuzz_manifest_replay CORPUS_DIR [MUTATIONS_PER_SEED]
 */
#include "replay_common.h"

static const char path_bytes[] = "/./../\n\r\t  a.npy\0\x80\xff";

static uint8_t path_byte(rng *r)
{
    return (uint8_t)path_bytes[below(r, sizeof path_bytes - 1)];
}

static size_t mutate(rng *r, uint8_t *buf, size_t len, size_t cap)
{
    size_t pos = below(r, len ? len : 1);
    switch (below(r, 7)) {
    case 0: return mut_flip_bit(r, buf, len, pos);
    case 1: return mut_set_byte(r, buf, len, pos);
    case 2:
        if (len) buf[pos] = path_byte(r);
        return len;
    case 3: return mut_truncate(r, len);
    case 4: return mut_insert(r, buf, len, cap, pos, path_byte);
    case 5: return mut_delete(r, buf, len, pos, 8);
    default: { /* a whole component that the normalisation treats specially */
        static const char *const comps[] = {"../", "./", "/", "//", "/..", "\n", "\r\n", " "};
        const char *c = comps[below(r, sizeof comps / sizeof comps[0])];
        return splice_bytes(buf, len, cap, pos, 0, c, strlen(c));
    }
    }
}

int main(int argc, char **argv)
{
    static const replay_spec spec = {"fuzz_manifest_replay", 0x3a41f000u, 4, 1024, mutate};
    return replay_main(argc, argv, &spec);
}
