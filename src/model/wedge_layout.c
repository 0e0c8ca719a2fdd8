/* TPC wedges in the model layout: (layer, azimuth, z padded to 256) of
 * log2(ADC+1), which BCAE-2D reads and writes. Here rather than in io/ or
 * codec/ so that the model layer depends on neither. */
#include <math.h>
#include <stdint.h>

#include "bcae.h"

void bcae_wedge_to_model(const uint16_t *adc, float *x)
{
    /* log2 of 1024 possible values, once per call: 1024 log2 calls against
     * ~786k voxels, and no shared mutable table. Values above 1023 cannot
     * come from a validated wedge; they are clamped rather than read past
     * the table. */
    float table[BCAE_ADC_MAX + 1];
    for (int a = 0; a <= BCAE_ADC_MAX; a++) table[a] = (float)log2((double)a + 1.0);
    /* Writes x in order (layer, azimuth, z); the reads stride by 16. */
    for (size_t l = 0; l < BCAE_WEDGE_LAYERS; l++)
        for (size_t az = 0; az < BCAE_WEDGE_AZIMUTH; az++) {
            const uint16_t *src = adc + az * BCAE_WEDGE_Z * BCAE_WEDGE_LAYERS + l;
            float *dst = x + (l * BCAE_WEDGE_AZIMUTH + az) * BCAE_MODEL_Z;
            for (size_t z = 0; z < BCAE_WEDGE_Z; z++) {
                unsigned v = src[z * BCAE_WEDGE_LAYERS];
                dst[z] = table[v <= BCAE_ADC_MAX ? v : BCAE_ADC_MAX];
            }
            for (size_t z = BCAE_WEDGE_Z; z < BCAE_MODEL_Z; z++) dst[z] = 0.0f;
        }
}

/* round(2^v - 1) with ties to even (torch.round's rule), clamped to the ADC range. */
static uint16_t model_to_adc(float v)
{
    /* NaN, and v <= 0 (2^v - 1 in (-1, 0]): most voxels, so no exp2 for them. */
    if (!(v > 0.0f)) return 0;
    if (v >= 10.0f) return BCAE_ADC_MAX; /* 2^10 - 1 = 1023, and it only grows */
    double y = exp2((double)v) - 1.0;
    double r = floor(y);
    double frac = y - r;
    if (frac > 0.5 || (frac == 0.5 && fmod(r, 2.0) != 0.0)) r += 1.0;
    if (r <= 0.0) return 0;
    if (r >= BCAE_ADC_MAX) return BCAE_ADC_MAX;
    return (uint16_t)r;
}

void bcae_wedge_from_model(const float *x, uint16_t *adc)
{
    /* Writes adc in file order (azimuth, z, layer). */
    for (size_t az = 0; az < BCAE_WEDGE_AZIMUTH; az++)
        for (size_t z = 0; z < BCAE_WEDGE_Z; z++) {
            uint16_t *dst = adc + (az * BCAE_WEDGE_Z + z) * BCAE_WEDGE_LAYERS;
            for (size_t l = 0; l < BCAE_WEDGE_LAYERS; l++)
                dst[l] = model_to_adc(x[(l * BCAE_WEDGE_AZIMUTH + az) * BCAE_MODEL_Z + z]);
        }
}
