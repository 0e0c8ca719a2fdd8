/* bcae decompress: a .bcae container -> one .npy per wedge. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae decompress [--model MODEL.safetensors] -o OUTDIR IN.bcae\n"
            "Decode every record of a .bcae container and write one .npy per wedge under\n"
            "OUTDIR at its stored relative path: uint16 raw ADC (default) or float32\n"
            "log2(ADC+1), shape (192, 249, 16). The model must be the one the container\n"
            "names (by the SHA-256 fingerprint of its weights); another is refused unless\n"
            "--model-mismatch-ok. A container of the sparse codec (bcae compress --codec\n"
            "sparse) needs no model: its streams decode on their own (docs/SPARSE.md).\n"
            "The whole container is checked before anything is written: a damaged record, a\n"
            "path that occurs twice, an output file that exists (unless -f), or a symbolic\n"
            "link inside OUTDIR where a folder of a record's path belongs fails with nothing\n"
            "written. Files are created beneath OUTDIR without following symbolic links.\n"
            "\n"
            "Options:\n"
            "  -m, --model FILE     weights (safetensors; default: the shipped model)\n"
            "  -o, --out DIR        output folder (created if needed)\n"
            "      --output KIND    adc (default) or log\n"
            "  -f, --force          overwrite output files that exist (a symbolic link there is\n"
            "                       replaced, not followed)\n"
            "      --model-mismatch-ok  decode with a model other than the container's (same\n"
            "                       code shape; the result is garbage unless you know better)\n"
            "  -b, --batch B        wedges per pass (default 4)\n"
            "  -t, --threads N      threads (BCAE_NUM_THREADS or all cores)\n"
            CLI_DECODER_PRECISION_HELP
            CLI_DEVICE_HELP
            "  -q, --quiet          no progress on stderr\n"
            "  -h, --help\n"
            "\n"
            "On several processes (a build with MPI; docs/SCALING.md): mpirun -np N bcae\n"
            "decompress ... has every rank check the whole container, then decode and write\n"
            "a contiguous run of its records: the same files as one process writes.\n");
}

/* Writes one decoded wedge at rel beneath the output folder: folders
 * created and entered without following links, the file created under a
 * temporary name and linked (renamed with --force) into place. */
static int write_wedge(const char *verb, const bcae_outdir *od, const char *rel, int overwrite,
                       int log_out, const uint16_t *adc, const float *lg)
{
    bcae_error err;
    bcae_atomic_file f;
    bcae_array a = {log_out ? BCAE_DTYPE_F32 : BCAE_DTYPE_U16, 3,
                    {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS},
                    log_out ? (void *)lg : (void *)adc};
    if (bcae_outdir_create(od, rel, overwrite, &f, &err) || bcae_npy_write_atomic(&f, &a, &err)) {
        cli_fail(verb, &err);
        if (!overwrite && strstr(err.message, "already exists"))
            cli_error(verb, "-f/--force overwrites it");
        return -1;
    }
    return 0;
}

/* The first pass: every record read and verified (CRCs, zstd, paths) and
 * its output checked (when OUTDIR exists, od), before anything is written. Fills paths (one per
 * record, in order) for the second pass to compare with. */
