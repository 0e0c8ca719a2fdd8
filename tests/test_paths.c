/* The path helpers of src/io (fileutil.h): the one normalisation of
 * manifest lines and record names, the path set, and writing beneath an
 * output folder without following symbolic links planted in it. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/fileutil.h"

static char work[64];

static const char *at(const char *rel)
{
    static char buf[4][256];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", work, rel);
    return buf[k];
}

static void expect_norm(const char *in, int mode, const char *want, const char *why)
{
    char out[256];
    const char *got = bcae_path_normalize(in, mode, out);
    if (why)
        CHECK_MSG(got && strstr(got, why), "'%s' (mode %d): got %s, want refusal '%s'", in, mode,
                  got ? got : "NULL", why);
    else
        CHECK_MSG(!got && !strcmp(out, want), "'%s' (mode %d): got '%s' (%s), want '%s'", in,
                  mode, got ? "" : out, got ? got : "ok", want);
}

static void test_normalize(void)
{
    const int S = BCAE_PATH_STRICT, R = BCAE_PATH_RESOLVE;
    expect_norm("a/b.npy", S, "a/b.npy", NULL); /* already normal: unchanged */
    expect_norm("./a/./w.npy", S, "a/w.npy", NULL);
    expect_norm("a//b///c.npy", S, "a/b/c.npy", NULL);
    expect_norm("a/b/", S, "a/b", NULL);
    expect_norm("a..b.npy", S, "a..b.npy", NULL); /* dots inside a name are a name */
    expect_norm(".hidden/x", S, ".hidden/x", NULL);
    expect_norm("/etc/passwd", S, NULL, "absolute");
    expect_norm("a/../b", S, NULL, "'..'");
    expect_norm("..", S, NULL, "'..'");
    expect_norm(".", S, NULL, "names no file");
    expect_norm("./", S, NULL, "names no file");
    expect_norm("", S, NULL, "names no file");
    /* Resolving, for command-line inputs: the report's case first. */
    expect_norm("a/../b/w.npy", R, "b/w.npy", NULL);
    expect_norm("a/sub/../../b/w.npy", R, "b/w.npy", NULL);
    expect_norm("../d/w.npy", R, "d/w.npy", NULL);
    expect_norm("a/../../x", R, "x", NULL);
    expect_norm("/abs/./w.npy", R, "abs/w.npy", NULL);
    expect_norm("a/b/..", R, "a", NULL);
    expect_norm("nowhere/..", R, NULL, "names no file");
    expect_norm("/", R, NULL, "names no file");
    /* In place (out == path) works too. */
    char buf[] = "./x/../y//z.npy";
    CHECK(bcae_path_normalize(buf, R, buf) == NULL && !strcmp(buf, "y/z.npy"));
}

static void test_pathset(void)
{
    bcae_pathset *s = bcae_pathset_new();
    CHECK(s != NULL);
    if (!s) return;
    char p[32];
    /* Past the first growth (64 slots), every path found, none twice. */
    for (int i = 0; i < 1000; i++) {
        snprintf(p, sizeof p, "12-2_%d/w%d.npy", i % 24, i);
        CHECK(bcae_pathset_add(s, p) == 1);
    }
    int all = 1;
    for (int i = 0; i < 1000; i++) {
        snprintf(p, sizeof p, "12-2_%d/w%d.npy", i % 24, i);
        all &= bcae_pathset_has(s, p) && bcae_pathset_add(s, p) == 0;
    }
    CHECK(all);
    CHECK(!bcae_pathset_has(s, "12-2_0/w1.npy") && !bcae_pathset_has(s, ""));
    bcae_pathset_free(s);
    bcae_pathset_free(NULL);
}

static int write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp) return 0;
    fputs(text, fp);
    return fclose(fp) == 0;
}

static int file_is(const char *path, const char *text)
{
    char buf[64] = {0};
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    return n == strlen(text) && !memcmp(buf, text, n);
}

/* Writes text at rel beneath d; returns the status. */
static bcae_status put(const bcae_outdir *d, const char *rel, int overwrite, const char *text,
                       bcae_error *err)
{
    bcae_atomic_file f;
    bcae_status st = bcae_outdir_create(d, rel, overwrite, &f, err);
    if (st) return st;
    fputs(text, f.fp);
    return bcae_atomic_commit(&f, err);
}

