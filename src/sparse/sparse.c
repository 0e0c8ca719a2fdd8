/*
 * The sparse codec's stream and public API (bcae.h; docs/SPARSE.md).
 *
 *   header (36 bytes) | occupancy section | values section | CRC-32C (4)
 *
 * or, when coding would not be smaller, the header and the wedge stored raw
 * (method 0). The CRC covers every byte before it, so damage is found before
 * any arithmetic decoding; the decoder still checks everything it decodes
 * (hit count, levels in range, each section read to its exact end), as a CRC
 * can collide and the fuzz target feeds it streams with a valid CRC.
 */
#include "sparse/sparse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/error.h"

#define V ((size_t)BCAE_WEDGE_VOXELS)
#define RAW_BYTES (2 * V)
#define RATIO_STEPS 4096 /* ratio mode: E = k / 512, k = 0..4096 */

struct bcae_sparse_coder {
    sparse_grid g;
    sparse_levels *lv;
    uint32_t *hit_cell; /* encoder: grid index of each hit, in scan order */
    uint32_t low_value; /* encoder: the 1st percentile of the hits' values */
    uint16_t *hit_adc;  /* encoder: its ADC */
    size_t hits;
    uint8_t *trial[2];  /* ratio mode: values sections of two bounds */
    uint32_t (*counts)[2];
};

size_t bcae_sparse_bound(void)
{
    return SPARSE_HEADER_BYTES + RAW_BYTES + SPARSE_CRC_BYTES;
}

void bcae_sparse_coder_free(bcae_sparse_coder *c)
{
    if (!c) return;
    free(c->g.occ);
    free(c->g.q);
    free(c->g.lg);
    free(c->g.err);
    free(c->g.pulse_cell);
    free(c->g.pulse_len);
    free(c->lv);
    free(c->hit_cell);
    free(c->hit_adc);
    free(c->trial[0]);
    free(c->trial[1]);
    free(c);
}

bcae_status bcae_sparse_coder_create(bcae_sparse_coder **out, bcae_error *err)
{
    *out = NULL;
    bcae_sparse_coder *c = calloc(1, sizeof *c);
    if (!c) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "sparse codec: out of memory");
    /* Zeroed grids: the borders stay zero for ever, and the interior is
     * zero between calls (each call clears what it set). */
    c->g.occ = calloc(SG_CELLS, 1);
    c->g.q = calloc(SG_CELLS, sizeof *c->g.q);
    c->g.lg = calloc(SG_CELLS, sizeof *c->g.lg);
    c->g.err = calloc(SG_CELLS, sizeof *c->g.err);
    c->g.pulse_cell = malloc(SG_MAX_PULSES * sizeof *c->g.pulse_cell);
    c->g.pulse_len = malloc(SG_MAX_PULSES * sizeof *c->g.pulse_len);
    c->lv = malloc(sizeof *c->lv);
    c->hit_cell = malloc(V * sizeof *c->hit_cell);
    c->hit_adc = malloc(V * sizeof *c->hit_adc);
    if (!c->g.occ || !c->g.q || !c->g.lg || !c->g.err || !c->g.pulse_cell || !c->g.pulse_len || !c->lv || !c->hit_cell || !c->hit_adc) {
        bcae_sparse_coder_free(c);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "sparse codec: out of memory");
    }
    c->lv->mult = 0; /* no levels built yet */
    *out = c;
    return BCAE_OK;
}

void sparse_coder_count_bits(bcae_sparse_coder *c, uint32_t (*counts)[2])
{
    c->counts = counts;
}

/* ---- little-endian fields ------------------------------------------------ */

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- the header ------------------------------------------------------------ */

typedef struct header {
    int method;
    uint32_t ped;
    uint64_t mult;
    uint32_t hits, occ_bytes, val_bytes;
} header;

