/* Fuzz target for the safetensors reader (libFuzzer entry point; also
 * driven by fuzz_safetensors_replay.c in every normal build). Whatever the
 * bytes, the reader must return a status with a terminated message that
 * names the input, and on success hand back tensors whose every byte can be
 * read, that the name index finds, whose sizes agree with their shapes,
 * that convert and fingerprint, and whose checksum (when the file has one)
 * is the fingerprint: the sanitizers turn any stray access into a crash.
 *
 * Built plain, it fuzzes bcae_st_read_buffer; built with BCAE_FUZZ_FILE,
 * bcae_st_read on a file (fuzz_file.h), the entry point every model and
 * checkpoint load goes through. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "core/sha256.h"
#include "io/safetensors.h"
#ifdef BCAE_FUZZ_FILE
#include "fuzz_file.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bcae_st_file f;
    bcae_error err;
#ifdef BCAE_FUZZ_FILE
    const char *name = fuzz_write_file("fuzz.safetensors", data, size);
    bcae_status st = bcae_st_read(name, &f, &err);
#else
    const char *name = "fuzz.safetensors";
    bcae_status st = bcae_st_read_buffer(data, size, name, &f, &err);
#endif
    if (st != BCAE_OK) {
        if (f.count || f.blob || strncmp(err.message, name, strlen(name)) != 0) abort();
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
        if (!bcae_st_dtype_name(t->dtype)) abort();
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
    /* A file that carries a checksum was read only if it matched. */
    const char *sum = bcae_st_meta(&f, BCAE_ST_CHECKSUM_KEY);
    if (sum) {
        char hex[65];
        bcae_sha256_hex(fp, hex);
        if (strcmp(hex, sum) != 0) abort();
    }
    sink += fp[0];
    (void)sink;
    bcae_st_free(&f);
    return 0;
}
