/* Datasets: a manifest (train.txt, test.txt) of wedge paths relative to
 * the folder that holds it (docs/FORMATS.md, "Dataset layout"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bcae.h"
#include "core/error.h"
#include "io/fileutil.h"

/* A manifest of 25k lines is ~1 MB; this only stops a wrong file (say, a
 * wedge passed as a manifest) from being slurped whole. */
#define MANIFEST_MAX_BYTES ((size_t)256 << 20)

struct bcae_dataset {
    char *root;   /* folder holding the manifest */
    size_t count;
    char **paths; /* relative paths, pointing into text */
    char *text;   /* the manifest, split into NUL-terminated lines */
};

void bcae_dataset_close(bcae_dataset *ds)
{
    if (!ds) return;
    free(ds->root);
    free(ds->paths);
    free(ds->text);
    free(ds);
}

size_t bcae_dataset_size(const bcae_dataset *ds)
{
    return ds ? ds->count : 0;
}

const char *bcae_dataset_relpath(const bcae_dataset *ds, size_t i)
{
    return ds && i < ds->count ? ds->paths[i] : NULL;
}

const char *bcae_dataset_root(const bcae_dataset *ds)
{
    return ds ? ds->root : NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A line as it can be quoted in a message: printable ASCII, at most ~100
 * bytes (a manifest is untrusted text, and messages go to terminals). */
static void shown(char out[112], const char *line)
{
    size_t o = 0;
    for (; line[o] && o < 100; o++)
        out[o] = (line[o] >= 0x20 && line[o] < 0x7f) ? line[o] : '?';
    if (line[o]) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Splits text (len bytes, NUL-terminated at len) into ds->paths in place. */
static bcae_status parse_manifest(bcae_dataset *ds, size_t len, const char *manifest,
                                  bcae_error *err)
{
    char *text = ds->text;
    if (memchr(text, '\0', len))
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: manifest contains a NUL byte (not a text file?)",
                         manifest);
    size_t cap = 1;
    for (size_t i = 0; i < len; i++) cap += text[i] == '\n';
    ds->paths = malloc(cap * sizeof *ds->paths);
    char *norm = malloc(len + 1);
    if (!ds->paths || !norm) {
        free(norm);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", manifest);
    }
    bcae_status st = BCAE_OK;
    char *line = text;
    for (size_t lineno = 1; line; lineno++) {
        char *nl = strchr(line, '\n');
        char *next = nl ? nl + 1 : NULL;
        char *end = nl ? nl : line + strlen(line);
        while (end > line && is_space(end[-1])) end--;
        *end = '\0';
        while (is_space(*line)) line++;
        if (*line) {
            /* The form every path of ours has (no '.', no '//'): it is also
             * the record name `bcae compress` stores, so `./a/./w.npy` is
             * `a/w.npy` everywhere. */
            const char *why = bcae_path_normalize(line, BCAE_PATH_STRICT, norm);
            char q[112];
            if (why) shown(q, line);
            if (why && !strcmp(why, "is absolute"))
                st = bcae_fail(err, BCAE_ERR_FORMAT,
                               "%s:%zu: absolute path '%s' (paths must be relative to the "
                               "manifest's folder)",
                               manifest, lineno, q);
            else if (why && strstr(why, "'..'"))
                st = bcae_fail(err, BCAE_ERR_FORMAT,
                               "%s:%zu: path '%s' has a '..' component (paths must stay "
                               "inside the dataset)",
                               manifest, lineno, q);
            else if (why)
                st = bcae_fail(err, BCAE_ERR_FORMAT, "%s:%zu: path '%s' %s", manifest, lineno,
                               q, why);
            if (st) break;
            strcpy(line, norm); /* never longer than the line */
            ds->paths[ds->count++] = line;
        }
        line = next;
    }
    free(norm);
    if (st) return st;
    if (ds->count == 0)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: manifest lists no files", manifest);
    return BCAE_OK;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

bcae_status bcae_dataset_open(const char *dir, const char *split, bcae_dataset **out,
                              bcae_error *err)
{
    if (!out) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "dataset: no output pointer");
    *out = NULL;
    if (!dir || !split || !*split)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "dataset: no folder or split given");
    if (strchr(split, '/') || strcmp(split, "..") == 0 || strcmp(split, ".") == 0)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "dataset: split '%s' must be a plain name such as 'train'", split);
    bcae_dataset *ds = calloc(1, sizeof *ds);
    size_t nlen = strlen(split) + 5;
    char *name = malloc(nlen);
    char *outer = bcae_path_join(dir, "outer");
    char *direct = NULL, *nested = NULL;
    bcae_status st = BCAE_OK;
    if (ds && name && outer) {
        memcpy(name, split, nlen - 5);
        memcpy(name + nlen - 5, ".txt", 5);
        direct = bcae_path_join(dir, name);
        nested = bcae_path_join(outer, name);
    }
    if (!ds || !name || !outer || !direct || !nested) {
        st = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
        goto done;
    }
    /* The folder itself, else its outer/ (the public release's layout). */
    const char *manifest;
    if (file_exists(direct)) {
        manifest = direct;
        ds->root = malloc(strlen(dir) + 1);
        if (ds->root) memcpy(ds->root, dir, strlen(dir) + 1);
    } else if (file_exists(nested)) {
        manifest = nested;
        ds->root = outer;
        outer = NULL;
    } else {
        st = bcae_fail(err, BCAE_ERR_IO, "%s: no %s manifest: neither %s nor %s exists", dir,
                       split, direct, nested);
        goto done;
    }
    if (!ds->root) {
        st = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
        goto done;
    }
    unsigned char *text;
    size_t len;
    st = bcae_read_file(manifest, MANIFEST_MAX_BYTES, &text, &len, err);
    if (st) goto done;
    /* One more byte for the terminator the line splitter relies on. */
    char *grown = realloc(text, len + 1);
    if (!grown) {
        free(text);
        st = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", manifest);
        goto done;
    }
    grown[len] = '\0';
    ds->text = grown;
    st = parse_manifest(ds, len, manifest, err);
done:
    free(name);
    free(outer);
    free(direct);
    free(nested);
    if (st) {
        bcae_dataset_close(ds);
        return st;
    }
    *out = ds;
    return BCAE_OK;
}

bcae_status bcae_dataset_load(const bcae_dataset *ds, size_t i, uint16_t *adc, bcae_error *err)
{
    if (!ds || !adc) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "dataset: NULL argument");
    if (i >= ds->count)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: wedge %zu out of range (%zu wedges)",
                         ds->root, i, ds->count);
    char *path = bcae_path_join(ds->root, ds->paths[i]);
    if (!path) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", ds->root);
    bcae_status st = bcae_wedge_load(path, adc, err);
    free(path);
    return st;
}
