/*
 * For the fuzz targets built with BCAE_FUZZ_FILE: the input goes into a
 * file in a private folder and the target calls the path-based reader, the
 * entry point the CLI uses, so that what is fuzzed is the CLI's real code
 * path (open, fstat, the reads in pieces, the size checks against the
 * file), not only the parser behind it. The folder is made once per
 * process (on tmpfs, /dev/shm, when it is there: no disk traffic, and fast)
 * and removed at exit; the file is rewritten for every input. Test code:
 * the process-wide folder is the harness's state, not the library's.
 */
#ifndef BCAE_FUZZ_FILE_H
#define BCAE_FUZZ_FILE_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_dir[256];
static char fuzz_files[4][300];
static int fuzz_nfiles;

static void fuzz_cleanup(void)
{
    for (int i = 0; i < fuzz_nfiles; i++) unlink(fuzz_files[i]);
    if (fuzz_dir[0]) rmdir(fuzz_dir);
}

/* The private folder, made on first use. */
static inline const char *fuzz_folder(void)
{
    if (fuzz_dir[0]) return fuzz_dir;
    const char *base = getenv("BCAE_FUZZ_TMP");
    struct stat sb;
    if (!base || !*base) base = stat("/dev/shm", &sb) == 0 && access("/dev/shm", W_OK) == 0
                                    ? "/dev/shm"
                                    : (getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR")
                                                                             : "/tmp");
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/bcae-fuzz.XXXXXX", base);
    if (!mkdtemp(fuzz_dir)) {
        perror(fuzz_dir);
        abort();
    }
    atexit(fuzz_cleanup);
    return fuzz_dir;
}

/* The path of `name` in the private folder, holding exactly data[0, size). */
static inline const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
    const char *dir = fuzz_folder();
    int slot = -1;
    char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (int i = 0; i < fuzz_nfiles; i++)
        if (!strcmp(fuzz_files[i], path)) slot = i;
    if (slot < 0) {
        if (fuzz_nfiles == 4) abort();
        slot = fuzz_nfiles++;
        memcpy(fuzz_files[slot], path, sizeof path);
    }
    int fd = open(fuzz_files[slot], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(fuzz_files[slot]);
        abort();
    }
    for (size_t off = 0; off < size;) {
        ssize_t k = write(fd, data + off, size - off);
        if (k <= 0) {
            perror(fuzz_files[slot]);
            abort();
        }
        off += (size_t)k;
    }
    close(fd);
    return fuzz_files[slot];
}

/* Reads a whole file back (for before/after comparisons); caller frees. */
static inline uint8_t *fuzz_read_back(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) abort();
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (!b || fread(b, 1, (size_t)n, fp) != (size_t)n) abort();
    fclose(fp);
    *size = (size_t)n;
    return b;
}

#endif
