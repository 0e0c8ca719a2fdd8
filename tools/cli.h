/* Shared pieces of the `bcae` command-line verbs. */
#ifndef BCAE_TOOLS_CLI_H
#define BCAE_TOOLS_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "bcae.h"

/* Every verb: argv[0] is the verb's name. Returns the process exit code. */
typedef int (*bcae_verb_fn)(int argc, char **argv);

int verb_simulate(int argc, char **argv);
int verb_inspect(int argc, char **argv);
int verb_metrics(int argc, char **argv);
int verb_plot(int argc, char **argv);
int verb_train(int argc, char **argv);
int verb_forward(int argc, char **argv);
int verb_eval(int argc, char **argv);
int verb_threshold(int argc, char **argv);
int verb_compress(int argc, char **argv);
int verb_decompress(int argc, char **argv);
int verb_repair(int argc, char **argv);
int verb_bench(int argc, char **argv);
int verb_bench_sparse(int argc, char **argv);
int verb_stats(int argc, char **argv);

/* The communicator of this run (docs/SCALING.md): NULL when bcae runs as
 * one process (not under mpirun, or a build without MPI); main sets it up
 * before the verb and ends it after. Verbs that run on several ranks
 * (train, compress, decompress, eval) pass it to the library and print
 * results on rank 0 only. */
const bcae_comm *cli_comm(void);
int cli_rank(void);
int cli_size(void);
/* main: joins the MPI job if this process is a rank of one (with MPI
 * built in); returns 0, or an exit code after printing why not. */
int cli_comm_start(int *argc, char ***argv);
/* main: after the verb; returns the exit status. A failure (CLI_EXIT_FAIL)
 * on one rank of several ends them all: the others may be waiting for it
 * in a collective. */
int cli_comm_end(int rc);

/* Element-wise sums / maxima of x over the ranks (nothing on one process).
 * Returns 0, or CLI_EXIT_FAIL after printing why. */
int cli_allreduce_sum(const char *verb, double *x, size_t n);
int cli_allreduce_max(const char *verb, double *x, size_t n);
/* Collective: whether any rank failed (1) or none (0); `failed` is this
 * rank's. One process: failed. */
int cli_any_failed(const char *verb, int failed);
/* Splits n items over the ranks in rounds: round k gives each rank a
 * contiguous run of at most `per` items (a multiple of `align`), in rank
 * order, so that the items stay in their order across ranks and rounds.
 * per is chosen so that one round covers everything when that needs at most
 * max_per items a rank. */
typedef struct cli_share {
    size_t n, per, rounds;
} cli_share;
void cli_share_plan(cli_share *s, size_t n, size_t align, size_t max_per);
/* This rank's items [*lo, *hi) of round k (empty: lo == hi). */
void cli_share_round(const cli_share *s, size_t k, size_t *lo, size_t *hi);
/* This rank's items over all rounds. */
size_t cli_share_count(const cli_share *s);

/* Exit codes: 0 success, 1 failure of the work, 2 bad usage. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };
/* A verb's return only: a failure every rank saw and returns, so the ranks
 * can end normally (exit status 1) instead of being aborted. */
enum { CLI_EXIT_FAIL_ALL = 3 };

