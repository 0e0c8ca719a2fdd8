/*
 * The sparse codec (docs/SPARSE.md): its constant tables, the error-bounded
 * levels (every uint16 value within the bound at eight bounds), round trips
 * of random wedges (any uint16, every occupancy from empty to full) and of
 * simulated ones at every bound of the benchmarks (positions exact, every
 * non-zero voxel within the bound, lossless exact, and the count of voxels
 * checked printed), the stored fallback, ratio mode, determinism (a reused
 * coder gives the bytes of a fresh one; pinned CRCs of two streams catch a
 * coder that changed or a platform that codes differently), argument checks,
 * and damage: every truncation, bit flips, and payloads with a recomputed
 * CRC, each refused without a crash.
 *
 *   test_sparse               the tests
 *   test_sparse seeds DIR     writes the fuzz corpus (tests/fuzz/corpus_sparse)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/crc32c.h"
#include "sparse/levels.h"
#include "sparse/sparse.h"
#include "sparse/tables.h"

#define V ((size_t)BCAE_WEDGE_VOXELS)

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint32_t below(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

static size_t voxels_checked = 0, hits_checked = 0, values_checked = 0;

/* Checks a decoded wedge against its original: zeros and hits exact, every
 * hit within E in log2(ADC + 1), exact if E == 0. Returns the failures. */
static size_t check_bound(const uint16_t *in, const uint16_t *out, double max_error)
{
    size_t bad = 0;
    for (size_t i = 0; i < V; i++) {
        voxels_checked++;
        if ((in[i] == 0) != (out[i] == 0)) {
            bad++;
            continue;
        }
        if (!in[i]) continue;
        hits_checked++;
        if (max_error == 0) {
            bad += in[i] != out[i];
            continue;
        }
        double e = fabs(log2(out[i] + 1.0) - log2(in[i] + 1.0));
        bad += !(e <= max_error);
    }
    return bad;
}

/* Encodes, decodes with a second coder, checks; returns the stream length. */
static size_t round_trip(bcae_sparse_coder *enc, bcae_sparse_coder *dec, const uint16_t *w,
                         const bcae_sparse_options *opt, uint8_t *buf, uint16_t *out,
                         const char *what, bcae_sparse_info *info_out)
{
    bcae_error err;
    size_t len = 0;
    bcae_sparse_info info, dinfo;
    bcae_status s = bcae_sparse_encode(enc, w, opt, buf, bcae_sparse_bound(), &len, &info, &err);
    CHECK_MSG(s == BCAE_OK, "%s: encode: %s", what, err.message);
    if (s) return 0;
    CHECK_MSG(len == info.total_bytes && len <= bcae_sparse_bound(), "%s: length %zu", what, len);
    s = bcae_sparse_decode(dec, buf, len, out, &dinfo, &err);
    CHECK_MSG(s == BCAE_OK, "%s: decode: %s", what, err.message);
    if (s) return 0;
    size_t hits = 0;
    for (size_t i = 0; i < V; i++) hits += w[i] != 0;
    CHECK_MSG(info.hits == hits && dinfo.hits == hits, "%s: hits %zu/%zu, counted %zu", what,
              info.hits, dinfo.hits, hits);
    CHECK_MSG(dinfo.mult == info.mult && dinfo.stored == info.stored, "%s: infos differ", what);
    /* The bound the stream carries is at most the one asked for, and the
     * decoded wedge meets the one the stream carries. */
    if (!opt->ratio) CHECK_MSG(info.max_error <= opt->max_error, "%s: stream bound %.9g > %.9g", what,
                               info.max_error, opt->max_error);
    size_t bad = check_bound(w, out, info.stored ? 0 : info.max_error);
    CHECK_MSG(bad == 0, "%s: %zu voxels out of bound %g", what, bad, info.max_error);
    if (info_out) *info_out = info;
    return len;
}

/* ---- tables and levels --------------------------------------------------- */

