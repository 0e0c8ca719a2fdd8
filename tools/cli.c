#include "cli.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The one piece of state the CLI keeps: the run's communicator (the
 * library takes it as an argument). */
static bcae_comm *run_comm;

const bcae_comm *cli_comm(void) { return run_comm; }
int cli_rank(void) { return run_comm ? run_comm->rank : 0; }
int cli_size(void) { return run_comm ? run_comm->size : 1; }

/* The launcher's variables that say this process is one rank of a job. */
static long launched_ranks(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return strtol(v, NULL, 10);
    }
    return getenv("PMIX_RANK") ? 2 : 0;
}

int cli_comm_start(int *argc, char ***argv)
{
    long n = launched_ranks();
    if (n <= 0) return 0; /* a plain run: no MPI at all */
    if (!bcae_comm_mpi_compiled()) {
        if (n > 1) {
            fprintf(stderr, "bcae: started as one of %ld ranks, but this bcae was built without "
                            "MPI: each rank would do the whole job (rebuild with -DBCAE_MPI=ON)\n",
                    n);
            return CLI_EXIT_USAGE;
        }
        return 0;
    }
    bcae_error err;
    if (bcae_comm_mpi_init(argc, argv, &run_comm, &err)) {
        fprintf(stderr, "bcae: %s\n", err.message);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

int cli_comm_end(int rc)
{
    int everyone = rc == CLI_EXIT_FAIL_ALL;
    if (everyone) rc = CLI_EXIT_FAIL;
    if (!run_comm) return rc;
    fflush(stdout);
    fflush(stderr);
    if (rc == CLI_EXIT_FAIL && !everyone && run_comm->size > 1)
        run_comm->ops->abort(run_comm, rc);
    bcae_comm_free(run_comm);
    run_comm = NULL;
    return rc;
}

int cli_allreduce_sum(const char *verb, double *x, size_t n)
{
    bcae_error err;
    if (cli_size() > 1 && run_comm->ops->allreduce_sum_f64(run_comm, x, n, &err))
        return cli_fail(verb, &err);
    return 0;
}

int cli_allreduce_max(const char *verb, double *x, size_t n)
{
    bcae_error err;
    if (cli_size() > 1 && run_comm->ops->allreduce_max_f64(run_comm, x, n, &err))
        return cli_fail(verb, &err);
    return 0;
}

int cli_any_failed(const char *verb, int failed)
{
    double x = failed ? 1.0 : 0.0;
    if (cli_allreduce_max(verb, &x, 1)) return 1;
    return x > 0;
}

void cli_share_plan(cli_share *s, size_t n, size_t align, size_t max_per)
{
    size_t ranks = (size_t)cli_size();
    if (align < 1) align = 1;
    size_t even = (n + ranks - 1) / ranks;
    even = (even + align - 1) / align * align;
    size_t cap = max_per / align * align;
    if (cap < align) cap = align;
    s->n = n;
    s->per = even < cap ? even : cap;
    if (s->per == 0) s->per = align;
    s->rounds = (n + s->per * ranks - 1) / (s->per * ranks);
}

void cli_share_round(const cli_share *s, size_t k, size_t *lo, size_t *hi)
{
    size_t a = (k * (size_t)cli_size() + (size_t)cli_rank()) * s->per;
    size_t b = a + s->per;
    *lo = a < s->n ? a : s->n;
    *hi = b < s->n ? b : s->n;
}

size_t cli_share_count(const cli_share *s)
{
    size_t c = 0, lo, hi;
    for (size_t k = 0; k < s->rounds; k++) {
        cli_share_round(s, k, &lo, &hi);
        c += hi - lo;
    }
    return c;
}

void cli_error(const char *verb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cli_size() > 1)
        fprintf(stderr, "bcae %s (rank %d of %d): ", verb, cli_rank(), cli_size());
    else
        fprintf(stderr, "bcae %s: ", verb);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_fail(const char *verb, const bcae_error *err)
{
    if (err->message[0])
        cli_error(verb, "%s", err->message);
    else
        cli_error(verb, "%s", bcae_strerror(err->status));
    return CLI_EXIT_FAIL;
}

int cli_usage_error(const char *verb, const char *fmt, ...)
{
    /* Every rank parses the same arguments and finds the same mistake:
     * rank 0 says it for all. */
    if (cli_rank() != 0) return CLI_EXIT_USAGE;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bcae %s: ", verb);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'bcae %s --help'.\n", verb);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_parse_long(const char *verb, const char *opt, const char *s, long min, long max,
                   long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max) {
        cli_error(verb, "%s expects a whole number in [%ld, %ld], got '%s'", opt, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_u64(const char *verb, const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s[0] == '-') {
        cli_error(verb, "%s expects a non-negative whole number, got '%s'", opt, s);
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end != '\0') {
        cli_error(verb, "%s expects a non-negative whole number, got '%s'", opt, s);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_double(const char *verb, const char *opt, const char *s, double min,
                     double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= min && v <= max)) {
        cli_error(verb, "%s expects a number in [%g, %g], got '%s'", opt, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_threads(const char *verb, long threads_opt)
{
    if (threads_opt > 0) return (int)threads_opt;
    const char *env = getenv("BCAE_NUM_THREADS");
    if (env && *env) {
        long v;
        if (cli_parse_long(verb, "BCAE_NUM_THREADS", env, 1, 4096, &v) != 0) return -1;
        return (int)v;
    }
    return 0;
}

int cli_threads_effective(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void format_duration(char *buf, size_t n, double s)
{
    if (!(s >= 0) || s > 359999) {
        snprintf(buf, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

void cli_progress_start(cli_progress *p, const char *label, const char *unit, uint64_t total,
                        int quiet)
{
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->base = 0;
    p->start = cli_now();
    p->last_print = 0;
    p->tty = isatty(fileno(stderr));
    p->quiet = quiet;
}

static void progress_print(cli_progress *p, uint64_t done, const char *extra, int final)
{
    double now = cli_now(), el = now - p->start;
    double rate = el > 0 && done >= p->base ? (double)(done - p->base) / el : 0;
    double eta = rate > 0 && p->total >= done ? (double)(p->total - done) / rate : -1;
    char tel[32], teta[32];
    format_duration(tel, sizeof tel, el);
    format_duration(teta, sizeof teta, eta);
    double frac = p->total ? (double)done / (double)p->total : 1.0;
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30 + 0.5);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r%s [%s] %llu/%llu %s  %.2f %s/s  %s<%s%s%s\033[K", p->label, bar,
                (unsigned long long)done, (unsigned long long)p->total, p->unit, rate, p->unit,
                tel, teta, extra ? "  " : "", extra ? extra : "");
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: %llu/%llu %s (%.0f%%), %.2f %s/s, elapsed %s, eta %s%s%s\n",
                p->label, (unsigned long long)done, (unsigned long long)p->total, p->unit,
                100 * frac, rate, p->unit, tel, teta, extra ? ", " : "", extra ? extra : "");
    }
    fflush(stderr);
    p->last_print = now;
}

void cli_progress_update(cli_progress *p, uint64_t done, const char *extra)
{
    /* The final state is cli_progress_finish's to print. */
    if (p->quiet || done >= p->total) return;
    double now = cli_now();
    double every = p->tty ? 0.2 : 5.0;
    if (now - p->last_print < every) return;
    progress_print(p, done, extra, 0);
}

void cli_progress_finish(cli_progress *p, uint64_t done)
{
    if (p->quiet) return;
    progress_print(p, done, NULL, 1);
}

void cli_json_number(FILE *fp, double v)
{
    if (isfinite(v))
        fprintf(fp, "%.17g", v);
    else
        fputs("null", fp);
}

const char *cli_default_model(const char *verb, char *buf, size_t size)
{
    bcae_error err;
    if (bcae_default_model_path(buf, size, &err) != BCAE_OK) {
        cli_error(verb, "no --model given and %s", err.message);
        return NULL;
    }
    return buf;
}

int cli_parse_precision(const char *verb, const char *arg, bcae_precision *out)
{
    bcae_error err;
    if (bcae_precision_parse(arg, out, &err)) return cli_usage_error(verb, "--precision: %s", err.message);
    return 0;
}

int cli_parse_device(const char *verb, const char *arg, bcae_device *out)
{
    bcae_error err;
    if (bcae_device_parse(arg, out, &err))
        return cli_usage_error(verb, "--device: %s", err.message);
    return 0;
}

int cli_device_resolve(const char *verb, bcae_device dev, bcae_device *out)
{
    *out = dev;
    if (dev == BCAE_DEVICE_CPU) return 0;
    bcae_error err;
    if (bcae_device_available(BCAE_DEVICE_CUDA, &err) == BCAE_OK) {
        *out = BCAE_DEVICE_CUDA;
        return 0;
    }
    if (dev == BCAE_DEVICE_CUDA) return cli_fail(verb, &err);
    /* AUTO: a CPU-only build has nothing to report. */
    if (bcae_device_compiled(BCAE_DEVICE_CUDA))
        cli_error(verb, "no usable CUDA device (%s); running on the CPU", err.message);
    *out = BCAE_DEVICE_CPU;
    return 0;
}

void cli_codec_args_init(cli_codec_args *a)
{
    *a = (cli_codec_args){.batch = 4, .precision = BCAE_PRECISION_FP32,
                          .device = BCAE_DEVICE_AUTO};
}

int cli_codec_option(const char *verb, int c, const char *arg, cli_codec_args *a)
{
    switch (c) {
    case 'm': a->model_path = arg; return 1;
    case 'b': return cli_parse_long(verb, "--batch", arg, 1, 64, &a->batch) ? -1 : 1;
    case 't': return cli_parse_long(verb, "--threads", arg, 1, 4096, &a->threads_opt) ? -1 : 1;
    case CLI_OPT_DEVICE: return cli_parse_device(verb, arg, &a->device) ? -1 : 1;
    case 'q': a->quiet = 1; return 1;
    case 'p': return cli_parse_precision(verb, arg, &a->precision) ? -1 : 1;
    case CLI_OPT_HALF: a->precision = BCAE_PRECISION_BF16; return 1;
    case CLI_OPT_DECODER_PRECISION:
        if (cli_parse_precision(verb, arg, &a->decoder_precision)) return -1;
        if (a->decoder_precision == BCAE_PRECISION_INT8) {
            cli_usage_error(verb, "--decoder-precision expects fp32 or bf16");
            return -1;
        }
        return 1;
    default: return 0;
    }
}

int cli_sparse_option(const char *verb, int c, const char *arg, cli_sparse_args *a)
{
    switch (c) {
    case CLI_OPT_CODEC:
        if (!strcmp(arg, "sparse")) a->sparse = 1;
        else if (!strcmp(arg, "bcae")) a->sparse = 0;
        else {
            cli_usage_error(verb, "--codec must be bcae or sparse, not '%s'", arg);
            return -1;
        }
        return 1;
    case CLI_OPT_MAX_ERROR:
        if (cli_parse_double(verb, "--max-error", arg, 0, BCAE_SPARSE_MAX_ERROR, &a->max_error))
            return -1;
        a->have_error = 1;
        return 1;
    case CLI_OPT_RATIO: return cli_parse_double(verb, "--ratio", arg, 1, 1e9, &a->ratio) ? -1 : 1;
    default: return 0;
    }
}

int cli_sparse_check(const char *verb, const cli_sparse_args *a)
{
    if (!a->sparse && (a->have_error || a->ratio > 0))
        return cli_usage_error(verb, "--max-error and --ratio are options of --codec sparse");
    if (a->have_error && a->ratio > 0)
        return cli_usage_error(verb, "--max-error and --ratio exclude each other");
    return 0;
}

int cli_codec_setup(const char *verb, cli_codec_args *a, bcae_codec_options *opt)
{
    if (!a->model_path &&
        !(a->model_path = cli_default_model(verb, a->default_model, sizeof a->default_model)))
        return CLI_EXIT_FAIL;
    int threads = cli_threads(verb, a->threads_opt);
    if (threads < 0) return CLI_EXIT_USAGE;
    if (cli_device_resolve(verb, a->device, &a->device)) return CLI_EXIT_FAIL;
    *opt = (bcae_codec_options){.batch = (int)a->batch, .threads = threads,
                                .precision = a->precision, .device = a->device,
                                .decoder_precision = a->decoder_precision};
    return 0;
}
