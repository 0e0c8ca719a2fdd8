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
 * -DBCAE_SANITIZE=ON it is a small fuzz run.
 *
 *   fuzz_container_replay CORPUS_DIR [MUTATIONS_PER_SEED]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 64
#define MAX_SEED_BYTES 65536
#define SLACK 8192 /* room for insertions and duplicated records */
#define MAX_RECS 64

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t below(rng *r, size_t n)
{
    return n ? (size_t)(next(r) % n) : 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs the target on a copy of exactly n bytes, so that reading past the
 * end is caught by the sanitizers instead of landing in spare capacity. */
static void run(const uint8_t *p, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    memcpy(copy, p, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
}

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

/* Replaces del bytes at pos with ins[0..nins); returns the new length. */
static size_t splice(uint8_t *buf, size_t len, size_t cap, size_t pos, size_t del,
                     const uint8_t *ins, size_t nins)
{
    if (pos > len) pos = len;
    if (del > len - pos) del = len - pos;
    if (len - del + nins > cap) return len;
    memmove(buf + pos + nins, buf + pos + del, len - pos - del);
    if (nins) memmove(buf + pos, ins, nins);
    return len - del + nins;
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
    case 0: /* flip a bit */
        if (len) buf[pos] ^= (uint8_t)(1u << below(r, 8));
        return len;
    case 1: /* set a byte */
        if (len) buf[pos] = (uint8_t)next(r);
        return len;
    case 2: /* truncate */
        return below(r, len + 1);
    case 3: { /* insert or delete a few bytes */
        uint8_t ins[8];
        size_t k = 1 + below(r, sizeof ins);
        for (size_t i = 0; i < k; i++) ins[i] = (uint8_t)next(r);
        return below(r, 2) ? splice(buf, len, cap, pos, 0, ins, k)
                           : splice(buf, len, cap, pos, k, NULL, 0);
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
        return splice(buf, len, cap, rs + 40, plen, (const uint8_t *)p, np);
    }
    case 7: /* raw <-> zstd */
        if (have_rec) buf[rs + 6] ^= 1;
        return len;
    case 8: { /* duplicate a whole record (or the end marker) */
        if (!l.nrec) return len;
        uint8_t tmp[SLACK];
        size_t n = l.len[ri] < sizeof tmp ? l.len[ri] : 0;
        if (!n) return len;
        memcpy(tmp, buf + l.start[ri], n);
        return splice(buf, len, cap, l.start[below(r, l.nrec)], 0, tmp, n);
    }
    case 9: /* drop a whole record */
        if (!l.nrec) return len;
        return splice(buf, len, cap, l.start[ri], l.len[ri], NULL, 0);
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
        if (len + 8 > cap) return len;
        memset(buf + len, 0x42, 8);
        return len + 1 + below(r, 8);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fuzz_container_replay CORPUS_DIR [MUTATIONS_PER_SEED]\n");
        return 2;
    }
    long per_seed = argc > 2 ? strtol(argv[2], NULL, 10) : 500;
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 2;
    }
    char *names[MAX_SEEDS];
    int nseeds = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nseeds < MAX_SEEDS) {
        if (e->d_name[0] == '.') continue;
        names[nseeds] = malloc(strlen(argv[1]) + strlen(e->d_name) + 2);
        sprintf(names[nseeds], "%s/%s", argv[1], e->d_name);
        nseeds++;
    }
    closedir(d);
    if (nseeds == 0) {
        fprintf(stderr, "%s: no seed files\n", argv[1]);
        return 2;
    }
    qsort(names, (size_t)nseeds, sizeof names[0], by_name);

    size_t cap = MAX_SEED_BYTES + SLACK;
    uint8_t *seed = malloc(cap), *buf = malloc(cap);
    long runs = 0;
    for (int s = 0; s < nseeds; s++) {
        FILE *fp = fopen(names[s], "rb");
        if (!fp) {
            perror(names[s]);
            return 2;
        }
        size_t len = fread(seed, 1, MAX_SEED_BYTES, fp);
        fclose(fp);
        run(seed, len);
        runs++;
        for (size_t cut = 0; cut < len; cut++, runs++) run(seed, cut);
        rng r = {0xbcae0000u + (uint64_t)s};
        for (long m = 0; m < per_seed; m++, runs++) {
            memcpy(buf, seed, len);
            size_t n = len;
            int edits = 1 + (int)below(&r, 3);
            for (int k = 0; k < edits; k++) n = mutate(&r, buf, n, cap);
            run(buf, n);
        }
        free(names[s]);
    }
    free(seed);
    free(buf);
    printf("fuzz_container_replay: %d seeds, %ld inputs, no crash\n", nseeds, runs);
    return 0;
}
