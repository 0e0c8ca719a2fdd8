/*
 * bench_baselines: learning-free compressors on the wedges BCAE is measured
 * on, reported the way `bcae eval` reports BCAE (SPEC section 5).
 *
 *   bench_baselines --data DIR [--split test] [--limit N] [--threads T]
 *                   [--model NAME=FILE.safetensors]... [--bcae NAME=R,MAE,PSNR,P,R,WPS]...
 *                   [--zfp-space log|adc|both] [--target RATIO] [--plot RD.png] [--json]
 *
 * Every method compresses each wedge of the split and decompresses it back
 * to uint16 ADC (rounded, clamped to [0, 1023]); whatever the reconstruction
 * holds (values where the original was zero, values below 64) is measured
 * as it is. Ratio = the split's input at 16 bits a voxel / its compressed
 * bytes. MAE, MSE, PSNR (the reference's max/RMSE ratio and dB), precision
 * and recall are bcae_metrics_adc per wedge, averaged over wedges, skipping
 * undefined values as `bcae eval` does (an all-lossless method's PSNR is
 * +inf). Throughput: wedges/s and MB/s (10^6 bytes of uint16 input) of the
 * compress and the decompress calls alone (wedges already in memory,
 * metrics not timed), per stream: with --threads T, T wedges run at once
 * and the figure is the wedges divided by (summed call time / T). A BCAE
 * model (--model) runs one stream of batches of 4 with T engine threads.
 *
 * Methods: zstd on the raw wedge (levels 1, 3, 9, 19); zstd on a sparse
 * run-length layout (levels 3, 19); log-space quantisation to k = 1..8 bits
 * in that layout + zstd 19; ZFP fixed rate (0.25 .. 8 bits a value) and
 * fixed accuracy, in log2(ADC+1) and/or raw ADC space (methods.c says how).
 * The sparse codec (docs/SPARSE.md) at error bounds E = 0 (lossless), 0.01,
 * 0.02, 0.05, 0.1, and beside it quantE+zstd: its levels at the same E in the
 * sparse layout + zstd 19. For each lossy family the summary table shows the
 * sweep point whose ratio is nearest the target (default 31.125, BCAE-2D's
 * code ratio); a table of the sparse codec's rows says where its bits go.
 * --methods keeps only the families named.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "baselines.h"

#define V ((size_t)BCAE_WEDGE_VOXELS)
#define MAX_METHODS 96
#define MAX_MODELS 8

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bench_baselines --data DIR [options]\n"
            "Learning-free compressors (zstd, sparse+zstd, quantise+zstd, ZFP) on the wedges\n"
            "of a dataset split, with BCAE models alongside: ratio, MAE, PSNR, precision,\n"
            "recall (SPEC section 5, means over wedges) and throughput.\n"
            "\n"
            "  -d, --data DIR          dataset (DIR/<split>.txt or DIR/outer/<split>.txt)\n"
            "      --split NAME        manifest (default test)\n"
            "  -n, --limit N           only the first N wedges\n"
            "  -t, --threads T         wedges compressed at once (default 1: one stream);\n"
            "                          a BCAE model's engine threads\n"
            "  -m, --model NAME=FILE   also run this BCAE model (fp16 code, and the code\n"
            "                          with zstd 3); repeatable\n"
            "      --bcae NAME=RATIO,MAE,PSNR,PRECISION,RECALL,WEDGES_PER_S\n"
            "                          a row measured elsewhere (e.g. `bcae eval`); repeatable\n"
            "      --zfp-space S       log (log2(ADC+1)), adc or both (default both)\n"
            "      --target R          ratio the summary picks each lossy family's point\n"
            "                          nearest to (default 31.125)\n"
            "      --methods LIST      only the families whose names start with one of these\n"
            "                          comma-separated prefixes (e.g. sparse,quant)\n"
            "      --plot FILE.png     the rate-distortion figure\n"
            "      --json              one JSON object on the last line of stdout\n"
            "  -q, --quiet             no progress on stderr\n"
            "  -h, --help\n");
}

static void die(const char *fmt, const char *a)
{
    fprintf(stderr, "bench_baselines: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    exit(1);
}

/* ---- the methods swept ------------------------------------------------ */

