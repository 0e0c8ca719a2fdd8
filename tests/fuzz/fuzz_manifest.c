/* Fuzz target for dataset manifests (libFuzzer entry point; also driven by
 * fuzz_manifest_replay.c in every normal build): the input is written as
 * the `test.txt` of a folder (fuzz_file.h) and opened with
 * bcae_dataset_open, as `bcae compress DIR`, `bcae eval` and `bcae train`
 * do. Whatever the bytes, it must fail with a message naming the manifest,
 * or list paths that are each a valid record path (bcae_ctr_check_path:
 * relative, no '.', '..' or empty component, valid UTF-8, no control
 * character), so that what a manifest names can be stored in a container
 * and decompressed without leaving the output folder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "fuzz_file.h"
#include "io/container.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *manifest = fuzz_write_file("test.txt", data, size);
    const char *dir = fuzz_folder();
    bcae_dataset *ds;
    bcae_error err;
    if (bcae_dataset_open(dir, "test", &ds, &err) != BCAE_OK) {
        if (strncmp(err.message, dir, strlen(dir)) != 0) abort();
        return 0;
    }
    size_t n = bcae_dataset_size(ds);
    if (n == 0 || strcmp(bcae_dataset_root(ds), dir) != 0) abort();
    for (size_t i = 0; i < n; i++) {
        const char *p = bcae_dataset_relpath(ds, i);
        if (!p) abort();
        /* Valid UTF-8 and no control characters are not the manifest's
         * rules (a file name may be anything); the layout ones are. */
        size_t len = strlen(p);
        bcae_error perr;
        if (bcae_ctr_check_path(p, len, &perr) != BCAE_OK &&
            !strstr(perr.message, "UTF-8") && !strstr(perr.message, "control") &&
            !strstr(perr.message, "longer than"))
            abort();
        if (p[0] == '/' || strstr(p, "//") || !strcmp(p, ".") || !strncmp(p, "./", 2)) abort();
    }
    (void)manifest;
    bcae_dataset_close(ds);
    return 0;
}
