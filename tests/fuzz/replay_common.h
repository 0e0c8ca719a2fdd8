/*
 * What the replay drivers of the fuzz targets share (fuzz_replay.c for
 * .npy, fuzz_safetensors_replay.c, fuzz_container_replay.c): the RNG, the
 * corpus, the loop and the blind edits. A driver supplies its format-aware
 * mutate() and calls replay_main():
 *
 *   DRIVER CORPUS_DIR [MUTATIONS_PER_SEED]
 *
 * runs LLVMFuzzerTestOneInput on every file of CORPUS_DIR (in name order),
 * on each of its truncations, and on MUTATIONS_PER_SEED (default 500)
 * mutants of it, each made by 1..max_edits calls of mutate() with an RNG
 * seeded from the file's index. Deterministic, so a failure reproduces;
 * a crash or sanitizer report in the target ends the process, and so
 * fails the test. Test code, included by one .c file per program: all
 * static (inline, so that the edits a driver does not use draw no warning).
 */
#ifndef BCAE_REPLAY_COMMON_H
#define BCAE_REPLAY_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_SEEDS 64
#define REPLAY_MAX_SEED_BYTES 65536 /* longer files are cut there */
#define REPLAY_DEFAULT_MUTATIONS 500
#define REPLAY_MAX_INSERT 8 /* mut_insert() adds 1..this many bytes */

/* ---- the RNG: splitmix64 ------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static inline uint64_t next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform-ish in [0, n); 0 when n is 0. */
static inline size_t below(rng *r, size_t n)
{
    return n ? (size_t)(next(r) % n) : 0;
}

/* A byte source for mut_insert(). */
typedef uint8_t (*replay_byte_fn)(rng *r);

static inline uint8_t random_byte(rng *r)
{
    return (uint8_t)next(r);
}

/* ---- blind edits of buf (len bytes, room for cap) -------------------------
 * Each returns the new length; pos is at most len. Edits that would grow
 * the input past cap leave it as it is. */

static inline size_t mut_flip_bit(rng *r, uint8_t *buf, size_t len, size_t pos)
{
    if (len) buf[pos] ^= (uint8_t)(1u << below(r, 8));
    return len;
}

static inline size_t mut_set_byte(rng *r, uint8_t *buf, size_t len, size_t pos)
{
    if (len) buf[pos] = (uint8_t)next(r);
    return len;
}

/* Keeps a random prefix, from empty to all of it. */
static inline size_t mut_truncate(rng *r, size_t len)
{
    return below(r, len + 1);
}

/* Replaces del bytes at pos with ins[0..nins) (which may lie in buf). */
static inline size_t splice_bytes(uint8_t *buf, size_t len, size_t cap, size_t pos, size_t del,
                                  const void *ins, size_t nins)
{
    if (pos > len) pos = len;
    if (del > len - pos) del = len - pos;
    if (len - del + nins > cap) return len;
    memmove(buf + pos + nins, buf + pos + del, len - pos - del);
    if (nins) memmove(buf + pos, ins, nins);
    return len - del + nins;
}

/* Fills out with 1..max bytes from byte(); returns how many. */
static inline size_t random_bytes(rng *r, uint8_t *out, size_t max, replay_byte_fn byte)
{
    size_t k = 1 + below(r, max);
    for (size_t i = 0; i < k; i++) out[i] = byte(r);
    return k;
}

/* Inserts 1..REPLAY_MAX_INSERT bytes from byte() at pos. */
static inline size_t mut_insert(rng *r, uint8_t *buf, size_t len, size_t cap, size_t pos,
                                replay_byte_fn byte)
{
    uint8_t ins[REPLAY_MAX_INSERT];
    size_t k = random_bytes(r, ins, sizeof ins, byte);
    return splice_bytes(buf, len, cap, pos, 0, ins, k);
}

/* Deletes 1..max bytes at pos (fewer where the input ends first). */
static inline size_t mut_delete(rng *r, uint8_t *buf, size_t len, size_t pos, size_t max)
{
    return splice_bytes(buf, len, len, pos, 1 + below(r, max), NULL, 0);
}

