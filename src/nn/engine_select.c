/* Choosing a backend: bcae_device names and parsing, the engine for a
 * device choice, and the CUDA stubs of a build without CUDA. */
#include <string.h>

#include "core/error.h"
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

bcae_status nn_cuda_engine_create(int device, nn_engine **out, bcae_error *err)
{
    *out = NULL;
    return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "built without CUDA (-DBCAE_CUDA=ON)");
}
#endif

bcae_status nn_engine_create_for(bcae_device dev, int threads, nn_engine **out,
                                 int *fell_back, bcae_error *err)
{
    *out = NULL;
    if (fell_back) *fell_back = 0;
    switch (dev) {
    case BCAE_DEVICE_CPU: return nn_cpu_engine_create(threads, out, err);
    case BCAE_DEVICE_CUDA: return nn_cuda_engine_create(0, out, err);
    case BCAE_DEVICE_AUTO:
        if (nn_cuda_engine_create(0, out, NULL) == BCAE_OK) return BCAE_OK;
        if (fell_back) *fell_back = 1;
        return nn_cpu_engine_create(threads, out, err);
    }
    return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "unknown device %d", (int)dev);
}
