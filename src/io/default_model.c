/* Where the shipped default model is: the search the CLI, the Python
 * package and the HDF5 filter plugin share, so that all three load the same
 * weights when none is named. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

/* Fixed at build time by CMakeLists.txt (src/io/default_model.c only). A
 * build without them (another build system) has no built-in default. */
#ifndef BCAE_INSTALLED_MODEL
#define BCAE_INSTALLED_MODEL ""
#endif
#ifndef BCAE_SOURCE_MODEL
#define BCAE_SOURCE_MODEL ""
#endif

static bcae_status copy_path(const char *path, char *out, size_t size, bcae_error *err)
{
    size_t n = strlen(path);
    if (n + 1 > size)
        return bcae_fail(err, BCAE_ERR_RANGE, "default model path \"%s\" needs %zu bytes, got %zu",
                         path, n + 1, size);
    memcpy(out, path, n + 1);
    return BCAE_OK;
}

bcae_status bcae_default_model_path(char *out, size_t size, bcae_error *err)
{
    if (!out || size == 0)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "default model path: no output buffer");
    out[0] = '\0';
    /* The variable wins even when the file is missing: a user who names a
     * model gets an error about that model, never a silent fallback. */
    const char *env = getenv("BCAE_MODEL");
    if (env && *env) return copy_path(env, out, size, err);
    static const char *const candidates[] = {BCAE_INSTALLED_MODEL, BCAE_SOURCE_MODEL};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (candidates[i][0] && access(candidates[i], R_OK) == 0)
            return copy_path(candidates[i], out, size, err);
    return bcae_fail(err, BCAE_ERR_IO,
                     "no default model found (looked for $BCAE_MODEL, \"%s\", \"%s\")",
                     BCAE_INSTALLED_MODEL, BCAE_SOURCE_MODEL);
}
