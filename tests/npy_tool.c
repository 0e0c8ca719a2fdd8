/*
 * npy_tool — drives the .npy reader and writer from tests/npy_interop.py,
 * which checks them against NumPy.
 *
 *   npy_tool dump FILE...          one line per file:
 *       PATH <TAB> ok <TAB> DTYPE <TAB> D0,D1,... <TAB> V0 V1 ...
 *       PATH <TAB> error <TAB> STATUS <TAB> MESSAGE
 *     integers are printed exactly, floats with enough digits to round-trip.
 *   npy_tool convert IN OUT f4|u2  reads IN (any dtype/order/version) and
 *     writes its values as <f4 or <u2 with bcae_npy_write.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"

static void print_value(const bcae_array *a, size_t i)
{
    const void *p = a->data;
    switch (a->dtype) {
    case BCAE_DTYPE_BOOL: printf("%d", ((const uint8_t *)p)[i] != 0); break;
    case BCAE_DTYPE_U8: printf("%u", ((const uint8_t *)p)[i]); break;
    case BCAE_DTYPE_I8: printf("%d", ((const int8_t *)p)[i]); break;
    case BCAE_DTYPE_U16: printf("%u", ((const uint16_t *)p)[i]); break;
    case BCAE_DTYPE_I16: printf("%d", ((const int16_t *)p)[i]); break;
    case BCAE_DTYPE_U32: printf("%" PRIu32, ((const uint32_t *)p)[i]); break;
    case BCAE_DTYPE_I32: printf("%" PRId32, ((const int32_t *)p)[i]); break;
    case BCAE_DTYPE_U64: printf("%" PRIu64, ((const uint64_t *)p)[i]); break;
    case BCAE_DTYPE_I64: printf("%" PRId64, ((const int64_t *)p)[i]); break;
    default: printf("%.17g", bcae_array_get_f64(a, i)); break;
    }
}

static int dump(const char *path)
{
    bcae_array a;
    bcae_error err;
    bcae_status st = bcae_npy_read(path, &a, &err);
    if (st) {
        printf("%s\terror\t%s\t%s\n", path, bcae_strerror(st), err.message);
        return 0;
    }
    printf("%s\tok\t%s\t", path, bcae_dtype_name(a.dtype));
    for (int d = 0; d < a.ndim; d++) printf(d ? ",%zu" : "%zu", a.shape[d]);
    printf("\t");
    size_t n = bcae_array_count(&a);
    for (size_t i = 0; i < n; i++) {
        if (i) putchar(' ');
        print_value(&a, i);
    }
    putchar('\n');
    bcae_array_free(&a);
    return 0;
}

static int convert(const char *in, const char *out, const char *to)
{
    bcae_dtype dt;
    if (strcmp(to, "f4") == 0) dt = BCAE_DTYPE_F32;
    else if (strcmp(to, "u2") == 0) dt = BCAE_DTYPE_U16;
    else {
        fprintf(stderr, "npy_tool: convert to f4 or u2, not %s\n", to);
        return 2;
    }
    bcae_array a, b;
    bcae_error err;
    if (bcae_npy_read(in, &a, &err) != BCAE_OK ||
        bcae_array_alloc(&b, dt, a.ndim, a.shape, &err) != BCAE_OK) {
        fprintf(stderr, "npy_tool: %s\n", err.message);
        return 1;
    }
    size_t n = bcae_array_count(&a);
    for (size_t i = 0; i < n; i++) {
        double v = bcae_array_get_f64(&a, i);
        if (dt == BCAE_DTYPE_F32) ((float *)b.data)[i] = (float)v;
        else ((uint16_t *)b.data)[i] = (uint16_t)(v >= 0 && v <= 65535 ? v : 0);
    }
    bcae_status st = bcae_npy_write(out, &b, &err);
    bcae_array_free(&a);
    bcae_array_free(&b);
    if (st) {
        fprintf(stderr, "npy_tool: %s\n", err.message);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "dump") == 0) {
        for (int i = 2; i < argc; i++) dump(argv[i]);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (argc == 5 && strcmp(argv[1], "convert") == 0) return convert(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: npy_tool dump FILE... | npy_tool convert IN OUT f4|u2\n");
    return 2;
}
