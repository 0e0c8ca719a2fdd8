/* bcae compress: wedges -> a .bcae container of fp16 codes, or of sparse
 * streams (--codec sparse). */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* Wedges a rank codes per round of a parallel run: its records wait in
 * memory for the round's collective write (~50 kB each for BCAE-2D codes). */
#define CLI_ROUND_WEDGES 256

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae compress [--model MODEL.safetensors] -o OUT.bcae INPUT...\n"
            "       bcae compress --codec sparse [--max-error E | --ratio R] -o OUT.bcae INPUT...\n"
            "Encode TPC wedges with a BCAE model and store each code as IEEE fp16 in a .bcae\n"
            "container (docs/FORMAT.md); or, with --codec sparse, with the learning-free sparse\n"
            "codec (docs/SPARSE.md): the occupancy exact, every non-zero value within a bound\n"
            "E in log2(ADC+1) of the input (rounding to integers included; 0: lossless), any\n"
            "uint16 wedge accepted. INPUT is wedge .npy files (stored under the path as\n"
            "given, normalised: '.' parts dropped, 'x/..' cancelled, and a leading '/' and\n"
            "leading '..' parts dropped, as tar does: a/../b/w.npy is stored as b/w.npy) or a\n"
            "dataset folder, whose --split manifest lists the wedges (stored under their\n"
            "manifest paths, normalised the same way). A path may be stored once: a second\n"
            "input with the same stored path, or (--append) one already in the file, is\n"
            "refused.\n"
            "The encoder runs in fp32 unless --precision says otherwise; its output is\n"
            "rounded to fp16.\n"
            "\n"
            "Options:\n"
            "  -m, --model FILE    weights (safetensors; default: the shipped model)\n"
            "      --codec C       bcae (default: the model) or sparse (no model)\n"
            "      --max-error E   sparse: the bound, 0..8 (default 0, lossless)\n"
            "      --ratio R       sparse: instead of a bound, per wedge the finest bound (on a\n"
            "                      grid of 1/512) whose stream is at most 1/R of the wedge\n"
            "  -o, --out FILE      the container to write (replaced atomically)\n"
            "      --append        add records to an existing container of the same model\n"
            "      --split NAME    manifest of a dataset folder (default test)\n"
            "      --zstd LEVEL    add a lossless zstd stage to every code (1..19; 0 = off)\n"
            CLI_PRECISION_HELP
            "  -b, --batch B       wedges per pass (default 4; sparse: at least 2 per thread)\n"
            "  -t, --threads N     threads (BCAE_NUM_THREADS or all cores); sparse: wedges\n"
            "                      coded at once\n"
            CLI_DEVICE_HELP
            "  -q, --quiet         no progress on stderr\n"
            "  -h, --help\n"
            "\n"
            "On several processes (a build with MPI; docs/SCALING.md): mpirun -np N bcae\n"
            "compress ... gives each rank a contiguous run of the wedges (in rounds of at\n"
            "most %d a rank, to bound memory) and writes one container with MPI-IO, byte\n"
            "for byte the file one process writes from the same input and --batch. Not with\n"
            "--append. --threads is per rank.\n",
            CLI_ROUND_WEDGES);
}

typedef struct input {
    char *file; /* to read */
    char *rel;  /* to store */
} input;

/* The stored name: the path as given, normalised lexically the way
 * manifests are (bcae_path_normalize): "x/.." cancels, and a leading '/'
 * and ".." that would climb above the start are dropped, as tar does, so
 * that decompress never writes outside OUTDIR, files with equal names in
 * different folders stay apart, and `a/../b/w.npy` is stored as `b/w.npy`
 * (never as `a/b/w.npy`). NULL with *why for a path that names no file. */
static char *stored_name(const char *path, const char **why)
{
    char *out = malloc(strlen(path) + 1);
    if (!out) return NULL;
    *why = bcae_path_normalize(path, BCAE_PATH_RESOLVE, out);
    return out;
}

