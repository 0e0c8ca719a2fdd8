/* Wedges: validation (shape, range, dtype), save/load, and the file <->
 * model layouts, checked element by element. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bcae.h"
#include "check.h"

#define AZ BCAE_WEDGE_AZIMUTH
#define NZ BCAE_WEDGE_Z
#define NL BCAE_WEDGE_LAYERS

static size_t file_index(size_t az, size_t z, size_t l)
{
    return (az * NZ + z) * NL + l;
}

static size_t model_index(size_t l, size_t az, size_t z)
{
    return (l * AZ + az) * BCAE_MODEL_Z + z;
}

/* A deterministic zero-suppressed pattern: 0 or a value in [64, 1023]. */
static uint16_t pattern(size_t i)
{
    uint32_t h = (uint32_t)i * 2654435761u;
    h ^= h >> 15;
    return (h % 9 == 0) ? (uint16_t)(64 + h % 960) : 0;
}

static void make_wedge_array(bcae_array *a, bcae_dtype dt)
{
    const size_t shape[3] = {AZ, NZ, NL};
    bcae_error err;
    CHECK(bcae_array_alloc(a, dt, 3, shape, &err) == BCAE_OK);
}

static void test_from_array_dtypes(void)
{
    /* Every dtype is accepted when its values are valid ADC counts. */
    for (int dt = 0; dt < BCAE_DTYPE_COUNT; dt++) {
        bcae_array a;
        make_wedge_array(&a, (bcae_dtype)dt);
        size_t item = bcae_dtype_size((bcae_dtype)dt);
        unsigned char *p = a.data;
        for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) {
            /* What each dtype can hold: 0/1 for bool, <= 127 for i8, 255 for u8. */
            unsigned v = pattern(i);
            if (dt == BCAE_DTYPE_BOOL) v = v != 0;
            else if (dt == BCAE_DTYPE_I8) v %= 128;
            else if (dt == BCAE_DTYPE_U8) v %= 256;
            double d = v;
            switch ((bcae_dtype)dt) {
            case BCAE_DTYPE_F16: {
                /* v < 2048 is exact in binary16; build the bits by hand. */
                uint16_t h = 0;
                if (v) {
                    int e = 0;
                    while ((v >> (e + 1)) != 0) e++;
                    h = (uint16_t)((e + 15) << 10 | ((v << (10 - e)) & 0x3ff));
                }
                memcpy(p + i * 2, &h, 2);
                break;
            }
            case BCAE_DTYPE_F32: {
                float f = (float)d;
                memcpy(p + i * 4, &f, 4);
                break;
            }
            case BCAE_DTYPE_F64: memcpy(p + i * 8, &d, 8); break;
            default: {
                uint64_t u = v;
                /* Little-endian hosts only: the low bytes come first. */
                memcpy(p + i * item, &u, item);
            }
            }
        }
        uint16_t *adc = malloc(BCAE_WEDGE_VOXELS * sizeof *adc);
        bcae_error err;
        bcae_status st = bcae_wedge_from_array(&a, "w.npy", adc, &err);
        CHECK_MSG(st == BCAE_OK, "dtype %s: %s", bcae_dtype_name((bcae_dtype)dt), err.message);
        int same = 1;
        for (size_t i = 0; i < BCAE_WEDGE_VOXELS && st == BCAE_OK; i++) {
            unsigned v = pattern(i);
            if (dt == BCAE_DTYPE_BOOL) v = v != 0;
            else if (dt == BCAE_DTYPE_I8) v %= 128;
            else if (dt == BCAE_DTYPE_U8) v %= 256;
            same &= adc[i] == v;
        }
        CHECK_MSG(same, "dtype %s: values differ", bcae_dtype_name((bcae_dtype)dt));
        free(adc);
        bcae_array_free(&a);
    }
}

