/* Datasets: manifests (CRLF, blank lines, whitespace), the outer/ fallback,
 * rejected paths, and errors that name the manifest line or the wedge file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bcae.h"
#include "check.h"

/* Everything created, removed in reverse order at the end. */
#define MAX_CREATED 64
typedef struct scratch {
    char root[64];
    char paths[MAX_CREATED][256];
    int count;
} scratch;

static const char *remember(scratch *s, const char *rel)
{
    char root[sizeof s->root];
    memcpy(root, s->root, sizeof root);
    char *p = s->paths[s->count++];
    snprintf(p, 256, "%s/%s", root, rel);
    return p;
}

static void make_dir(scratch *s, const char *rel)
{
    CHECK(mkdir(remember(s, rel), 0777) == 0);
}

static void make_file_bytes(scratch *s, const char *rel, const char *text, size_t len)
{
    FILE *fp = fopen(remember(s, rel), "wb");
    CHECK(fp != NULL);
    if (!fp) return;
    CHECK(fwrite(text, 1, len, fp) == len);
    fclose(fp);
}

static void make_file(scratch *s, const char *rel, const char *text)
{
    make_file_bytes(s, rel, text, strlen(text));
}

static void make_wedge(scratch *s, const char *rel, uint16_t fill_index)
{
    uint16_t *adc = calloc(BCAE_WEDGE_VOXELS, sizeof *adc);
    adc[fill_index] = (uint16_t)(64 + fill_index);
    bcae_error err;
    CHECK_MSG(bcae_wedge_save(remember(s, rel), adc, &err) == BCAE_OK, "%s", err.message);
    free(adc);
}

static void cleanup(scratch *s)
{
    while (s->count > 0) remove(s->paths[--s->count]);
    rmdir(s->root);
}

