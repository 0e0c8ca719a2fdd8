/* Internal helpers for filling a caller's bcae_error. */
#ifndef BCAE_CORE_ERROR_H
#define BCAE_CORE_ERROR_H

#include "bcae.h"

#if defined(__GNUC__)
#define BCAE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BCAE_PRINTF(a, b)
#endif

/* Records status and a formatted message in err (if not NULL) and returns
 * status, so that callers can write `return bcae_fail(err, ...);`. */
bcae_status bcae_fail(bcae_error *err, bcae_status status, const char *fmt, ...)
    BCAE_PRINTF(3, 4);

/* Clears err to BCAE_OK with an empty message. */
void bcae_error_clear(bcae_error *err);

#endif