static int check_container(const char *verb, const char *in_path, const bcae_outdir *od,
                           int overwrite, char ***paths_out, size_t *count, bcae_error *damage)
{
    bcae_error err;
    bcae_ctr_reader *r = NULL;
    bcae_pathset *seen = bcae_pathset_new();
    bcae_ctr_record *rec = malloc(sizeof *rec);
    char **paths = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    if (!seen || !rec) {
        cli_error(verb, "out of memory");
        goto done;
    }
    if (bcae_ctr_reader_open(in_path, &r, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    damage->status = BCAE_OK;
    for (int end = 0;;) {
        if (bcae_ctr_reader_next(r, rec, NULL, &end, &err)) {
            /* A damaged or cut record: the intact ones before it are still
             * decoded and written (the records are independent), then the
             * run fails with this message. */
            *damage = err;
            break;
        }
        if (end) break;
        if (rec->orig_ndim != 3 || rec->orig_shape[0] != BCAE_WEDGE_AZIMUTH ||
            rec->orig_shape[1] != BCAE_WEDGE_Z || rec->orig_shape[2] != BCAE_WEDGE_LAYERS) {
            cli_error(verb, "%s: record %llu (\"%s\") is not a (192, 249, 16) wedge", in_path,
                      (unsigned long long)rec->index, rec->path);
            goto done;
        }
        int added = bcae_pathset_add(seen, rec->path);
        if (added <= 0) {
            if (added < 0) cli_error(verb, "out of memory");
            else
                cli_error(verb, "%s: record %llu has the path \"%s\" of an earlier record (one "
                                "would overwrite the other); nothing written",
                          in_path, (unsigned long long)rec->index, rec->path);
            goto done;
        }
        int exists = 0;
        if (od && bcae_outdir_exists(od, rec->path, &exists, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        if (exists && !overwrite) {
            cli_error(verb, "%s/%s: already exists; nothing written (-f/--force overwrites)",
                      od->path, rec->path);
            goto done;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(paths, cap * sizeof *paths);
            if (!grown) {
                cli_error(verb, "out of memory");
                goto done;
            }
            paths = grown;
        }
        if (!(paths[n] = strdup(rec->path))) {
            cli_error(verb, "out of memory");
            goto done;
        }
        n++;
    }
    rc = 0;
done:
    if (rc) {
        for (size_t i = 0; i < n; i++) free(paths[i]);
        free(paths);
        paths = NULL;
        n = 0;
    }
    *paths_out = paths;
    *count = n;
    bcae_ctr_reader_close(r);
    bcae_pathset_free(seen);
    free(rec);
    return rc;
}

int verb_decompress(int argc, char **argv)
{
    const char *verb = "decompress";
    const char *out = NULL, *kind = "adc";
    int force = 0, mismatch_ok = 0;
    cli_codec_args ca;
    cli_codec_args_init(&ca);
    enum { O_OUTPUT = 256, O_MISMATCH };
    static const struct option opts[] = {
        CLI_CODEC_LONG_OPTIONS,
        CLI_DECODER_PRECISION_LONG_OPTIONS,
        {"out", required_argument, 0, 'o'},
        {"output", required_argument, 0, O_OUTPUT},
        {"force", no_argument, 0, 'f'},
        {"model-mismatch-ok", no_argument, 0, O_MISMATCH},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    /* No -p: the encoder does not run here (--decoder-precision: docs/PRECISION.md). */
    while ((c = getopt_long(argc, argv, ":m:o:fb:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case O_OUTPUT: kind = optarg; break;
        case 'f': force = 1; break;
        case O_MISMATCH: mismatch_ok = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default: {
            int r = cli_codec_option(verb, c, optarg, &ca);
            if (r < 0) return CLI_EXIT_USAGE;
            if (!r) return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
        }
    }
    if (!out) return cli_usage_error(verb, "-o OUTDIR is required");
    if (strcmp(kind, "adc") && strcmp(kind, "log"))
        return cli_usage_error(verb, "--output must be adc or log, not '%s'", kind);
    if (argc - optind != 1) return cli_usage_error(verb, "expected one container file");
    const char *in_path = argv[optind];
    int log_out = !strcmp(kind, "log");
    const char *user_model = ca.model_path;
    bcae_codec_options opt;

    bcae_error err;
    bcae_model *model = NULL;
    bcae_codec *codec = NULL;
    bcae_ctr_reader *r = NULL;
    uint16_t *codes = NULL, *adc = NULL;
    float *lg = NULL;
    char(*rel)[BCAE_CTR_PATH_MAX + 1] = NULL;
    char **paths = NULL;
    size_t npaths = 0;
    bcae_outdir od = {-1, NULL};
    int rc = CLI_EXIT_FAIL;
    bcae_sparse_coder *sparse = NULL;
    if (bcae_ctr_reader_open(in_path, &r, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    const bcae_ctr_info *info = bcae_ctr_reader_info(r);
    /* The header says which codec: a file of sparse streams needs no model. */
    int is_sparse = info->code_dtype == BCAE_CTR_DTYPE_SPARSE;
    if (is_sparse) {
        if (user_model || mismatch_ok)
            fprintf(stderr, "bcae %s: %s holds sparse streams: no model is used\n", verb, in_path);
        if (bcae_sparse_coder_create(&sparse, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
    } else {
        int setup = cli_codec_setup(verb, &ca, &opt);
        if (setup) {
            rc = setup;
            goto done;
        }
        if (bcae_model_load(ca.model_path, &model, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
    }
    bcae_ctr_info mine = {0};
    mine.version = info->version;
    if (!is_sparse) {
        bcae_model_fingerprint(model, mine.fingerprint);
        snprintf(mine.arch, sizeof mine.arch, "%s", bcae_model_arch(model));
        mine.code_dtype = BCAE_CTR_DTYPE_F16;
        mine.code_ndim = bcae_model_code_shape(model, mine.code_shape);
    }
    if (!is_sparse && bcae_ctr_check_model(info, &mine, in_path, &err)) {
        /* The code shape must match whatever --model-mismatch-ok says: it is
         * what decodes. */
        int same_shape = info->code_ndim == mine.code_ndim;
        for (int d = 0; same_shape && d < mine.code_ndim; d++)
            same_shape = info->code_shape[d] == mine.code_shape[d];
        if (!mismatch_ok || !same_shape) {
            cli_fail(verb, &err);
            if (same_shape)
                fprintf(stderr, "bcae %s: --model-mismatch-ok decodes it anyway\n", verb);
            goto done;
        }
        char hex[65];
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", info->fingerprint[i]);
        fprintf(stderr, "bcae %s: warning: decoding with a model other than %s\n", verb, hex);
    }
    /* OUTDIR is created only once the container has passed its checks. */
    struct stat sb;
    int have_out = stat(out, &sb) == 0;
    if (have_out && bcae_outdir_open(&od, out, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    bcae_error damage;
    /* Every rank checks the whole file before any rank writes, so none
     * takes another's fresh output for a file that was there before. */
    int bad = check_container(verb, in_path, have_out ? &od : NULL, force, &paths, &npaths,
                              &damage);
    if (cli_any_failed(verb, bad)) {
        rc = CLI_EXIT_FAIL_ALL;
        goto done;
    }
    if (damage.status && npaths == 0) { /* nothing intact to write: not even OUTDIR */
        cli_fail(verb, &damage);
        goto done;
    }
    if ((!have_out && bcae_outdir_open(&od, out, &err)) ||
        (!is_sparse && bcae_codec_create(model, &opt, &codec, &err))) {
        cli_fail(verb, &err);
        goto done;
    }
    const size_t V = BCAE_WEDGE_VOXELS, C = is_sparse ? 1 : bcae_model_code_elements(model),
                 B = (size_t)ca.batch;
    codes = malloc(B * C * sizeof *codes);
    adc = malloc(B * V * sizeof *adc);
    lg = log_out ? malloc(B * V * sizeof *lg) : NULL;
    rel = malloc(B * sizeof *rel);
    if (!codes || !adc || !rel || (log_out && !lg)) {
        cli_error(verb, "out of memory");
        goto done;
    }
    /* This rank's records [lo, hi): it reads (and checks) the ones before
     * its run and stops after it. One process: all of them. */
    cli_share sh;
    size_t lo, hi;
    cli_share_plan(&sh, npaths, 1, (size_t)-1);
    cli_share_round(&sh, 0, &lo, &hi);
    for (size_t i = 0; i < lo; i++) {
        bcae_ctr_record rec;
        int end = 0;
        if (bcae_ctr_reader_next(r, &rec, NULL, &end, &err) || end) {
            if (end) cli_error(verb, "%s: changed while being read", in_path);
            else cli_fail(verb, &err);
            goto done;
        }
    }
    cli_progress prog;
    cli_progress_start(&prog, "decompress", "wedges", hi - lo, ca.quiet || cli_rank() != 0);
    size_t done_n = 0;
    double t0 = cli_now();
    for (int end = 0; !end && lo + done_n < hi;) {
        size_t nb = 0, ok;
        int stream_bad = 0;
        while (nb < B && lo + done_n + nb < hi && !stream_bad) {
            bcae_ctr_record rec;
            if (bcae_ctr_reader_next(r, &rec, is_sparse ? NULL : codes + nb * C, &end, &err)) {
                cli_fail(verb, &err);
                goto done;
            }
            if (end) break;
            /* The first pass checked this file; it must still be that file. */
            if (rec.index >= npaths || strcmp(rec.path, paths[rec.index]) != 0) {
                cli_error(verb, "%s: changed while being read (record %llu)", in_path,
                          (unsigned long long)rec.index);
                goto done;
            }
            memcpy(rel[nb], rec.path, sizeof rel[nb]);
            /* A sparse record decodes on its own, now: its stream's checks
             * (its CRC among them) are the last before its wedge is written. */
            if (is_sparse) {
                size_t len;
                const uint8_t *s = bcae_ctr_reader_payload(r, &len);
                stream_bad = bcae_sparse_decode(sparse, s, len, adc + nb * V, NULL, &err) != BCAE_OK;
                if (!stream_bad && log_out)
                    for (size_t k = 0; k < V; k++)
                        lg[nb * V + k] = (float)log2(adc[nb * V + k] + 1.0);
            }
            nb++;
        }
        if (!nb) break;
        ok = nb - (size_t)stream_bad;
        /* A batch that fails (a non-finite code) is decoded again record by
         * record: the records before the bad one are written, and the
         * message names the bad one. Decoding does not depend on the batch,
         * so those records are the same bytes either way. */
        if (!is_sparse && bcae_decode(codec, codes, nb, log_out ? NULL : adc, lg, &err)) {
            for (ok = 0; ok < nb; ok++)
                if (bcae_decode(codec, codes + ok * C, 1, log_out ? NULL : adc + ok * V,
                                log_out ? lg + ok * V : NULL, &err))
                    break;
        }
        for (size_t i = 0; i < ok; i++)
            if (write_wedge(verb, &od, rel[i], force, log_out, adc + i * V,
                            log_out ? lg + i * V : NULL))
                goto done;
        if (ok < nb) {
            cli_error(verb, "%s: record %zu (\"%s\"): %s; the %zu records before it were written",
                      in_path, lo + done_n + ok, rel[ok], err.message, lo + done_n + ok);
            goto done;
        }
        done_n += nb;
        /* Without a count from the end marker the bar shows the wedges so far. */
        if (prog.total < done_n) prog.total = done_n;
        cli_progress_update(&prog, done_n - 1, NULL);
    }
    if (done_n != hi - lo) {
        cli_error(verb, "%s: changed while being read (%zu records, then %zu)", in_path, npaths,
                  lo + done_n);
        goto done;
    }
    prog.total = done_n;
    cli_progress_finish(&prog, done_n);
    double total = (double)done_n;
    if (cli_allreduce_sum(verb, &total, 1)) goto done;
    done_n = (size_t)total;
    if (damage.status) {
        if (cli_rank() == 0) {
            cli_fail(verb, &damage);
            fprintf(stderr, "bcae %s: the %zu intact records before it were written\n", verb,
                    done_n);
        }
        /* Every rank saw it: they fail together (exit status 1). */
        rc = CLI_EXIT_FAIL_ALL;
        goto done;
    }
    double el = cli_now() - t0;
    if (cli_rank() != 0) {
        rc = CLI_EXIT_OK;
        goto done;
    }
    printf("decompressed    %zu wedges from %s into %s (%s)\n", done_n, in_path, out,
           log_out ? "float32 log2(ADC+1)" : "uint16 ADC");
    printf("throughput      %.2f wedges/s (file I/O included)\n", el > 0 ? (double)done_n / el : 0.0);
    rc = CLI_EXIT_OK;
done:
    for (size_t i = 0; i < npaths; i++) free(paths[i]);
    free(paths);
    bcae_outdir_close(&od);
    free(codes);
    free(adc);
    free(lg);
    free(rel);
    bcae_ctr_reader_close(r);
    bcae_codec_free(codec);
    bcae_model_free(model);
    bcae_sparse_coder_free(sparse);
    return rc;
}