static void test_manifest_parsing(scratch *s)
{
    make_dir(s, "d1");
    make_dir(s, "d1/12-2_0-0");
    make_wedge(s, "d1/12-2_0-0/a.npy", 1);
    make_wedge(s, "d1/12-2_0-0/b.npy", 2);
    make_wedge(s, "d1/c..d.npy", 3);
    /* CRLF, blank lines, stray spaces and tabs, no final newline; '.' and
     * empty components, which the paths lose (they become record names). */
    make_file(s, "d1/train.txt",
              "./12-2_0-0/./a.npy\r\n\r\n   \r\n  12-2_0-0//b.npy  \t\r\n\n./c..d.npy");
    char dir[128];
    snprintf(dir, sizeof dir, "%s/d1", s->root);

    bcae_dataset *ds = NULL;
    bcae_error err;
    CHECK_MSG(bcae_dataset_open(dir, "train", &ds, &err) == BCAE_OK, "%s", err.message);
    if (!ds) return;
    CHECK(bcae_dataset_size(ds) == 3);
    CHECK(strcmp(bcae_dataset_relpath(ds, 0), "12-2_0-0/a.npy") == 0);
    CHECK(strcmp(bcae_dataset_relpath(ds, 1), "12-2_0-0/b.npy") == 0);
    CHECK(strcmp(bcae_dataset_relpath(ds, 2), "c..d.npy") == 0);
    CHECK(bcae_dataset_relpath(ds, 3) == NULL);
    CHECK(strcmp(bcae_dataset_root(ds), dir) == 0);

    uint16_t *adc = malloc(BCAE_WEDGE_VOXELS * sizeof *adc);
    for (size_t i = 0; i < 3; i++) {
        CHECK_MSG(bcae_dataset_load(ds, i, adc, &err) == BCAE_OK, "%s", err.message);
        CHECK(adc[i + 1] == 64 + i + 1 && adc[0] == 0);
    }
    CHECK(bcae_dataset_load(ds, 3, adc, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bcae_dataset_close(ds);
    free(adc);

    /* The other split is its own manifest; a missing one names both places tried. */
    CHECK(bcae_dataset_open(dir, "test", &ds, &err) == BCAE_ERR_IO);
    CHECK(ds == NULL);
    char want1[160], want2[160];
    snprintf(want1, sizeof want1, "%s/test.txt", dir);
    snprintf(want2, sizeof want2, "%s/outer/test.txt", dir);
    CHECK_MSG(strstr(err.message, want1) && strstr(err.message, want2), "%s", err.message);

    CHECK(bcae_dataset_open(dir, "../d1/train", &ds, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_dataset_open(dir, "", &ds, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(bcae_dataset_open(NULL, "train", &ds, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bcae_dataset_close(NULL);
    CHECK(bcae_dataset_size(NULL) == 0);
}

static void test_outer_fallback(scratch *s)
{
    /* The public release: DIR/outer/{train,test}.txt, paths relative to outer/. */
    make_dir(s, "d2");
    make_dir(s, "d2/outer");
    make_dir(s, "d2/outer/12-2_3-1");
    make_wedge(s, "d2/outer/12-2_3-1/1_2.npy", 10);
    make_file(s, "d2/outer/test.txt", "12-2_3-1/1_2.npy\n");
    char dir[128], outer[160];
    snprintf(dir, sizeof dir, "%s/d2", s->root);
    snprintf(outer, sizeof outer, "%s/outer", dir);

    bcae_dataset *ds = NULL;
    bcae_error err;
    CHECK_MSG(bcae_dataset_open(dir, "test", &ds, &err) == BCAE_OK, "%s", err.message);
    if (ds) {
        CHECK(bcae_dataset_size(ds) == 1);
        CHECK(strcmp(bcae_dataset_root(ds), outer) == 0);
        uint16_t *adc = malloc(BCAE_WEDGE_VOXELS * sizeof *adc);
        CHECK_MSG(bcae_dataset_load(ds, 0, adc, &err) == BCAE_OK, "%s", err.message);
        CHECK(adc[10] == 74);
        free(adc);
        bcae_dataset_close(ds);
    }
    /* outer/ itself works too. */
    CHECK(bcae_dataset_open(outer, "test", &ds, &err) == BCAE_OK);
    if (ds) CHECK(strcmp(bcae_dataset_root(ds), outer) == 0);
    bcae_dataset_close(ds);

    /* A manifest in DIR itself wins over outer/. */
    make_wedge(s, "d2/top.npy", 11);
    make_file(s, "d2/test.txt", "top.npy\n");
    CHECK(bcae_dataset_open(dir, "test", &ds, &err) == BCAE_OK);
    if (ds) {
        CHECK(strcmp(bcae_dataset_root(ds), dir) == 0);
        CHECK(strcmp(bcae_dataset_relpath(ds, 0), "top.npy") == 0);
    }
    bcae_dataset_close(ds);
}

/* len 0: strlen(text). */
static void expect_open_error(scratch *s, const char *name, const char *text, size_t len,
                              bcae_status status, const char *what)
{
    char rel[64], dir[128], manifest[160];
    snprintf(rel, sizeof rel, "%s", name);
    make_dir(s, rel);
    snprintf(rel, sizeof rel, "%s/train.txt", name);
    make_file_bytes(s, rel, text, len ? len : strlen(text));
    snprintf(dir, sizeof dir, "%s/%s", s->root, name);
    snprintf(manifest, sizeof manifest, "%s/train.txt", dir);
    bcae_dataset *ds = (bcae_dataset *)&ds; /* must be reset to NULL */
    bcae_error err;
    CHECK_MSG(bcae_dataset_open(dir, "train", &ds, &err) == status, "%s: %s", name, err.message);
    CHECK(ds == NULL);
    CHECK_MSG(strstr(err.message, manifest) && strstr(err.message, what), "%s: '%s' lacks '%s'",
              name, err.message, what);
}

static void test_bad_manifests(scratch *s)
{
    expect_open_error(s, "empty", "", 0, BCAE_ERR_FORMAT, "no files");
    expect_open_error(s, "blank", "\r\n  \n\t\n", 0, BCAE_ERR_FORMAT, "no files");
    expect_open_error(s, "absolute", "a.npy\n\nb.npy\n/etc/passwd\n", 0, BCAE_ERR_FORMAT,
                      "train.txt:4: absolute path '/etc/passwd'");
    expect_open_error(s, "dotdot", "a.npy\r\nx/../../secret.npy\r\n", 0, BCAE_ERR_FORMAT,
                      "train.txt:2: path 'x/../../secret.npy' has a '..' component");
    expect_open_error(s, "dotdot_lead", "../up.npy\n", 0, BCAE_ERR_FORMAT, "train.txt:1:");
    expect_open_error(s, "dotdot_tail", "a/b/..\n", 0, BCAE_ERR_FORMAT, "'..' component");
    expect_open_error(s, "binary", "a.npy\n\x01\x00zz\n", 11, BCAE_ERR_FORMAT, "NUL byte");
    expect_open_error(s, "dot_only", "a.npy\n./.\n", 0, BCAE_ERR_FORMAT,
                      "train.txt:2: path './.' names no file");
    /* A negative control: the same manifest with a file name where the dots
     * were opens (the checks above are not refusing every manifest). */
    make_dir(s, "dot_ok");
    make_file(s, "dot_ok/train.txt", "a.npy\n./b.npy\n");
    char dir[160];
    snprintf(dir, sizeof dir, "%s/dot_ok", s->root);
    bcae_dataset *ds = NULL;
    bcae_error err;
    CHECK_MSG(bcae_dataset_open(dir, "train", &ds, &err) == BCAE_OK, "%s", err.message);
    CHECK(ds && bcae_dataset_size(ds) == 2 && !strcmp(bcae_dataset_relpath(ds, 1), "b.npy"));
    bcae_dataset_close(ds);
}

/* A manifest that is a FIFO (no writer) is refused at once, not waited on
 * forever: the test would hang (and time out) if it blocked. */
static void test_fifo_manifest(scratch *s)
{
    make_dir(s, "fifo");
    CHECK(mkfifo(remember(s, "fifo/train.txt"), 0600) == 0);
    char dir[160];
    snprintf(dir, sizeof dir, "%s/fifo", s->root);
    bcae_dataset *ds = NULL;
    bcae_error err;
    CHECK(bcae_dataset_open(dir, "train", &ds, &err) == BCAE_ERR_IO);
    CHECK_MSG(strstr(err.message, "train.txt") && strstr(err.message, "FIFO"), "%s", err.message);
    CHECK(ds == NULL);
}

static void test_bad_wedges(scratch *s)
{
    make_dir(s, "d3");
    make_wedge(s, "d3/good.npy", 0);
    make_file(s, "d3/garbage.npy", "not an npy file at all");
    /* A wrong shape and an out-of-range value, written as plain arrays. */
    bcae_error err;
    bcae_array a;
    size_t shape[3] = {192, 249, 8};
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_F32, 3, shape, &err) == BCAE_OK);
    CHECK(bcae_npy_write(remember(s, "d3/shape.npy"), &a, &err) == BCAE_OK);
    bcae_array_free(&a);
    size_t full[3] = {192, 249, 16};
    CHECK(bcae_array_alloc(&a, BCAE_DTYPE_F32, 3, full, &err) == BCAE_OK);
    ((float *)a.data)[((size_t)3 * 249 + 4) * 16 + 5] = 1500.0f;
    CHECK(bcae_npy_write(remember(s, "d3/range.npy"), &a, &err) == BCAE_OK);
    bcae_array_free(&a);
    make_file(s, "d3/train.txt", "good.npy\nmissing.npy\nshape.npy\nrange.npy\ngarbage.npy\n");

    char dir[128];
    snprintf(dir, sizeof dir, "%s/d3", s->root);
    bcae_dataset *ds = NULL;
    CHECK(bcae_dataset_open(dir, "train", &ds, &err) == BCAE_OK);
    if (!ds) return;
    CHECK(bcae_dataset_size(ds) == 5);
    uint16_t *adc = malloc(BCAE_WEDGE_VOXELS * sizeof *adc);
    static const struct {
        const char *file;
        bcae_status status;
        const char *what;
    } cases[] = {
        {"good.npy", BCAE_OK, ""},
        {"missing.npy", BCAE_ERR_IO, "cannot open"},
        {"shape.npy", BCAE_ERR_SHAPE, "(192, 249, 8)"},
        {"range.npy", BCAE_ERR_RANGE, "1500 at (azimuth 3, z 4, layer 5)"},
        {"garbage.npy", BCAE_ERR_FORMAT, "bad magic"},
    };
    for (size_t i = 0; i < 5; i++) {
        char full_path[192];
        snprintf(full_path, sizeof full_path, "%s/%s", dir, cases[i].file);
        bcae_status st = bcae_dataset_load(ds, i, adc, &err);
        CHECK_MSG(st == cases[i].status, "%s: %d (%s)", cases[i].file, st, err.message);
        if (st != BCAE_OK)
            CHECK_MSG(strstr(err.message, full_path) && strstr(err.message, cases[i].what),
                      "%s: '%s'", cases[i].file, err.message);
    }
    free(adc);
    bcae_dataset_close(ds);
}

int main(void)
{
    scratch *s = calloc(1, sizeof *s);
    snprintf(s->root, sizeof s->root, "datasettest.XXXXXX");
    if (!mkdtemp(s->root)) {
        perror("mkdtemp");
        return 1;
    }
    test_manifest_parsing(s);
    test_outer_fallback(s);
    test_bad_manifests(s);
    test_fifo_manifest(s);
    test_bad_wedges(s);
    cleanup(s);
    free(s);
    return check_report("test_dataset");
}