static void test_from_array_errors(void)
{
    uint16_t *adc = malloc(BCAE_WEDGE_VOXELS * sizeof *adc);
    bcae_error err;
    bcae_array a;

    /* Wrong shapes name the file and the shape found. */
    static const size_t shapes[][4] = {{192, 249, 15}, {249, 192, 16}, {192, 249}, {192, 249, 16, 1}};
    static const int ndims[] = {3, 3, 2, 4};
    static const char *shown[] = {"(192, 249, 15)", "(249, 192, 16)", "(192, 249)", "(192, 249, 16, 1)"};
    for (int k = 0; k < 4; k++) {
        CHECK(bcae_array_alloc(&a, BCAE_DTYPE_U16, ndims[k], shapes[k], &err) == BCAE_OK);
        CHECK(bcae_wedge_from_array(&a, "shape.npy", adc, &err) == BCAE_ERR_SHAPE);
        CHECK(err.status == BCAE_ERR_SHAPE);
        CHECK_MSG(strstr(err.message, "shape.npy") && strstr(err.message, shown[k]), "%s",
                  err.message);
        bcae_array_free(&a);
    }
    size_t seven = 7;
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_U16, 1, &seven, &err) == BCAE_OK);
    CHECK(bcae_wedge_from_array(&a, "one.npy", adc, &err) == BCAE_ERR_SHAPE);
    CHECK_MSG(strstr(err.message, "(7,)"), "%s", err.message);
    bcae_array_free(&a);

    /* Out-of-range values name the file, the value and its (azimuth, z, layer). */
    const size_t at = file_index(5, 200, 11);
    make_wedge_array(&a, BCAE_DTYPE_U16);
    ((uint16_t *)a.data)[at] = 1024;
    CHECK(bcae_wedge_from_array(&a, "range.npy", adc, &err) == BCAE_ERR_RANGE);
    CHECK_MSG(strstr(err.message, "range.npy") && strstr(err.message, "1024") &&
                  strstr(err.message, "azimuth 5, z 200, layer 11"),
              "%s", err.message);
    ((uint16_t *)a.data)[at] = 1023;
    CHECK(bcae_wedge_from_array(&a, "range.npy", adc, &err) == BCAE_OK);
    CHECK(adc[at] == 1023);
    bcae_array_free(&a);

    make_wedge_array(&a, BCAE_DTYPE_I32);
    ((int32_t *)a.data)[file_index(191, 248, 15)] = -1;
    CHECK(bcae_wedge_from_array(&a, "neg.npy", adc, &err) == BCAE_ERR_RANGE);
    CHECK_MSG(strstr(err.message, "-1 at (azimuth 191, z 248, layer 15)"), "%s", err.message);
    bcae_array_free(&a);

    make_wedge_array(&a, BCAE_DTYPE_I64);
    ((int64_t *)a.data)[0] = INT64_MIN;
    CHECK(bcae_wedge_from_array(&a, "min.npy", adc, &err) == BCAE_ERR_RANGE);
    CHECK_MSG(strstr(err.message, "-9223372036854775808"), "%s", err.message);
    bcae_array_free(&a);

    make_wedge_array(&a, BCAE_DTYPE_U64);
    ((uint64_t *)a.data)[1] = UINT64_MAX;
    CHECK(bcae_wedge_from_array(&a, "max.npy", adc, &err) == BCAE_ERR_RANGE);
    CHECK_MSG(strstr(err.message, "18446744073709551615 at (azimuth 0, z 0, layer 1)"), "%s",
              err.message);
    bcae_array_free(&a);

    /* Floats must be integral and finite. */
    static const float bad_f32[] = {2.5f, -1.0f, 1023.5f, 1024.0f, NAN, INFINITY, -0.25f};
    for (size_t k = 0; k < sizeof bad_f32 / sizeof bad_f32[0]; k++) {
        make_wedge_array(&a, BCAE_DTYPE_F32);
        ((float *)a.data)[file_index(3, 4, 5)] = bad_f32[k];
        CHECK_MSG(bcae_wedge_from_array(&a, "float.npy", adc, &err) == BCAE_ERR_RANGE, "%g",
                  (double)bad_f32[k]);
        CHECK_MSG(strstr(err.message, "float.npy") &&
                      strstr(err.message, "(azimuth 3, z 4, layer 5)"),
                  "%s", err.message);
        bcae_array_free(&a);
    }
    make_wedge_array(&a, BCAE_DTYPE_F64);
    ((double *)a.data)[9] = 1e-300;
    CHECK(bcae_wedge_from_array(&a, "tiny.npy", adc, &err) == BCAE_ERR_RANGE);
    ((double *)a.data)[9] = -0.0; /* an integer, even with its sign */
    CHECK(bcae_wedge_from_array(&a, "tiny.npy", adc, &err) == BCAE_OK);
    bcae_array_free(&a);

    make_wedge_array(&a, BCAE_DTYPE_F16);
    ((uint16_t *)a.data)[7] = 0x7e00; /* NaN */
    CHECK(bcae_wedge_from_array(&a, "half.npy", adc, &err) == BCAE_ERR_RANGE);
    CHECK_MSG(strstr(err.message, "nan") || strstr(err.message, "NaN"), "%s", err.message);
    bcae_array_free(&a);
    free(adc);
}

