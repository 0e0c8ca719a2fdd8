/*
 * Replays the .npy fuzz target without libFuzzer: every file of a seed
 * corpus, each of its truncations, and a fixed set of pseudo-random
 * mutations (bit flips, byte sets, header-syntax bytes, truncations,
 * insertions, deletions, header-length rewrites). Deterministic, so a
 * failure reproduces; under -DBCAE_SANITIZE=ON it is a small fuzz run.
 *
 *   fuzz_replay CORPUS_DIR [MUTATIONS_PER_SEED]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 64
#define MAX_SEED_BYTES 65536

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

/* One random edit of buf (len bytes, capacity cap); returns the new length. */
static size_t mutate(rng *r, uint8_t *buf, size_t len, size_t cap)
{
    static const char syntax[] = "{}()[]'\",: -+0123456789\n\t<>|=TrueFalsedescrshapefortran_order";
    size_t pos = below(r, len ? len : 1);
    switch (below(r, 8)) {
    case 0: /* flip a bit */
        if (len) buf[pos] ^= (uint8_t)(1u << below(r, 8));
        return len;
    case 1: /* set a byte */
        if (len) buf[pos] = (uint8_t)next(r);
        return len;
    case 2: /* a byte the header grammar cares about */
        if (len) buf[pos] = (uint8_t)syntax[below(r, sizeof syntax - 1)];
        return len;
    case 3: /* truncate */
        return below(r, len + 1);
    case 4: { /* insert a few bytes */
        size_t k = 1 + below(r, 8);
        if (len + k > cap) return len;
        memmove(buf + pos + k, buf + pos, len - pos);
        for (size_t i = 0; i < k; i++)
            buf[pos + i] = below(r, 2) ? (uint8_t)syntax[below(r, sizeof syntax - 1)]
                                       : (uint8_t)next(r);
        return len + k;
    }
    case 5: { /* delete a range */
        size_t k = 1 + below(r, 16);
        if (pos + k > len) k = len - pos;
        memmove(buf + pos, buf + pos + k, len - pos - k);
        return len - k;
    }
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
    if (argc < 2) {
        fprintf(stderr, "usage: fuzz_replay CORPUS_DIR [MUTATIONS_PER_SEED]\n");
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

    size_t cap = MAX_SEED_BYTES + 4096;
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
        rng r = {0x5eed0000u + (uint64_t)s};
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
    printf("fuzz_replay: %d seeds, %ld inputs, no crash\n", nseeds, runs);
    return 0;
}
