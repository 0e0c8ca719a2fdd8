/*
 * The CUDA backend (issue 9): only the device probe exists so far. It is
 * compiled when the build is configured with -DBCAE_CUDA=ON and links the
 * CUDA runtime, but none of the nn_ops operations (cuDNN convolutions,
 * pooling/upsampling/loss kernels, fused encoder chains) is written: they
 * need a GPU to develop and to check against the CPU backend. So that no
 * caller ever receives an engine whose operation table is empty, creating
 * an engine fails cleanly whether or not a device is present.
 */
#include <cuda_runtime_api.h>

#include "core/error.h"
#include "nn/engine.h"

int nn_cuda_compiled(void)
{
    return 1;
}

bcae_status nn_cuda_engine_create(int device, nn_engine **out, bcae_error *err)
{
    *out = NULL;
    int count = 0;
    cudaError_t ce = cudaGetDeviceCount(&count);
    if (ce != cudaSuccess)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "no CUDA device: %s", cudaGetErrorString(ce));
    if (count <= 0)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "no CUDA device: the runtime reports none");
    if (device < 0 || device >= count)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "no CUDA device: device %d requested, %d present", device, count);
    struct cudaDeviceProp prop;
    ce = cudaGetDeviceProperties(&prop, device);
    if (ce != cudaSuccess)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "no CUDA device: %s", cudaGetErrorString(ce));
    return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                     "the CUDA backend's operations are not implemented in this build "
                     "(see issue 9); device %d is %s (compute capability %d.%d)",
                     device, prop.name, prop.major, prop.minor);
}