static void test_tables(void)
{
    for (int n = 0; n < 256; n++) CHECK(sparse_rate[n] == 65536 / (n + 2));
    CHECK(sparse_logt[0] == 0 && sparse_logt[1023] == 1023);
    CHECK(sparse_logt[16] == 22);   /* floor(1024 log2(1040/1024)) */
    CHECK(sparse_logt[512] == 599); /* floor(1024 log2(1.5)) = floor(599.0) */
    int mono = 1;
    for (int i = 1; i < 1024; i++) mono &= sparse_logt[i] >= sparse_logt[i - 1];
    CHECK(mono);
    /* lg is 1024 log2 x rounded down, less than one unit for the table's
     * floor and, above 2047, less than 1024 log2(1 + 1/1024) = 1.44 for the
     * mantissa cut to 11 bits. */
    int near = 1;
    for (uint32_t x = 1; x <= 65536; x++) {
        double d = 1024 * log2((double)x) - sparse_log(x);
        near &= d > -1e-9 && d < (x < 2048 ? 1 : 2.5);
    }
    CHECK(near);
    CHECK(sparse_log(1) == 0 && sparse_log(65) == 6166 && sparse_log(1024) == 10240);
}

static void test_levels(void)
{
    static const double bounds[] = {0, 0.001, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 3, 8};
    sparse_levels *lv = malloc(sizeof *lv);
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
        double E = bounds[b];
        uint64_t m = sparse_mult_of(E);
        CHECK(m >= SPARSE_M_ONE && m <= SPARSE_M_MAX);
        CHECK(sparse_error_of(m) <= E);
        CHECK(E == 0 ? m == SPARSE_M_ONE : sparse_error_of(m) > E - 1e-6);
        sparse_levels_build(lv, m);
        size_t bad = 0, order = 0;
        for (uint32_t a = 1; a <= 65535; a++) {
            uint32_t q = lv->level_of[a];
            bad += q < 1 || q > lv->count;
            double e = fabs(log2(lv->value[q] + 1.0) - log2(a + 1.0));
            bad += !(e <= E);
            order += a > 1 && q < lv->level_of[a - 1];
            values_checked++;
        }
        for (uint32_t q = 2; q <= lv->count; q++) order += lv->value[q] <= lv->value[q - 1];
        CHECK_MSG(bad == 0 && order == 0, "E = %g: %zu values out of bound, %zu out of order", E,
                  bad, order);
        CHECK(lv->level_of[0] == 0 && lv->value[0] == 0);
        if (E == 0) CHECK(lv->count == 65535 && lv->value[1234] == 1234);
        /* Above a pedestal: log is lg(max(v - P, 0) + 2), never 0, never
         * falling; level_at_log the highest level whose log is <= t. */
        static const uint32_t peds[] = {0, 70, 65535};
        for (int k = 0; k < 3; k++) {
            sparse_levels_set_pedestal(lv, peds[k]);
            size_t lbad = 0;
            for (uint32_t q = 1; q <= lv->count; q++) {
                uint32_t v = lv->value[q];
                lbad += lv->log[q] != sparse_log((v > peds[k] ? v - peds[k] : 0) + 2) ||
                        lv->log[q] < 1024 || (q > 1 && lv->log[q] < lv->log[q - 1]);
            }
            for (uint32_t t = 0; t <= SPARSE_LOG_MAX; t += 7) {
                uint32_t q = lv->level_at_log[t];
                lbad += q < 1 || q > lv->count || (q > 1 && lv->log[q] > t) ||
                        (q < lv->count && lv->log[q + 1] <= t);
            }
            CHECK_MSG(lbad == 0, "E = %g, pedestal %u: log or level_at_log wrong %zu times", E,
                      peds[k], lbad);
        }
    }
    /* E = 0.1 over the 10-bit range: greedy bins of (1 + a) spanning 2^0.2. */
    sparse_levels_build(lv, sparse_mult_of(0.1));
    uint32_t n10 = lv->level_of[1023] - lv->level_of[64] + 1;
    CHECK_MSG(n10 >= 19 && n10 <= 21, "E = 0.1: %u levels over [64, 1023]", n10);
    free(lv);
}