static void test_outdir(void)
{
    bcae_error err;
    bcae_outdir d;
    CHECK_MSG(bcae_outdir_open(&d, at("out/deep"), &err) == BCAE_OK, "%s", err.message);
    mkdir(at("outside"), 0777);
    /* Folders are created as needed; the file lands where it should. */
    CHECK_MSG(put(&d, "a/b/w.npy", 0, "one", &err) == BCAE_OK, "%s", err.message);
    CHECK(file_is(at("out/deep/a/b/w.npy"), "one"));
    int exists = -1;
    CHECK(bcae_outdir_exists(&d, "a/b/w.npy", &exists, &err) == BCAE_OK && exists == 1);
    CHECK(bcae_outdir_exists(&d, "a/b/v.npy", &exists, &err) == BCAE_OK && exists == 0);
    CHECK(bcae_outdir_exists(&d, "no/such/w.npy", &exists, &err) == BCAE_OK && exists == 0);
    /* No overwriting unless asked; then the content is replaced. */
    CHECK(put(&d, "a/b/w.npy", 0, "two", &err) == BCAE_ERR_IO);
    CHECK_MSG(strstr(err.message, "out/deep/a/b/w.npy: already exists"), "%s", err.message);
    CHECK(file_is(at("out/deep/a/b/w.npy"), "one"));
    CHECK(put(&d, "a/b/w.npy", 1, "two", &err) == BCAE_OK && file_is(at("out/deep/a/b/w.npy"), "two"));

    /* A symbolic link where a folder of the path belongs: refused, with or
     * without overwrite, and nothing appears at its target. */
    CHECK(symlink("../../outside", at("out/deep/link")) == 0);
    CHECK(put(&d, "link/w.npy", 1, "x", &err) == BCAE_ERR_IO);
    CHECK_MSG(strstr(err.message, "out/deep/link: is a symbolic link"), "%s", err.message);
    CHECK(bcae_outdir_exists(&d, "link/w.npy", &exists, &err) == BCAE_ERR_IO);
    CHECK(access(at("outside/w.npy"), F_OK) != 0);
    /* A plain file where a folder belongs. */
    CHECK(put(&d, "a/b/w.npy/x.npy", 1, "x", &err) == BCAE_ERR_IO &&
          strstr(err.message, "not a folder"));

    /* A symbolic link at the file's own name: an existing file without
     * overwrite; with it, the link is replaced and its target untouched. */
    CHECK(write_text(at("outside/victim"), "precious"));
    CHECK(symlink("../../outside/victim", at("out/deep/v.npy")) == 0);
    CHECK(bcae_outdir_exists(&d, "v.npy", &exists, &err) == BCAE_OK && exists == 1);
    CHECK(put(&d, "v.npy", 0, "new", &err) == BCAE_ERR_IO);
    CHECK(put(&d, "v.npy", 1, "new", &err) == BCAE_OK);
    struct stat sb;
    CHECK(lstat(at("out/deep/v.npy"), &sb) == 0 && S_ISREG(sb.st_mode));
    CHECK(file_is(at("out/deep/v.npy"), "new") && file_is(at("outside/victim"), "precious"));
    /* A dangling link counts as existing too (it would be followed by a
     * plain open with O_CREAT). */
    CHECK(symlink("../../outside/made", at("out/deep/dangle.npy")) == 0);
    CHECK(put(&d, "dangle.npy", 0, "x", &err) == BCAE_ERR_IO);
    CHECK(access(at("outside/made"), F_OK) != 0);

    /* Nothing temporary is left behind, whatever happened above. */
    CHECK(access(at("out/deep/a/b"), F_OK) == 0);
    int temps = 0;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "find '%s' -name '*.tmp*' | wc -l", work);
    FILE *ls = popen(cmd, "r");
    if (ls) {
        if (fscanf(ls, "%d", &temps) != 1) temps = -1;
        pclose(ls);
    }
    CHECK_MSG(temps == 0, "%d temporary files left", temps);
    bcae_outdir_close(&d);
    bcae_outdir_close(&d); /* twice is harmless */
}

int main(void)
{
    snprintf(work, sizeof work, "pathstest.XXXXXX");
    if (!mkdtemp(work)) {
        perror("mkdtemp");
        return 1;
    }
    test_normalize();
    test_pathset();
    test_outdir();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", work);
    return check_report("test_paths");
}