static void test_save_load(const char *dir)
{
    uint16_t *adc = malloc(BCAE_WEDGE_VOXELS * sizeof *adc);
    uint16_t *back = malloc(BCAE_WEDGE_VOXELS * sizeof *back);
    for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) adc[i] = pattern(i);
    adc[0] = 1023;
    char path[256];
    snprintf(path, sizeof path, "%s/w.npy", dir);
    bcae_error err;
    CHECK_MSG(bcae_wedge_save(path, adc, &err) == BCAE_OK, "%s", err.message);
    CHECK_MSG(bcae_wedge_load(path, back, &err) == BCAE_OK, "%s", err.message);
    CHECK(memcmp(adc, back, BCAE_WEDGE_VOXELS * sizeof *adc) == 0);

    /* The file is a plain <u2 array of the wedge's shape. */
    bcae_array a;
    CHECK(bcae_npy_read(path, &a, &err) == BCAE_OK);
    CHECK(a.dtype == BCAE_DTYPE_U16 && a.ndim == 3 && a.shape[0] == AZ && a.shape[1] == NZ &&
          a.shape[2] == NL);
    bcae_array_free(&a);

    /* A big-endian float64 Fortran-order wedge, as some writers produce. */
    char fpath[256];
    snprintf(fpath, sizeof fpath, "%s/fortran.npy", dir);
    const char *dict = "{'descr': '>f8', 'fortran_order': True, 'shape': (192, 249, 16), }";
    size_t dl = strlen(dict), hlen = 128 - 10;
    unsigned char *buf = malloc(128 + (size_t)BCAE_WEDGE_VOXELS * 8);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)hlen;
    buf[9] = 0;
    memcpy(buf + 10, dict, dl);
    memset(buf + 10 + dl, ' ', hlen - dl - 1);
    buf[127] = '\n';
    for (size_t az = 0; az < AZ; az++)
        for (size_t z = 0; z < NZ; z++)
            for (size_t l = 0; l < NL; l++) {
                double v = adc[file_index(az, z, l)];
                uint64_t bits;
                memcpy(&bits, &v, 8);
                unsigned char *dst = buf + 128 + (az + AZ * (z + NZ * l)) * 8;
                for (int k = 0; k < 8; k++) dst[k] = (unsigned char)(bits >> (56 - 8 * k));
            }
    FILE *fp = fopen(fpath, "wb");
    CHECK(fp && fwrite(buf, 1, 128 + (size_t)BCAE_WEDGE_VOXELS * 8, fp) ==
                    128 + (size_t)BCAE_WEDGE_VOXELS * 8);
    if (fp) fclose(fp);
    free(buf);
    memset(back, 0, BCAE_WEDGE_VOXELS * sizeof *back);
    CHECK_MSG(bcae_wedge_load(fpath, back, &err) == BCAE_OK, "%s", err.message);
    CHECK(memcmp(adc, back, BCAE_WEDGE_VOXELS * sizeof *adc) == 0);

    /* Errors from a file name the file. */
    char bad[256];
    snprintf(bad, sizeof bad, "%s/bad_shape.npy", dir);
    size_t shape[3] = {192, 248, 16};
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_U16, 3, shape, &err) == BCAE_OK);
    CHECK(bcae_npy_write(bad, &a, &err) == BCAE_OK);
    bcae_array_free(&a);
    CHECK(bcae_wedge_load(bad, back, &err) == BCAE_ERR_SHAPE);
    CHECK_MSG(strstr(err.message, bad) && strstr(err.message, "(192, 248, 16)"), "%s",
              err.message);
    unlink(bad);

    adc[file_index(100, 5, 2)] = 2000;
    CHECK(bcae_wedge_save(path, adc, &err) == BCAE_OK); /* saving does not validate */
    CHECK(bcae_wedge_load(path, back, &err) == BCAE_ERR_RANGE);
    CHECK_MSG(strstr(err.message, path) && strstr(err.message, "2000 at (azimuth 100, z 5, layer 2)"),
              "%s", err.message);

    snprintf(bad, sizeof bad, "%s/absent.npy", dir);
    CHECK(bcae_wedge_load(bad, back, &err) == BCAE_ERR_IO);
    CHECK(strstr(err.message, bad) != NULL);

    unlink(path);
    unlink(fpath);
    free(adc);
    free(back);
}

