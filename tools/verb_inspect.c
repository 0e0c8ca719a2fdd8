/* bcae inspect: what a .npy file holds, whatever its shape or dtype, what
 * a .bcae container holds (header and records), or what model a weights
 * file is. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { HIST_MAX_BINS = 40, BAR_WIDTH = 50 };

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae inspect FILE [--json]\n"
            "Describe a NumPy .npy file, a .bcae container or a model's weights file\n"
            "(safetensors; told apart by their first bytes, not by the name).\n\n"
            ".npy: shape, dtype, occupancy (fraction of non-zero values), the smallest\n"
            "non-zero and the largest value, whether it is a valid wedge, and a histogram\n"
            "of log2(v+1) over its non-zero values.\n"
            ".bcae: the header (format version, model architecture and fingerprint, code\n"
            "shape), one line per record (index, payload encoding, stored payload bytes,\n"
            "ratio, path) and the totals (wedges, file bytes, overall ratio). Every\n"
            "record's CRCs are checked and zstd payloads decompressed on the way. A file\n"
            "of the sparse codec (version 2) has no model; each record's stream is decoded\n"
            "(its own checks) and its line adds the error bound E, the hits and the bits\n"
            "per hit of occupancy and values. A ratio\n"
            "is the original at 16 bits per value over the bytes on disk (a record's own\n"
            "bytes; for the file, all of it: header and end marker included).\n\n"
            "model (safetensors): the architecture, the fingerprint containers name it\n"
            "by, the code's shape and elements, the ratio, the classifier threshold and\n"
            "the output shape (a checkpoint or a file that is no bcae model: an error\n"
            "saying why).\n\n"
            "  --json      print one JSON object: for .npy the keys shape, dtype,\n"
            "              occupancy, nonzero, min_nonzero, max (null when there is no\n"
            "              such value); for .bcae version, arch, fingerprint, code_shape,\n"
            "              records (each path, encoding, bytes = stored payload bytes,\n"
            "              record_bytes, orig_shape; sparse: max_error, hits,\n"
            "              occupancy_bytes, value_bytes, stored), wedges, input_bytes,\n"
            "              file_bytes and ratio (null without records); for a model\n"
            "              kind (\"model\"), arch, fingerprint, code_shape,\n"
            "              code_elements, ratio, clf_threshold, output_shape\n"
            "  -h, --help  show this help\n\n"
            "dtype is the NumPy descr of the array as read (native little-endian form).\n"
            "NaN counts as non-zero (as numpy.count_nonzero does) but is left out of\n"
            "min_nonzero and max; the text output counts NaN, infinite and negative\n"
            "values apart from the histogram.\n"
            "A damaged .bcae: the text output lists the intact records before the error;\n"
            "--json prints nothing. Either way the exit status is 1.\n"
            "Exit status: 0 success, 1 failure (unreadable or malformed file), 2 bad usage.\n");
}

typedef struct npy_stats {
    size_t count;
    size_t nonzero;
    size_t nan;
    size_t negative;
    size_t pos_inf;
    double min_nonzero; /* NaN when there is none */
    double max;         /* NaN when there is none */
    double max_finite;  /* largest finite value, for the histogram's range */
} npy_stats;

static void compute_stats(const bcae_array *a, npy_stats *st)
{
    memset(st, 0, sizeof *st);
    st->count = bcae_array_count(a);
    st->min_nonzero = NAN;
    st->max = NAN;
    st->max_finite = 0;
    for (size_t i = 0; i < st->count; i++) {
        double v = bcae_array_get_f64(a, i);
        if (isnan(v)) {
            st->nan++;
            st->nonzero++;
            continue;
        }
        if (!(v <= st->max)) st->max = v; /* also takes the first value */
        if (isfinite(v) && v > st->max_finite) st->max_finite = v;
        if (v == 0) continue;
        st->nonzero++;
        if (!(v >= st->min_nonzero)) st->min_nonzero = v;
        if (v < 0) st->negative++;
        if (isinf(v) && v > 0) st->pos_inf++;
    }
}

static void print_shape(FILE *fp, const bcae_array *a, int json)
{
    fputc(json ? '[' : '(', fp);
    for (int d = 0; d < a->ndim; d++) fprintf(fp, d ? ", %zu" : "%zu", a->shape[d]);
    if (!json && a->ndim == 1) fputc(',', fp);
    fputc(json ? ']' : ')', fp);
}

