/* Fuzz target for the .npy reader (libFuzzer entry point; also driven by
 * fuzz_replay.c in every normal build). Whatever the bytes, the reader must
 * return a status, and on success hand back an array whose every element
 * can be read: the sanitizers turn any stray access into a crash. */
#include <stddef.h>
#include <stdint.h>

#include "bcae.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bcae_array a;
    bcae_error err;
    if (bcae_npy_read_buffer(data, size, "fuzz.npy", &a, &err) != BCAE_OK) {
        /* The message must be a terminated string. */
        volatile size_t n = 0;
        while (err.message[n]) n++;
        return 0;
    }
    size_t count = bcae_array_count(&a);
    volatile double sink = 0;
    for (size_t i = 0; i < count; i++) sink += bcae_array_get_f64(&a, i);
    (void)sink;
    bcae_array_free(&a);
    return 0;
}