/* Prints "bcae VERB: message" to stderr. */
void cli_error(const char *verb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prints a library error with its detail and returns CLI_EXIT_FAIL. */
int cli_fail(const char *verb, const bcae_error *err);
/* "bcae VERB: ...; try 'bcae VERB --help'" and CLI_EXIT_USAGE. */
int cli_usage_error(const char *verb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Strict number parsing of an option's value: whole string, in range. */
int cli_parse_long(const char *verb, const char *opt, const char *s, long min, long max,
                   long *out);
int cli_parse_u64(const char *verb, const char *opt, const char *s, uint64_t *out);
int cli_parse_double(const char *verb, const char *opt, const char *s, double min,
                     double max, double *out);

/* --precision P / --half: the encoder's arithmetic. Returns 0, or prints a
 * usage error and returns CLI_EXIT_USAGE. */
int cli_parse_precision(const char *verb, const char *arg, bcae_precision *out);
/* The help lines for those two options. */
#define CLI_PRECISION_HELP                                                                  \
    "  -p, --precision P   arithmetic of the encoder: fp32 (default); bf16 (bf16 weights\n"  \
    "                      and activations, fp32 accumulation: AVX512-BF16); int8 (s8\n"   \
    "                      weights and activations, s32 accumulation: AVX512-VNNI,\n"     \
    "                      calibrated on one built-in simulated event; the layers at\n"    \
    "                      the code's resolution stay fp32). The code is\n"               \
    "                      stored as fp16 whatever the precision.\n"                      \
    "      --half          the same as --precision bf16\n"
/* --decoder-precision P: the decoders' arithmetic (decompress, eval, threshold). */
#define CLI_DECODER_PRECISION_HELP                                                          \
    "      --decoder-precision P  arithmetic of the decoders: fp32 (default) or bf16\n"      \
    "                      (BCAE-2D's fused decoders on AVX-512 CPUs: bf16 activations,\n"   \
    "                      fp32 sums, bf16 products with AVX512-BF16; ~1e-2 relative\n"      \
    "                      difference in the heads' outputs: docs/PRECISION.md)\n"
/* Thread count: --threads if given (> 0), else BCAE_NUM_THREADS, else 0
 * (OpenMP's default). Returns -1 and prints an error on a bad value. */
int cli_threads(const char *verb, long threads_opt);

/* --device cpu|cuda|auto. Returns 0, or prints a usage error and returns
 * CLI_EXIT_USAGE. */
int cli_parse_device(const char *verb, const char *arg, bcae_device *out);
/* The device the work will run on: CPU stays CPU; CUDA is CUDA when a
 * device works, else the error is printed and CLI_EXIT_FAIL returned; AUTO
 * is CUDA when a device works, else CPU, with one line on stderr saying why
 * when the build has CUDA. Returns 0 with *out set otherwise. */
int cli_device_resolve(const char *verb, bcae_device dev, bcae_device *out);
#define CLI_DEVICE_HELP                                                                      \
    "      --device D      where the networks run: auto (default: CUDA when built with it\n" \
    "                      and a device works, else the CPU), cpu, or cuda (fail without\n"  \
    "                      one; the CUDA backend is not implemented yet: docs/CUDA.md)\n"
/* The number of threads the work will actually use. */
int cli_threads_effective(int threads);

/* The options the codec verbs (compress, decompress, eval) share, parsed in
 * one place so that they mean the same in each: -m/--model, -b/--batch,
 * -t/--threads, --device, -q/--quiet and, where the verb lists them,
 * -p/--precision and --half. */
typedef struct cli_codec_args {
    const char *model_path; /* NULL until given: then the default model */
    char default_model[4096]; /* holds the default model's path when it is used */
    long batch;
    long threads_opt;
    int quiet;
    bcae_precision precision;
    bcae_device device;
    bcae_precision decoder_precision;
} cli_codec_args;
enum { CLI_OPT_DEVICE = 0x1000, CLI_OPT_HALF, CLI_OPT_DECODER_PRECISION };
#define CLI_CODEC_LONG_OPTIONS                                                              \
    {"model", required_argument, 0, 'm'}, {"batch", required_argument, 0, 'b'},           \
        {"threads", required_argument, 0, 't'},                                             \
        {"device", required_argument, 0, CLI_OPT_DEVICE}, {"quiet", no_argument, 0, 'q'}
#define CLI_PRECISION_LONG_OPTIONS                                                          \
    {"precision", required_argument, 0, 'p'}, {"half", no_argument, 0, CLI_OPT_HALF}
#define CLI_DECODER_PRECISION_LONG_OPTIONS                                                  \
    {"decoder-precision", required_argument, 0, CLI_OPT_DECODER_PRECISION}
/* Batch 4, fp32, device auto, the rest unset. */
void cli_codec_args_init(cli_codec_args *a);
/* Takes one getopt_long result c (with its optarg): 1 if it was one of the
 * shared options, 0 if not, -1 after printing a usage error for its value. */
int cli_codec_option(const char *verb, int c, const char *arg, cli_codec_args *a);
/* After the options: the default model if none was given, the threads and
 * the device resolved, into codec options. Returns 0, or the exit code
 * after printing why. */
int cli_codec_setup(const char *verb, cli_codec_args *a, bcae_codec_options *opt);

/* The codec choice of compress, eval and bench (--codec bcae|sparse) and
 * the sparse codec's target (--max-error E or --ratio R), parsed in one
 * place so that the three verbs accept and refuse the same. */
typedef struct cli_sparse_args {
    int sparse;       /* --codec sparse */
    int have_error;   /* --max-error given */
    double max_error; /* 0..BCAE_SPARSE_MAX_ERROR */
    double ratio;     /* >= 1, 0: not given */
} cli_sparse_args;
enum { CLI_OPT_CODEC = 0x1100, CLI_OPT_MAX_ERROR, CLI_OPT_RATIO };
#define CLI_SPARSE_LONG_OPTIONS                                                             \
    {"codec", required_argument, 0, CLI_OPT_CODEC},                                         \
        {"max-error", required_argument, 0, CLI_OPT_MAX_ERROR},                             \
        {"ratio", required_argument, 0, CLI_OPT_RATIO}
/* As cli_codec_option, for the CLI_OPT_CODEC.. options. */
int cli_sparse_option(const char *verb, int c, const char *arg, cli_sparse_args *a);
/* After the options: --max-error and --ratio belong to --codec sparse and
 * exclude each other. Returns 0, or the usage exit code after saying why. */
int cli_sparse_check(const char *verb, const cli_sparse_args *a);

/* Progress on stderr: a bar with rate and ETA on a terminal, a line every
 * few seconds otherwise; silent when quiet. */
typedef struct cli_progress {
    const char *label;
    const char *unit;
    uint64_t total;
    uint64_t base; /* done at start: a resumed job's rate counts only its own work */
    double start;
    double last_print;
    int tty;
    int quiet;
} cli_progress;

void cli_progress_start(cli_progress *p, const char *label, const char *unit, uint64_t total,
                        int quiet);
void cli_progress_update(cli_progress *p, uint64_t done, const char *extra);
void cli_progress_finish(cli_progress *p, uint64_t done);

double cli_now(void);

/* The model to use when a verb is given no --model (bcae_default_model_path:
 * $BCAE_MODEL, else the installed default, else the source tree's), written
 * to buf. NULL (with a message printed) when none exists. */
const char *cli_default_model(const char *verb, char *buf, size_t size);

/* Writes a double as JSON (null for NaN and infinities). */
void cli_json_number(FILE *fp, double v);

#endif