static void print_json(const bcae_array *a, const npy_stats *st)
{
    printf("{\"shape\": ");
    print_shape(stdout, a, 1);
    printf(", \"dtype\": \"%s\", \"occupancy\": ", bcae_dtype_name(a->dtype));
    cli_json_number(stdout, st->count ? (double)st->nonzero / (double)st->count : NAN);
    printf(", \"nonzero\": %zu, \"min_nonzero\": ", st->nonzero);
    cli_json_number(stdout, st->min_nonzero);
    printf(", \"max\": ");
    cli_json_number(stdout, st->max);
    printf("}\n");
}

static void print_wedge_check(const char *path, const bcae_array *a)
{
    if (a->ndim != 3 || a->shape[0] != BCAE_WEDGE_AZIMUTH || a->shape[1] != BCAE_WEDGE_Z ||
        a->shape[2] != BCAE_WEDGE_LAYERS) {
        printf("wedge         no (a wedge has shape (%d, %d, %d))\n", BCAE_WEDGE_AZIMUTH,
               BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS);
        return;
    }
    uint16_t *adc = malloc(BCAE_WEDGE_VOXELS * sizeof *adc);
    if (!adc) {
        printf("wedge         not checked (out of memory)\n");
        return;
    }
    bcae_error err;
    if (bcae_wedge_from_array(a, path, adc, &err) == BCAE_OK)
        printf("wedge         yes (%d, %d, %d), values in [0, %d]\n", BCAE_WEDGE_AZIMUTH,
               BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS, BCAE_ADC_MAX);
    else
        printf("wedge         no: %s\n", err.message);
    free(adc);
}

/* Bins of log2(v+1) for the finite positive values. Half-unit bins over
 * [0, 10] show a 10-bit ADC wedge's shape (the zero-suppression gap below
 * log2(65) ~ 6.0); wider data stretches the range, with fewer, wider bins
 * once half units would make too many. */
static void print_histogram(const bcae_array *a, const npy_stats *st)
{
    size_t positive = st->nonzero - st->nan - st->negative - st->pos_inf;
    if (positive == 0) {
        printf("histogram     no finite positive values\n");
    } else {
        double hi = fmax(10.0, ceil(log2(st->max_finite + 1.0)));
        double width = 0.5;
        int nbins = (int)ceil(hi / width);
        if (nbins > HIST_MAX_BINS) {
            nbins = HIST_MAX_BINS / 2;
            width = hi / nbins;
        }
        size_t bins[HIST_MAX_BINS] = {0};
        for (size_t i = 0; i < st->count; i++) {
            double v = bcae_array_get_f64(a, i);
            if (!(v > 0) || isinf(v)) continue;
            int b = (int)(log2(v + 1.0) / width);
            bins[b < nbins ? b : nbins - 1]++;
        }
        size_t peak = 0;
        for (int b = 0; b < nbins; b++) peak = bins[b] > peak ? bins[b] : peak;
        printf("histogram of log2(v+1) over the %zu positive values:\n", positive);
        for (int b = 0; b < nbins; b++) {
            /* Round up so that a bin with any count shows at least one mark. */
            size_t marks = (bins[b] * BAR_WIDTH + peak - 1) / peak;
            printf("  [%5.2f, %5.2f) %10zu", b * width, (b + 1) * width, bins[b]);
            if (marks) fputs("  ", stdout);
            for (size_t k = 0; k < marks; k++) putchar('#');
            putchar('\n');
        }
    }
    if (st->negative) printf("  negative values (not in the histogram): %zu\n", st->negative);
    if (st->pos_inf) printf("  +inf values (not in the histogram): %zu\n", st->pos_inf);
    if (st->nan) printf("  NaN values (not in the histogram): %zu\n", st->nan);
}

static void print_text(const char *path, const bcae_array *a, const npy_stats *st)
{
    printf("file          %s\n", path);
    printf("shape         ");
    print_shape(stdout, a, 0);
    printf("\ndtype         %s\n", bcae_dtype_name(a->dtype));
    printf("elements      %zu\n", st->count);
    printf("nonzero       %zu\n", st->nonzero);
    if (st->count)
        printf("occupancy     %.6f\n", (double)st->nonzero / (double)st->count);
    else
        printf("occupancy     none (empty array)\n");
    if (isnan(st->min_nonzero))
        printf("min_nonzero   none\n");
    else
        printf("min_nonzero   %.9g\n", st->min_nonzero);
    if (isnan(st->max))
        printf("max           none\n");
    else
        printf("max           %.9g\n", st->max);
    print_wedge_check(path, a);
    print_histogram(a, st);
}

