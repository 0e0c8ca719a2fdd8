/* bcae simulate: write a dataset of simulated TPC wedges in the release layout. */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae simulate --out DIR [--events N] [--seed S] [OPTIONS]\n"
            "Simulate central Au+Au collisions with pile-up in the sPHENIX TPC and write\n"
            "the outer layer group as wedge files in the public release's layout:\n"
            "  DIR/outer/12-2_<sector>-<side>/<name>_<event>.npy   uint16 (192, 249, 16)\n"
            "  DIR/outer/train.txt, DIR/outer/test.txt            manifests\n"
            "24 wedges per event (12 sectors x 2 sides). Then print the sample's statistics.\n"
            "\n"
            "Options:\n"
            "  -o, --out DIR            output folder (required)\n"
            "  -n, --events N           number of events (default 1)\n"
            "  -s, --seed S             random seed (default 1); the same seed gives the\n"
            "                           same files whatever the thread count\n"
            "      --first-event K      number of the first event (default 0)\n"
            "      --test-fraction F    fraction of events listed in test.txt, taken from\n"
            "                           the end of the sequence (default 0.2)\n"
            "      --name NAME          run name in file names (default sim<seed>)\n"
            "      --set KNOB=VALUE     change a physics knob (repeatable); --list-knobs\n"
            "      --list-knobs         print the knobs with their defaults and exit\n"
            "  -f, --force              overwrite an existing dataset in DIR\n"
            "  -t, --threads N          threads (default: BCAE_NUM_THREADS or all cores)\n"
            "  -q, --quiet              no progress on stderr\n"
            "  -h, --help               this help\n"
            "\n"
            "See docs/SIMULATOR.md for the physics.\n");
}

static int list_knobs(void)
{
    bcae_sim_config cfg;
    bcae_sim_config_default(&cfg);
    const char *name, *help;
    for (int i = 0; bcae_sim_knob_info(i, &name, &help); i++) {
        double v = 0;
        bcae_sim_config_get(&cfg, name, &v, NULL);
        printf("%-18s %10g  %s\n", name, v, help);
    }
    return CLI_EXIT_OK;
}

typedef struct stats {
    double sum, sum2, min, max;
    long wedges;
    uint64_t nonzero, saturated, voxels;
    unsigned min_nonzero;
    long tracks;
    uint64_t hist[9]; /* log2(ADC+1): [6, 6.5) ... [9.5, 10), then saturated */
} stats;

static void stats_add_event(stats *st, const uint16_t *wedges, const bcae_sim_event_info *info)
{
    for (int w = 0; w < BCAE_SIM_WEDGES_PER_EVENT; w++) {
        const uint16_t *v = wedges + (size_t)w * BCAE_WEDGE_VOXELS;
        uint64_t nz = 0, sat = 0;
        unsigned mn = 65535;
        for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) {
            if (v[i]) {
                nz++;
                if (v[i] < mn) mn = v[i];
                if (v[i] >= BCAE_ADC_MAX) sat++;
                int b = v[i] >= BCAE_ADC_MAX ? 8 : (int)(2.0 * (log2(v[i] + 1.0) - 6.0));
                st->hist[b < 0 ? 0 : b > 8 ? 8 : b]++;
            }
        }
        double occ = (double)nz / BCAE_WEDGE_VOXELS;
        st->sum += occ;
        st->sum2 += occ * occ;
        if (occ < st->min) st->min = occ;
        if (occ > st->max) st->max = occ;
        st->wedges++;
        st->nonzero += nz;
        st->saturated += sat;
        st->voxels += BCAE_WEDGE_VOXELS;
        if (nz && mn < st->min_nonzero) st->min_nonzero = mn;
    }
    st->tracks += info->primary_tracks + info->pileup_tracks;
}

static int write_manifest(const char *verb, const char *root, const char *name, char **lines,
                          long n)
{
    char *path = bcae_path_join(root, name);
    bcae_error err;
    bcae_atomic_file f;
    if (!path) {
        cli_error(verb, "out of memory");
        return -1;
    }
    if (bcae_atomic_open(&f, path, &err)) {
        free(path);
        cli_fail(verb, &err);
        return -1;
    }
    for (long i = 0; i < n; i++) fprintf(f.fp, "%s\n", lines[i]);
    free(path);
    if (bcae_atomic_commit(&f, &err)) {
        cli_fail(verb, &err);
        return -1;
    }
    return 0;
}

