/* bcae bench --codec sparse: throughput of the sparse codec's encoder and
 * decoder on wedges held in memory, on one thread or on several (each
 * thread its own coder and its own wedges: scaling across wedges). */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae bench --codec sparse [--max-error E | --ratio R] [OPTIONS]\n"
            "Time the sparse codec (docs/SPARSE.md) on wedges in memory: bcae_sparse_encode\n"
            "and bcae_sparse_decode of every wedge, repeated for at least --seconds; no file\n"
            "I/O. Wedges: one event of the built-in simulator (24 wedges; --seed), or a\n"
            "dataset split (--data). With --threads T, T wedges are coded at once, each\n"
            "thread with its own coder: wedges/s over all threads, and per thread.\n"
            "Reports wall-clock and this process's CPU time (the machine may be shared).\n"
            "\n"
            "Options:\n"
            "      --max-error E   the bound (default 0.05; 0 lossless)\n"
            "      --ratio R       instead, per wedge the finest bound meeting ratio R\n"
            "      --data DIR      wedges of a dataset (with --split, default test; --limit N)\n"
            "      --seed S        the simulated event's seed (default 1)\n"
            "  -t, --threads N     threads (default 1)\n"
            "  -s, --seconds S     at least this long per pass (default 3)\n"
            "      --json          one JSON object on stdout\n"
            "  -h, --help\n");
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct pass {
    double wall, cpu;
    long reps;
} pass;

