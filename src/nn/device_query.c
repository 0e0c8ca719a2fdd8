/* What the public API says about devices: whether a backend is compiled in
 * and whether it works here, so that callers (the CLI's --device) decide
 * without reaching into the engine seam. */
#include "core/error.h"
#include "nn/engine.h"

int bcae_device_compiled(bcae_device d)
{
    switch (d) {
    case BCAE_DEVICE_AUTO:
    case BCAE_DEVICE_CPU: return 1;
    case BCAE_DEVICE_CUDA: return nn_engine_compiled(BCAE_DEVICE_CUDA);
    }
    return 0;
}

bcae_status bcae_device_available(bcae_device d, bcae_error *err)
{
    switch (d) {
    case BCAE_DEVICE_AUTO:
    case BCAE_DEVICE_CPU: return BCAE_OK;
    case BCAE_DEVICE_CUDA: {
        /* Starting the backend is the only reliable probe: a driver may be
         * installed with no device, or a device be present but unusable. */
        nn_engine *e = NULL;
        nn_engine_options eo = {.device = BCAE_DEVICE_CUDA};
        bcae_status st = nn_engine_create(&eo, &e, NULL, err);
        if (st == BCAE_OK) nn_engine_destroy(e);
        return st;
    }
    }
    return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "unknown device %d", (int)d);
}