int verb_simulate(int argc, char **argv)
{
    const char *verb = "simulate";
    const char *out = NULL, *name = NULL;
    long events = 1, threads_opt = 0;
    uint64_t seed = 1, first = 0;
    double test_fraction = 0.2;
    int force = 0, quiet = 0;
    bcae_sim_config cfg;
    bcae_sim_config_default(&cfg);
    bcae_error err;

    enum { OPT_FIRST = 256, OPT_TEST_FRACTION, OPT_NAME, OPT_SET, OPT_LIST };
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},
        {"events", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'},
        {"first-event", required_argument, 0, OPT_FIRST},
        {"test-fraction", required_argument, 0, OPT_TEST_FRACTION},
        {"name", required_argument, 0, OPT_NAME},
        {"set", required_argument, 0, OPT_SET},
        {"list-knobs", no_argument, 0, OPT_LIST},
        {"force", no_argument, 0, 'f'},
        {"threads", required_argument, 0, 't'},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:n:s:ft:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'n':
            if (cli_parse_long(verb, "--events", optarg, 1, 10000000, &events)) return CLI_EXIT_USAGE;
            break;
        case 's':
            if (cli_parse_u64(verb, "--seed", optarg, &seed)) return CLI_EXIT_USAGE;
            break;
        case OPT_FIRST:
            if (cli_parse_u64(verb, "--first-event", optarg, &first)) return CLI_EXIT_USAGE;
            break;
        case OPT_TEST_FRACTION:
            if (cli_parse_double(verb, "--test-fraction", optarg, 0, 1, &test_fraction))
                return CLI_EXIT_USAGE;
            break;
        case OPT_NAME:
            if (!*optarg || strchr(optarg, '/'))
                return cli_usage_error(verb, "--name must be non-empty and contain no '/'");
            name = optarg;
            break;
        case OPT_SET: {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                return cli_usage_error(verb, "--set expects KNOB=VALUE, got '%s'", optarg);
            char key[64];
            size_t kl = (size_t)(eq - optarg);
            if (kl >= sizeof key) return cli_usage_error(verb, "unknown knob in '%s'", optarg);
            memcpy(key, optarg, kl);
            key[kl] = '\0';
            double v;
            if (cli_parse_double(verb, key, eq + 1, -1e300, 1e300, &v)) return CLI_EXIT_USAGE;
            if (bcae_sim_config_set(&cfg, key, v, &err)) {
                cli_fail(verb, &err);
                return CLI_EXIT_USAGE;
            }
            break;
        }
        case OPT_LIST: return list_knobs();
        case 'f': force = 1; break;
        case 't':
            if (cli_parse_long(verb, "--threads", optarg, 1, 4096, &threads_opt)) return CLI_EXIT_USAGE;
            break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(verb, "unexpected argument '%s'", argv[optind]);
    if (!out) return cli_usage_error(verb, "--out DIR is required");
    /* Event numbers are u64: the last one, first + events - 1, must not wrap
     * (it would silently simulate event 0 again). */
    if (first > UINT64_MAX - (uint64_t)(events - 1))
        return cli_usage_error(verb,
                               "--first-event %llu with --events %ld would go past the last "
                               "event number, %llu",
                               (unsigned long long)first, events, (unsigned long long)UINT64_MAX);
    int threads = cli_threads(verb, threads_opt);
    if (threads < 0) return CLI_EXIT_USAGE;

    char default_name[32];
    if (!name) {
        snprintf(default_name, sizeof default_name, "sim%llu", (unsigned long long)seed);
        name = default_name;
    }
    char *root = bcae_path_join(out, "outer");
    char *train_path = root ? bcae_path_join(root, "train.txt") : NULL;
    /* A test split asked for is never left empty, nor the training one. */
    long n_test = lround(test_fraction * (double)events);
    if (test_fraction > 0 && n_test == 0 && events >= 2) n_test = 1;
    if (test_fraction < 1 && n_test == events && events >= 2) n_test = events - 1;
    long n_train = events - n_test;
    char **lines = calloc((size_t)events * BCAE_SIM_WEDGES_PER_EVENT, sizeof *lines);
    uint16_t *wedges = malloc(sizeof(uint16_t) * BCAE_SIM_WEDGES_PER_EVENT * BCAE_WEDGE_VOXELS);
    bcae_simulator *sim = NULL;
    int rc = CLI_EXIT_FAIL;
    long nlines = 0;
    if (!root || !train_path || !lines || !wedges) {
        cli_error(verb, "out of memory");
        goto done;
    }
    struct stat sb;
    if (!force && stat(train_path, &sb) == 0) {
        cli_error(verb, "%s already holds a dataset; use --force to overwrite it", out);
        goto done;
    }
    if (bcae_simulator_create(&cfg, &sim, &err) || bcae_mkdir_p(root, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    for (int w = 0; w < BCAE_SIM_WEDGES_PER_EVENT; w++) {
        char sub[64];
        snprintf(sub, sizeof sub, "12-2_%d-%d", w / 2, w % 2);
        char *dir = bcae_path_join(root, sub);
        bcae_status s = dir ? bcae_mkdir_p(dir, &err) : BCAE_ERR_OUT_OF_MEMORY;
        free(dir);
        if (s) {
            cli_fail(verb, &err);
            goto done;
        }
    }

    stats st = {0};
    st.min = 1;
    st.min_nonzero = 65535;
    cli_progress prog;
    cli_progress_start(&prog, "simulate", "events", (uint64_t)events, quiet);
    double t0 = cli_now();
    for (long e = 0; e < events; e++) {
        uint64_t event = first + (uint64_t)e;
        bcae_sim_event_info info;
        if (bcae_simulator_run(sim, seed, event, wedges, threads, &info, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        stats_add_event(&st, wedges, &info);
        for (int w = 0; w < BCAE_SIM_WEDGES_PER_EVENT; w++) {
            char rel[256];
            snprintf(rel, sizeof rel, "12-2_%d-%d/%s_%06llu.npy", w / 2, w % 2, name,
                     (unsigned long long)event);
            char *path = bcae_path_join(root, rel);
            lines[nlines] = strdup(rel);
            if (!path || !lines[nlines]) {
                free(path);
                cli_error(verb, "out of memory");
                goto done;
            }
            nlines++;
            bcae_status s = bcae_wedge_save(path, wedges + (size_t)w * BCAE_WEDGE_VOXELS, &err);
            free(path);
            if (s) {
                cli_fail(verb, &err);
                goto done;
            }
        }
        char extra[64];
        snprintf(extra, sizeof extra, "occupancy %.2f%%", 100.0 * st.sum / (double)st.wedges);
        cli_progress_update(&prog, (uint64_t)e + 1, extra);
    }
    cli_progress_finish(&prog, (uint64_t)events);
    double elapsed = cli_now() - t0;

    long per = BCAE_SIM_WEDGES_PER_EVENT;
    if (write_manifest(verb, root, "train.txt", lines, n_train * per) ||
        write_manifest(verb, root, "test.txt", lines + n_train * per, n_test * per))
        goto done;

    double mean = st.sum / (double)st.wedges;
    double var = st.sum2 / (double)st.wedges - mean * mean;
    printf("dataset            %s (train %ld events, test %ld events)\n", root, n_train, n_test);
    printf("events             %ld (seed %llu, first event %llu)\n", events,
           (unsigned long long)seed, (unsigned long long)first);
    printf("wedges             %ld of (192, 249, 16) uint16\n", st.wedges);
    printf("charged tracks     %.0f per event (with pile-up)\n", (double)st.tracks / (double)events);
    printf("occupancy          mean %.4f  std %.4f  min %.4f  max %.4f\n", mean,
           var > 0 ? sqrt(var) : 0.0, st.min, st.max);
    printf("non-zero ADC       min %u (zero suppression below %d), saturated (1023) %.2f%%\n",
           st.nonzero ? st.min_nonzero : 0, BCAE_ZERO_SUPPRESSION,
           st.nonzero ? 100.0 * (double)st.saturated / (double)st.nonzero : 0.0);
    /* Share of non-zero voxels per half unit of log2(ADC+1) above 6. */
    printf("log2(ADC+1)       ");
    for (int b = 0; b < 9; b++) {
        double pct = st.nonzero ? 100.0 * (double)st.hist[b] / (double)st.nonzero : 0.0;
        if (b == 4) printf("\n                  ");
        if (b < 8)
            printf(" %.1f-%.1f: %.1f%%", 6 + 0.5 * b, 6.5 + 0.5 * b, pct);
        else
            printf(" saturated: %.1f%%\n", pct);
    }
    printf("time               %.2f s per event on %d threads (incl. writing)\n",
           elapsed / (double)events, cli_threads_effective(threads));
    rc = CLI_EXIT_OK;
done:
    if (lines)
        for (long i = 0; i < nlines; i++) free(lines[i]);
    free(lines);
    free(wedges);
    free(root);
    free(train_path);
    bcae_simulator_destroy(sim);
    return rc;
}
