/* Compress one wedge with libbcae and decompress it again: what a DAQ
 * program needs, without the CLI. Build: cc compress_one.c $(pkg-config --cflags --libs bcae)
 * Run:   ./compress_one MODEL.safetensors WEDGE.npy */
#include <stdio.h>
#include <stdlib.h>

#include <bcae.h>

int main(int argc, char **argv)
{
    if (argc != 3) return fprintf(stderr, "usage: %s MODEL.safetensors WEDGE.npy\n", argv[0]), 2;
    bcae_error err;
    bcae_model *model = NULL;
    bcae_codec *codec = NULL;
    /* One wedge per pass, all cores, fp32 encoder. */
    bcae_codec_options opt = {.batch = 1, .threads = 0, .precision = BCAE_PRECISION_FP32};
    static uint16_t adc[BCAE_WEDGE_VOXELS], back[BCAE_WEDGE_VOXELS];
    if (bcae_model_load(argv[1], &model, &err) || bcae_codec_create(model, &opt, &codec, &err) ||
        bcae_wedge_load(argv[2], adc, &err))
        return fprintf(stderr, "%s\n", err.message), 1;
    size_t n = bcae_model_code_elements(model);
    uint16_t *code = malloc(n * sizeof *code); /* IEEE fp16 bit patterns */
    if (!code || bcae_encode(codec, adc, 1, code, &err) || bcae_decode(codec, code, 1, back, NULL, &err))
        return fprintf(stderr, "%s\n", code ? err.message : "out of memory"), 1;
    bcae_metrics m;
    bcae_metrics_adc(adc, back, BCAE_WEDGE_VOXELS, &m);
    printf("%zu voxels -> %zu fp16 values (ratio %.3f); MAE %.4f, precision %.3f, recall %.3f\n",
           (size_t)BCAE_WEDGE_VOXELS, n, (double)BCAE_WEDGE_VOXELS / (double)n, m.mae, m.precision,
           m.recall);
    free(code);
    bcae_codec_free(codec);
    bcae_model_free(model);
    return 0;
}