static void test_model_layout(void)
{
    uint16_t *adc = malloc(BCAE_WEDGE_VOXELS * sizeof *adc);
    uint16_t *back = malloc(BCAE_WEDGE_VOXELS * sizeof *back);
    float *x = malloc(BCAE_MODEL_VOXELS * sizeof *x);

    /* Every ADC value 0..1023 appears at many positions; each voxel is
     * checked against its own permuted position and the padding is 0. */
    for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) adc[i] = (uint16_t)((i * 7919u) % 1024);
    for (size_t i = 0; i < BCAE_MODEL_VOXELS; i++) x[i] = -1.0f;
    bcae_wedge_to_model(adc, x);
    size_t wrong = 0, pad_wrong = 0;
    for (size_t l = 0; l < NL; l++)
        for (size_t az = 0; az < AZ; az++) {
            for (size_t z = 0; z < NZ; z++) {
                float want = (float)log2((double)adc[file_index(az, z, l)] + 1.0);
                wrong += x[model_index(l, az, z)] != want;
            }
            for (size_t z = NZ; z < BCAE_MODEL_Z; z++) pad_wrong += x[model_index(l, az, z)] != 0.0f;
        }
    CHECK_MSG(wrong == 0, "%zu voxels misplaced or mis-valued", wrong);
    CHECK_MSG(pad_wrong == 0, "%zu padding voxels not zero", pad_wrong);
    CHECK(x[model_index(0, 0, 0)] == 0.0f);
    CHECK(x[model_index(2, 1, 3)] == (float)log2(adc[file_index(1, 3, 2)] + 1.0));

    /* Exact round trip for every ADC value. */
    int seen[1024] = {0};
    for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) seen[adc[i]] = 1;
    int all = 1;
    for (int v = 0; v < 1024; v++) all &= seen[v];
    CHECK(all);
    /* Padding is ignored on the way back. */
    for (size_t l = 0; l < NL; l++)
        for (size_t az = 0; az < AZ; az++)
            for (size_t z = NZ; z < BCAE_MODEL_Z; z++) x[model_index(l, az, z)] = 9.0f;
    bcae_wedge_from_model(x, back);
    size_t diff = 0;
    for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) diff += adc[i] != back[i];
    CHECK_MSG(diff == 0, "%zu voxels changed in the round trip", diff);

    /* Rounding, clamping and NaN. */
    static const struct {
        float v;
        uint16_t adc;
    } cases[] = {
        {0.0f, 0},       {-5.0f, 0},        {-INFINITY, 0},   {NAN, 0},
        {INFINITY, 1023}, {10.0f, 1023},    {10.5f, 1023},    {100.0f, 1023},
        {9.99999f, 1023}, {0.485427f, 0},   /* 2^v - 1 = 0.4 */
        {0.678072f, 1},   /* 0.6 */         {6.022368f, 64},  /* log2(65) */
        {9.998590f, 1022},
        {1.827819f, 3},   /* 2.55 */        {1.786596f, 2},   /* 2.45 */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memset(x, 0, BCAE_MODEL_VOXELS * sizeof *x);
        x[model_index(7, 100, 200)] = cases[k].v;
        bcae_wedge_from_model(x, back);
        CHECK_MSG(back[file_index(100, 200, 7)] == cases[k].adc, "v=%g -> %u, want %u",
                  (double)cases[k].v, back[file_index(100, 200, 7)], cases[k].adc);
        CHECK(back[file_index(100, 200, 6)] == 0);
    }
    free(adc);
    free(back);
    free(x);
}

int main(void)
{
    char dir[] = "wedgetest.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_from_array_dtypes();
    test_from_array_errors();
    test_save_load(dir);
    test_model_layout();
    rmdir(dir);
    return check_report("test_wedge");
}