/* ------------------------------------------------------------------ */
/* .bcae containers                                                    */
/* ------------------------------------------------------------------ */

/* Record paths are valid UTF-8 without control characters (the reader
 * checks), so only quotes and backslashes need escaping. */
static void json_string(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', fp);
        fputc(*s, fp);
    }
    fputc('"', fp);
}

static void print_dims(FILE *fp, const size_t *shape, int ndim, int json)
{
    fputc(json ? '[' : '(', fp);
    for (int d = 0; d < ndim; d++) fprintf(fp, d ? ", %zu" : "%zu", shape[d]);
    if (!json && ndim == 1) fputc(',', fp);
    fputc(json ? ']' : ')', fp);
}

static uint64_t orig_bytes(const bcae_ctr_record *rec)
{
    uint64_t n = 2;
    for (int d = 0; d < rec->orig_ndim; d++) n *= rec->orig_shape[d];
    return n;
}

static const char *encoding_name(int e)
{
    return e == BCAE_CTR_ZSTD ? "zstd" : e == BCAE_CTR_SPARSE ? "sparse" : "raw";
}

/* Text: printed as the records stream by, so a damaged file still shows
 * its intact prefix. JSON: gathered in memory and printed only if the
 * whole file checks out, so a consumer never sees half an object. */
