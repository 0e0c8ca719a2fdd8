/*
 * Replays the .bcae fuzz target without libFuzzer: every file of a seed
 * corpus, each of its truncations, and a fixed set of pseudo-random
 * mutations. Besides blind ones (bit flips, byte sets, truncations,
 * insertions, deletions) most know the format: they set header and record
 * fields (lengths, dimensions, dtypes, encodings, the arch length, the end
 * marker's count) to boundary values, swap a record's path for a hostile
 * one with its length fixed, flip a record between raw and zstd, and
 * duplicate, drop or reorder whole records. The target itself retries
 * each input with its CRCs recomputed, so these reach the checks behind
 * the CRCs. Deterministic, so a failure reproduces; under
 * -DBCAE_SANITIZE=ON it is a small fuzz run. The loop and the blind edits
 * are in replay_common.h.
 *
 *   fuzz_container_replay CORPUS_DIR [MUTATIONS_PER_SEED]
 */
#include "replay_common.h"

#define SLACK 8192 /* room for insertions and duplicated records */
#define MAX_RECS 64

static uint32_t rd32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void wr16(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}

/* Where things are: the end of the file header, and each record's start
 * and length (the end marker counts as a record of 16 bytes, tag BEND). */
typedef struct layout {
    size_t header_end;
    size_t nrec;
    size_t start[MAX_RECS], len[MAX_RECS];
} layout;

static void find_layout(const uint8_t *b, size_t n, layout *l)
{
    memset(l, 0, sizeof *l);
    if (n < 64 || 64 + (size_t)b[42] + 4 > n) return;
    l->header_end = 64 + (size_t)b[42] + 4;
    size_t off = l->header_end;
    while (off + 16 <= n && l->nrec < MAX_RECS) {
        size_t len;
        if (!memcmp(b + off, "BEND", 4)) {
            len = 16;
        } else {
            if (off + 40 > n) break;
            len = 44 + ((size_t)b[off + 4] | (size_t)b[off + 5] << 8) + rd32(b + off + 32);
            if (len > n - off) break;
        }
        l->start[l->nrec] = off;
        l->len[l->nrec++] = len;
        off += len;
    }
}

static const uint32_t values[] = {0,     1,     2,     3,          4,          5,
                                  7,     8,     16,    64,         65,         255,
                                  256,   4095,  4096,  4097,       65535,      65536,
                                  49152, 49408, 49409, 0x7fffffff, 0xfffffff0, 0xffffffff};
#define NVALUES (sizeof values / sizeof values[0])

static const char *const paths[] = {"../x.npy", "/abs.npy", "a//b.npy", "a/", ".", "a/./b",
                                    "a/../b",   "\xff.npy", "a\x01" "b", "a\xc0\xaf" "b",
                                    "\xed\xa0\x80", "\xc2\x9b", "ok/fine.npy", "x"};
#define NPATHS (sizeof paths / sizeof paths[0])

/* One random edit of buf (len bytes, capacity cap); returns the new length. */
static size_t mutate(rng *r, uint8_t *buf, size_t len, size_t cap)
{
    layout l;
    find_layout(buf, len, &l);
    size_t pos = below(r, len ? len : 1);
    size_t ri = below(r, l.nrec ? l.nrec : 1);
    int have_rec = l.nrec > 0 && memcmp(buf + l.start[ri], "BREC", 4) == 0;
    size_t rs = have_rec ? l.start[ri] : 0;
    uint32_t v = values[below(r, NVALUES)];
    switch (below(r, 14)) {
    case 0:
        return mut_flip_bit(r, buf, len, pos);
    case 1:
        return mut_set_byte(r, buf, len, pos);
    case 2:
        return mut_truncate(r, len);
    case 3: { /* insert or delete a few bytes */
        uint8_t ins[8];
        size_t k = random_bytes(r, ins, sizeof ins, random_byte);
        return below(r, 2) ? splice_bytes(buf, len, cap, pos, 0, ins, k)
                           : splice_bytes(buf, len, cap, pos, k, NULL, 0);
    }
    case 4: { /* a file header field */
        static const size_t at[] = {4, 6, 40, 41, 42, 43, 44, 48, 52, 56};
        size_t a = at[below(r, sizeof at / sizeof at[0])];
        if (a + 4 > len) return len;
        if (a == 4 || a == 6)
            wr16(buf + a, v);
        else if (a >= 44)
            wr32(buf + a, v);
        else
            buf[a] = (uint8_t)v;
        return len;
    }
    case 5: { /* a record header field */
        static const size_t at[] = {4, 6, 7, 8, 9, 12, 16, 20, 24, 28, 32};
        size_t a = at[below(r, sizeof at / sizeof at[0])];
        if (!have_rec) return len;
        if (a == 4)
            wr16(buf + rs + a, v);
        else if (a >= 12)
            wr32(buf + rs + a, v);
        else
            buf[rs + a] = (uint8_t)v;
        return len;
    }
    case 6: { /* a hostile path, its length fixed */
        if (!have_rec) return len;
        size_t plen = (size_t)buf[rs + 4] | (size_t)buf[rs + 5] << 8;
        const char *p = paths[below(r, NPATHS)];
        size_t np = strlen(p);
        if (len - plen + np > cap) return len;
        wr16(buf + rs + 4, (uint32_t)np);
        return splice_bytes(buf, len, cap, rs + 40, plen, p, np);
    }
    case 7: /* raw <-> zstd */
        if (have_rec) buf[rs + 6] ^= 1;
        return len;
    case 8: /* duplicate a whole record (or the end marker) */
        if (!l.nrec) return len;
        return copy_range(buf, len, cap, l.start[ri], l.len[ri], l.start[below(r, l.nrec)]);
    case 9: /* drop a whole record */
        if (!l.nrec) return len;
        return splice_bytes(buf, len, cap, l.start[ri], l.len[ri], NULL, 0);
    case 10: { /* the end marker's count */
        for (size_t i = 0; i < l.nrec; i++)
            if (!memcmp(buf + l.start[i], "BEND", 4)) {
                wr32(buf + l.start[i] + 4, below(r, 2) ? v : rd32(buf + l.start[i] + 4) + 1);
                wr32(buf + l.start[i] + 8, below(r, 4) ? 0 : v);
            }
        return len;
    }
    case 11: { /* garbage over a payload */
        if (!have_rec) return len;
        size_t plen = (size_t)buf[rs + 4] | (size_t)buf[rs + 5] << 8;
        size_t s = rd32(buf + rs + 32), p0 = rs + 40 + plen;
        for (size_t i = 0; i < 1 + below(r, 16) && s; i++) buf[p0 + below(r, s)] = (uint8_t)next(r);
        return len;
    }
    case 12: { /* the arch string: its length, or a non-printable byte in it */
        if (len < 64) return len;
        if (below(r, 2))
            buf[42] = (uint8_t)values[below(r, NVALUES)];
        else if (buf[42] && 64 + (size_t)buf[42] <= len)
            buf[64 + below(r, buf[42])] = below(r, 2) ? 0x7f : 0x00;
        return len;
    }
    default: /* append bytes after the end */
        return mut_append(r, buf, len, cap, 0x42);
    }
}

int main(int argc, char **argv)
{
    static const replay_spec spec = {"fuzz_container_replay", 0xbcae0000u, 3, SLACK, mutate};
    return replay_main(argc, argv, &spec);
}