static int add(bl_method *ms, int n, bl_kind kind, const char *family, double param, int level,
               bl_space space, int lossless, const char *fmt)
{
    if (n >= MAX_METHODS) die("%s", "too many methods");
    bl_method *m = &ms[n];
    memset(m, 0, sizeof *m);
    m->kind = kind;
    snprintf(m->family, sizeof m->family, "%s", family);
    m->param = param;
    m->level = level;
    m->space = space;
    m->lossless = lossless;
    char p[32];
    snprintf(p, sizeof p, fmt, param);
    snprintf(m->name, sizeof m->name, "%s %s", family, p);
    return n + 1;
}

/* 1 if `family` starts with one of the comma-separated prefixes (NULL: all). */
static int wanted(const char *family, const char *list)
{
    if (!list) return 1;
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n && !strncmp(family, p, n)) return 1;
        p += n + (e ? 1 : 0);
    }
    return 0;
}

static int build_methods(bl_method *ms, int zfp_log, int zfp_adc)
{
    int n = 0;
    static const int raw_levels[] = {1, 3, 9, 19};
    for (int i = 0; i < 4; i++)
        n = add(ms, n, BL_ZSTD_RAW, "zstd", raw_levels[i], raw_levels[i], BL_SPACE_ADC, 1,
                "-%.0f");
    static const int sparse_levels[] = {3, 19};
    for (int i = 0; i < 2; i++)
        n = add(ms, n, BL_SPARSE_ZSTD, "sparse+zstd", sparse_levels[i], sparse_levels[i],
                BL_SPACE_ADC, 1, "-%.0f");
    /* Bits from many to few: the ratio rises along the sweep. */
    for (int k = 8; k >= 1; k--)
        n = add(ms, n, BL_QUANT_ZSTD, "quant+zstd", k, 19, BL_SPACE_LOG, 0, "k=%.0f");
#ifdef BCAE_HAVE_ZFP
    static const double rates[] = {8, 4, 2, 1, 0.75, 0.5, 0.375, 0.25};
    /* Tolerances up to beyond the values' own range (10 in log space, 1023
     * in ADC), where ZFP keeps only the largest values: so that the sweep
     * reaches past the target ratio. Powers of two: ZFP rounds a tolerance
     * down to one (8 and 12 compress alike). */
    static const double tol_log[] = {0.125, 0.5, 1, 2, 4, 8, 16, 32, 64, 128};
    static const double tol_adc[] = {1, 4, 16, 64, 256, 512, 1024, 2048, 4096, 8192};
    for (int s = 0; s < 2; s++) {
        if (s == 0 ? !zfp_log : !zfp_adc) continue;
        bl_space sp = s == 0 ? BL_SPACE_LOG : BL_SPACE_ADC;
        const char *rf = s == 0 ? "zfp-rate (log)" : "zfp-rate (adc)";
        const char *af = s == 0 ? "zfp-acc (log)" : "zfp-acc (adc)";
        for (int i = 0; i < 8; i++)
            n = add(ms, n, BL_ZFP_RATE, rf, rates[i], 0, sp, 0, "%g b/v");
        for (int i = 0; i < 10; i++)
            n = add(ms, n, BL_ZFP_ACCURACY, af, s == 0 ? tol_log[i] : tol_adc[i], 0, sp, 0,
                    "tol %g");
    }
#else
    (void)zfp_log;
    (void)zfp_adc;
#endif
    /* The sparse codec at each bound, and quant+zstd on its very levels. */
    static const double bounds[] = {0.01, 0.02, 0.05, 0.1};
    n = add(ms, n, BL_SPARSE, "sparse E=0", 0, 0, BL_SPACE_LOG, 1, "E=%g");
    snprintf(ms[n - 1].name, sizeof ms[n - 1].name, "sparse E=0"); /* the legend adds "(lossless)" */
    for (int i = 0; i < 4; i++)
        n = add(ms, n, BL_SPARSE, "sparse", bounds[i], 0, BL_SPACE_LOG, 0, "E=%g");
    for (int i = 0; i < 4; i++)
        n = add(ms, n, BL_QUANTE_ZSTD, "quantE+zstd", bounds[i], 19, BL_SPACE_LOG, 0, "E=%g");
    return n;
}

