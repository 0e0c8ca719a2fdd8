#define _POSIX_C_SOURCE 200809L
#include "io/fileutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *bcae_path_join(const char *a, const char *b)
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

bcae_status bcae_atomic_open(bcae_atomic_file *f, const char *path, bcae_error *err)
{
    memset(f, 0, sizeof *f);
    f->final_path = dup_str(path);
    size_t n = strlen(path) + 16;
    f->temp_path = malloc(n);
    if (!f->final_path || !f->temp_path) {
        bcae_atomic_abort(f);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    /* Same folder as the destination, so that rename() is atomic. */
    snprintf(f->temp_path, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(f->temp_path);
    if (fd < 0) {
        int e = errno;
        free(f->temp_path);
        f->temp_path = NULL;
        bcae_atomic_abort(f);
        return bcae_fail(err, BCAE_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    /* mkstemp makes 0600 files; give the usual 0666 & ~umask. */
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        int e = errno;
        close(fd);
        bcae_atomic_abort(f);
        return bcae_fail(err, BCAE_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    return BCAE_OK;
}

bcae_status bcae_atomic_commit(bcae_atomic_file *f, bcae_error *err)
{
    if (!f->fp) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "atomic file not open");
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
        bcae_status s = bcae_fail(err, BCAE_ERR_IO, "%s: write failed: %s", f->final_path,
                                  strerror(e));
        bcae_atomic_abort(f);
        return s;
    }
    free(f->temp_path);
    free(f->final_path);
    f->temp_path = f->final_path = NULL;
    return BCAE_OK;
}

void bcae_atomic_abort(bcae_atomic_file *f)
{
    if (f->fp) fclose(f->fp);
    if (f->temp_path) unlink(f->temp_path);
    free(f->temp_path);
    free(f->final_path);
    f->fp = NULL;
    f->temp_path = f->final_path = NULL;
}

bcae_status bcae_mkdir_p(const char *path, bcae_error *err)
{
    char *p = dup_str(path);
    if (!p) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "out of memory");
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            bcae_status s = bcae_fail(err, BCAE_ERR_IO, "%s: cannot create folder: %s", p,
                                      strerror(e));
            free(p);
            return s;
        }
        p[i] = c;
    }
    struct stat st;
    int ok = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    if (!ok) return bcae_fail(err, BCAE_ERR_IO, "%s: exists and is not a folder", path);
    return BCAE_OK;
}

bcae_status bcae_open_regular(const char *path, FILE **fp, size_t *size, bcae_error *err)
{
    *fp = fopen(path, "rb");
    if (!*fp) return bcae_fail(err, BCAE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(*fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(*fp);
        *fp = NULL;
        return bcae_fail(err, BCAE_ERR_IO, "%s: not a regular file", path);
    }
    if ((unsigned long long)sb.st_size > (unsigned long long)SIZE_MAX) {
        fclose(*fp);
        *fp = NULL;
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: file too large", path);
    }
    *size = (size_t)sb.st_size;
    return BCAE_OK;
}

bcae_status bcae_read_exact(FILE *fp, void *dst, size_t n, const char *path, bcae_error *err)
{
    if (n && fread(dst, 1, n, fp) != n)
        return bcae_fail(err, ferror(fp) ? BCAE_ERR_IO : BCAE_ERR_FORMAT, "%s: %s", path,
                         ferror(fp) ? "read failed" : "file shrank while reading");
    return BCAE_OK;
}

bcae_status bcae_read_file(const char *path, size_t max_bytes, unsigned char **data,
                           size_t *len, bcae_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return bcae_fail(err, BCAE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return bcae_fail(err, BCAE_ERR_IO, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > (unsigned long long)max_bytes) {
        fclose(fp);
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: file too large (%lld bytes, limit %zu)",
                         path, (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(fp);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory (%zu bytes)", path, n);
    }
    size_t got = fread(buf, 1, n, fp);
    int rerr = ferror(fp);
    fclose(fp);
    if (got != n || rerr) {
        free(buf);
        return bcae_fail(err, BCAE_ERR_IO, "%s: read failed", path);
    }
    *data = buf;
    *len = n;
    return BCAE_OK;
}
