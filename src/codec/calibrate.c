/* Calibration of an int8 encoder (see calibrate.h). */
#include <stdlib.h>
#include <string.h>

#include "codec/calibrate.h"
#include "core/error.h"

bcae_status codec_calibrate(nn_engine *e, bcae2d_runner *r, int batch, float *host,
                            const uint16_t *w, size_t n, int threads, bcae_error *err)
{
    uint16_t *own = NULL;
    if (!w) {
        own = malloc((size_t)BCAE_SIM_WEDGES_PER_EVENT * BCAE_WEDGE_VOXELS * sizeof *own);
        if (!own) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "codec: out of memory");
        bcae_simulator *sim = NULL;
        bcae_status s = bcae_simulator_create(NULL, &sim, err);
        if (!s) s = bcae_simulator_run(sim, BCAE_CALIBRATION_SEED, 0, own, threads, NULL, err);
        bcae_simulator_destroy(sim);
        if (s) {
            free(own);
            return s;
        }
        w = own;
        n = BCAE_SIM_WEDGES_PER_EVENT;
    }
    if (n == 0) {
        free(own);
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "codec: int8 calibration with no wedges");
    }
    for (size_t w0 = 0; w0 < n; w0 += (size_t)batch) {
        size_t nb = n - w0 < (size_t)batch ? n - w0 : (size_t)batch;
        memset(host, 0, (size_t)batch * BCAE_MODEL_VOXELS * sizeof(float));
        for (size_t i = 0; i < nb; i++) {
            const uint16_t *x = w + (w0 + i) * BCAE_WEDGE_VOXELS;
            for (size_t k = 0; k < BCAE_WEDGE_VOXELS; k++)
                if (x[k] > BCAE_ADC_MAX) {
                    free(own);
                    return bcae_fail(err, BCAE_ERR_RANGE,
                                     "calibration wedge %zu holds ADC %u at voxel %zu, above %d",
                                     w0 + i, x[k], k, BCAE_ADC_MAX);
                }
            bcae_wedge_to_model(x, host + i * BCAE_MODEL_VOXELS);
        }
        e->ops->from_nchw(e, host, bcae2d_runner_input(r));
        bcae2d_runner_calibrate(r);
    }
    free(own);
    return bcae2d_runner_finish(r, err);
}