/* ---- running one method ----------------------------------------------- */

typedef struct accum {
    double sum[6];
    size_t count[6];
    size_t psnr_inf;
} accum;

enum { A_MAE, A_MSE, A_PSNR, A_PSNR_DB, A_PREC, A_REC };

static void accum_add(accum *a, const bcae_metrics *m)
{
    double v[6] = {m->mae, m->mse, m->psnr, m->psnr_db, m->precision, m->recall};
    for (int k = 0; k < 6; k++)
        if (isfinite(v[k])) {
            a->sum[k] += v[k];
            a->count[k]++;
        }
    if (isinf(m->psnr) && m->psnr > 0) a->psnr_inf++;
}

static double accum_mean(const accum *a, int k)
{
    if (a->count[k]) return a->sum[k] / (double)a->count[k];
    /* Every wedge exact: the mean PSNR is +inf, not undefined. */
    if ((k == A_PSNR || k == A_PSNR_DB) && a->psnr_inf) return INFINITY;
    return NAN;
}

static void run_method(const bl_method *m, const uint16_t *wedges, size_t n, int threads,
                       bl_result *res, int quiet)
{
    int batch = bl_batch(m);
    int streams = m->kind == BL_BCAE ? 1 : threads;
    size_t nchunks = (n + (size_t)batch - 1) / (size_t)batch;
    size_t cap = bl_bound(m, batch);
    bl_ctx *ctx[64];
    uint8_t *out[64];
    uint16_t *rec[64];
    accum acc[64];
    double bytes[64], tc[64], td[64];
    int failed = 0;
    for (int t = 0; t < streams; t++) {
        ctx[t] = bl_ctx_create(m, threads);
        out[t] = malloc(cap);
        rec[t] = malloc((size_t)batch * V * sizeof(uint16_t));
        if (!ctx[t] || !out[t] || !rec[t]) die("cannot set up %s", m->name);
        memset(&acc[t], 0, sizeof acc[t]);
        bytes[t] = tc[t] = td[t] = 0;
    }
    double t_start = now_s();
#pragma omp parallel for num_threads(streams) schedule(dynamic)
    for (size_t c = 0; c < nchunks; c++) {
        int t = omp_get_thread_num();
        size_t w0 = c * (size_t)batch;
        int nb = (int)(n - w0 < (size_t)batch ? n - w0 : (size_t)batch);
        const uint16_t *in = wedges + w0 * V;
        double t0 = now_s();
        size_t len = bl_compress(m, ctx[t], in, nb, out[t], cap);
        double t1 = now_s();
        int bad = len == 0 || bl_decompress(m, ctx[t], out[t], len, nb, rec[t]) != 0;
        double t2 = now_s();
        if (bad) {
#pragma omp atomic write
            failed = 1;
            continue;
        }
        tc[t] += t1 - t0;
        td[t] += t2 - t1;
        bytes[t] += (double)len;
        for (int i = 0; i < nb; i++) {
            bcae_metrics mt;
            bcae_metrics_adc(in + (size_t)i * V, rec[t] + (size_t)i * V, V, &mt);
            accum_add(&acc[t], &mt);
            if (m->lossless && memcmp(in + (size_t)i * V, rec[t] + (size_t)i * V, V * 2) != 0) {
#pragma omp atomic write
                failed = 2;
            }
        }
    }
    double wall = now_s() - t_start;
    if (failed == 1) die("%s: compression or decompression failed", m->name);
    if (failed == 2) die("%s: a lossless method did not reproduce its input", m->name);

    accum all;
    memset(&all, 0, sizeof all);
    double csum = 0, dsum = 0, total = 0;
    bl_sparse_stats sp = {0};
    for (int t = 0; t < streams; t++) {
        const bl_sparse_stats *st = bl_ctx_sparse_stats(ctx[t]);
        if (st) {
            sp.occupancy_bytes += st->occupancy_bytes;
            sp.value_bytes += st->value_bytes;
            sp.hits += st->hits;
            sp.occupancy_h += st->occupancy_h;
            sp.value_h += st->value_h;
        }
        for (int k = 0; k < 6; k++) {
            all.sum[k] += acc[t].sum[k];
            all.count[k] += acc[t].count[k];
        }
        all.psnr_inf += acc[t].psnr_inf;
        csum += tc[t];
        dsum += td[t];
        total += bytes[t];
        bl_ctx_free(ctx[t]);
        free(out[t]);
        free(rec[t]);
    }
    memset(res, 0, sizeof *res);
    res->method = *m;
    res->wedges = n;
    res->threads = threads;
    res->input_bytes = (double)n * (double)V * 2;
    res->compressed_bytes = total;
    res->ratio = res->input_bytes / total;
    res->mae = accum_mean(&all, A_MAE);
    res->mse = accum_mean(&all, A_MSE);
    res->psnr = accum_mean(&all, A_PSNR);
    res->psnr_db = accum_mean(&all, A_PSNR_DB);
    res->precision = accum_mean(&all, A_PREC);
    res->recall = accum_mean(&all, A_REC);
    res->compress_s = csum;
    res->decompress_s = dsum;
    res->compress_wps = (double)n / (csum / streams);
    res->decompress_wps = (double)n / (dsum / streams);
    res->compress_mbps = res->compress_wps * (double)V * 2 / 1e6;
    res->decompress_mbps = res->decompress_wps * (double)V * 2 / 1e6;
    res->sparse = sp;
    if (!quiet)
        fprintf(stderr, "%-28s ratio %8.2f  MAE %.4f  prec %.4f  rec %.4f  %7.1f / %7.1f w/s  (%.1f s)\n",
                m->name, res->ratio, res->mae, res->precision, res->recall, res->compress_wps,
                res->decompress_wps, wall);
}

