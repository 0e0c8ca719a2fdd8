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
 * -DBCAE_SANITIZE=ON it is a small fuzz run.
 *
 *   fuzz_safetensors_replay CORPUS_DIR [MUTATIONS_PER_SEED]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 64
#define MAX_SEED_BYTES 65536
#define SLACK 4096 /* room for insertions */

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
    memmove(buf + pos + nins, buf + pos + del, len - pos - del);
    memcpy(buf + pos, ins, nins);
    if (hend && pos >= 8 && pos + del <= hend) set_len(buf, (uint64_t)(hend - 8 - del + nins));
    return len - del + nins;
}

static const char syntax[] = "{}[]\":,0123456789-+.eE\\u \t\n";
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
    case 0: /* flip a bit */
        if (len) buf[pos] ^= (uint8_t)(1u << below(r, 8));
        return len;
    case 1: /* set a byte */
        if (len) buf[pos] = (uint8_t)next(r);
        return len;
    case 2: /* a byte the JSON grammar cares about, in the header */
        if (hpos < len) buf[hpos] = (uint8_t)syntax[below(r, sizeof syntax - 1)];
        return len;
    case 3: /* truncate */
        return below(r, len + 1);
    case 4: { /* insert a few bytes anywhere, length not fixed */
        char ins[8];
        size_t k = 1 + below(r, sizeof ins);
        for (size_t i = 0; i < k; i++) ins[i] = (char)syntax[below(r, sizeof syntax - 1)];
        if (len + k > cap) return len;
        memmove(buf + pos + k, buf + pos, len - pos);
        memcpy(buf + pos, ins, k);
        return len + k;
    }
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
        char slice[64];
        memcpy(slice, buf + a, n);
        return splice(buf, len, cap, 8 + below(r, hend - 8), 0, slice, n);
    }
    default: /* grow or shrink the data */
        if (below(r, 2)) return len > 0 ? len - 1 - below(r, len < 8 ? len : 8) : 0;
        if (len + 8 > cap) return len;
        memset(buf + len, 0x41, 8);
        return len + 1 + below(r, 8);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fuzz_safetensors_replay CORPUS_DIR [MUTATIONS_PER_SEED]\n");
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
        rng r = {0x5afe0000u + (uint64_t)s};
        for (long m = 0; m < per_seed; m++, runs++) {
            memcpy(buf, seed, len);
            size_t n = len;
            int edits = 1 + (int)below(&r, 4);
            for (int k = 0; k < edits; k++) n = mutate(&r, buf, n, cap);
            run(buf, n);
        }
        free(names[s]);
    }
    free(seed);
    free(buf);
    printf("fuzz_safetensors_replay: %d seeds, %ld inputs, no crash\n", nseeds, runs);
    return 0;
}
