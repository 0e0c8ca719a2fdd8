/*
 * Creating the CPU backend's engine. Private to src/nn/ and to the tests of
 * the CPU backend itself: everything else creates engines through
 * nn_engine_create() (nn/engine.h), which calls this for BCAE_DEVICE_CPU.
 */
#ifndef BCAE_NN_CPU_ENGINE_H
#define BCAE_NN_CPU_ENGINE_H

#include "nn/engine.h"

/* A CPU engine with threads OpenMP threads (<= 0: the runtime's default)
 * and the knobs of opt (NULL: the defaults). */
bcae_status nn_cpu_engine_create_with(int threads, const nn_cpu_options *opt, nn_engine **out,
                                      bcae_error *err);

/* The same with the default knobs. */
static inline bcae_status nn_cpu_engine_create(int threads, nn_engine **out, bcae_error *err)
{
    return nn_cpu_engine_create_with(threads, NULL, out, err);
}

#endif