/* ---- round trips ------------------------------------------------------------ */

/* A random wedge: each voxel a hit with probability occ/1000, valued
 * uniformly in [lo, hi]; pulses (runs along z) when runs is set. */
static void random_wedge(uint16_t *w, int occ, uint32_t lo, uint32_t hi, int runs)
{
    memset(w, 0, V * sizeof *w);
    for (int a = 0; a < BCAE_WEDGE_AZIMUTH; a++)
        for (int l = 0; l < BCAE_WEDGE_LAYERS; l++)
            for (int z = 0; z < BCAE_WEDGE_Z; z++) {
                if (below(1000) >= (uint32_t)occ) continue;
                int len = runs ? 1 + (int)below(8) : 1;
                for (int k = 0; k < len && z + k < BCAE_WEDGE_Z; k++)
                    w[((size_t)a * BCAE_WEDGE_Z + (size_t)(z + k)) * BCAE_WEDGE_LAYERS + (size_t)l] =
                        (uint16_t)(lo + below(hi - lo + 1));
                z += len - 1;
            }
}

static void test_random(void)
{
    bcae_error err;
    bcae_sparse_coder *enc, *dec;
    CHECK(bcae_sparse_coder_create(&enc, &err) == BCAE_OK);
    CHECK(bcae_sparse_coder_create(&dec, &err) == BCAE_OK);
    uint16_t *w = malloc(V * 2), *out = malloc(V * 2);
    uint8_t *buf = malloc(bcae_sparse_bound());
    static const int occs[] = {0, 1, 100, 500, 1000};
    static const double bounds[] = {0, 0.01, 0.1, 1, 8};
    static const uint32_t ranges[][2] = {{64, 1023}, {1, 65535}, {1, 3}, {60000, 65535}};
    rng_state = 17;
    int stored = 0;
    for (size_t o = 0; o < 5; o++)
        for (size_t r = 0; r < 4; r++) {
            random_wedge(w, occs[o], ranges[r][0], ranges[r][1], (int)(o + r) % 2);
            for (size_t b = 0; b < 5; b++) {
                char what[96];
                snprintf(what, sizeof what, "random occ %d/1000 values [%u, %u] E %g", occs[o],
                         ranges[r][0], ranges[r][1], bounds[b]);
                bcae_sparse_options opt = {bounds[b], 0};
                bcae_sparse_info info;
                round_trip(enc, dec, w, &opt, buf, out, what, &info);
                stored += info.stored;
            }
        }
    /* Full 16-bit noise at every voxel cannot be coded smaller than raw. */
    CHECK_MSG(stored > 0, "no stream fell back to stored (%d)", stored);
    /* Edge wedges: all 65535, all 1, a checkerboard, the most pulses a row holds. */
    for (int kind = 0; kind < 4; kind++) {
        for (size_t i = 0; i < V; i++) {
            size_t z = i / BCAE_WEDGE_LAYERS % BCAE_WEDGE_Z;
            w[i] = kind == 0 ? 65535 : kind == 1 ? 1 : kind == 2 ? (uint16_t)(i % 2 ? 700 : 0)
                                                                 : (uint16_t)(z % 2 ? 0 : 64 + z);
        }
        for (size_t b = 0; b < 5; b++) {
            char what[64];
            snprintf(what, sizeof what, "edge wedge %d E %g", kind, bounds[b]);
            bcae_sparse_options opt = {bounds[b], 0};
            round_trip(enc, dec, w, &opt, buf, out, what, NULL);
        }
    }
    free(w);
    free(out);
    free(buf);
    bcae_sparse_coder_free(enc);
    bcae_sparse_coder_free(dec);
}

/* Simulated wedges at the benchmarks' bounds; lossless exact; a reused coder
 * gives the bytes of a fresh one, and NULL coders work. */
