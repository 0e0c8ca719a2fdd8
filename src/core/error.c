#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

bcae_status bcae_fail(bcae_error *err, bcae_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

void bcae_error_clear(bcae_error *err)
{
    if (err) {
        err->status = BCAE_OK;
        err->message[0] = '\0';
    }
}

const char *bcae_strerror(bcae_status status)
{
    switch (status) {
    case BCAE_OK: return "success";
    case BCAE_ERR_INVALID_ARGUMENT: return "invalid argument";
    case BCAE_ERR_IO: return "I/O error";
    case BCAE_ERR_FORMAT: return "malformed or truncated file";
    case BCAE_ERR_UNSUPPORTED: return "unsupported";
    case BCAE_ERR_OUT_OF_MEMORY: return "out of memory";
    case BCAE_ERR_SHAPE: return "wrong shape";
    case BCAE_ERR_RANGE: return "value out of range";
    case BCAE_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

#define BCAE_STR2(x) #x
#define BCAE_STR(x) BCAE_STR2(x)

const char *bcae_version(void)
{
    return BCAE_STR(BCAE_VERSION_MAJOR) "." BCAE_STR(BCAE_VERSION_MINOR) "." BCAE_STR(
        BCAE_VERSION_PATCH);
}
