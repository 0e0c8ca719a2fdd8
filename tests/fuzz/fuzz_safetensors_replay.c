/*
 * Replays the safetensors fuzz target without libFuzzer: every file of a
 * seed corpus, each of its truncations, and a fixed set of pseudo-random
 * mutations. Besides blind ones (bit flips, byte sets, truncations,
 * insertions, deletions) most of them know the format: they rewrite the
 * u64 header length, or edit the JSON header (syntax bytes, numbers,
 * dtype names, whole-token deletions) and then fix the header length, so
 * that the input gets past the first check and reaches the deep ones.
 * (tests/fuzz/fuzz_replay.c does the same for .npy, whose mutations know
 * that format's header.) Deterministic, so a failure reproduces; under
 * -DBCAE_SANITIZE=ON it is a small fuzz run. The loop and the blind edits
 * are in replay_common.h.
 *
 *   fuzz_safetensors_replay CORPUS_DIR [MUTATIONS_PER_SEED]
 */
#include "replay_common.h"

#define SLACK 4096 /* room for insertions */

static uint64_t get_len(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static void set_len(uint8_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

/* The header's extent [8, 8 + hlen) if the prefix is sane, else 0. */
static size_t header_end(const uint8_t *buf, size_t len)
{
    if (len < 8) return 0;
    uint64_t h = get_len(buf);
    return h <= len - 8 ? 8 + (size_t)h : 0;
}

/* Replaces del bytes at pos with ins[0..nins); if the edit lies inside the
 * header, the header length follows it. Returns the new length. */
static size_t splice(uint8_t *buf, size_t len, size_t cap, size_t pos, size_t del,
                     const char *ins, size_t nins)
{
    if (pos > len) pos = len;
    if (del > len - pos) del = len - pos;
    if (len - del + nins > cap) return len;
    size_t hend = header_end(buf, len);
    len = splice_bytes(buf, len, cap, pos, del, ins, nins);
    if (hend && pos >= 8 && pos + del <= hend) set_len(buf, (uint64_t)(hend - 8 - del + nins));
    return len;
}

static const char syntax[] = "{}[]\":,0123456789-+.eE\\u \t\n";

static uint8_t syntax_byte(rng *r)
{
    return (uint8_t)syntax[below(r, sizeof syntax - 1)];
}

static const char *const tokens[] = {
    "\"F32\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"I64\"", "\"U8\"", "\"BOOL\"", "\"F8_E4M3\"",
    "\"XX\"", "0", "1", "8", "4294967296", "18446744073709551615", "18446744073709551616",
    "99999999999999999999999", "-1", "1.5", "1e3", "null", "true", "[]", "{}", "[0,0]",
    "\"__metadata__\"", "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"\\ud800\"",
    "\"\\u0000\"", "\"\\u00e9\"", "\"\xff\"", "\"", "\\", ",", ":"};
#define NTOKENS (sizeof tokens / sizeof tokens[0])

/* One random edit of buf (len bytes, capacity cap); returns the new length. */
static size_t mutate(rng *r, uint8_t *buf, size_t len, size_t cap)
{
    size_t pos = below(r, len ? len : 1);
    size_t hend = header_end(buf, len);
    size_t hpos = hend > 8 ? 8 + below(r, hend - 8) : pos; /* a place in the header */
    switch (below(r, 11)) {
    case 0:
        return mut_flip_bit(r, buf, len, pos);
    case 1:
        return mut_set_byte(r, buf, len, pos);
    case 2: /* a byte the JSON grammar cares about, in the header */
        if (hpos < len) buf[hpos] = syntax_byte(r);
        return len;
    case 3:
        return mut_truncate(r, len);
    case 4: /* insert a few JSON bytes anywhere, length not fixed */
        return mut_insert(r, buf, len, cap, pos, syntax_byte);
    case 5: { /* rewrite the header length */
        static const uint64_t v[] = {0, 1, 7, 8, 0xffffffffu, (uint64_t)100 << 20,
                                     ((uint64_t)100 << 20) + 1, UINT64_MAX, (uint64_t)1 << 63};
        if (len < 8) return len;
        uint64_t h = get_len(buf);
        uint64_t x = below(r, 2) ? v[below(r, sizeof v / sizeof v[0])]
                                 : h + (uint64_t)(int64_t)((int)below(r, 17) - 8);
        set_len(buf, x);
        return len;
    }
    case 6: { /* a token in place of a few header bytes, length fixed */
        const char *t = tokens[below(r, NTOKENS)];
        return splice(buf, len, cap, hpos, below(r, 4), t, strlen(t));
    }
    case 7: /* delete a header range, length fixed */
        return splice(buf, len, cap, hpos, 1 + below(r, 24), "", 0);
    case 8: { /* replace a run of digits (a shape, an offset) */
        size_t a = hpos;
        while (a < hend && (buf[a] < '0' || buf[a] > '9')) a++;
        size_t b = a;
        while (b < hend && buf[b] >= '0' && buf[b] <= '9') b++;
        if (a >= hend) return len;
        static const char *const nums[] = {"0", "1", "2", "3", "4", "7", "9", "16", "65536",
                                           "4294967296", "18446744073709551615", "00", "-3"};
        const char *t = nums[below(r, sizeof nums / sizeof nums[0])];
        return splice(buf, len, cap, a, b - a, t, strlen(t));
    }
    case 9: { /* duplicate a header slice (a repeated key or tensor), length fixed */
        if (hend <= 8) return len;
        size_t a = 8 + below(r, hend - 8), n = 1 + below(r, 64);
        if (a + n > hend) n = hend - a;
        size_t out = copy_range(buf, len, cap, a, n, 8 + below(r, hend - 8));
        if (out != len) set_len(buf, (uint64_t)(hend - 8 + n));
        return out;
    }
    default: /* grow or shrink the data */
        if (below(r, 2)) return len > 0 ? len - 1 - below(r, len < 8 ? len : 8) : 0;
        return mut_append(r, buf, len, cap, 0x41);
    }
}

int main(int argc, char **argv)
{
    static const replay_spec spec = {"fuzz_safetensors_replay", 0x5afe0000u, 4, SLACK, mutate};
    return replay_main(argc, argv, &spec);
}