/* Inserts a copy of buf[src, src + n) at dst; returns the new length. */
static inline size_t copy_range(uint8_t *buf, size_t len, size_t cap, size_t src, size_t n,
                                size_t dst)
{
    if (src > len) src = len;
    if (n > len - src) n = len - src;
    if (dst > len) dst = len;
    if (len + n > cap) return len;
    memmove(buf + dst + n, buf + dst, len - dst);
    /* Source bytes at or after dst have moved up by n. */
    size_t before = src >= dst ? 0 : dst - src < n ? dst - src : n;
    memmove(buf + dst, buf + src, before);
    memmove(buf + dst + before, buf + src + before + n, n - before);
    return len + n;
}

/* Appends 1..8 bytes of value fill. */
static inline size_t mut_append(rng *r, uint8_t *buf, size_t len, size_t cap, uint8_t fill)
{
    if (len + 8 > cap) return len;
    memset(buf + len, fill, 8);
    return len + 1 + below(r, 8);
}

/* ---- the loop ------------------------------------------------------------- */

/* One edit of buf (len bytes, capacity cap); returns the new length. */
typedef size_t (*replay_mutate_fn)(rng *r, uint8_t *buf, size_t len, size_t cap);

typedef struct replay_spec {
    const char *name;        /* in the usage line and the summary */
    uint64_t seed_base;      /* the RNG of corpus file i (by name) starts at seed_base + i */
    size_t max_edits;        /* a mutant gets 1..max_edits edits */
    size_t slack;            /* room past the longest seed for edits that grow it */
    replay_mutate_fn mutate; /* the format-aware edit */
} replay_spec;

/* Runs the target on a copy of exactly n bytes, so that reading past the
 * end is caught by the sanitizers instead of landing in spare capacity. */
static inline void run(const uint8_t *p, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    memcpy(copy, p, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
}

static inline int replay_by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The paths of dir's files (not those starting with '.'), sorted by name;
 * returns how many (at most REPLAY_MAX_SEEDS), or -1 after a message. */
static inline int replay_list(const char *dir, char **names)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < REPLAY_MAX_SEEDS) {
        if (e->d_name[0] == '.') continue;
        names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (!names[n]) abort();
        sprintf(names[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr, "%s: no seed files\n", dir);
        return -1;
    }
    qsort(names, (size_t)n, sizeof names[0], replay_by_name);
    return n;
}

static inline int replay_main(int argc, char **argv, const replay_spec *spec)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS_PER_SEED]\n", spec->name);
        return 2;
    }
    long per_seed = REPLAY_DEFAULT_MUTATIONS;
    if (argc > 2) {
        char *end;
        errno = 0;
        per_seed = strtol(argv[2], &end, 10);
        if (errno || end == argv[2] || *end || per_seed < 0) {
            fprintf(stderr, "%s: bad MUTATIONS_PER_SEED '%s'\n", spec->name, argv[2]);
            return 2;
        }
    }
    char *names[REPLAY_MAX_SEEDS];
    int nseeds = replay_list(argv[1], names);
    if (nseeds < 0) return 2;

    size_t cap = REPLAY_MAX_SEED_BYTES + spec->slack;
    uint8_t *seed = malloc(cap), *buf = malloc(cap);
    if (!seed || !buf) abort();
    long runs = 0;
    for (int s = 0; s < nseeds; s++) {
        FILE *fp = fopen(names[s], "rb");
        if (!fp) {
            perror(names[s]);
            return 2;
        }
        size_t len = fread(seed, 1, REPLAY_MAX_SEED_BYTES, fp);
        if (ferror(fp)) {
            perror(names[s]);
            return 2;
        }
        fclose(fp);
        run(seed, len);
        runs++;
        for (size_t cut = 0; cut < len; cut++, runs++) run(seed, cut);
        rng r = {spec->seed_base + (uint64_t)s};
        for (long m = 0; m < per_seed; m++, runs++) {
            memcpy(buf, seed, len);
            size_t n = len;
            size_t edits = 1 + below(&r, spec->max_edits);
            for (size_t k = 0; k < edits; k++) n = spec->mutate(&r, buf, n, cap);
            run(buf, n);
        }
        free(names[s]);
    }
    free(seed);
    free(buf);
    printf("%s: %d seeds, %ld inputs, no crash\n", spec->name, nseeds, runs);
    return 0;
}

#endif