static void header_write(uint8_t *p, const header *h)
{
    memcpy(p, SPARSE_MAGIC, 4);
    p[4] = SPARSE_VERSION;
    p[5] = (uint8_t)h->method;
    put16(p + 6, 0);
    put16(p + 8, BCAE_WEDGE_AZIMUTH);
    put16(p + 10, BCAE_WEDGE_Z);
    put16(p + 12, BCAE_WEDGE_LAYERS);
    put16(p + 14, h->ped);
    put64(p + 16, h->mult);
    put32(p + 24, h->hits);
    put32(p + 28, h->occ_bytes);
    put32(p + 32, h->val_bytes);
}

/* Parses and checks the header; *total receives the stream length it
 * implies (which must equal len for decoding). */
static bcae_status header_read(const uint8_t *p, size_t len, header *h, size_t *total,
                               bcae_error *err)
{
    if (len < SPARSE_HEADER_BYTES + SPARSE_CRC_BYTES)
        return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: truncated (%zu bytes)", len);
    if (memcmp(p, SPARSE_MAGIC, 4) != 0)
        return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: bad magic");
    if (p[4] != SPARSE_VERSION)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "sparse stream: version %u (this reads 1)",
                         (unsigned)p[4]);
    h->method = p[5];
    if (h->method != SPARSE_METHOD_STORED && h->method != SPARSE_METHOD_CODED)
        return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: unknown method %d", h->method);
    if (get16(p + 6)) return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: reserved bytes not zero");
    h->ped = get16(p + 14);
    if (get16(p + 8) != BCAE_WEDGE_AZIMUTH || get16(p + 10) != BCAE_WEDGE_Z ||
        get16(p + 12) != BCAE_WEDGE_LAYERS)
        return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: shape (%u, %u, %u), not a wedge",
                         get16(p + 8), get16(p + 10), get16(p + 12));
    h->mult = get64(p + 16);
    h->hits = get32(p + 24);
    h->occ_bytes = get32(p + 28);
    h->val_bytes = get32(p + 32);
    if (h->mult < SPARSE_M_ONE || h->mult > SPARSE_M_MAX)
        return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: quantiser multiplier out of range");
    if (h->hits > V) return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: %u hits", h->hits);
    if (h->method == SPARSE_METHOD_STORED) {
        if (h->occ_bytes || h->val_bytes || h->mult != SPARSE_M_ONE || h->ped)
            return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: bad stored header");
        *total = SPARSE_HEADER_BYTES + RAW_BYTES + SPARSE_CRC_BYTES;
    } else {
        if (h->occ_bytes < 5 || h->val_bytes < 5 || h->occ_bytes > RAW_BYTES ||
            h->val_bytes > RAW_BYTES)
            return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: section lengths out of range");
        *total = SPARSE_HEADER_BYTES + (size_t)h->occ_bytes + h->val_bytes + SPARSE_CRC_BYTES;
    }
    return BCAE_OK;
}

static void info_fill(bcae_sparse_info *info, const header *h, size_t total, int met)
{
    if (!info) return;
    memset(info, 0, sizeof *info);
    info->mult = h->mult;
    info->max_error = sparse_error_of(h->mult);
    info->hits = h->hits;
    info->occupancy_bytes = h->occ_bytes;
    info->value_bytes = h->val_bytes;
    info->total_bytes = total;
    info->stored = h->method == SPARSE_METHOD_STORED;
    info->met = met;
}

bcae_status bcae_sparse_peek(const uint8_t *in, size_t len, bcae_sparse_info *info,
                             bcae_error *err)
{
    header h = {0};
    size_t total = 0;
    if (!in || !info) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "sparse peek: NULL argument");
    bcae_status s = header_read(in, len, &h, &total, err);
    if (s) return s;
    info_fill(info, &h, total, 1);
    /* The level count needs the table; peek stays cheap and leaves it 0. */
    return BCAE_OK;
}

/* ---- encoding ---------------------------------------------------------------- */

static void levels_for(bcae_sparse_coder *c, uint64_t mult, uint32_t ped)
{
    if (c->lv->mult != mult) sparse_levels_build(c->lv, mult);
    if (c->lv->ped != ped) sparse_levels_set_pedestal(c->lv, ped);
}