int verb_bench_sparse(int argc, char **argv)
{
    const char *verb = "bench";
    const char *data = NULL, *split = "test";
    double seconds = 3;
    long threads = 1, limit = 0;
    uint64_t seed = 1;
    int json = 0;
    cli_sparse_args sa = {.sparse = 1, .max_error = 0.05}; /* this bench's default bound */
    enum { O_DATA = 256, O_SPLIT, O_LIMIT, O_SEED, O_JSON };
    static const struct option opts[] = {
        CLI_SPARSE_LONG_OPTIONS,                    {"data", required_argument, 0, O_DATA},
        {"split", required_argument, 0, O_SPLIT},   {"limit", required_argument, 0, O_LIMIT},
        {"seed", required_argument, 0, O_SEED},     {"threads", required_argument, 0, 't'},
        {"seconds", required_argument, 0, 's'},     {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":t:s:h", opts, NULL)) != -1) {
        switch (c) {
        case O_DATA: data = optarg; break;
        case O_SPLIT: split = optarg; break;
        case O_LIMIT:
            if (cli_parse_long(verb, "--limit", optarg, 1, 100000000, &limit)) return CLI_EXIT_USAGE;
            break;
        case O_SEED:
            if (cli_parse_u64(verb, "--seed", optarg, &seed)) return CLI_EXIT_USAGE;
            break;
        case 't':
            if (cli_parse_long(verb, "--threads", optarg, 1, 1024, &threads)) return CLI_EXIT_USAGE;
            break;
        case 's':
            if (cli_parse_double(verb, "--seconds", optarg, 0, 3600, &seconds)) return CLI_EXIT_USAGE;
            break;
        case O_JSON: json = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default: {
            int r = cli_sparse_option(verb, c, optarg, &sa);
            if (r < 0) return CLI_EXIT_USAGE;
            if (!r) return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
            if (!sa.sparse) return cli_usage_error(verb, "--codec %s: this is the sparse bench", optarg);
        }
        }
    }
    if (optind < argc) return cli_usage_error(verb, "unexpected argument '%s'", argv[optind]);
    if (cli_sparse_check(verb, &sa)) return CLI_EXIT_USAGE;
    const double max_error = sa.max_error, ratio = sa.ratio;

    const size_t V = BCAE_WEDGE_VOXELS, cap = bcae_sparse_bound();
    int T = (int)threads, rc = CLI_EXIT_FAIL;
    size_t n = 0;
    bcae_error err;
    uint16_t *w = NULL, *out = NULL;
    uint8_t *buf = NULL;
    size_t *len = NULL;
    bcae_sparse_coder **coder = calloc((size_t)T, sizeof *coder);
    if (!coder) {
        cli_error(verb, "out of memory");
        return CLI_EXIT_FAIL;
    }
    if (data) {
        bcae_dataset *ds;
        if (bcae_dataset_open(data, split, &ds, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        n = bcae_dataset_size(ds);
        if (limit > 0 && (size_t)limit < n) n = (size_t)limit;
        w = malloc(n * V * sizeof *w);
        for (size_t i = 0; w && i < n; i++)
            if (bcae_dataset_load(ds, i, w + i * V, &err)) {
                bcae_dataset_close(ds);
                cli_fail(verb, &err);
                goto done;
            }
        bcae_dataset_close(ds);
    } else {
        n = BCAE_SIM_WEDGES_PER_EVENT;
        w = malloc(n * V * sizeof *w);
        bcae_simulator *sim = NULL;
        if (w && (bcae_simulator_create(NULL, &sim, &err) ||
                  bcae_simulator_run(sim, seed, 0, w, 0, NULL, &err))) {
            bcae_simulator_destroy(sim);
            cli_fail(verb, &err);
            goto done;
        }
        bcae_simulator_destroy(sim);
    }
    out = malloc((size_t)T * V * sizeof *out);
    buf = malloc(n * cap);
    len = malloc(n * sizeof *len);
    if (!w || !out || !buf || !len || n == 0) {
        cli_error(verb, n ? "out of memory" : "no wedges");
        goto done;
    }
    for (int t = 0; t < T; t++)
        if (bcae_sparse_coder_create(&coder[t], &err)) {
            cli_fail(verb, &err);
            goto done;
        }
    bcae_sparse_options so = {max_error, ratio};
    double in_bytes = 0, hits = 0, occ = 0, val = 0;
    pass p[2] = {{0, 0, 0}, {0, 0, 0}};
    for (int which = 0; which < 2; which++) {
        for (long rep = -1;; rep++) { /* rep -1: untimed */
            int bad = 0;
            double w0 = cli_now(), c0 = cpu_now();
#pragma omp parallel for num_threads(T) schedule(dynamic) reduction(| : bad)
            for (size_t i = 0; i < n; i++) {
                int t = omp_get_thread_num();
                bcae_error e;
                if (which == 0)
                    bad |= bcae_sparse_encode(coder[t], w + i * V, &so, buf + i * cap, cap, &len[i],
                                              NULL, &e) != BCAE_OK;
                else
                    bad |= bcae_sparse_decode(coder[t], buf + i * cap, len[i], out + (size_t)t * V,
                                              NULL, &e) != BCAE_OK;
            }
            double w1 = cli_now(), c1 = cpu_now();
            if (bad) {
                cli_error(verb, "a wedge failed to %s", which ? "decode" : "encode");
                goto done;
            }
            if (rep >= 0) {
                p[which].wall += w1 - w0;
                p[which].cpu += c1 - c0;
                p[which].reps++;
            }
            if (rep >= 0 && p[which].wall >= seconds && p[which].reps >= 1) break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        bcae_sparse_info si;
        bcae_sparse_peek(buf + i * cap, len[i], &si, NULL);
        in_bytes += (double)len[i];
        hits += (double)si.hits;
        occ += (double)si.occupancy_bytes;
        val += (double)si.value_bytes;
    }
    double ratio_got = (double)n * (double)V * 2 / in_bytes;
    double wps[2], cps[2];
    for (int k = 0; k < 2; k++) {
        wps[k] = (double)n * (double)p[k].reps / p[k].wall;
        cps[k] = (double)n * (double)p[k].reps / p[k].cpu; /* per CPU-second */
    }
    if (json) {
        printf("{\"codec\": \"sparse\", \"wedges\": %zu, \"threads\": %d, \"max_error\": ", n, T);
        cli_json_number(stdout, ratio > 0 ? NAN : max_error);
        printf(", \"ratio_target\": ");
        cli_json_number(stdout, ratio > 0 ? ratio : NAN);
        printf(", \"ratio\": ");
        cli_json_number(stdout, ratio_got);
        printf(", \"occupancy_bits_per_hit\": ");
        cli_json_number(stdout, 8 * occ / hits);
        printf(", \"value_bits_per_hit\": ");
        cli_json_number(stdout, 8 * val / hits);
        printf(", \"encoder_wedges_per_s\": ");
        cli_json_number(stdout, wps[0]);
        printf(", \"decoder_wedges_per_s\": ");
        cli_json_number(stdout, wps[1]);
        printf(", \"encoder_wedges_per_cpu_s\": ");
        cli_json_number(stdout, cps[0]);
        printf(", \"decoder_wedges_per_cpu_s\": ");
        cli_json_number(stdout, cps[1]);
        printf("}\n");
    } else {
        printf("codec          sparse, %s\n", ratio > 0 ? "per-wedge bound for a ratio" : "fixed bound");
        printf("wedges         %zu (%s), %.0f hits each on average\n", n,
               data ? data : "one simulated event", hits / (double)n);
        printf("ratio          %.3f (streams: occupancy %.3f, values %.3f bits per hit)\n", ratio_got,
               8 * occ / hits, 8 * val / hits);
        for (int k = 0; k < 2; k++)
            printf("%-14s %.1f wedges/s on %d thread(s) (%.1f per thread), %.1f MB/s of input; "
                   "%.1f wedges per CPU-second\n",
                   k ? "decoder" : "encoder", wps[k], T, wps[k] / T, wps[k] * (double)V * 2 / 1e6,
                   cps[k]);
    }
    rc = CLI_EXIT_OK;
done:
    for (int t = 0; t < T; t++) bcae_sparse_coder_free(coder[t]);
    free(coder);
    free(w);
    free(out);
    free(buf);
    free(len);
    return rc;
}
