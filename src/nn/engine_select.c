/* Choosing a backend: bcae_device names and parsing, the one selector that
 * creates every engine, and the CUDA stand-ins of a build without CUDA. */
#include <string.h>

#include "core/error.h"
#include "nn/cpu/cpu_engine.h"
#include "nn/cuda/cuda_engine.h"
#include "nn/engine.h"

const char *bcae_device_name(bcae_device d)
{
    switch (d) {
    case BCAE_DEVICE_AUTO: return "auto";
    case BCAE_DEVICE_CPU: return "cpu";
    case BCAE_DEVICE_CUDA: return "cuda";
    }
    return NULL;
}

bcae_status bcae_device_parse(const char *name, bcae_device *out, bcae_error *err)
{
    static const bcae_device all[] = {BCAE_DEVICE_AUTO, BCAE_DEVICE_CPU, BCAE_DEVICE_CUDA};
    for (size_t i = 0; name && i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(name, bcae_device_name(all[i])) == 0) {
            *out = all[i];
            return BCAE_OK;
        }
    }
    return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                     "unknown device '%s' (cpu, cuda or auto)", name ? name : "(null)");
}

#ifndef BCAE_HAVE_CUDA
int nn_cuda_compiled(void)
{
    return 0;
}

bcae_status nn_cuda_engine_create(const nn_engine_options *opt, nn_engine **out,
                                  bcae_error *err)
{
    (void)opt;
    *out = NULL;
    return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "built without CUDA (-DBCAE_CUDA=ON)");
}
#endif

int nn_engine_compiled(bcae_device d)
{
    switch (d) {
    case BCAE_DEVICE_AUTO:
    case BCAE_DEVICE_CPU: return 1;
    case BCAE_DEVICE_CUDA: return nn_cuda_compiled();
    }
    return 0;
}

bcae_status nn_engine_create(const nn_engine_options *opt, nn_engine **out, int *fell_back,
                             bcae_error *err)
{
    static const nn_engine_options defaults = {0};
    if (!opt) opt = &defaults;
    *out = NULL;
    if (fell_back) *fell_back = 0;
    switch (opt->device) {
    case BCAE_DEVICE_CPU: return nn_cpu_engine_create_with(opt->threads, &opt->cpu, out, err);
    case BCAE_DEVICE_CUDA: return nn_cuda_engine_create(opt, out, err);
    case BCAE_DEVICE_AUTO: {
        /* AUTO is for real work: never a partial backend. */
        nn_engine_options cuda = *opt;
        cuda.allow_partial = 0;
        if (nn_cuda_engine_create(&cuda, out, NULL) == BCAE_OK) return BCAE_OK;
        if (fell_back) *fell_back = 1;
        return nn_cpu_engine_create_with(opt->threads, &opt->cpu, out, err);
    }
    }
    return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "unknown device %d", (int)opt->device);
}

bcae_status nn_engine_error(const nn_engine *e, bcae_status status, bcae_error *err)
{
    if (!err || status == BCAE_OK) return status;
    if (e && e->last_error.status == status && e->last_error.message[0]) {
        *err = e->last_error;
        return status;
    }
    return bcae_fail(err, status, "%s: an operation failed (%s)", e ? e->ops->name : "engine",
                     bcae_strerror(status));
}