/* Fills the occupancy grid (every interior cell) and the hit list. */
static void load_wedge(bcae_sparse_coder *c, const uint16_t *w)
{
    uint8_t *occ = c->g.occ;
    for (int a = 0; a < SG_NA; a++)
        for (int z = 0; z < SG_NZ; z++) {
            const uint16_t *v = w + ((size_t)a * SG_NZ + (size_t)z) * SG_NL;
            for (int l = 0; l < SG_NL; l++) occ[sg_index(l, a, z)] = v[l] != 0;
        }
    size_t n = 0;
    for (int l = 0; l < SG_NL; l++)
        for (int a = 0; a < SG_NA; a++) {
            size_t row = sg_index(l, a, 0);
            for (int z = 0; z < SG_NZ; z++)
                if (occ[row + (size_t)z]) {
                    c->hit_cell[n] = (uint32_t)(row + (size_t)z);
                    c->hit_adc[n] = w[((size_t)a * SG_NZ + (size_t)z) * SG_NL + (size_t)l];
                    n++;
                }
        }
    c->hits = n;
    /* The 1st percentile of the values, the pedestal's neighbourhood in
     * data that has one (section 8 of docs/SPARSE.md, "pedestal"). */
    static const int BINS = 1024;
    uint32_t hist[1024] = {0};
    for (size_t i = 0; i < n; i++) hist[c->hit_adc[i] < BINS ? c->hit_adc[i] : BINS - 1]++;
    size_t want = n / 100, seen = 0;
    uint32_t v = 0;
    while (v < (uint32_t)BINS - 1 && seen + hist[v] <= want) seen += hist[v++];
    c->low_value = v;
}

/* Sets the hits' levels (q) for the current levels; lg stays zero: the
 * value coder fills it as it goes, as the decoder does. */
static void set_levels(bcae_sparse_coder *c)
{
    const uint16_t *of = c->lv->level_of;
    for (size_t i = 0; i < c->hits; i++) {
        c->g.q[c->hit_cell[i]] = of[c->hit_adc[i]];
        c->g.lg[c->hit_cell[i]] = 0;
        c->g.err[c->hit_cell[i]] = 0;
    }
}

static void clear_hits(bcae_sparse_coder *c)
{
    for (size_t i = 0; i < c->hits; i++) {
        c->g.q[c->hit_cell[i]] = 0;
        c->g.lg[c->hit_cell[i]] = 0;
        c->g.err[c->hit_cell[i]] = 0;
    }
}

static void reset_value_models(sparse_grid *g)
{
    rc_bit_init(g->models + SG_OCC_MODELS, SG_MODELS - SG_OCC_MODELS);
    memset(g->bias, 0, sizeof g->bias);
    memset(g->mag, 0, sizeof g->mag);
}

/* The pedestal the values are coded above: 0 (none), or one a little under
 * the 1st percentile of the values, whichever the proxy of the values' cost
 * says is cheaper (on every 4th pulse). Data with a pedestal (a baseline
 * under every kept sample, as the SAMPA's ~74 ADC) scale as the signal
 * above it, not as the value; data without one (zero suppression at 64 of
 * pedestal-subtracted samples) as the value. */
static uint32_t choose_pedestal(bcae_sparse_coder *c, uint64_t mult)
{
    uint32_t cand[3] = {0, 0, 0}, best = 0;
    int n = 1;
    if (c->low_value >= 10) {
        cand[n++] = c->low_value - 9;
        cand[n++] = c->low_value - 4;
    }
    uint64_t best_cost = UINT64_MAX;
    for (int i = 0; i < n && n > 1; i++) {
        levels_for(c, mult, cand[i]);
        set_levels(c);
        uint64_t cost = sparse_values_estimate(&c->g, c->lv, 4);
        if (cost < best_cost) {
            best_cost = cost;
            best = cand[i];
        }
    }
    return best;
}

/* Codes the values under levels M into buf[cap] (the pedestal chosen into
 * *ped); returns the section's length (> cap: it did not fit). */
static size_t encode_values(bcae_sparse_coder *c, uint64_t mult, uint32_t *ped, uint8_t *buf,
                            size_t cap, int count)
{
    *ped = choose_pedestal(c, mult);
    levels_for(c, mult, *ped);
    set_levels(c);
    reset_value_models(&c->g);
    rc_encoder e;
    rc_enc_init(&e, buf, cap);
    if (count && c->counts) {
        e.counts = c->counts;
        e.base = c->g.models;
        e.direct = SG_MODELS;
    }
    sparse_values_encode(&c->g, c->lv, &e);
    return rc_enc_finish(&e);
}

