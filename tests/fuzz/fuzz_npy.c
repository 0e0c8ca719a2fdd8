/* Fuzz target for the .npy reader (libFuzzer entry point; also driven by
 * fuzz_replay.c in every normal build). Whatever the bytes, the reader must
 * return a status whose message names the input, and on success hand back
 * an array whose every element can be read: the sanitizers turn any stray
 * access into a crash.
 *
 * Built plain, it fuzzes bcae_npy_read_buffer; built with BCAE_FUZZ_FILE,
 * bcae_npy_read on a file (fuzz_file.h) and then, for an array of a
 * wedge's shape, bcae_wedge_load, which is what `bcae inspect` and
 * `bcae compress` call. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#ifdef BCAE_FUZZ_FILE
#include "fuzz_file.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bcae_array a;
    bcae_error err;
#ifdef BCAE_FUZZ_FILE
    const char *name = fuzz_write_file("fuzz.npy", data, size);
    bcae_status st = bcae_npy_read(name, &a, &err);
#else
    const char *name = "fuzz.npy";
    bcae_status st = bcae_npy_read_buffer(data, size, name, &a, &err);
#endif
    if (st != BCAE_OK) {
        /* The message must be a terminated string that names the input. */
        if (a.data || strncmp(err.message, name, strlen(name)) != 0) abort();
        return 0;
    }
    size_t count = bcae_array_count(&a);
    volatile double sink = 0;
    for (size_t i = 0; i < count; i++) sink += bcae_array_get_f64(&a, i);
    (void)sink;
#ifdef BCAE_FUZZ_FILE
    if (a.ndim == 3 && a.shape[0] == BCAE_WEDGE_AZIMUTH && a.shape[1] == BCAE_WEDGE_Z &&
        a.shape[2] == BCAE_WEDGE_LAYERS) {
        uint16_t *adc = malloc(BCAE_WEDGE_VOXELS * sizeof *adc);
        if (!adc) abort();
        if (bcae_wedge_load(name, adc, &err) != BCAE_OK &&
            strncmp(err.message, name, strlen(name)) != 0)
            abort();
        free(adc);
    }
#endif
    bcae_array_free(&a);
    return 0;
}