static int collect(const char *verb, char **args, int nargs, const char *split, input **out,
                   size_t *count)
{
    size_t n = 0, cap = 0;
    input *v = NULL;
    for (int a = 0; a < nargs; a++) {
        struct stat sb;
        if (stat(args[a], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            bcae_dataset *ds;
            bcae_error err;
            if (bcae_dataset_open(args[a], split, &ds, &err)) return cli_fail(verb, &err), -1;
            for (size_t i = 0; i < bcae_dataset_size(ds); i++) {
                if (n == cap) {
                    cap = cap ? 2 * cap : 256;
                    v = realloc(v, cap * sizeof *v);
                    if (!v) return cli_error(verb, "out of memory"), -1;
                }
                v[n].rel = strdup(bcae_dataset_relpath(ds, i));
                v[n].file = bcae_path_join(bcae_dataset_root(ds), v[n].rel);
                n++;
            }
            bcae_dataset_close(ds);
        } else {
            if (n == cap) {
                cap = cap ? 2 * cap : 256;
                v = realloc(v, cap * sizeof *v);
                if (!v) return cli_error(verb, "out of memory"), -1;
            }
            const char *why = NULL;
            v[n].file = strdup(args[a]);
            v[n].rel = stored_name(args[a], &why);
            n++;
            if (why) {
                cli_error(verb, "%s: cannot be stored: the path %s", args[a], why);
                *out = v;
                *count = n;
                return -1;
            }
        }
    }
    *out = v;
    *count = n;
    return 0;
}

/* A wedge for the sparse codec: any integer array of the wedge's shape with
 * values in 0..65535 (the BCAE models' loader takes 10-bit ADC only). */
static bcae_status load_uint16_wedge(const char *path, uint16_t *w, bcae_error *err)
{
    bcae_array a;
    bcae_status s = bcae_npy_read(path, &a, err);
    if (s) return s;
    const size_t V = BCAE_WEDGE_VOXELS;
    if (a.ndim != 3 || a.shape[0] != BCAE_WEDGE_AZIMUTH || a.shape[1] != BCAE_WEDGE_Z ||
        a.shape[2] != BCAE_WEDGE_LAYERS) {
        bcae_array_free(&a);
        err->status = BCAE_ERR_SHAPE;
        snprintf(err->message, sizeof err->message, "%s: not a (192, 249, 16) wedge", path);
        return BCAE_ERR_SHAPE;
    }
    if (a.dtype == BCAE_DTYPE_U16) {
        memcpy(w, a.data, V * sizeof *w);
    } else {
        for (size_t i = 0; i < V; i++) {
            double v = bcae_array_get_f64(&a, i);
            if (!(v >= 0 && v <= 65535 && v == floor(v))) {
                bcae_array_free(&a);
                err->status = BCAE_ERR_RANGE;
                snprintf(err->message, sizeof err->message,
                         "%s: value %g at element %zu is not an integer in 0..65535", path, v, i);
                return BCAE_ERR_RANGE;
            }
            w[i] = (uint16_t)v;
        }
    }
    bcae_array_free(&a);
    return BCAE_OK;
}

typedef struct sparse_run {
    double max_error, ratio;
    long batch, threads;
    int quiet, append;
} sparse_run;

/* The sparse codec's compress: batches of wedges, each coded by one thread
 * with its own coder, then appended in input order. */
static int compress_sparse(const char *verb, const char *out, const input *in, size_t n,
                           const sparse_run *o)
{
    bcae_error err;
    int T = (int)o->threads;
    size_t B = (size_t)(o->batch > 2 * T ? o->batch : 2 * T);
    const size_t V = BCAE_WEDGE_VOXELS, cap = bcae_sparse_bound();
    bcae_ctr_info info;
    bcae_ctr_sparse_info(&info);
    bcae_ctr_writer *w = NULL;
    bcae_sparse_coder **coder = calloc((size_t)T, sizeof *coder);
    uint16_t *adc = malloc(B * V * sizeof *adc);
    uint8_t *buf = malloc(B * cap);
    size_t *len = malloc(B * sizeof *len);
    bcae_sparse_info *si = malloc(B * sizeof *si);
    bcae_error *errs = malloc(B * sizeof *errs);
    bcae_status *st = malloc(B * sizeof *st);
    int rc = CLI_EXIT_FAIL;
    if (!coder || !adc || !buf || !len || !si || !errs || !st) {
        cli_error(verb, "out of memory");
        goto done;
    }
    for (int t = 0; t < T; t++)
        if (bcae_sparse_coder_create(&coder[t], &err)) {
            cli_fail(verb, &err);
            goto done;
        }
    if ((o->append ? bcae_ctr_append_open(out, &info, 0, &w, &err)
         : cli_size() > 1 ? bcae_ctr_writer_open_shared(out, &info, cli_comm(), &w, &err)
                          : bcae_ctr_writer_open(out, &info, &w, &err))) {
        cli_fail(verb, &err);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (bcae_ctr_writer_has_path(w, in[i].rel)) {
            cli_error(verb, "%s: %s already has a record with the path \"%s\"; not appending",
                      in[i].file, out, in[i].rel);
            goto done;
        }
    const size_t shape[3] = {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
    cli_share sh;
    cli_share_plan(&sh, n, B, CLI_ROUND_WEDGES);
    bcae_sparse_options sopt = {o->max_error, o->ratio};
    double occ_bytes = 0, val_bytes = 0, hits = 0, emin = INFINITY, emax = 0, code_s = 0;
    size_t unmet = 0, stored = 0;
    cli_progress prog;
    cli_progress_start(&prog, "compress", "wedges", cli_share_count(&sh), o->quiet);
    double t0 = cli_now();
    size_t mine = 0;
    for (size_t k = 0; k < sh.rounds; k++) {
        size_t lo, hi;
        cli_share_round(&sh, k, &lo, &hi);
        for (size_t w0 = lo; w0 < hi; w0 += B) {
            size_t nb = hi - w0 < B ? hi - w0 : B;
            for (size_t i = 0; i < nb; i++)
                if (load_uint16_wedge(in[w0 + i].file, adc + i * V, &err)) {
                    cli_fail(verb, &err);
                    goto done;
                }
            double tc = cli_now();
    #pragma omp parallel for num_threads(T) schedule(dynamic)
            for (size_t i = 0; i < nb; i++)
                st[i] = bcae_sparse_encode(coder[omp_get_thread_num()], adc + i * V, &sopt,
                                           buf + i * cap, cap, &len[i], &si[i], &errs[i]);
            code_s += cli_now() - tc;
            for (size_t i = 0; i < nb; i++) {
                if (st[i]) {
                    cli_error(verb, "%s: %s", in[w0 + i].file, errs[i].message);
                    goto done;
                }
                if (bcae_ctr_writer_append_stream(w, in[w0 + i].rel, shape, 3, buf + i * cap,
                                                  len[i], &err)) {
                    cli_fail(verb, &err);
                    goto done;
                }
                occ_bytes += (double)si[i].occupancy_bytes;
                val_bytes += (double)si[i].value_bytes;
                hits += (double)si[i].hits;
                emin = fmin(emin, si[i].max_error);
                emax = fmax(emax, si[i].max_error);
                unmet += !si[i].met;
                stored += (size_t)si[i].stored;
            }
            mine += nb;
            double el = cli_now() - t0;
            char extra[64];
            snprintf(extra, sizeof extra, "%.1f MB/s in",
                     el > 0 ? (double)mine * V * 2 / el / 1e6 : 0.0);
            cli_progress_update(&prog, mine, extra);
        }
        if (bcae_ctr_writer_flush(w, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
    }
    /* The whole run's figures: sums over the ranks (each rank's coding
     * rate adds up), and the extremes of the bounds. */
    double tot[7] = {occ_bytes, val_bytes, hits, (double)unmet, (double)stored,
                     code_s > 0 ? (double)mine / code_s : 0.0, 0};
    double ext[2] = {emax, -emin};
    if (cli_allreduce_sum(verb, tot, 7) || cli_allreduce_max(verb, ext, 2)) goto done;
    occ_bytes = tot[0], val_bytes = tot[1], hits = tot[2], unmet = (size_t)tot[3];
    stored = (size_t)tot[4];
    double code_rate = tot[5];
    emax = ext[0], emin = -ext[1];
    bcae_ctr_stats cs;
    bcae_ctr_writer_stats(w, &cs);
    bcae_status fs = bcae_ctr_writer_finish(w, &err);
    w = NULL;
    if (fs) {
        cli_fail(verb, &err);
        goto done;
    }
    cli_progress_finish(&prog, mine);
    double el = cli_now() - t0, in_bytes = (double)n * (double)V * 2.0;
    if (cli_rank() != 0) {
        rc = CLI_EXIT_OK;
        goto done;
    }
    printf("compressed      %zu wedges into %s (%llu records in the file)\n", n, out,
           (unsigned long long)cs.records);
    printf("codec           sparse, ");
    if (o->ratio > 0) printf("ratio %g per wedge: bound E %.4f .. %.4f", o->ratio, emin, emax);
    else if (o->max_error > 0) printf("bound E %g (stored as %.6f)", o->max_error, emax);
    else printf("lossless");
    printf("\n");
    if (unmet)
        printf("warning         %zu wedges could not reach ratio %g even at the coarsest bound\n",
               unmet, o->ratio);
    printf("input           %.1f MB at 16 bits per voxel, %.0f hits (%.4f of the voxels)\n",
           in_bytes / 1e6, hits, hits / ((double)n * (double)V));
    printf("written         %.3f MB: occupancy %.3f bits/hit, values %.3f bits/hit%s\n",
           (double)cs.new_bytes / 1e6, hits ? 8 * occ_bytes / hits : 0.0,
           hits ? 8 * val_bytes / hits : 0.0, stored ? " (some wedges stored raw)" : "");
    printf("ratio           %.3f (input / bytes written for these records)\n",
           cs.new_bytes ? in_bytes / (double)cs.new_bytes : 0.0);
    printf("file            %.3f MB, ratio %.3f over the whole file\n", (double)cs.file_bytes / 1e6,
           cs.file_bytes ? (double)cs.records * V * 2.0 / (double)cs.file_bytes : 0.0);
    if (cli_size() > 1)
        printf("throughput      %.2f wedges/s coding on %d ranks x %d threads; %.2f wedges/s "
               "with file I/O\n",
               code_rate, cli_size(), T, el > 0 ? (double)n / el : 0.0);
    else
        printf("throughput      %.2f wedges/s coding on %d threads; %.2f wedges/s with file I/O\n",
               code_rate, T, el > 0 ? (double)n / el : 0.0);
    rc = CLI_EXIT_OK;
done:
    if (w) bcae_ctr_writer_abort(w);
    for (int t = 0; coder && t < T; t++) bcae_sparse_coder_free(coder[t]);
    free(coder);
    free(adc);
    free(buf);
    free(len);
    free(si);
    free(errs);
    free(st);
    return rc;
}

int verb_compress(int argc, char **argv)
{
    const char *verb = "compress";
    const char *out = NULL, *split = "test";
    long zstd = 0;
    int append = 0;
    cli_sparse_args sa = {0};
    cli_codec_args ca;
    cli_codec_args_init(&ca);
    enum { O_SPLIT = 256, O_ZSTD, O_APPEND };
    static const struct option opts[] = {
        CLI_CODEC_LONG_OPTIONS,
        CLI_PRECISION_LONG_OPTIONS,
        {"out", required_argument, 0, 'o'},
        {"append", no_argument, 0, O_APPEND},
        {"split", required_argument, 0, O_SPLIT},
        {"zstd", required_argument, 0, O_ZSTD},
        CLI_SPARSE_LONG_OPTIONS,
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:o:b:t:p:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case O_APPEND: append = 1; break;
        case O_SPLIT: split = optarg; break;
        case O_ZSTD:
            if (cli_parse_long(verb, "--zstd", optarg, 0, 19, &zstd)) return CLI_EXIT_USAGE;
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default: {
            int r = cli_codec_option(verb, c, optarg, &ca);
            if (!r) r = cli_sparse_option(verb, c, optarg, &sa);
            if (r < 0) return CLI_EXIT_USAGE;
            if (!r) return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
        }
    }
    if (!out) return cli_usage_error(verb, "-o OUT.bcae is required");
    if (append && cli_size() > 1)
        return cli_usage_error(verb, "--append runs as one process (not under mpirun -np %d)",
                               cli_size());
    if (optind >= argc) return cli_usage_error(verb, "no input wedges or dataset");
    if (cli_sparse_check(verb, &sa)) return CLI_EXIT_USAGE;
    const int sparse = sa.sparse;
    if (sparse && (ca.model_path || zstd || ca.precision != BCAE_PRECISION_FP32))
        return cli_usage_error(verb, "--codec sparse takes no --model, --zstd or --precision");
    bcae_codec_options opt = {0};
    if (!sparse) {
        int setup = cli_codec_setup(verb, &ca, &opt);
        if (setup) return setup;
    }

    bcae_error err;
    bcae_model *model = NULL;
    bcae_codec *codec = NULL;
    bcae_ctr_writer *w = NULL;
    input *in = NULL;
    size_t n = 0;
    uint16_t *adc = NULL, *codes = NULL;
    int rc = CLI_EXIT_FAIL;
    if (collect(verb, argv + optind, argc - optind, split, &in, &n)) goto done;
    if (n == 0) {
        cli_error(verb, "no wedges to compress");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (!in[i].file || !in[i].rel) {
            cli_error(verb, "out of memory");
            goto done;
        }
        if (bcae_ctr_check_path(in[i].rel, strlen(in[i].rel), &err)) {
            cli_error(verb, "%s: cannot be stored: %s", in[i].file, err.message);
            goto done;
        }
    }
    /* Two inputs stored under one name would overwrite each other on
     * decompression. Quadratic, but the names are short and few per call. */
    for (size_t i = 0; i < n && n <= 100000; i++)
        for (size_t j = i + 1; j < n; j++)
            if (!strcmp(in[i].rel, in[j].rel)) {
                cli_error(verb, "%s and %s would both be stored as %s", in[i].file, in[j].file,
                          in[i].rel);
                goto done;
            }
    if (sparse) {
        int threads = cli_threads(verb, ca.threads_opt);
        if (threads < 0) {
            rc = CLI_EXIT_USAGE;
            goto done;
        }
        sparse_run o = {sa.max_error, sa.ratio, ca.batch, cli_threads_effective(threads),
                        ca.quiet || cli_rank() != 0, append};
        rc = compress_sparse(verb, out, in, n, &o);
        goto done;
    }
    if (bcae_model_load(ca.model_path, &model, &err) ||
        bcae_codec_create(model, &opt, &codec, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    bcae_ctr_info info = {0};
    info.version = BCAE_CTR_VERSION_CODES;
    bcae_model_fingerprint(model, info.fingerprint);
    snprintf(info.arch, sizeof info.arch, "%s", bcae_model_arch(model));
    info.code_dtype = BCAE_CTR_DTYPE_F16;
    info.code_ndim = bcae_model_code_shape(model, info.code_shape);
    if ((append ? bcae_ctr_append_open(out, &info, 0, &w, &err)
         : cli_size() > 1 ? bcae_ctr_writer_open_shared(out, &info, cli_comm(), &w, &err)
                          : bcae_ctr_writer_open(out, &info, &w, &err))) {
        cli_fail(verb, &err);
        goto done;
    }
    /* Appending a wedge the file already holds would make two records of
     * one path: refuse before encoding anything (the writer would too). */
    for (size_t i = 0; i < n; i++)
        if (bcae_ctr_writer_has_path(w, in[i].rel)) {
            cli_error(verb, "%s: %s already has a record with the path \"%s\"; not appending",
                      in[i].file, out, in[i].rel);
            goto done;
        }
    const size_t V = BCAE_WEDGE_VOXELS, C = bcae_model_code_elements(model), B = (size_t)ca.batch;
    adc = malloc(B * V * sizeof *adc);
    codes = malloc(B * C * sizeof *codes);
    if (!adc || !codes) {
        cli_error(verb, "out of memory");
        goto done;
    }
    const size_t shape[3] = {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
    /* Each rank's runs start on a multiple of the batch, so every wedge
     * takes the slot of the batch it takes in one process: its code is the
     * same bits whatever the rank count. */
    cli_share sh;
    cli_share_plan(&sh, n, B, CLI_ROUND_WEDGES);
    cli_progress prog;
    cli_progress_start(&prog, "compress", "wedges", cli_share_count(&sh),
                       ca.quiet || cli_rank() != 0);
    double t0 = cli_now();
    size_t mine = 0;
    for (size_t k = 0; k < sh.rounds; k++) {
        size_t lo, hi;
        cli_share_round(&sh, k, &lo, &hi);
        for (size_t w0 = lo; w0 < hi; w0 += B) {
            size_t nb = hi - w0 < B ? hi - w0 : B;
            for (size_t i = 0; i < nb; i++)
                if (bcae_wedge_load(in[w0 + i].file, adc + i * V, &err)) {
                    cli_fail(verb, &err);
                    goto done;
                }
            if (bcae_encode(codec, adc, nb, codes, &err)) {
                cli_fail(verb, &err);
                goto done;
            }
            for (size_t i = 0; i < nb; i++)
                if (bcae_ctr_writer_append(w, in[w0 + i].rel, shape, 3, codes + i * C, (int)zstd,
                                           &err)) {
                    cli_fail(verb, &err);
                    goto done;
                }
            mine += nb;
            double el = cli_now() - t0;
            char extra[64];
            snprintf(extra, sizeof extra, "%.1f MB/s in",
                     el > 0 ? (double)mine * V * 2 / el / 1e6 : 0.0);
            cli_progress_update(&prog, mine, extra);
        }
        if (bcae_ctr_writer_flush(w, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
    }
    bcae_ctr_stats st;
    bcae_ctr_writer_stats(w, &st);
    bcae_status fs = bcae_ctr_writer_finish(w, &err);
    w = NULL;
    if (fs) {
        cli_fail(verb, &err);
        goto done;
    }
    cli_progress_finish(&prog, mine);
    double el = cli_now() - t0;
    double in_bytes = (double)n * (double)V * 2.0;
    if (cli_rank() != 0) {
        rc = CLI_EXIT_OK;
        goto done;
    }
    printf("compressed      %zu wedges into %s (%llu records in the file)\n", n, out,
           (unsigned long long)st.records);
    printf("input           %.1f MB at 16 bits per voxel\n", in_bytes / 1e6);
    printf("written         %.3f MB (%s)\n", (double)st.new_bytes / 1e6,
           zstd ? "fp16 codes + zstd" : "fp16 codes");
    printf("ratio           %.3f (input / bytes written for these records)\n",
           st.new_bytes ? in_bytes / (double)st.new_bytes : 0.0);
    printf("file            %.3f MB, ratio %.3f over the whole file\n", (double)st.file_bytes / 1e6,
           st.file_bytes ? (double)st.records * V * 2.0 / (double)st.file_bytes : 0.0);
    printf("throughput      %.2f wedges/s, %.1f MB/s of input (file I/O included)%s\n",
           el > 0 ? (double)n / el : 0.0, el > 0 ? in_bytes / el / 1e6 : 0.0,
           cli_size() > 1 ? ", all ranks" : "");
    rc = CLI_EXIT_OK;
done:
    if (w) bcae_ctr_writer_abort(w);
    for (size_t i = 0; i < n; i++) {
        free(in[i].file);
        free(in[i].rel);
    }
    free(in);
    free(adc);
    free(codes);
    bcae_codec_free(codec);
    bcae_model_free(model);
    return rc;
}