static size_t store_raw(const uint16_t *w, uint8_t *out, size_t hits, header *h)
{
    h->method = SPARSE_METHOD_STORED;
    h->mult = SPARSE_M_ONE;
    h->ped = 0;
    h->hits = (uint32_t)hits;
    h->occ_bytes = h->val_bytes = 0;
    uint8_t *p = out + SPARSE_HEADER_BYTES;
    for (size_t i = 0; i < V; i++) put16(p + 2 * i, w[i]);
    return SPARSE_HEADER_BYTES + RAW_BYTES + SPARSE_CRC_BYTES;
}

static bcae_status encode(bcae_sparse_coder *c, const uint16_t *w, const bcae_sparse_options *opt,
                          uint8_t *out, size_t *len, bcae_sparse_info *info)
{
    load_wedge(c, w);
    /* Occupancy, once whatever the bound. */
    rc_bit_init(c->g.models, SG_OCC_MODELS);
    const size_t room = RAW_BYTES; /* a section longer than the raw wedge is useless */
    rc_encoder e;
    rc_enc_init(&e, out + SPARSE_HEADER_BYTES, room);
    if (c->counts) {
        e.counts = c->counts;
        e.base = c->g.models;
    }
    sparse_occupancy_encode(&c->g, &e);
    size_t occ = rc_enc_finish(&e);
    uint8_t *vals = out + SPARSE_HEADER_BYTES + (occ <= room ? occ : 0);
    size_t vroom = occ <= room ? room - occ : 0;

    header h = {SPARSE_METHOD_CODED, 0, 0, (uint32_t)c->hits, (uint32_t)occ, 0};
    size_t val;
    int met = 1;
    if (opt && opt->ratio > 0) {
        size_t target = (size_t)floor((double)RAW_BYTES / opt->ratio);
        size_t fixed = SPARSE_HEADER_BYTES + occ + SPARSE_CRC_BYTES;
        size_t budget = target > fixed ? target - fixed : 0;
        /* The finest k whose values fit the budget. The size falls as the
         * bound grows, about linearly in log k (each halving of the bins
         * costs a bit a value), so the bracket [lo fails, hi fits] is cut
         * where the line through its ends meets the budget (regula falsi in
         * log k), with a bisection when one end has stayed put twice; it ends
         * with lo and hi adjacent, so the next finer grid point does not fit.
         * ~6 trials instead of bisection's ~14. best holds the section of hi. */
        int best = 0;
        uint32_t ped[2], mped;
        size_t best_len = encode_values(c, sparse_mult_of(0), &ped[0], c->trial[0], RAW_BYTES, 0);
        if (best_len > budget) {
            int lo = 0, hi = RATIO_STEPS, stuck_lo = 0, stuck_hi = 0;
            size_t lo_len = best_len;
            size_t hl = encode_values(c, sparse_mult_of(hi / 512.0), &ped[1], c->trial[1],
                                      RAW_BYTES, 0);
            best = 1;
            best_len = hl;
            if (hl > budget) {
                met = 0;
                lo = hi;
            }
            while (hi - lo > 1) {
                int mid;
                if (stuck_lo >= 2 || stuck_hi >= 2) {
                    mid = lo + (hi - lo) / 2;
                    stuck_lo = stuck_hi = 0;
                } else {
                    double xl = log2(lo > 0 ? (double)lo : 0.5), xh = log2((double)hi);
                    double t = ((double)lo_len - (double)budget) / ((double)lo_len - (double)best_len);
                    double k = exp2(xl + t * (xh - xl));
                    mid = k < lo + 1 ? lo + 1 : k > hi - 1 ? hi - 1 : (int)k;
                }
                size_t ml = encode_values(c, sparse_mult_of(mid / 512.0), &mped,
                                          c->trial[1 - best], RAW_BYTES, 0);
                if (ml <= budget) {
                    hi = mid;
                    best = 1 - best;
                    best_len = ml;
                    ped[best] = mped;
                    stuck_lo++;
                    stuck_hi = 0;
                } else {
                    lo = mid;
                    lo_len = ml;
                    stuck_hi++;
                    stuck_lo = 0;
                }
            }
            h.mult = sparse_mult_of(hi / 512.0);
        } else {
            h.mult = SPARSE_M_ONE;
        }
        h.ped = ped[best];
        if (c->counts) encode_values(c, h.mult, &mped, c->trial[1 - best], RAW_BYTES, 1);
        levels_for(c, h.mult, h.ped);
        val = best_len;
        if (val <= vroom) memcpy(vals, c->trial[best], val);
    } else {
        h.mult = sparse_mult_of(opt ? opt->max_error : 0);
        val = encode_values(c, h.mult, &h.ped, vals, vroom, 1);
    }
    clear_hits(c);
    h.val_bytes = (uint32_t)val;
    size_t total = SPARSE_HEADER_BYTES + occ + val + SPARSE_CRC_BYTES;
    if (occ > room || val > vroom || total >= bcae_sparse_bound())
        total = store_raw(w, out, c->hits, &h);
    header_write(out, &h);
    put32(out + total - SPARSE_CRC_BYTES, bcae_crc32c(out, total - SPARSE_CRC_BYTES));
    *len = total;
    info_fill(info, &h, total, met);
    if (info) info->levels = h.method == SPARSE_METHOD_CODED ? c->lv->count : 65535;
    return BCAE_OK;
}

