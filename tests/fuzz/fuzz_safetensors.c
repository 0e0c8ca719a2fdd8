/* Fuzz target for the safetensors reader (libFuzzer entry point; also
 * driven by fuzz_safetensors_replay.c in every normal build). Whatever the
 * bytes, the reader must return a status with a terminated message, and on
 * success hand back tensors whose every byte can be read, that the name
 * index finds, whose sizes agree with their shapes, and that convert and
 * fingerprint: the sanitizers turn any stray access into a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bcae_st_file f;
    bcae_error err;
    if (bcae_st_read_buffer(data, size, "fuzz.safetensors", &f, &err) != BCAE_OK) {
        volatile size_t n = 0;
        while (err.message[n]) n++;
        return 0;
    }
    volatile unsigned sink = 0;
    size_t data_bytes = 0;
    for (size_t i = 0; i < f.count; i++) {
        const bcae_st_tensor *t = &f.tensors[i];
        for (size_t k = 0; k < t->nbytes; k++) sink += t->data[k];
        /* What the file claims is consistent, and the index finds it. */
        if (t->nbytes != bcae_st_count(t) * bcae_st_itemsize(t->dtype)) abort();
        if (bcae_st_find(&f, t->name) != t) abort();
        if (t->nbytes && (uintptr_t)t->data % bcae_st_itemsize(t->dtype)) abort();
        data_bytes += t->nbytes;
        /* The tensors tile the data, so this allocation is file-sized. */
        float *out = malloc(bcae_st_count(t) * sizeof *out + 1);
        if (out && bcae_st_to_f32(t, out, &err) == BCAE_OK)
            for (size_t k = 0; k < bcae_st_count(t); k++) sink += out[k] != out[k];
        free(out);
    }
    if (data_bytes > size) abort();
    for (size_t i = 0; i < f.nmeta; i++)
        if (bcae_st_meta(&f, f.meta_keys[i]) == NULL) abort();
    uint8_t fp[32];
    bcae_st_fingerprint(&f, fp);
    sink += fp[0];
    (void)sink;
    bcae_st_free(&f);
    return 0;
}
