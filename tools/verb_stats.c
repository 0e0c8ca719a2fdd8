/* bcae stats: the statistics that compare simulated with real wedges
 * (docs/SIMULATOR.md "Statistics"), and the distance between two sets. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae stats INPUT... [--split NAME] [--json] [--compare OTHER] [--check]\n"
            "The statistics of a set of wedges that say whether it looks like detector data:\n"
            "occupancy, the log2(ADC+1) spectrum and its histogram, saturation, runs along z\n"
            "and across the azimuth, isolated voxels, layer-to-layer continuity, and the\n"
            "radial trend of the occupancy. docs/SIMULATOR.md defines each one exactly.\n"
            "\n"
            "INPUT is wedge .npy files, dataset folders (the wedges their --split manifests\n"
            "list) or plain folders (every *.npy below them).\n"
            "\n"
            "Options:\n"
            "      --split NAME    manifest of a dataset folder: train, test, or all (default:\n"
            "                      train.txt and test.txt, those that exist and list files)\n"
            "      --compare OTHER another set: a JSON file of statistics, as --json writes\n"
            "                      them (e.g. docs/sphenix_outer_stats.json, real sPHENIX\n"
            "                      data), or wedges given as INPUT is. Prints both side by\n"
            "                      side with the relative difference of each scalar, whether\n"
            "                      it is within tolerance (10 %%, or 0.002 absolute for a\n"
            "                      fraction below 0.02), and the histograms' total-variation\n"
            "                      distance (tolerance 0.05)\n"
            "      --check         with --compare: exit 1 unless everything is within tolerance\n"
            "      --json          print one JSON object: the keys of the scalars, wedges,\n"
            "                      log_adc_hist (16 fractions) and below_hist; with --compare,\n"
            "                      {\"stats\", \"reference\", \"distance\"}\n"
            "  -q, --quiet         no progress on stderr\n"
            "  -h, --help          this help\n"
            "\n"
            "Exit status: 0 success, 1 failure (unreadable input, or --check outside\n"
            "tolerance), 2 bad usage.\n");
}

/* ---- the wedges named by the arguments ------------------------------------ */

typedef struct paths {
    char **v;
    size_t n, cap;
} paths;

static int paths_push(paths *p, char *s)
{
    if (!s) return -1;
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        char **v = realloc(p->v, cap * sizeof *v);
        if (!v) {
            free(s);
            return -1;
        }
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = s;
    return 0;
}

static void paths_free(paths *p)
{
    for (size_t i = 0; i < p->n; i++) free(p->v[i]);
    free(p->v);
    memset(p, 0, sizeof *p);
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (!s) return NULL;
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

/* A manifest that exists and lists something: `simulate --test-fraction 0`
 * (or one event) writes an empty test.txt, which --split all passes over. */
static int nonempty_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && sb.st_size > 0;
}

static int has_manifest(const char *dir, const char *split)
{
    char name[64], *direct, *nested;
    snprintf(name, sizeof name, "%s.txt", split);
    char rel[80];
    snprintf(rel, sizeof rel, "outer/%s", name);
    direct = join(dir, name);
    nested = join(dir, rel);
    int found = (direct && nonempty_file(direct)) || (nested && nonempty_file(nested));
    free(direct);
    free(nested);
    return found;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.npy below dir, in name order at each level so the order (and so
 * nothing at all) depends on the file system. */
static int collect_tree(const char *verb, const char *dir, paths *out, int depth)
{
    if (depth > 32) {
        cli_error(verb, "%s: folders nested too deep", dir);
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        cli_error(verb, "%s: %s", dir, strerror(errno));
        return -1;
    }
    paths names = {0};
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (paths_push(&names, strdup(e->d_name))) {
            rc = -1;
            cli_error(verb, "out of memory");
            break;
        }
    }
    closedir(d);
    if (names.n) qsort(names.v, names.n, sizeof *names.v, by_name);
    for (size_t i = 0; !rc && i < names.n; i++) {
        char *p = join(dir, names.v[i]);
        struct stat sb;
        if (!p) {
            cli_error(verb, "out of memory");
            rc = -1;
        } else if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            rc = collect_tree(verb, p, out, depth + 1);
            free(p);
        } else {
            size_t len = strlen(p);
            if (len > 4 && !strcmp(p + len - 4, ".npy")) {
                if (paths_push(out, p)) {
                    cli_error(verb, "out of memory");
                    rc = -1;
                }
            } else {
                free(p);
            }
        }
    }
    paths_free(&names);
    return rc;
}