bcae_status sparse_options_check(const bcae_sparse_options *opt, bcae_error *err)
{
    if (opt && !(opt->max_error >= 0 && opt->max_error <= BCAE_SPARSE_MAX_ERROR))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "sparse encode: max_error %g outside [0, %g]", opt->max_error,
                         BCAE_SPARSE_MAX_ERROR);
    if (opt && !(opt->ratio >= 0 && isfinite(opt->ratio)))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "sparse encode: ratio %g is not >= 0",
                         opt->ratio);
    return BCAE_OK;
}

bcae_status bcae_sparse_encode(bcae_sparse_coder *coder, const uint16_t *wedge,
                               const bcae_sparse_options *opt, uint8_t *out, size_t cap,
                               size_t *len, bcae_sparse_info *info, bcae_error *err)
{
    if (!wedge || !out || !len)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "sparse encode: NULL argument");
    if (cap < bcae_sparse_bound())
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "sparse encode: output capacity %zu < bcae_sparse_bound() = %zu", cap,
                         bcae_sparse_bound());
    bcae_status s = sparse_options_check(opt, err);
    if (s) return s;
    bcae_sparse_coder *c = coder;
    if (!c && (s = bcae_sparse_coder_create(&c, err))) return s;
    if (opt && opt->ratio > 0 && !c->trial[0]) {
        c->trial[0] = malloc(RAW_BYTES);
        c->trial[1] = malloc(RAW_BYTES);
        if (!c->trial[0] || !c->trial[1])
            s = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "sparse encode: out of memory");
    }
    if (!s) s = encode(c, wedge, opt, out, len, info);
    if (c != coder) bcae_sparse_coder_free(c);
    return s;
}

/* ---- decoding ------------------------------------------------------------------ */

/* Writes the decoded hits into the wedge and clears the grids behind them. */
static void emit_wedge(bcae_sparse_coder *c, uint16_t *w)
{
    memset(w, 0, V * sizeof *w);
    const uint16_t *value = c->lv->value;
    for (size_t k = 0; k < c->g.pulses; k++) {
        size_t cell = c->g.pulse_cell[k];
        size_t l = cell / SG_LSTRIDE - 2, a = cell % SG_LSTRIDE / SG_PZ - 2, z = cell % SG_PZ - 2;
        uint16_t *out = w + (a * SG_NZ + z) * SG_NL + l;
        for (int i = 0; i < c->g.pulse_len[k]; i++, cell++, out += SG_NL) {
            *out = value[c->g.q[cell]];
            c->g.q[cell] = c->g.lg[cell] = 0;
            c->g.err[cell] = 0;
        }
    }
}