static void test_simulated(uint16_t *ev, int nw)
{
    bcae_error err;
    bcae_sparse_coder *enc, *dec;
    CHECK(bcae_sparse_coder_create(&enc, &err) == BCAE_OK);
    CHECK(bcae_sparse_coder_create(&dec, &err) == BCAE_OK);
    uint16_t *out = malloc(V * 2);
    uint8_t *buf = malloc(bcae_sparse_bound()), *buf2 = malloc(bcae_sparse_bound());
    static const double bounds[] = {0, 0.01, 0.02, 0.05, 0.1};
    double raw = 0, coded[5] = {0};
    for (int i = 0; i < nw; i++) {
        const uint16_t *w = ev + (size_t)i * V;
        for (int b = 0; b < 5; b++) {
            char what[64];
            snprintf(what, sizeof what, "simulated wedge %d E %g", i, bounds[b]);
            bcae_sparse_options opt = {bounds[b], 0};
            size_t len = round_trip(enc, dec, w, &opt, buf, out, what, NULL);
            coded[b] += (double)len;
            if (b == 0) CHECK_MSG(memcmp(w, out, V * 2) == 0, "%s: not exact", what);
            if (i == 0) {
                size_t len2 = 0;
                CHECK(bcae_sparse_encode(NULL, w, &opt, buf2, bcae_sparse_bound(), &len2, NULL,
                                         &err) == BCAE_OK);
                CHECK_MSG(len2 == len && memcmp(buf, buf2, len) == 0,
                          "%s: a fresh coder writes other bytes", what);
                CHECK(bcae_sparse_decode(NULL, buf, len, out, NULL, &err) == BCAE_OK);
                CHECK(check_bound(w, out, bounds[b]) == 0);
            }
        }
        raw += 2.0 * V;
    }
    /* Not a benchmark, a sanity floor: simulated wedges compress, and more
     * so as the bound grows. */
    printf("simulated: ratio");
    for (int b = 0; b < 5; b++) printf(" %.2f (E %g)", raw / coded[b], bounds[b]);
    printf("\n");
    CHECK(raw / coded[0] > 8);
    for (int b = 1; b < 5; b++) CHECK(coded[b] < coded[b - 1]);
    free(out);
    free(buf);
    free(buf2);
    bcae_sparse_coder_free(enc);
    bcae_sparse_coder_free(dec);
}

static void test_ratio(const uint16_t *w)
{
    bcae_error err;
    bcae_sparse_coder *c;
    CHECK(bcae_sparse_coder_create(&c, &err) == BCAE_OK);
    uint16_t *out = malloc(V * 2);
    uint8_t *buf = malloc(bcae_sparse_bound());
    /* Ratios around the wedge's own: lossless, and at E = 0.02 and 0.1. */
    double own[3];
    static const double at[3] = {0, 0.02, 0.1};
    for (int i = 0; i < 3; i++) {
        bcae_sparse_options opt = {at[i], 0};
        size_t len = 0;
        CHECK(bcae_sparse_encode(c, w, &opt, buf, bcae_sparse_bound(), &len, NULL, &err) == BCAE_OK);
        own[i] = 2.0 * V / (double)len;
    }
    double ratios[5] = {own[0] * 0.99, own[0] * 1.01, own[1], own[1] * 1.05, own[2] * 1.2};
    double last_error = -1;
    for (int i = 0; i < 5; i++) {
        char what[64];
        snprintf(what, sizeof what, "ratio %.3f", ratios[i]);
        bcae_sparse_options opt = {0, ratios[i]};
        bcae_sparse_info info;
        size_t len = round_trip(c, c, w, &opt, buf, out, what, &info);
        size_t target = (size_t)floor(2.0 * V / ratios[i]);
        CHECK_MSG(info.met && len <= target, "%s: %zu bytes > %zu", what, len, target);
        if (i == 0) CHECK_MSG(info.max_error == 0, "%s: lossless fits, E %g", what, info.max_error);
        if (i > 0) CHECK_MSG(info.max_error > 0, "%s: lossless does not fit", what);
        /* The bound is on the 1/512 grid and grows with the ratio. */
        double k = round(info.max_error * 512);
        CHECK_MSG(info.mult == sparse_mult_of(k / 512), "%s: E %.9g not on the grid", what,
                  info.max_error);
        CHECK_MSG(info.max_error >= last_error, "%s: E %g below the last %g", what,
                  info.max_error, last_error);
        /* The next finer grid point would not have met the ratio. */
        if (k > 0) {
            bcae_sparse_options finer = {(k - 1) / 512, 0};
            size_t flen = 0;
            CHECK(bcae_sparse_encode(c, w, &finer, buf, bcae_sparse_bound(), &flen, NULL, &err) ==
                  BCAE_OK);
            CHECK_MSG(flen > target, "%s: E %g fits too (%zu <= %zu)", what, (k - 1) / 512, flen,
                      target);
        }
        last_error = info.max_error;
    }
    /* A ratio no bound reaches: the coarsest, and met = 0. */
    bcae_sparse_options opt = {0, 1e6};
    bcae_sparse_info info;
    round_trip(c, c, w, &opt, buf, out, "ratio 1e6", &info);
    CHECK(!info.met && info.mult == sparse_mult_of(BCAE_SPARSE_MAX_ERROR));
    free(out);
    free(buf);
    bcae_sparse_coder_free(c);
}

