/* bcae plot: draw a wedge, or two and their difference, as a PNG picture. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae plot WEDGE.npy -o OUT.png [--layer L] [--scale S] [--title TEXT]\n"
            "                 [--diff OTHER.npy | --model MODEL.safetensors |\n"
            "                  --sparse E]\n"
            "Draw a wedge (shape (192, 249, 16), raw ADC in [0, 1023]) as a heat map:\n"
            "azimuth vertically (192 pads, 0 at the bottom) by z horizontally (249 time\n"
            "bins), coloured by log2(ADC+1) over [6, 10] on a dark-purple-to-yellow scale\n"
            "with a colour bar. Empty (zero-suppressed) voxels are white.\n"
            "\n"
            "Options:\n"
            "  -o, --output OUT.png   the picture to write (required); written to a\n"
            "                         temporary name and renamed, so a failure leaves none\n"
            "  -l, --layer L          draw layer L (0..15) alone; by default each pixel\n"
            "                         shows the maximum ADC over the 16 layers\n"
            "  -s, --scale S          pixels per voxel side, 1..%d (default 2: a panel of\n"
            "                         498 x 384 pixels); labels grow with it\n"
            "  -t, --title TEXT       a title above the panels\n"
            "  -d, --diff OTHER.npy   draw three panels side by side: WEDGE as A, OTHER as\n"
            "                         B, and their difference log2(B+1) - log2(A+1) in\n"
            "                         blue (B lower) - white (equal) - red (B higher),\n"
            "                         saturating beyond +-2. With an original as WEDGE and\n"
            "                         its reconstruction as OTHER, blue marks lost or\n"
            "                         underestimated charge, red spurious or overestimated.\n"
            "  -m, --model FILE       compress WEDGE with this model and decompress it (fp16\n"
            "                         code, in memory); draw original, reconstruction and\n"
            "                         their difference, as the paper's Figure 5\n"
            "      --sparse E         the same through the sparse codec at error bound E\n"
            "                         (docs/SPARSE.md; 0 is lossless: an empty difference)\n"
            "  -h, --help             this help\n"
            "\n"
            "Panels are titled with the files' names.\n"
            "Exit status: 0 success, 1 failure (unreadable or invalid wedge, cannot\n"
            "write OUT.png), 2 bad usage.\n",
            BCAE_PLOT_MAX_SCALE);
}

/* An option's whole-number value in [min, max]; on failure a usage error
 * naming the option and the allowed range, and -1. */
