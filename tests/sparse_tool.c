/*
 * sparse_tool: the sparse codec on .npy files, for tests/sparse_python_test.py
 * (which checks the Python decoder written from docs/SPARSE.md against ours).
 *
 *   sparse_tool encode WEDGE.npy MAX_ERROR OUT.bcsp   any uint16 (192, 249, 16) array
 *   sparse_tool decode IN.bcsp OUT.npy
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"

#define V ((size_t)BCAE_WEDGE_VOXELS)

static int fail(const char *what, const bcae_error *err)
{
    fprintf(stderr, "sparse_tool: %s: %s\n", what, err ? err->message : "");
    return 1;
}

int main(int argc, char **argv)
{
    bcae_error err;
    if (argc == 5 && !strcmp(argv[1], "encode")) {
        bcae_array a;
        if (bcae_npy_read(argv[2], &a, &err)) return fail(argv[2], &err);
        if (a.dtype != BCAE_DTYPE_U16 || bcae_array_count(&a) != V) return fail("not a uint16 wedge", NULL);
        bcae_sparse_options opt = {strtod(argv[3], NULL), 0};
        uint8_t *buf = malloc(bcae_sparse_bound());
        size_t len;
        if (bcae_sparse_encode(NULL, a.data, &opt, buf, bcae_sparse_bound(), &len, NULL, &err))
            return fail("encode", &err);
        FILE *fp = fopen(argv[4], "wb");
        if (!fp || fwrite(buf, 1, len, fp) != len || fclose(fp)) return fail(argv[4], NULL);
        bcae_array_free(&a);
        free(buf);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "decode")) {
        FILE *fp = fopen(argv[2], "rb");
        if (!fp) return fail(argv[2], NULL);
        uint8_t *buf = malloc(bcae_sparse_bound() + 1);
        size_t len = fread(buf, 1, bcae_sparse_bound() + 1, fp);
        fclose(fp);
        bcae_array a;
        size_t shape[3] = {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
        if (bcae_array_alloc(&a, BCAE_DTYPE_U16, 3, shape, &err)) return fail("alloc", &err);
        if (bcae_sparse_decode(NULL, buf, len, a.data, NULL, &err)) return fail(argv[2], &err);
        if (bcae_npy_write(argv[3], &a, &err)) return fail(argv[3], &err);
        bcae_array_free(&a);
        free(buf);
        return 0;
    }
    fprintf(stderr, "usage: sparse_tool encode WEDGE.npy MAX_ERROR OUT.bcsp | decode IN.bcsp OUT.npy\n");
    return 2;
}