/* ---- determinism across platforms ------------------------------------------- */

/* A fixed synthetic wedge (pulses of a CR-RC^4-like shape on pad clusters)
 * whose streams' CRCs are pinned: a change here means the coder or a
 * platform codes other bytes, which breaks every stream already written. */
static void pinned_wedge(uint16_t *w)
{
    memset(w, 0, V * sizeof *w);
    rng_state = 2026;
    for (int t = 0; t < 400; t++) {
        int l = (int)below(16), a = (int)below(190), z = (int)below(240);
        double amp = 100 + below(1500);
        for (int da = 0; da < 3; da++)
            for (int dz = 0; dz < 8 && z + dz < BCAE_WEDGE_Z; dz++) {
                double tt = (dz + 0.5) / 2.4, h = pow(tt, 4) * exp(4 * (1 - tt));
                double v = amp * h * (da == 1 ? 1 : 0.6) + (double)below(13) - 6;
                size_t i = ((size_t)(a + da) * BCAE_WEDGE_Z + (size_t)(z + dz)) * BCAE_WEDGE_LAYERS +
                           (size_t)l;
                if (v >= 64) w[i] = (uint16_t)(v > 1023 ? 1023 : v);
            }
    }
}

static void test_pinned(void)
{
    uint16_t *w = malloc(V * 2), *out = malloc(V * 2);
    uint8_t *buf = malloc(bcae_sparse_bound());
    pinned_wedge(w);
    static const double bounds[] = {0, 0.05};
    static const uint32_t want[] = {0x0582e41cu, 0xf5944d3au};
    for (int b = 0; b < 2; b++) {
        bcae_sparse_options opt = {bounds[b], 0};
        size_t len = 0;
        bcae_error err;
        CHECK(bcae_sparse_encode(NULL, w, &opt, buf, bcae_sparse_bound(), &len, NULL, &err) == BCAE_OK);
        uint32_t crc = bcae_crc32c(buf, len - 4); /* the stream's own CRC field */
        printf("pinned stream E %g: %zu bytes, CRC-32C 0x%08x\n", bounds[b], len, crc);
        CHECK_MSG(crc == want[b], "pinned stream E %g: CRC 0x%08x, expected 0x%08x", bounds[b],
                  crc, want[b]);
        CHECK(bcae_sparse_decode(NULL, buf, len, out, NULL, NULL) == BCAE_OK);
        CHECK(check_bound(w, out, bounds[b]) == 0);
    }
    free(w);
    free(out);
    free(buf);
}

/* ---- arguments and damage ------------------------------------------------------ */

