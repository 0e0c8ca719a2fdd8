/*
 * Calibration of an int8 encoder chain: the wedges' activation ranges, or,
 * without wedges, those of one event of the built-in simulator (seed
 * BCAE_CALIBRATION_SEED), so that a model always gives the same int8
 * encoder. Shared by the codec and `bcae forward`.
 */
#ifndef BCAE_CODEC_CALIBRATE_H
#define BCAE_CODEC_CALIBRATE_H

#include "model/runner.h"

/* r: an inference runner whose chain is INT8 and not finished; host: a
 * buffer of batch * BCAE_MODEL_VOXELS floats. Feeds the wedges through
 * bcae2d_runner_calibrate batch by batch and finishes the chain. */
bcae_status codec_calibrate(nn_engine *e, bcae2d_runner *r, int batch, float *host,
                            const uint16_t *wedges, size_t n, int threads, bcae_error *err);

#endif
