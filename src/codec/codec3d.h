/*
 * The codec's 3D half (BCAE++, BCAE-HT, BCAE): wedge <-> model layouts and
 * encode / decode through a bcae3d_runner. codec.c dispatches here for 3D
 * models; bcae forward and bcae bench use the layout helpers.
 */
#ifndef BCAE_CODEC_CODEC3D_H
#define BCAE_CODEC_CODEC3D_H

#include "model/runner3d.h"

/* Floats of one wedge in the model's input layout (prod of in_dims). */
size_t bcae3d_input_floats(const bcae3d_model *m);
/* Output floats of one wedge once cropped (always BCAE_WEDGE_VOXELS). */
#define BCAE3D_OUTPUT_FLOATS ((size_t)BCAE_WEDGE_VOXELS)

/* adc (file layout) -> the model input: log2(ADC+1) or raw ADC (cfg.log_input),
 * in (layer, azimuth, z padded to 256) for BCAE++/HT, in the file's own
 * (azimuth, z, layer) for BCAE. */
void bcae3d_wedge_to_input(const bcae3d_model *m, const uint16_t *adc, float *x);
/* A model-layout tensor (one channel) cropped to its output shape:
 * (16, 192, 249) for BCAE++/HT, (192, 249, 16) for BCAE. */
void bcae3d_crop_output(const bcae3d_model *m, const float *x, float *out);
/* A reconstruction in the model's layout and units -> raw ADC in the file
 * layout, rounded and clamped to [0, 1023] (NaN -> 0), and/or log2(ADC+1)
 * of the unrounded value (file layout). Either output may be NULL. */
void bcae3d_output_to_wedge(const bcae3d_model *m, const float *x, uint16_t *adc, float *log_adc);

typedef struct codec3d codec3d;
bcae_status codec3d_create(const bcae3d_model *m, int batch, int threads, codec3d **out,
                           bcae_error *err);
void codec3d_free(codec3d *c);
bcae_status codec3d_encode(codec3d *c, const uint16_t *adc, size_t n, uint16_t *codes,
                           bcae_error *err);
bcae_status codec3d_decode(codec3d *c, const uint16_t *codes, size_t n, uint16_t *adc,
                           float *log_adc, bcae_error *err);

#endif