static void test_arguments(const uint16_t *w)
{
    bcae_error err;
    uint8_t *buf = malloc(bcae_sparse_bound());
    uint16_t *out = malloc(V * 2);
    size_t len;
    static const double bad_e[] = {-0.1, 8.5, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        bcae_sparse_options opt = {bad_e[i], 0};
        CHECK(bcae_sparse_encode(NULL, w, &opt, buf, bcae_sparse_bound(), &len, NULL, &err) ==
              BCAE_ERR_INVALID_ARGUMENT);
    }
    bcae_sparse_options neg = {0, -1}, nan_r = {0, NAN};
    CHECK(bcae_sparse_encode(NULL, w, &neg, buf, bcae_sparse_bound(), &len, NULL, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_sparse_encode(NULL, w, &nan_r, buf, bcae_sparse_bound(), &len, NULL, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_sparse_encode(NULL, w, NULL, buf, bcae_sparse_bound() - 1, &len, NULL, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_sparse_encode(NULL, NULL, NULL, buf, bcae_sparse_bound(), &len, NULL, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_sparse_decode(NULL, NULL, 10, out, NULL, &err) == BCAE_ERR_INVALID_ARGUMENT);
    /* NULL options: lossless. */
    CHECK(bcae_sparse_encode(NULL, w, NULL, buf, bcae_sparse_bound(), &len, NULL, &err) == BCAE_OK);
    CHECK(bcae_sparse_decode(NULL, buf, len, out, NULL, &err) == BCAE_OK);
    CHECK(memcmp(w, out, V * 2) == 0);
    free(buf);
    free(out);
}

/* The batch functions: on 1 and 3 threads, each stream is the one
 * bcae_sparse_encode makes alone (ratio mode too), the infos match, decoding
 * gives the wedges a lone decode gives, and a damaged stream is reported by
 * its index, the lowest when two are. */
static void test_many(const uint16_t *ev, int nw)
{
    bcae_error err;
    const size_t cap = bcae_sparse_bound();
    uint8_t *many = malloc((size_t)nw * cap), *one = malloc(cap);
    size_t *len = malloc((size_t)nw * sizeof *len);
    bcae_sparse_info *info = malloc((size_t)nw * sizeof *info), lone;
    uint16_t *out = malloc((size_t)nw * V * 2), *ref = malloc(V * 2);
    const uint8_t **streams = malloc((size_t)nw * sizeof *streams);
    static const bcae_sparse_options opts[3] = {{0, 0}, {0.05, 0}, {0, 40}};
    for (int o = 0; o < 3; o++)
        for (int threads = 1; threads <= 3; threads += 2) {
            CHECK(bcae_sparse_encode_many(ev, (size_t)nw, &opts[o], threads, many, cap, len, info,
                                          &err) == BCAE_OK);
            for (int i = 0; i < nw; i++) {
                size_t l = 0;
                CHECK(bcae_sparse_encode(NULL, ev + (size_t)i * V, &opts[o], one, cap, &l, &lone,
                                         &err) == BCAE_OK);
                CHECK_MSG(l == len[i] && memcmp(one, many + (size_t)i * cap, l) == 0,
                          "options %d, %d threads: wedge %d's stream differs", o, threads, i);
                CHECK(lone.mult == info[i].mult && lone.total_bytes == info[i].total_bytes &&
                      lone.met == info[i].met);
                streams[i] = many + (size_t)i * cap;
            }
            CHECK(bcae_sparse_decode_many(streams, len, (size_t)nw, threads, out, NULL, &err) ==
                  BCAE_OK);
            for (int i = 0; i < nw; i++) {
                CHECK(bcae_sparse_decode(NULL, streams[i], len[i], ref, NULL, &err) == BCAE_OK);
                CHECK(memcmp(ref, out + (size_t)i * V, V * 2) == 0);
            }
        }
    /* Damage streams 3 and 1 (of the last run): stream 1 is named. */
    many[3 * cap + 40] ^= 1;
    CHECK(bcae_sparse_decode_many(streams, len, (size_t)nw, 2, out, NULL, &err) == BCAE_ERR_FORMAT);
    CHECK_MSG(strncmp(err.message, "stream 3: ", 10) == 0, "%s", err.message);
    many[1 * cap + 40] ^= 1;
    CHECK(bcae_sparse_decode_many(streams, len, (size_t)nw, 3, out, NULL, &err) == BCAE_ERR_FORMAT);
    CHECK_MSG(strncmp(err.message, "stream 1: ", 10) == 0, "%s", err.message);
    /* Arguments: none is fine, bad ones are refused. */
    CHECK(bcae_sparse_encode_many(ev, 0, NULL, 0, NULL, 0, NULL, NULL, &err) == BCAE_OK);
    CHECK(bcae_sparse_encode_many(ev, 1, NULL, 0, many, cap - 1, len, NULL, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_sparse_encode_many(ev, 1, NULL, -1, many, cap, len, NULL, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    bcae_sparse_options bad = {9, 0};
    CHECK(bcae_sparse_encode_many(ev, 2, &bad, 2, many, cap, len, NULL, &err) ==
          BCAE_ERR_INVALID_ARGUMENT);
    CHECK_MSG(strncmp(err.message, "sparse encode: max_error", 24) == 0, "%s", err.message);
    /* One stream: the lone decoder's message, unnamed. */
    CHECK(bcae_sparse_decode_many(streams + 1, len + 1, 1, 0, out, NULL, &err) == BCAE_ERR_FORMAT);
    CHECK_MSG(strncmp(err.message, "sparse stream: ", 15) == 0, "%s", err.message);
    CHECK(bcae_sparse_decode_many(NULL, len, 1, 0, out, NULL, &err) == BCAE_ERR_INVALID_ARGUMENT);
    free(many);
    free(one);
    free(len);
    free(info);
    free(out);
    free(ref);
    free(streams);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void fix_crc(uint8_t *b, size_t n)
{
    put32(b + n - 4, bcae_crc32c(b, n - 4));
}

static void test_damage(const uint16_t *w)
{
    bcae_error err;
    bcae_sparse_coder *c;
    CHECK(bcae_sparse_coder_create(&c, &err) == BCAE_OK);
    uint8_t *buf = malloc(bcae_sparse_bound()), *bad = malloc(bcae_sparse_bound());
    uint16_t *out = malloc(V * 2);
    bcae_sparse_options opt = {0.05, 0};
    size_t len = 0;
    CHECK(bcae_sparse_encode(c, w, &opt, buf, bcae_sparse_bound(), &len, NULL, &err) == BCAE_OK);
    /* Every truncation. */
    size_t accepted = 0;
    for (size_t cut = 0; cut < len; cut++)
        accepted += bcae_sparse_decode(c, buf, cut, out, NULL, &err) == BCAE_OK;
    CHECK_MSG(accepted == 0, "%zu truncations accepted", accepted);
    /* A longer buffer is refused too. */
    memcpy(bad, buf, len);
    bad[len] = 0;
    CHECK(bcae_sparse_decode(c, bad, len + 1, out, NULL, &err) == BCAE_ERR_FORMAT);
    /* Bit flips, every 7th bit: the CRC catches each. */
    accepted = 0;
    for (size_t bit = 0; bit < 8 * len; bit += 7) {
        memcpy(bad, buf, len);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        accepted += bcae_sparse_decode(c, bad, len, out, NULL, &err) == BCAE_OK;
    }
    CHECK_MSG(accepted == 0, "%zu bit flips accepted", accepted);
    /* Header fields, with the CRC made right again. */
    struct {
        size_t at;
        uint8_t v;
        bcae_status want;
    } fields[] = {
        {0, 'X', BCAE_ERR_FORMAT},        /* magic */
        {4, 2, BCAE_ERR_UNSUPPORTED},     /* version */
        {5, 7, BCAE_ERR_FORMAT},          /* method */
        {6, 1, BCAE_ERR_FORMAT},          /* reserved */
        {8, 191, BCAE_ERR_FORMAT},        /* azimuth */
        {20, 0, BCAE_ERR_FORMAT},         /* M: bits 32..39 cleared: below 2^32 */
        {21, 1, BCAE_ERR_FORMAT},         /* M above 2^40 */
        {24, 0x55, BCAE_ERR_FORMAT},      /* hits */
        {28, 0x13, BCAE_ERR_FORMAT},      /* occupancy length */
    };
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        memcpy(bad, buf, len);
        if (bad[fields[f].at] == fields[f].v) bad[fields[f].at] ^= 0x80;
        else bad[fields[f].at] = fields[f].v;
        fix_crc(bad, len);
        bcae_status s = bcae_sparse_decode(c, bad, len, out, NULL, &err);
        CHECK_MSG(s == fields[f].want, "header byte %zu: status %d, want %d (%s)", fields[f].at,
                  (int)s, (int)fields[f].want, err.message);
    }
    /* Payload damage behind a valid CRC: refused or decoded, never a crash
     * (the sanitizer build watches), and the coder still works after. */
    rng_state = 99;
    size_t refused = 0, tries = 300;
    for (size_t t = 0; t < tries; t++) {
        memcpy(bad, buf, len);
        size_t at = 36 + below((uint32_t)(len - 40));
        bad[at] ^= (uint8_t)(1 + below(255));
        fix_crc(bad, len);
        refused += bcae_sparse_decode(c, bad, len, out, NULL, &err) != BCAE_OK;
    }
    printf("payload damage behind a valid CRC: %zu of %zu refused\n", refused, tries);
    CHECK(refused > tries / 2);
    CHECK(bcae_sparse_decode(c, buf, len, out, NULL, &err) == BCAE_OK);
    CHECK(check_bound(w, out, 0.05) == 0);
    free(buf);
    free(bad);
    free(out);
    bcae_sparse_coder_free(c);
}

/* ---- the fuzz corpus ---------------------------------------------------------- */

static int write_seeds(const char *dir)
{
    uint16_t *w = calloc(V, 2);
    uint8_t *buf = malloc(bcae_sparse_bound());
    bcae_error err;
    struct {
        const char *name;
        int pulses;
        double max_error;
    } seeds[] = {{"empty.bcsp", 0, 0}, {"few_lossless.bcsp", 12, 0}, {"few_e005.bcsp", 12, 0.05},
                 {"some_e01.bcsp", 60, 0.1}, {"some_lossless.bcsp", 60, 0}};
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        memset(w, 0, V * 2);
        rng_state = 5 + s;
        for (int p = 0; p < seeds[s].pulses; p++) {
            int l = (int)below(16), a = (int)below(192), z = (int)below(240);
            for (int dz = 0; dz < 6; dz++)
                w[((size_t)a * BCAE_WEDGE_Z + (size_t)(z + dz)) * BCAE_WEDGE_LAYERS + (size_t)l] =
                    (uint16_t)(64 + below(900));
        }
        bcae_sparse_options opt = {seeds[s].max_error, 0};
        size_t len;
        if (bcae_sparse_encode(NULL, w, &opt, buf, bcae_sparse_bound(), &len, NULL, &err)) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, seeds[s].name);
        FILE *fp = fopen(path, "wb");
        if (!fp || fwrite(buf, 1, len, fp) != len || fclose(fp)) {
            perror(path);
            return 1;
        }
        printf("%s: %zu bytes\n", path, len);
    }
    free(w);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "seeds")) return write_seeds(argv[2]);
    test_tables();
    test_levels();
    test_random();
    /* One simulated event; 8 of its wedges (the sanitizer build runs this too). */
    uint16_t *ev = malloc(BCAE_SIM_WEDGES_PER_EVENT * V * 2);
    bcae_error err;
    bcae_simulator *sim = NULL;
    CHECK(bcae_simulator_create(NULL, &sim, &err) == BCAE_OK);
    CHECK(bcae_simulator_run(sim, 4, 1, ev, 0, NULL, &err) == BCAE_OK);
    bcae_simulator_destroy(sim);
    test_simulated(ev, 8);
    test_ratio(ev + 2 * V);
    test_pinned();
    test_arguments(ev);
    test_many(ev, 4);
    test_damage(ev + 3 * V);
    free(ev);
    printf("decoded voxels checked: %zu, of them non-zero and checked against their bound: %zu; "
           "uint16 values checked against the levels: %zu\n",
           voxels_checked, hits_checked, values_checked);
    return check_report("test_sparse");
}