static int collect_split(const char *verb, const char *dir, const char *split, paths *out)
{
    bcae_dataset *ds;
    bcae_error err;
    if (bcae_dataset_open(dir, split, &ds, &err)) return cli_fail(verb, &err), -1;
    int rc = 0;
    for (size_t i = 0; i < bcae_dataset_size(ds) && !rc; i++)
        if (paths_push(out, join(bcae_dataset_root(ds), bcae_dataset_relpath(ds, i)))) {
            cli_error(verb, "out of memory");
            rc = -1;
        }
    bcae_dataset_close(ds);
    return rc;
}

static int collect(const char *verb, char **args, int nargs, const char *split, paths *out)
{
    for (int a = 0; a < nargs; a++) {
        struct stat sb;
        if (stat(args[a], &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            if (paths_push(out, strdup(args[a]))) return cli_error(verb, "out of memory"), -1;
            continue;
        }
        if (!strcmp(split, "all")) {
            int any = 0;
            const char *splits[2] = {"train", "test"};
            for (int s = 0; s < 2; s++)
                if (has_manifest(args[a], splits[s])) {
                    any = 1;
                    if (collect_split(verb, args[a], splits[s], out)) return -1;
                }
            if (!any && collect_tree(verb, args[a], out, 0)) return -1;
        } else if (collect_split(verb, args[a], split, out)) {
            return -1;
        }
    }
    return 0;
}

static int compute(const char *verb, const paths *in, int quiet, const char *label,
                   bcae_stats *out)
{
    if (!in->n) {
        cli_error(verb, "%s: no wedges", label);
        return -1;
    }
    bcae_stats_acc *acc = malloc(sizeof *acc);
    uint16_t *w = malloc(BCAE_WEDGE_VOXELS * sizeof *w);
    bcae_error err;
    int rc = -1;
    if (!acc || !w) {
        cli_error(verb, "out of memory");
        goto done;
    }
    bcae_stats_init(acc);
    cli_progress prog;
    cli_progress_start(&prog, label, "wedges", in->n, quiet);
    for (size_t i = 0; i < in->n; i++) {
        if (bcae_wedge_load(in->v[i], w, &err) || bcae_stats_add(acc, w, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        cli_progress_update(&prog, i + 1, NULL);
    }
    cli_progress_finish(&prog, in->n);
    if (bcae_stats_finish(acc, out, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    rc = 0;
done:
    free(acc);
    free(w);
    return rc;
}

/* ---- statistics as JSON ----------------------------------------------------- */

/* A reader for the flat objects --json writes (and hand-written references
 * like docs/sphenix_outer_stats.json): keys with numbers, null, strings
 * (ignored, for notes), arrays of numbers; nested objects are skipped. */
typedef struct json_in {
    const char *start, *s, *end;
    char msg[160];
} json_in;

static void ws(json_in *j)
{
    while (j->s < j->end && isspace((unsigned char)*j->s)) j->s++;
}

static int jfail(json_in *j, const char *what)
{
    if (!j->msg[0])
        snprintf(j->msg, sizeof j->msg, "%s at byte %ld", what, (long)(j->s - j->start));
    return -1;
}

static int jstring(json_in *j, char *buf, size_t cap)
{
    ws(j);
    if (j->s >= j->end || *j->s != '"') return jfail(j, "expected a string");
    j->s++;
    size_t n = 0;
    while (j->s < j->end && *j->s != '"') {
        char c = *j->s++;
        if (c == '\\') {
            if (j->s >= j->end) break;
            c = *j->s++;
            if (c == 'u') { /* keep it simple: a \uXXXX becomes '?' */
                if (j->end - j->s < 4) return jfail(j, "bad escape");
                j->s += 4;
                c = '?';
            }
        }
        if (buf && n + 1 < cap) buf[n++] = c;
    }
    if (j->s >= j->end) return jfail(j, "unterminated string");
    j->s++;
    if (buf) buf[n] = '\0';
    return 0;
}

static int jnumber(json_in *j, double *v)
{
    ws(j);
    if (j->end - j->s >= 4 && !strncmp(j->s, "null", 4)) {
        j->s += 4;
        *v = NAN;
        return 0;
    }
    char *e;
    errno = 0;
    *v = strtod(j->s, &e);
    if (e == j->s || errno == ERANGE || !isfinite(*v)) return jfail(j, "expected a number");
    j->s = e;
    return 0;
}

static int jskip(json_in *j, int depth)
{
    ws(j);
    if (depth > 16) return jfail(j, "nested too deep");
    if (j->s >= j->end) return jfail(j, "unexpected end");
    char c = *j->s;
    if (c == '"') return jstring(j, NULL, 0);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->s++;
        ws(j);
        if (j->s < j->end && *j->s == close) return j->s++, 0;
        for (;;) {
            if (c == '{') {
                if (jstring(j, NULL, 0)) return -1;
                ws(j);
                if (j->s >= j->end || *j->s != ':') return jfail(j, "expected ':'");
                j->s++;
            }
            if (jskip(j, depth + 1)) return -1;
            ws(j);
            if (j->s < j->end && *j->s == ',') {
                j->s++;
                continue;
            }
            if (j->s < j->end && *j->s == close) return j->s++, 0;
            return jfail(j, "expected ',' or a closing bracket");
        }
    }
    for (const char *lit = "true\0false"; *lit; lit += strlen(lit) + 1)
        if ((size_t)(j->end - j->s) >= strlen(lit) && !strncmp(j->s, lit, strlen(lit)))
            return j->s += strlen(lit), 0;
    double v;
    return jnumber(j, &v);
}

/* Reads statistics; a scalar the file lacks stays NaN (unknown) but the
 * histogram must be there. */
static int read_stats_json(const char *verb, const char *path, bcae_stats *out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        cli_error(verb, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = malloc(1 << 20);
    size_t len = text ? fread(text, 1, (1 << 20) - 1, fp) : 0;
    fclose(fp);
    if (!text) return cli_error(verb, "out of memory"), -1;
    text[len] = '\0';
    json_in j = {text, text, text + len, {0}};
    memset(out, 0, sizeof *out);
    for (int i = 0; i < BCAE_STATS_SCALARS; i++) out->scalar[i] = NAN;
    int have_hist = 0, rc = -1;
    ws(&j);
    if (j.s >= j.end || *j.s != '{') {
        jfail(&j, "expected a JSON object");
        goto done;
    }
    j.s++;
    ws(&j);
    if (j.s < j.end && *j.s == '}') {
        j.s++;
        goto end;
    }
    for (;;) {
        char key[64];
        if (jstring(&j, key, sizeof key)) goto done;
        ws(&j);
        if (j.s >= j.end || *j.s != ':') {
            jfail(&j, "expected ':'");
            goto done;
        }
        j.s++;
        ws(&j);
        int idx = -1;
        const char *name;
        for (int i = 0; bcae_stats_scalar_info(i, &name, NULL, NULL); i++)
            if (!strcmp(key, name)) idx = i;
        if (idx >= 0) {
            if (jnumber(&j, &out->scalar[idx])) goto done;
        } else if (!strcmp(key, "wedges")) {
            double v;
            if (jnumber(&j, &v)) goto done;
            out->wedges = v >= 0 && v < 1e18 ? (uint64_t)v : 0;
        } else if (!strcmp(key, "below_hist")) {
            if (jnumber(&j, &out->below_hist)) goto done;
            if (isnan(out->below_hist)) out->below_hist = 0;
        } else if (!strcmp(key, "log_adc_hist")) {
            if (j.s >= j.end || *j.s != '[') {
                jfail(&j, "log_adc_hist: expected an array");
                goto done;
            }
            j.s++;
            for (int b = 0; b < BCAE_STATS_HIST_BINS; b++) {
                if (b) {
                    ws(&j);
                    if (j.s >= j.end || *j.s != ',') {
                        jfail(&j, "log_adc_hist: expected 16 numbers");
                        goto done;
                    }
                    j.s++;
                }
                if (jnumber(&j, &out->hist[b]) || !(out->hist[b] >= 0 && out->hist[b] <= 1)) {
                    jfail(&j, "log_adc_hist: expected fractions in [0, 1]");
                    goto done;
                }
            }
            ws(&j);
            if (j.s >= j.end || *j.s != ']') {
                jfail(&j, "log_adc_hist: expected 16 numbers");
                goto done;
            }
            j.s++;
            have_hist = 1;
        } else if (jskip(&j, 0)) {
            goto done;
        }
        ws(&j);
        if (j.s < j.end && *j.s == ',') {
            j.s++;
            continue;
        }
        if (j.s < j.end && *j.s == '}') {
            j.s++;
            break;
        }
        jfail(&j, "expected ',' or '}'");
        goto done;
    }
end:
    ws(&j);
    if (j.s != j.end) {
        jfail(&j, "text after the object");
        goto done;
    }
    if (!have_hist) {
        cli_error(verb, "%s: no log_adc_hist (16 fractions) in the statistics", path);
        free(text);
        return -1;
    }
    rc = 0;
done:
    if (rc)
        cli_error(verb, "%s: not a statistics file: %s", path, j.msg[0] ? j.msg : "malformed JSON");
    free(text);
    return rc;
}

static void json_stats(const bcae_stats *st)
{
    printf("{\"wedges\": %llu", (unsigned long long)st->wedges);
    const char *key;
    for (int i = 0; bcae_stats_scalar_info(i, &key, NULL, NULL); i++) {
        printf(", \"%s\": ", key);
        cli_json_number(stdout, st->scalar[i]);
    }
    printf(", \"log_adc_hist\": [");
    for (int b = 0; b < BCAE_STATS_HIST_BINS; b++) {
        if (b) printf(", ");
        cli_json_number(stdout, st->hist[b]);
    }
    printf("], \"below_hist\": ");
    cli_json_number(stdout, st->below_hist);
    printf("}");
}

static int all_within(const bcae_stats_distance *d)
{
    for (int i = 0; i < BCAE_STATS_SCALARS; i++)
        if (d->within[i] == 0) return 0;
    return d->tvd_within;
}

static void json_compare(const bcae_stats *a, const bcae_stats *ref, const bcae_stats_distance *d)
{
    printf("{\"stats\": ");
    json_stats(a);
    printf(", \"reference\": ");
    json_stats(ref);
    printf(", \"distance\": {");
    const char *key;
    for (int i = 0; bcae_stats_scalar_info(i, &key, NULL, NULL); i++) {
        printf("%s\"%s\": {\"rel\": ", i ? ", " : "", key);
        cli_json_number(stdout, d->rel[i]);
        printf(", \"within\": %s}", d->within[i] < 0 ? "null" : d->within[i] ? "true" : "false");
    }
    printf(", \"tvd\": ");
    cli_json_number(stdout, d->tvd);
    printf(", \"tvd_within\": %s, \"all_within\": %s}}\n", d->tvd_within ? "true" : "false",
           all_within(d) ? "true" : "false");
}

/* ---- text ------------------------------------------------------------------- */

static void fmt(char *buf, size_t n, double v)
{
    if (isnan(v))
        snprintf(buf, n, "n/a");
    else
        snprintf(buf, n, "%.4f", v);
}

static void text(const bcae_stats *a, const bcae_stats *ref, const bcae_stats_distance *d,
                 const char *name, const char *ref_name)
{
    char x[32], r[32];
    printf("wedges    %llu (%s)\n", (unsigned long long)a->wedges, name);
    if (ref)
        printf("reference %llu%s (%s)\n", (unsigned long long)ref->wedges,
               ref->wedges ? "" : " (not stated)", ref_name);
    printf("\n%-24s %10s", "statistic", "value");
    if (ref) printf(" %10s %9s  %s", "reference", "rel.diff", "within");
    printf("\n");
    const char *key;
    for (int i = 0; bcae_stats_scalar_info(i, &key, NULL, NULL); i++) {
        fmt(x, sizeof x, a->scalar[i]);
        printf("%-24s %10s", key, x);
        if (ref) {
            fmt(r, sizeof r, ref->scalar[i]);
            if (isnan(d->rel[i]))
                printf(" %10s %9s  %s", r, "", "-");
            else
                printf(" %10s %+8.1f%%  %s", r, 100.0 * d->rel[i], d->within[i] ? "yes" : "NO");
        }
        printf("\n");
    }
    printf("\nlog2(ADC+1) of non-zero voxels, fractions per bin\n%-12s %10s", "bin", "value");
    if (ref) printf(" %10s", "reference");
    printf("\n");
    for (int b = 0; b < BCAE_STATS_HIST_BINS; b++) {
        char bin[24];
        snprintf(bin, sizeof bin, "%.2f-%.2f", BCAE_STATS_HIST_LO + b * BCAE_STATS_HIST_WIDTH,
                 BCAE_STATS_HIST_LO + (b + 1) * BCAE_STATS_HIST_WIDTH);
        fmt(x, sizeof x, a->hist[b]);
        printf("%-12s %10s", bin, x);
        if (ref) {
            fmt(r, sizeof r, ref->hist[b]);
            printf(" %10s", r);
        }
        printf("\n");
    }
    if (a->below_hist > 0 || (ref && ref->below_hist > 0)) {
        fmt(x, sizeof x, a->below_hist);
        printf("%-12s %10s", "below 6.00", x);
        if (ref) {
            fmt(r, sizeof r, ref->below_hist);
            printf(" %10s", r);
        }
        printf("\n");
    }
    if (ref) {
        int n = 0, known = 0;
        for (int i = 0; i < BCAE_STATS_SCALARS; i++) {
            n += d->within[i] == 1;
            known += d->within[i] >= 0;
        }
        printf("\nhistogram total-variation distance %.4f (tolerance %.2f): %s\n", d->tvd,
               BCAE_STATS_TVD_TOLERANCE, d->tvd_within ? "within" : "NOT within");
        printf("scalars within tolerance: %d of %d%s\n", n, known,
               all_within(d) ? "; everything within tolerance" : "");
    }
}

int verb_stats(int argc, char **argv)
{
    const char *verb = "stats";
    const char *split = "all", *compare = NULL;
    int json = 0, quiet = 0, check = 0;
    enum { OPT_SPLIT = 256, OPT_JSON, OPT_COMPARE, OPT_CHECK };
    static const struct option opts[] = {
        {"split", required_argument, 0, OPT_SPLIT}, {"json", no_argument, 0, OPT_JSON},
        {"compare", required_argument, 0, OPT_COMPARE}, {"check", no_argument, 0, OPT_CHECK},
        {"quiet", no_argument, 0, 'q'},            {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
        switch (c) {
        case OPT_SPLIT:
            if (!*optarg || strchr(optarg, '/'))
                return cli_usage_error(verb, "--split must be a plain name (train, test, all)");
            split = optarg;
            break;
        case OPT_JSON: json = 1; break;
        case OPT_COMPARE: compare = optarg; break;
        case OPT_CHECK: check = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error(verb, "no input wedges or folder");
    if (check && !compare) return cli_usage_error(verb, "--check needs --compare");

    int rc = CLI_EXIT_FAIL;
    paths in = {0}, other = {0};
    bcae_stats st, ref;
    if (collect(verb, argv + optind, argc - optind, split, &in) ||
        compute(verb, &in, quiet, "stats", &st))
        goto done;
    if (compare) {
        size_t len = strlen(compare);
        int is_json = len > 5 && !strcmp(compare + len - 5, ".json");
        if (is_json) {
            if (read_stats_json(verb, compare, &ref)) goto done;
        } else {
            char *args[1] = {(char *)compare};
            if (collect(verb, args, 1, split, &other) ||
                compute(verb, &other, quiet, "reference", &ref))
                goto done;
        }
    }
    bcae_stats_distance d;
    if (compare) bcae_stats_compare(&st, &ref, &d);
    if (json) {
        if (compare) {
            json_compare(&st, &ref, &d);
        } else {
            json_stats(&st);
            printf("\n");
        }
    } else {
        text(&st, compare ? &ref : NULL, compare ? &d : NULL,
             argc - optind == 1 ? argv[optind] : "several inputs", compare);
    }
    rc = (check && !all_within(&d)) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
done:
    paths_free(&in);
    paths_free(&other);
    return rc;
}