/* ---- output ------------------------------------------------------------ */

static void print_num(double v, const char *fmt)
{
    if (isnan(v)) printf("-");
    else if (isinf(v)) printf(v > 0 ? "inf" : "-inf");
    else printf(fmt, v);
}

static void table_header(void)
{
    printf("| method | ratio | MAE | PSNR | PSNR dB | precision | recall | comp. w/s | comp. MB/s | "
           "decomp. w/s | decomp. MB/s |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
}

static void table_row(const bl_result *r)
{
    printf("| %s%s | ", r->method.name, r->external ? " (given)" : "");
    print_num(r->ratio, "%.2f");
    printf(" | ");
    print_num(r->mae, "%.4f");
    printf(" | ");
    print_num(r->psnr, "%.3f");
    printf(" | ");
    print_num(r->psnr_db, "%.2f");
    printf(" | ");
    print_num(r->precision, "%.4f");
    printf(" | ");
    print_num(r->recall, "%.4f");
    printf(" | ");
    print_num(r->compress_wps, "%.1f");
    printf(" | ");
    print_num(r->compress_mbps, "%.1f");
    printf(" | ");
    print_num(r->decompress_wps, "%.1f");
    printf(" | ");
    print_num(r->decompress_mbps, "%.1f");
    printf(" |\n");
}

static void json_num(double v)
{
    if (isfinite(v)) printf("%.17g", v);
    else printf("null");
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

static const char *kind_name(bl_kind k)
{
    switch (k) {
    case BL_ZSTD_RAW: return "zstd";
    case BL_SPARSE_ZSTD: return "sparse+zstd";
    case BL_QUANT_ZSTD: return "quant+zstd";
    case BL_ZFP_RATE: return "zfp-rate";
    case BL_ZFP_ACCURACY: return "zfp-accuracy";
    case BL_BCAE: return "bcae";
    case BL_QUANTE_ZSTD: return "quantE+zstd";
    case BL_SPARSE: return "sparse";
    }
    return "?";
}

static void print_json(const bl_result *rows, int n, int threads, size_t wedges, double target)
{
    printf("{\"threads\": %d, \"wedges\": %zu, \"target_ratio\": ", threads, wedges);
    json_num(target);
    printf(", \"rows\": [");
    for (int i = 0; i < n; i++) {
        const bl_result *r = &rows[i];
        printf("%s{\"name\": ", i ? ", " : "");
        json_str(r->method.name);
        printf(", \"family\": ");
        json_str(r->method.family);
        printf(", \"kind\": ");
        json_str(kind_name(r->method.kind));
        printf(", \"space\": \"%s\", \"param\": ", r->method.space == BL_SPACE_LOG ? "log" : "adc");
        json_num(r->method.param);
        printf(", \"lossless\": %s, \"external\": %s, \"nearest\": %s",
               r->method.lossless ? "true" : "false", r->external ? "true" : "false",
               r->nearest ? "true" : "false");
        const char *keys[] = {"ratio", "compressed_bytes", "mae", "mse", "psnr", "psnr_db",
                              "precision", "recall", "compress_wedges_per_s",
                              "compress_mb_per_s", "decompress_wedges_per_s",
                              "decompress_mb_per_s"};
        double vals[] = {r->ratio, r->compressed_bytes, r->mae, r->mse, r->psnr, r->psnr_db,
                         r->precision, r->recall, r->compress_wps, r->compress_mbps,
                         r->decompress_wps, r->decompress_mbps};
        for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
            printf(", \"%s\": ", keys[k]);
            json_num(vals[k]);
        }
        if (r->method.kind == BL_SPARSE && r->sparse.hits > 0) {
            const bl_sparse_stats *sp = &r->sparse;
            printf(", \"hits_per_wedge\": ");
            json_num(sp->hits / (double)r->wedges);
            printf(", \"occupancy_bits_per_hit\": ");
            json_num(8 * sp->occupancy_bytes / sp->hits);
            printf(", \"occupancy_entropy_bits_per_hit\": ");
            json_num(sp->occupancy_h / sp->hits);
            printf(", \"value_bits_per_hit\": ");
            json_num(8 * sp->value_bytes / sp->hits);
            printf(", \"value_entropy_bits_per_hit\": ");
            json_num(sp->value_h / sp->hits);
        }
        printf("}");
    }
    printf("]}\n");
}

/* The sparse codec's rows: each against quantE+zstd at the same bound (and
 * the lossless one against sparse+zstd -19), and where its bits go. */
static void print_sparse_table(const bl_result *rows, int n)
{
    const bl_result *lossless_ref = NULL;
    int any = 0;
    for (int i = 0; i < n; i++) {
        if (rows[i].method.kind == BL_SPARSE_ZSTD && rows[i].method.level == 19)
            lossless_ref = &rows[i];
        any |= rows[i].method.kind == BL_SPARSE;
    }
    if (!any) return;
    printf("\n## The sparse codec: against the same values through zstd, and where its bits go\n\n");
    printf("Reference: quantE+zstd at the same bound (sparse+zstd -19 for lossless). Bits per hit\n"
           "(non-zero voxel); H: the empirical conditional entropy of each wedge's bits under the\n"
           "codec's own contexts (the best fixed probability per context, per wedge), summed.\n\n");
    printf("| E | ratio | reference | x reference | hits/wedge | occupancy b/hit | its H | "
           "values b/hit | its H | header+CRC b/hit |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const bl_result *r = &rows[i];
        if (r->method.kind != BL_SPARSE || !(r->sparse.hits > 0)) continue;
        const bl_result *ref = r->method.lossless ? lossless_ref : NULL;
        for (int j = 0; j < n && !ref; j++)
            if (rows[j].method.kind == BL_QUANTE_ZSTD && rows[j].method.param == r->method.param)
                ref = &rows[j];
        const bl_sparse_stats *sp = &r->sparse;
        double other = 8 * (r->compressed_bytes - sp->occupancy_bytes - sp->value_bytes) / sp->hits;
        printf("| %g | %.2f | ", r->method.param, r->ratio);
        if (ref) printf("%.2f (%s) | %.3f", ref->ratio, ref->method.name, r->ratio / ref->ratio);
        else printf("- | -");
        printf(" | %.0f | %.3f | %.3f | %.3f | %.3f | %.4f |\n", sp->hits / (double)r->wedges,
               8 * sp->occupancy_bytes / sp->hits, sp->occupancy_h / sp->hits,
               8 * sp->value_bytes / sp->hits, sp->value_h / sp->hits, other);
    }
}

/* --bcae NAME=RATIO,MAE,PSNR,PRECISION,RECALL,WEDGES_PER_S */
static void parse_given(const char *arg, bl_result *r)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) die("--bcae expects NAME=RATIO,MAE,PSNR,PRECISION,RECALL,WPS, got '%s'", arg);
    memset(r, 0, sizeof *r);
    r->external = 1;
    r->method.kind = BL_BCAE;
    snprintf(r->method.family, sizeof r->method.family, "%.*s", (int)(eq - arg), arg);
    snprintf(r->method.name, sizeof r->method.name, "%s", r->method.family);
    double v[6];
    const char *p = eq + 1;
    for (int k = 0; k < 6; k++) {
        char *end;
        errno = 0;
        v[k] = strtod(p, &end);
        if (errno || end == p || (k < 5 && *end != ',') || (k == 5 && *end != '\0'))
            die("--bcae expects NAME=RATIO,MAE,PSNR,PRECISION,RECALL,WPS, got '%s'", arg);
        p = end + 1;
    }
    r->ratio = v[0];
    r->mae = v[1];
    r->psnr = v[2];
    r->psnr_db = NAN; /* the mean of per-wedge dB is not 20 log10(mean ratio) */
    r->precision = v[3];
    r->recall = v[4];
    r->compress_wps = v[5];
    r->compress_mbps = v[5] * (double)V * 2 / 1e6;
    r->decompress_wps = r->decompress_mbps = r->mse = NAN;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},   {"split", required_argument, NULL, 's'},
        {"limit", required_argument, NULL, 'n'},  {"threads", required_argument, NULL, 't'},
        {"model", required_argument, NULL, 'm'},  {"bcae", required_argument, NULL, 'b'},
        {"zfp-space", required_argument, NULL, 'z'}, {"target", required_argument, NULL, 'r'},
        {"plot", required_argument, NULL, 'p'},   {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"methods", required_argument, NULL, 'M'},
        {NULL, 0, NULL, 0}};
    const char *data = NULL, *split = "test", *plot = NULL, *only = NULL;
    const char *models[MAX_MODELS], *given[MAX_MODELS];
    int nmodels = 0, ngiven = 0, json = 0, quiet = 0, threads = 1, zfp_log = 1, zfp_adc = 1;
    long limit = -1;
    double target = 31.125;
    int c;
    while ((c = getopt_long(argc, argv, "d:n:t:m:qh", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'd': data = optarg; break;
        case 's': split = optarg; break;
        case 'n':
            limit = strtol(optarg, &end, 10);
            if (*end || limit < 1) die("--limit expects a positive whole number, got '%s'", optarg);
            break;
        case 't':
            threads = (int)strtol(optarg, &end, 10);
            if (*end || threads < 1 || threads > 64) die("--threads expects 1..64, got '%s'", optarg);
            break;
        case 'm':
            if (nmodels == MAX_MODELS) die("%s", "too many --model");
            models[nmodels++] = optarg;
            break;
        case 'b':
            if (ngiven == MAX_MODELS) die("%s", "too many --bcae");
            given[ngiven++] = optarg;
            break;
        case 'z':
            zfp_log = !strcmp(optarg, "log") || !strcmp(optarg, "both");
            zfp_adc = !strcmp(optarg, "adc") || !strcmp(optarg, "both");
            if (!zfp_log && !zfp_adc) die("--zfp-space expects log, adc or both, got '%s'", optarg);
            break;
        case 'r':
            target = strtod(optarg, &end);
            if (*end || !(target > 0)) die("--target expects a positive ratio, got '%s'", optarg);
            break;
        case 'p': plot = optarg; break;
        case 'M': only = optarg; break;
        case 'j': json = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!data || optind != argc) {
        usage(stderr);
        return 2;
    }

    bcae_error err;
    bcae_dataset *ds;
    if (bcae_dataset_open(data, split, &ds, &err) != BCAE_OK) die("%s", err.message);
    size_t n = bcae_dataset_size(ds);
    if (limit > 0 && (size_t)limit < n) n = (size_t)limit;
    if (n == 0) die("%s", "the split is empty");
    uint16_t *wedges = malloc(n * V * sizeof(uint16_t));
    if (!wedges) die("%s", "out of memory for the wedges");
    for (size_t i = 0; i < n; i++)
        if (bcae_dataset_load(ds, i, wedges + i * V, &err) != BCAE_OK) die("%s", err.message);
    bcae_dataset_close(ds);
    if (!quiet) fprintf(stderr, "bench_baselines: %zu wedges of %s, %d thread(s)\n", n, split, threads);

    bl_method ms[MAX_METHODS];
    int nm = build_methods(ms, zfp_log, zfp_adc), kept = 0;
    for (int i = 0; i < nm; i++)
        if (wanted(ms[i].family, only)) ms[kept++] = ms[i];
    nm = kept;
    bcae_model *loaded[MAX_MODELS];
    for (int i = 0; i < nmodels; i++) {
        const char *eq = strchr(models[i], '=');
        const char *path = eq ? eq + 1 : models[i];
        if (bcae_model_load(path, &loaded[i], &err) != BCAE_OK) die("%s", err.message);
        for (int z = 0; z < 2; z++) {
            if (nm >= MAX_METHODS) die("%s", "too many methods");
            bl_method *m = &ms[nm++];
            memset(m, 0, sizeof *m);
            m->kind = BL_BCAE;
            m->model = loaded[i];
            m->level = z ? 3 : 0;
            char family[sizeof m->family];
            if (eq) snprintf(family, sizeof family, "%.*s", (int)(eq - models[i]), models[i]);
            else snprintf(family, sizeof family, "BCAE");
            memcpy(m->family, family, sizeof family);
            snprintf(m->name, sizeof m->name, "%s%s", family, z ? " + zstd 3" : "");
        }
    }

    int nrows = nm + ngiven;
    bl_result *rows = calloc((size_t)nrows, sizeof *rows);
    if (!rows) die("%s", "out of memory");
    for (int i = 0; i < nm; i++) run_method(&ms[i], wedges, n, threads, &rows[i], quiet);
    for (int i = 0; i < ngiven; i++) parse_given(given[i], &rows[nm + i]);
    free(wedges);

    /* Each lossy family's point nearest the target ratio (in log ratio). */
    for (int i = 0; i < nm; i++) {
        if (ms[i].lossless || ms[i].kind == BL_BCAE) continue;
        int best = -1;
        for (int j = 0; j < nm; j++)
            if (!strcmp(ms[j].family, ms[i].family) &&
                (best < 0 || fabs(log(rows[j].ratio / target)) <
                                 fabs(log(rows[best].ratio / target))))
                best = j;
        rows[best].nearest = 1;
    }

    printf("## Summary: lossless methods, each lossy family at the ratio nearest %.3g, BCAE\n\n",
           target);
    printf("%zu wedges, %d thread(s); throughput per stream (see --help)\n\n", n, threads);
    table_header();
    for (int i = 0; i < nrows; i++)
        if (rows[i].method.lossless || rows[i].nearest || rows[i].method.kind == BL_BCAE)
            table_row(&rows[i]);
    print_sparse_table(rows, nrows);
    printf("\n## Every point of every sweep\n\n");
    table_header();
    for (int i = 0; i < nrows; i++) table_row(&rows[i]);
    if (plot) {
        if (bl_plot(plot, rows, nrows, target, &err) != BCAE_OK) die("%s", err.message);
        if (!quiet) fprintf(stderr, "bench_baselines: wrote %s\n", plot);
    }
    if (json) print_json(rows, nrows, threads, n, target);
    for (int i = 0; i < nmodels; i++) bcae_model_free(loaded[i]);
    free(rows);
    return 0;
}