static int option_int(const char *verb, const char *name, const char *s, long min, long max,
                      int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max) {
        cli_usage_error(verb, "%s expects a whole number in [%ld, %ld], got '%s'", name, min,
                        max, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

int verb_plot(int argc, char **argv)
{
    const char *verb = argv[0];
    static const struct option long_options[] = {
        {"output", required_argument, NULL, 'o'}, {"layer", required_argument, NULL, 'l'},
        {"scale", required_argument, NULL, 's'},  {"title", required_argument, NULL, 't'},
        {"diff", required_argument, NULL, 'd'},   {"help", no_argument, NULL, 'h'},
        {"model", required_argument, NULL, 'm'},
        {"sparse", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL, *other = NULL, *model_path = NULL;
    double sparse_error = -1;
    bcae_plot_options opt;
    bcae_plot_options_default(&opt);

    /* Our own messages, not getopt's, so that every usage error has the
     * same form and points at --help. */
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":o:l:s:t:d:m:h", long_options, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'l':
            if (option_int(verb, "--layer", optarg, 0, BCAE_WEDGE_LAYERS - 1, &opt.layer) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 's':
            if (option_int(verb, "--scale", optarg, 1, BCAE_PLOT_MAX_SCALE, &opt.scale) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 't': opt.title = optarg; break;
        case 'd': other = optarg; break;
        case 'm': model_path = optarg; break;
        case 'S':
            if (cli_parse_double(verb, "--sparse", optarg, 0, BCAE_SPARSE_MAX_ERROR, &sparse_error))
                return CLI_EXIT_USAGE;
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt) return cli_usage_error(verb, "unknown option '-%c'", optopt);
            return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
    }
    int npos = argc - optind;
    if (npos == 0) return cli_usage_error(verb, "expected a WEDGE.npy to draw");
    if (npos > 1)
        return cli_usage_error(verb,
                               "expected one WEDGE.npy, got %d arguments (to compare two "
                               "wedges, give the second with --diff)",
                               npos);
    if (!output) return cli_usage_error(verb, "missing -o OUT.png");
    if ((other != NULL) + (model_path != NULL) + (sparse_error >= 0) > 1)
        return cli_usage_error(verb, "--diff, --model and --sparse exclude each other");
    int sparse = sparse_error >= 0;

    const char *paths[2] = {argv[optind], other};
    int n = other || model_path || sparse ? 2 : 1;
    opt.difference = n == 2;
    uint16_t *wedges[2] = {NULL, NULL};
    for (int i = 0; i < n; i++) {
        wedges[i] = malloc(BCAE_WEDGE_VOXELS * sizeof *wedges[i]);
        if (!wedges[i]) {
            free(wedges[0]);
            cli_error(verb, "out of memory");
            return CLI_EXIT_FAIL;
        }
    }
    bcae_error err;
    bcae_status st = BCAE_OK;
    for (int i = 0; i < (model_path || sparse ? 1 : n) && st == BCAE_OK; i++)
        st = bcae_wedge_load(paths[i], wedges[i], &err);
    if (st == BCAE_OK && sparse) {
        /* The round trip `bcae compress --codec sparse` makes, in memory. */
        uint8_t *buf = malloc(bcae_sparse_bound());
        size_t len;
        bcae_sparse_options so = {sparse_error, 0};
        if (!buf) st = BCAE_ERR_OUT_OF_MEMORY, snprintf(err.message, sizeof err.message, "out of memory");
        if (!st) st = bcae_sparse_encode(NULL, wedges[0], &so, buf, bcae_sparse_bound(), &len, NULL, &err);
        if (!st) st = bcae_sparse_decode(NULL, buf, len, wedges[1], NULL, &err);
        free(buf);
    }
    if (st == BCAE_OK && model_path) {
        /* The round trip the compressor makes: encode, fp16 code, decode. */
        bcae_model *model = NULL;
        bcae_codec *codec = NULL;
        bcae_codec_options copt = {.batch = 1};
        uint16_t *code = NULL;
        st = bcae_model_load(model_path, &model, &err);
        if (!st) st = bcae_codec_create(model, &copt, &codec, &err);
        if (!st) {
            code = malloc(bcae_model_code_elements(model) * sizeof *code);
            if (!code) st = BCAE_ERR_OUT_OF_MEMORY, snprintf(err.message, sizeof err.message, "out of memory");
        }
        if (!st) st = bcae_encode(codec, wedges[0], 1, code, &err);
        if (!st) st = bcae_decode(codec, code, 1, wedges[1], NULL, &err);
        free(code);
        bcae_codec_free(codec);
        bcae_model_free(model);
    }
    if (st == BCAE_OK) {
        const uint16_t *const views[2] = {wedges[0], wedges[1]};
        char sparse_title[64];
        snprintf(sparse_title, sizeof sparse_title, "sparse, E = %g", sparse_error);
        const char *const titles[2] = {model_path || sparse ? "original" : base_name(paths[0]),
                                       model_path ? "reconstruction"
                                       : sparse   ? sparse_title
                                       : other    ? base_name(other)
                                                  : NULL};
        st = bcae_plot_wedges(output, views, titles, n, &opt, &err);
    }
    free(wedges[0]);
    free(wedges[1]);
    return st == BCAE_OK ? CLI_EXIT_OK : cli_fail(verb, &err);
}