static int inspect_container(const char *verb, const char *path, int json)
{
    bcae_error err;
    bcae_ctr_reader *r;
    if (bcae_ctr_reader_open(path, &r, &err) != BCAE_OK) return cli_fail(verb, &err);
    const bcae_ctr_info *info = bcae_ctr_reader_info(r);
    char fp_hex[65];
    for (int i = 0; i < 32; i++) snprintf(fp_hex + 2 * i, 3, "%02x", info->fingerprint[i]);
    size_t code_bytes = 2 * bcae_ctr_code_count(info);
    int sparse = info->code_dtype == BCAE_CTR_DTYPE_SPARSE;
    bcae_sparse_coder *coder = NULL;
    uint16_t *wedge = NULL;
    if (sparse && (bcae_sparse_coder_create(&coder, &err) ||
                   !(wedge = malloc(BCAE_WEDGE_VOXELS * sizeof *wedge)))) {
        bcae_ctr_reader_close(r);
        bcae_sparse_coder_free(coder);
        cli_error(verb, "out of memory");
        return CLI_EXIT_FAIL;
    }

    char *jbuf = NULL;
    size_t jlen = 0;
    FILE *out = stdout;
    if (json && !(out = open_memstream(&jbuf, &jlen))) {
        bcae_ctr_reader_close(r);
        cli_error(verb, "out of memory");
        return CLI_EXIT_FAIL;
    }
    if (json) {
        fprintf(out, "{\"version\": %u, \"arch\": ", info->version);
        json_string(out, info->arch);
        fprintf(out, ", \"fingerprint\": \"%s\", \"code_dtype\": \"%s\", \"code_shape\": ",
                fp_hex, sparse ? "sparse" : "float16");
        print_dims(out, info->code_shape, info->code_ndim, 1);
        fprintf(out, ", \"records\": [");
    } else {
        printf("file          %s\n", path);
        printf("format        .bcae container, version %u\n", info->version);
        printf("arch          %s\n", info->arch);
        if (sparse) {
            printf("fingerprint   none (the sparse codec has no model)\n");
            printf("code          sparse streams, one per wedge (docs/SPARSE.md)\n");
            printf("records\n  %8s  %-8s %12s %8s %8s %8s %7s %7s  %s\n", "index", "encoding",
                   "stored", "ratio", "E", "hits", "occ b/h", "val b/h", "path");
        } else {
            printf("fingerprint   %s\n", fp_hex);
            printf("code          float16 ");
            print_dims(stdout, info->code_shape, info->code_ndim, 0);
            printf(", %zu bytes\n", code_bytes);
            printf("records\n  %8s  %-8s %12s %8s  %s\n", "index", "encoding", "stored", "ratio",
                   "path");
        }
    }

    bcae_ctr_record *rec = malloc(sizeof *rec);
    int end = 0, rc = CLI_EXIT_OK;
    uint64_t input = 0;
    while (rec && !end) {
        if (bcae_ctr_reader_next(r, rec, NULL, &end, &err) != BCAE_OK) {
            rc = CLI_EXIT_FAIL;
            break;
        }
        if (end) break;
        uint64_t ob = orig_bytes(rec);
        input += ob;
        bcae_sparse_info si = {0};
        if (sparse) {
            size_t len;
            const uint8_t *p = bcae_ctr_reader_payload(r, &len);
            bcae_error serr;
            if (bcae_sparse_decode(coder, p, len, wedge, &si, &serr)) {
                /* (Cut to fit: the stream's message names what is wrong.) */
                snprintf(err.message, sizeof err.message, "%.100s: record %llu (\"%.100s\"): %.280s",
                         path, (unsigned long long)rec->index, rec->path, serr.message);
                err.status = serr.status;
                rc = CLI_EXIT_FAIL;
                break;
            }
        }
        if (json) {
            fprintf(out, "%s{\"index\": %llu, \"path\": ", rec->index ? ", " : "",
                    (unsigned long long)rec->index);
            json_string(out, rec->path);
            fprintf(out, ", \"encoding\": \"%s\", \"bytes\": %zu, \"record_bytes\": %zu, "
                         "\"orig_shape\": ",
                    encoding_name(rec->encoding), rec->stored_bytes, rec->record_bytes);
            print_dims(out, rec->orig_shape, rec->orig_ndim, 1);
            if (sparse) {
                fprintf(out, ", \"max_error\": ");
                cli_json_number(out, si.max_error);
                fprintf(out, ", \"hits\": %zu, \"occupancy_bytes\": %zu, \"value_bytes\": %zu, "
                             "\"stored\": %s",
                        si.hits, si.occupancy_bytes, si.value_bytes, si.stored ? "true" : "false");
            }
            fputc('}', out);
        } else if (sparse) {
            double h = si.hits ? (double)si.hits : 1;
            printf("  %8llu  %-8s %12zu %8.3f %8.4f %8zu %7.3f %7.3f  %s%s\n",
                   (unsigned long long)rec->index, encoding_name(rec->encoding), rec->stored_bytes,
                   (double)ob / (double)rec->record_bytes, si.max_error, si.hits,
                   8 * (double)si.occupancy_bytes / h, 8 * (double)si.value_bytes / h, rec->path,
                   si.stored ? " (stored raw)" : "");
        } else {
            printf("  %8llu  %-8s %12zu %8.3f  %s\n", (unsigned long long)rec->index,
                   encoding_name(rec->encoding), rec->stored_bytes,
                   (double)ob / (double)rec->record_bytes, rec->path);
        }
    }
    free(rec);
    free(wedge);
    bcae_sparse_coder_free(coder);
    uint64_t records = bcae_ctr_reader_records(r), file_bytes = bcae_ctr_reader_offset(r);
    bcae_ctr_reader_close(r);
    if (!end && rc == CLI_EXIT_OK) {
        cli_error(verb, "out of memory");
        rc = CLI_EXIT_FAIL;
    }
    if (rc != CLI_EXIT_OK) {
        if (json) fclose(out);
        free(jbuf);
        cli_fail(verb, &err);
        if (records && !strstr(err.message, "intact"))
            cli_error(verb, "the first %llu records (%llu bytes) are intact",
                      (unsigned long long)records, (unsigned long long)file_bytes);
        return CLI_EXIT_FAIL;
    }
    double ratio = (double)input / (double)file_bytes;
    if (json) {
        fprintf(out, "], \"wedges\": %llu, \"input_bytes\": %llu, \"file_bytes\": %llu, "
                     "\"ratio\": ",
                (unsigned long long)records, (unsigned long long)input,
                (unsigned long long)file_bytes);
        cli_json_number(out, records ? ratio : NAN);
        fprintf(out, "}\n");
        if (fclose(out) != 0 || !jbuf) {
            free(jbuf);
            cli_error(verb, "out of memory");
            return CLI_EXIT_FAIL;
        }
        fwrite(jbuf, 1, jlen, stdout);
        free(jbuf);
    } else {
        printf("wedges        %llu\n", (unsigned long long)records);
        printf("input bytes   %llu (16 bits per value)\n", (unsigned long long)input);
        printf("file bytes    %llu\n", (unsigned long long)file_bytes);
        if (records)
            printf("ratio         %.4f\n", ratio);
        else
            printf("ratio         none (no records)\n");
    }
    return CLI_EXIT_OK;
}

static void model_shape(const size_t *shape, int n, int json)
{
    printf(json ? "[" : "(");
    for (int i = 0; i < n; i++) printf(i ? ", %zu" : "%zu", shape[i]);
    printf(json ? "]" : ")");
}

