/* Writing files beneath an output folder at relative paths taken from
 * untrusted input (a container's record paths), so that nothing planted in
 * the folder can send a write elsewhere: every component below the folder
 * is opened with O_NOFOLLOW relative to its parent's descriptor (no path
 * is ever resolved as a whole), and the file itself is created under a
 * fresh temporary name and renamed or linked onto its own name, which
 * replaces a symbolic link there instead of following it. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fileutil.h"

bcae_status bcae_outdir_open(bcae_outdir *d, const char *path, bcae_error *err)
{
    d->fd = -1;
    d->path = NULL;
    bcae_status st = bcae_mkdir_p(path, err);
    if (st) return st;
    size_t n = strlen(path) + 1;
    d->path = malloc(n);
    if (!d->path) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    memcpy(d->path, path, n);
    d->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->fd < 0) {
        st = bcae_fail(err, BCAE_ERR_IO, "%s: cannot open folder: %s", path, strerror(errno));
        bcae_outdir_close(d);
    }
    return st;
}

void bcae_outdir_close(bcae_outdir *d)
{
    if (d->fd >= 0) close(d->fd);
    free(d->path);
    d->fd = -1;
    d->path = NULL;
}

/* Why dirfd/name cannot be entered as a folder (after openat failed). */
static bcae_status refuse_component(const bcae_outdir *d, const char *rel, size_t upto,
                                    int dirfd, const char *name, int e, bcae_error *err)
{
    struct stat sb;
    const char *why = strerror(e);
    if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(sb.st_mode))
            why = "is a symbolic link (not followed: it could lead outside the output folder)";
        else if (!S_ISDIR(sb.st_mode))
            why = "exists and is not a folder";
    }
    return bcae_fail(err, BCAE_ERR_IO, "%s/%.*s: %s", d->path, (int)upto, rel, why);
}

/* Opens the folder of rel's last component beneath d, component by
 * component without following links; creates missing ones if `create`.
 * *dirfd is then that folder (the caller closes it), *last the offset of
 * the last component in rel. *dirfd is -1 without an error when a folder
 * is missing and create is 0. */
static bcae_status walk(const bcae_outdir *d, const char *rel, int create, int *dirfd,
                        size_t *last, bcae_error *err)
{
    *dirfd = -1;
    size_t n = strlen(rel);
    char *comp = malloc(n + 1);
    if (!comp) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", d->path);
    int fd = dup(d->fd);
    if (fd < 0) {
        free(comp);
        return bcae_fail(err, BCAE_ERR_IO, "%s: %s", d->path, strerror(errno));
    }
    size_t a = 0;
    for (;;) {
        const char *slash = strchr(rel + a, '/');
        if (!slash) break;
        size_t len = (size_t)(slash - (rel + a));
        memcpy(comp, rel + a, len);
        comp[len] = '\0';
        int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && create) {
            if (mkdirat(fd, comp, 0777) != 0 && errno != EEXIST) {
                bcae_status st = bcae_fail(err, BCAE_ERR_IO, "%s/%.*s: cannot create folder: %s",
                                           d->path, (int)(a + len), rel, strerror(errno));
                close(fd);
                free(comp);
                return st;
            }
            next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (next < 0) {
            int e = errno;
            if (e == ENOENT && !create) { /* nothing there yet: not an error */
                close(fd);
                free(comp);
                *last = n;
                return BCAE_OK;
            }
            bcae_status st = refuse_component(d, rel, a + len, fd, comp, e, err);
            close(fd);
            free(comp);
            return st;
        }
        close(fd);
        fd = next;
        a += len + 1;
    }
    free(comp);
    *dirfd = fd;
    *last = a;
    return BCAE_OK;
}

bcae_status bcae_outdir_exists(const bcae_outdir *d, const char *rel, int *exists,
                               bcae_error *err)
{
    *exists = 0;
    int fd;
    size_t last;
    bcae_status st = walk(d, rel, 0, &fd, &last, err);
    if (st || fd < 0) return st;
    struct stat sb;
    *exists = fstatat(fd, rel + last, &sb, AT_SYMLINK_NOFOLLOW) == 0;
    close(fd);
    return BCAE_OK;
}

/* A name nobody else is likely to use; O_EXCL makes it safe either way. */
static void temp_name(char *out, size_t cap, const char *base, unsigned attempt)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_nsec ^
                 (uint64_t)ts.tv_sec << 30 ^ (uint64_t)attempt << 52 ^ (uint64_t)(uintptr_t)out;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char r[7];
    for (int i = 0; i < 6; i++, z /= 36) r[i] = digits[z % 36];
    r[6] = '\0';
    snprintf(out, cap, "%s.tmp%s", base, r);
}

bcae_status bcae_outdir_create(const bcae_outdir *d, const char *rel, int overwrite,
                               bcae_atomic_file *f, bcae_error *err)
{
    memset(f, 0, sizeof *f);
    f->dirfd = -1;
    int fd;
    size_t last;
    bcae_status st = walk(d, rel, 1, &fd, &last, err);
    if (st) return st;
    f->dirfd = fd;
    f->no_replace = !overwrite;
    const char *base = rel + last;
    size_t tcap = strlen(base) + 16;
    f->final_path = bcae_path_join(d->path, rel);
    f->final_name = malloc(strlen(base) + 1);
    f->temp_name = malloc(tcap);
    if (!f->final_path || !f->final_name || !f->temp_name) {
        bcae_atomic_abort(f);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", d->path);
    }
    memcpy(f->final_name, base, strlen(base) + 1);
    struct stat sb;
    if (!overwrite && fstatat(fd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        st = bcae_fail(err, BCAE_ERR_IO, "%s: already exists (not overwritten)", f->final_path);
        bcae_atomic_abort(f);
        return st;
    }
    int tfd = -1;
    for (unsigned attempt = 0; attempt < 100 && tfd < 0; attempt++) {
        temp_name(f->temp_name, tcap, base, attempt);
        tfd = openat(fd, f->temp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (tfd < 0 && errno != EEXIST) break;
    }
    if (tfd < 0) {
        st = bcae_fail(err, BCAE_ERR_IO, "%s: cannot create: %s", f->final_path, strerror(errno));
        free(f->temp_name); /* nothing of ours to remove */
        f->temp_name = NULL;
        bcae_atomic_abort(f);
        return st;
    }
    f->fp = fdopen(tfd, "wb");
    if (!f->fp) {
        st = bcae_fail(err, BCAE_ERR_IO, "%s: cannot open: %s", f->final_path, strerror(errno));
        close(tfd);
        bcae_atomic_abort(f);
        return st;
    }
    return BCAE_OK;
}