/* After damage in the values: clears whatever they set. */
static void clear_decoded(bcae_sparse_coder *c)
{
    for (size_t k = 0; k < c->g.pulses; k++) {
        size_t cell = c->g.pulse_cell[k];
        for (int i = 0; i < c->g.pulse_len[k]; i++, cell++) {
            c->g.q[cell] = c->g.lg[cell] = 0;
            c->g.err[cell] = 0;
        }
    }
}

bcae_status sparse_decode_sections(bcae_sparse_coder *c, uint64_t mult, uint32_t ped,
                                   const uint8_t *occ, size_t occ_len, const uint8_t *val,
                                   size_t val_len, size_t expect_hits, uint16_t *w,
                                   size_t *hits_out, bcae_error *err)
{
    rc_decoder d;
    rc_bit_init(c->g.models, SG_OCC_MODELS);
    if (mult < SPARSE_M_ONE || mult > SPARSE_M_MAX || ped > 65535 || rc_dec_init(&d, occ, occ_len))
        return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: bad occupancy section");
    int bad = 0;
    size_t hits = sparse_occupancy_decode(&c->g, &d, &bad);
    if (hits_out) *hits_out = hits;
    if (bad || (expect_hits != SIZE_MAX && hits != expect_hits) || !rc_dec_exact(&d))
        return bcae_fail(err, BCAE_ERR_FORMAT,
                         "sparse stream: occupancy decodes to %zu hits in %zu bytes, header says "
                         "%zu in %zu",
                         hits, d.pos, expect_hits, occ_len);
    levels_for(c, mult, ped);
    reset_value_models(&c->g);
    bad = rc_dec_init(&d, val, val_len);
    if (!bad) bad = sparse_values_decode(&c->g, c->lv, &d) || !rc_dec_exact(&d);
    if (bad) {
        clear_decoded(c);
        return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: values section damaged");
    }
    emit_wedge(c, w);
    return BCAE_OK;
}

static bcae_status decode(bcae_sparse_coder *c, const uint8_t *in, const header *h, uint16_t *w,
                          bcae_error *err)
{
    const uint8_t *occ = in + SPARSE_HEADER_BYTES;
    return sparse_decode_sections(c, h->mult, h->ped, occ, h->occ_bytes, occ + h->occ_bytes,
                                  h->val_bytes,
                                  h->hits, w, NULL, err);
}

bcae_status bcae_sparse_decode(bcae_sparse_coder *coder, const uint8_t *in, size_t len,
                               uint16_t *wedge, bcae_sparse_info *info, bcae_error *err)
{
    if (!in || !wedge) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "sparse decode: NULL argument");
    header h = {0};
    size_t total = 0;
    bcae_status s = header_read(in, len, &h, &total, err);
    if (s) return s;
    if (len != total)
        return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: %zu bytes, its header says %zu", len,
                         total);
    uint32_t crc = get32(in + len - SPARSE_CRC_BYTES);
    if (crc != bcae_crc32c(in, len - SPARSE_CRC_BYTES))
        return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: CRC mismatch (damaged)");
    if (h.method == SPARSE_METHOD_STORED) {
        size_t hits = 0;
        for (size_t i = 0; i < V; i++) {
            wedge[i] = (uint16_t)get16(in + SPARSE_HEADER_BYTES + 2 * i);
            hits += wedge[i] != 0;
        }
        if (hits != h.hits)
            return bcae_fail(err, BCAE_ERR_FORMAT, "sparse stream: %zu hits stored, header says %u",
                             hits, h.hits);
        info_fill(info, &h, total, 1);
        if (info) info->levels = 65535;
        return BCAE_OK;
    }
    bcae_sparse_coder *c = coder;
    if (!c && (s = bcae_sparse_coder_create(&c, err))) return s;
    s = decode(c, in, &h, wedge, err);
    if (!s) {
        info_fill(info, &h, total, 1);
        if (info) info->levels = c->lv->count;
    }
    if (c != coder) bcae_sparse_coder_free(c);
    return s;
}
