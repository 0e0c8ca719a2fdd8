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
    f->dirfd = -1;
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

/* Moves the finished temporary file onto its name inside f->dirfd. Without
 * replacing, a hard link is the atomic "create if absent"; file systems
 * without hard links get a check-then-rename instead. */
static int commit_at(bcae_atomic_file *f, int *exists)
{
    *exists = 0;
    if (!f->no_replace) return renameat(f->dirfd, f->temp_name, f->dirfd, f->final_name);
    if (linkat(f->dirfd, f->temp_name, f->dirfd, f->final_name, 0) == 0) {
        unlinkat(f->dirfd, f->temp_name, 0);
        return 0;
    }
    if (errno == EEXIST) {
        *exists = 1;
        return -1;
    }
    if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != EMLINK) return -1;
    struct stat sb;
    if (fstatat(f->dirfd, f->final_name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        *exists = 1;
        errno = EEXIST;
        return -1;
    }
    return renameat(f->dirfd, f->temp_name, f->dirfd, f->final_name);
}

bcae_status bcae_atomic_commit(bcae_atomic_file *f, bcae_error *err)
{
    if (!f->fp) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "atomic file not open");
    int failed = ferror(f->fp) || fflush(f->fp) != 0;
    int e = errno, exists = 0;
    if (!failed && fsync(fileno(f->fp)) != 0) {
        failed = 1;
        e = errno;
    }
    if (fclose(f->fp) != 0 && !failed) {
        failed = 1;
        e = errno;
    }
    f->fp = NULL;
    if (!failed && (f->dirfd >= 0 ? commit_at(f, &exists) : rename(f->temp_path, f->final_path)) != 0) {
        failed = 1;
        e = errno;
    }
    if (failed) {
        bcae_status s =
            exists ? bcae_fail(err, BCAE_ERR_IO, "%s: already exists (not overwritten)",
                               f->final_path)
                   : bcae_fail(err, BCAE_ERR_IO, "%s: write failed: %s", f->final_path,
                               strerror(e));
        bcae_atomic_abort(f);
        return s;
    }
    /* The temporary name is gone (renamed or linked and removed). */
    free(f->temp_path);
    free(f->temp_name);
    f->temp_path = f->temp_name = NULL;
    bcae_atomic_abort(f);
    return BCAE_OK;
}

void bcae_atomic_abort(bcae_atomic_file *f)
{
    if (f->fp) fclose(f->fp);
    if (f->dirfd >= 0) {
        if (f->temp_name) unlinkat(f->dirfd, f->temp_name, 0);
        close(f->dirfd);
    } else if (f->temp_path) {
        unlink(f->temp_path);
    }
    free(f->temp_path);
    free(f->final_path);
    free(f->temp_name);
    free(f->final_name);
    memset(f, 0, sizeof *f);
    f->dirfd = -1;
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


/* What a non-regular file is, for the message that refuses it. */
static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m)) return "a folder";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "something else";
}

bcae_status bcae_open_regular_fd(const char *path, int write, int *fd, uint64_t *size,
                                 bcae_error *err)
{
    *fd = -1;
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer, possibly forever, before fstat could tell what it is. */
    int f = open(path, (write ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0) return bcae_fail(err, BCAE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(f, &sb) != 0) {
        int e = errno;
        close(f);
        return bcae_fail(err, BCAE_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(f);
        return bcae_fail(err, BCAE_ERR_IO, "%s: not a regular file but %s; bcae reads only regular files",
                         path, file_kind(sb.st_mode));
    }
    /* Regular files ignore O_NONBLOCK, but leave no surprise for later. */
    int fl = fcntl(f, F_GETFL);
    if (fl != -1) fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
    *fd = f;
    *size = (uint64_t)sb.st_size;
    return BCAE_OK;
}

bcae_status bcae_open_regular(const char *path, FILE **fp, size_t *size, bcae_error *err)
{
    *fp = NULL;
    int fd;
    uint64_t n;
    bcae_status st = bcae_open_regular_fd(path, 0, &fd, &n, err);
    if (st) return st;
    if (n > (uint64_t)SIZE_MAX) {
        close(fd);
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: file too large", path);
    }
    *fp = fdopen(fd, "rb");
    if (!*fp) {
        int e = errno;
        close(fd);
        return bcae_fail(err, BCAE_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    *size = (size_t)n;
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
    FILE *fp;
    size_t n;
    bcae_status st = bcae_open_regular(path, &fp, &n, err);
    if (st) return st;
    if (n > max_bytes) {
        fclose(fp);
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: file too large (%zu bytes, limit %zu)", path,
                         n, max_bytes);
    }
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(fp);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory (%zu bytes)", path, n);
    }
    st = bcae_read_exact(fp, buf, n, path, err);
    if (!st && fgetc(fp) != EOF)
        st = bcae_fail(err, BCAE_ERR_FORMAT, "%s: file grew while reading", path);
    fclose(fp);
    if (st) {
        free(buf);
        return st;
    }
    *data = buf;
    *len = n;
    return BCAE_OK;
}

/* ------------------------------------------------------------------ */
/* One byte source for files and memory                                */
/* ------------------------------------------------------------------ */

bcae_status bcae_src_open(bcae_src *s, const char *path, bcae_error *err)
{
    memset(s, 0, sizeof *s);
    s->name = path;
    return bcae_open_regular(path, &s->fp, &s->len, err);
}

void bcae_src_mem(bcae_src *s, const void *buf, size_t len, const char *name)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->mem = buf;
    s->len = len;
}

void bcae_src_close(bcae_src *s)
{
    if (s->fp) fclose(s->fp);
    s->fp = NULL;
}

size_t bcae_src_left(const bcae_src *s)
{
    return s->len - s->pos;
}

bcae_status bcae_src_read(bcae_src *s, void *dst, size_t n, bcae_error *err)
{
    if (n > s->len - s->pos)
        return bcae_fail(err, BCAE_ERR_INTERNAL, "%s: read of %zu bytes past the end (%zu left)",
                         s->name, n, s->len - s->pos);
    if (s->fp) {
        bcae_status st = bcae_read_exact(s->fp, dst, n, s->name, err);
        if (st) return st;
    } else if (n) {
        memcpy(dst, s->mem + s->pos, n);
    }
    s->pos += n;
    return BCAE_OK;
}

bcae_status bcae_src_expect_end(bcae_src *s, bcae_error *err)
{
    if (s->fp && fgetc(s->fp) != EOF)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: file grew while reading", s->name);
    return BCAE_OK;
}
