/*
 * Creating the CUDA backend's engine. Private to src/nn/: everything else
 * creates engines through nn_engine_create() (nn/engine.h). A build without
 * CUDA gets engine_select.c's stand-in, which says so.
 */
#ifndef BCAE_NN_CUDA_ENGINE_H
#define BCAE_NN_CUDA_ENGINE_H

#include "nn/engine.h"

/* The engine on device opt->cuda.device. BCAE_ERR_UNSUPPORTED "no CUDA
 * device: ..." when the runtime finds none (or not that one); with one, the
 * backend is still partial (docs/CUDA.md): BCAE_ERR_UNSUPPORTED "... not
 * implemented yet ..." unless opt->allow_partial, which gets the engine
 * whose required operations all answer BCAE_ERR_UNSUPPORTED. */
bcae_status nn_cuda_engine_create(const nn_engine_options *opt, nn_engine **out,
                                  bcae_error *err);

/* 1 when this build has the CUDA backend compiled in, else 0. */
int nn_cuda_compiled(void);

#endif
