/* The CLI's own file helpers: joining paths, mkdir -p, and text files
 * replaced atomically (eval's CSV, simulate's manifests). The library has
 * its internal equivalents for the files it writes (npy, safetensors,
 * .bcae, PNG); these are not part of a compressor's public API, so the CLI
 * keeps its own, as zstd's programs/ do. The messages match the library's. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Sets *err (may be NULL) and returns its status. */
static bcae_status file_fail(bcae_error *err, bcae_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static bcae_status file_fail(bcae_error *err, bcae_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

char *cli_path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int slash = la > 0 && a[la - 1] != '/';
    char *p = malloc(la + (size_t)slash + lb + 1);
    if (!p) return NULL;
    memcpy(p, a, la);
    if (slash) p[la] = '/';
    memcpy(p + la + (size_t)slash, b, lb + 1);
    return p;
}

bcae_status cli_mkdir_p(const char *path, bcae_error *err)
{
    char *p = strdup(path);
    if (!p) return file_fail(err, BCAE_ERR_OUT_OF_MEMORY, "out of memory");
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            bcae_status s = file_fail(err, BCAE_ERR_IO, "%s: cannot create folder: %s", p,
                                      strerror(e));
            free(p);
            return s;
        }
        p[i] = c;
    }
    struct stat st;
    int ok = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    if (!ok) return file_fail(err, BCAE_ERR_IO, "%s: exists and is not a folder", path);
    return BCAE_OK;
}

bcae_status cli_atomic_open(cli_atomic_file *f, const char *path, bcae_error *err)
{
    memset(f, 0, sizeof *f);
    f->final_path = strdup(path);
    size_t n = strlen(path) + 16;
    f->temp_path = malloc(n);
    if (!f->final_path || !f->temp_path) {
        cli_atomic_abort(f);
        return file_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    /* Same folder as the destination, so that rename() is atomic. */
    snprintf(f->temp_path, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(f->temp_path);
    if (fd < 0) {
        int e = errno;
        free(f->temp_path);
        f->temp_path = NULL;
        cli_atomic_abort(f);
        return file_fail(err, BCAE_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    /* mkstemp makes 0600 files; give the usual 0666 & ~umask. */
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        int e = errno;
        close(fd);
        cli_atomic_abort(f);
        return file_fail(err, BCAE_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    return BCAE_OK;
}

bcae_status cli_atomic_commit(cli_atomic_file *f, bcae_error *err)
{
    if (!f->fp) return file_fail(err, BCAE_ERR_INVALID_ARGUMENT, "atomic file not open");
    int failed = ferror(f->fp) || fflush(f->fp) != 0;
    int e = errno;
    if (!failed && fsync(fileno(f->fp)) != 0) {
        failed = 1;
        e = errno;
    }
    if (fclose(f->fp) != 0 && !failed) {
        failed = 1;
        e = errno;
    }
    f->fp = NULL;
    if (!failed && rename(f->temp_path, f->final_path) != 0) {
        failed = 1;
        e = errno;
    }
    if (failed) {
        bcae_status s = file_fail(err, BCAE_ERR_IO, "%s: write failed: %s", f->final_path,
                                  strerror(e));
        cli_atomic_abort(f);
        return s;
    }
    free(f->temp_path);
    free(f->final_path);
    f->temp_path = f->final_path = NULL;
    return BCAE_OK;
}

void cli_atomic_abort(cli_atomic_file *f)
{
    if (f->fp) fclose(f->fp);
    if (f->temp_path) unlink(f->temp_path);
    free(f->temp_path);
    free(f->final_path);
    f->fp = NULL;
    f->temp_path = f->final_path = NULL;
}