/* A weights file, through the same loader every verb uses. */
static int inspect_model(const char *verb, const char *path, int json)
{
    bcae_model *m = NULL;
    bcae_error err;
    if (bcae_model_load(path, &m, &err)) return cli_fail(verb, &err);
    uint8_t fp[32];
    char hex[65];
    bcae_model_fingerprint(m, fp);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", fp[i]);
    size_t code[4], out[4];
    int nc = bcae_model_code_shape(m, code), no = bcae_model_output_shape(m, out);
    size_t elems = bcae_model_code_elements(m);
    double ratio = (double)BCAE_WEDGE_VOXELS / (double)elems;
    if (json) {
        printf("{\"kind\": \"model\", \"arch\": \"%s\", \"fingerprint\": \"%s\", \"code_shape\": ",
               bcae_model_arch(m), hex);
        model_shape(code, nc, 1);
        printf(", \"code_elements\": %zu, \"ratio\": %.6f, \"clf_threshold\": %.9g, "
               "\"output_shape\": ",
               elems, ratio, (double)bcae_model_threshold(m));
        model_shape(out, no, 1);
        printf("}\n");
    } else {
        printf("%s: bcae model\n", path);
        printf("arch           %s\n", bcae_model_arch(m));
        printf("fingerprint    %s\n", hex);
        printf("code           ");
        model_shape(code, nc, 0);
        printf(", %zu fp16 elements a wedge\n", elems);
        printf("ratio          %.3f  (16-bit wedge voxels / fp16 code elements)\n", ratio);
        printf("threshold      %.6g  (classifier, from the file's metadata)\n",
               (double)bcae_model_threshold(m));
        printf("output         ");
        model_shape(out, no, 0);
        printf("\n");
    }
    bcae_model_free(m);
    return CLI_EXIT_OK;
}

/* rc, or a failure when what was printed cannot be written out. */
static int flushed(const char *verb, int rc)
{
    if (rc == CLI_EXIT_OK && fflush(stdout) != 0) {
        cli_error(verb, "cannot write the output");
        return CLI_EXIT_FAIL;
    }
    return rc;
}

int verb_inspect(int argc, char **argv)
{
    const char *verb = argv[0];
    const char *path = NULL;
    int json = 0, options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            if (!strcmp(arg, "--")) {
                options_done = 1;
            } else if (!strcmp(arg, "--json")) {
                json = 1;
            } else if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
                usage(stdout);
                return CLI_EXIT_OK;
            } else {
                return cli_usage_error(verb, "unknown option '%s'", arg);
            }
        } else if (!path) {
            path = arg;
        } else {
            return cli_usage_error(verb, "too many arguments ('%s')", arg);
        }
    }
    if (!path) return cli_usage_error(verb, "expected FILE (.npy, .bcae or a model)");

    /* By the first bytes, not the name; a file cut inside a magic goes to
     * that format's reader, which reports the truncation. */
    bcae_file_kind kind;
    unsigned char first[BCAE_SNIFF_BYTES];
    size_t nfirst;
    bcae_error serr;
    if (bcae_sniff_file(path, &kind, first, &nfirst, &serr)) return cli_fail(verb, &serr);
    if (kind == BCAE_FILE_SAFETENSORS) return flushed(verb, inspect_model(verb, path, json));
    if (kind != BCAE_FILE_NPY && kind != BCAE_FILE_BCAE) {
        char hex[3 * 8 + 1] = "";
        for (size_t i = 0, o = 0; i < nfirst && i < 8; i++)
            o += (size_t)snprintf(hex + o, sizeof hex - o, i ? " %02x" : "%02x", first[i]);
        cli_error(verb, "%s: neither a NumPy .npy file, a .bcae container nor a model: it is %s%s%s%s",
                  path, bcae_file_kind_name(kind), nfirst ? " (first bytes " : "", hex,
                  nfirst ? ")" : "");
        return CLI_EXIT_FAIL;
    }
    if (kind == BCAE_FILE_BCAE) return flushed(verb, inspect_container(verb, path, json));
    bcae_array a;
    bcae_error err;
    if (bcae_npy_read(path, &a, &err) != BCAE_OK) return cli_fail(verb, &err);
    npy_stats st;
    compute_stats(&a, &st);
    if (json)
        print_json(&a, &st);
    else
        print_text(path, &a, &st);
    bcae_array_free(&a);
    return flushed(verb, CLI_EXIT_OK);
}
