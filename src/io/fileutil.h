/* File helpers shared by every reader and writer: opening untrusted input
 * safely, one byte source for files and memory, atomic replacement, mkdir
 * -p, writing beneath an output folder without following planted links,
 * and the one lexical path normalisation of manifests and record names. */
#ifndef BCAE_IO_FILEUTIL_H
#define BCAE_IO_FILEUTIL_H

#include <stdint.h>
#include <stdio.h>

#include "bcae.h"

/* A file being written under a temporary name next to its destination.
 * Readers never see a partial file: either the old one or the whole new one.
 * Opened by bcae_atomic_open (a path) or bcae_outdir_create (beneath an
 * output folder; then dirfd >= 0 and the names are relative to it). */
typedef struct bcae_atomic_file {
    FILE *fp;
    char *final_path; /* for messages (and the rename when dirfd < 0) */
    char *temp_path;
    int dirfd;        /* -1, or the folder final_name and temp_name live in */
    char *final_name;
    char *temp_name;
    int no_replace;   /* commit fails if the destination exists */
} bcae_atomic_file;

bcae_status bcae_atomic_open(bcae_atomic_file *f, const char *path, bcae_error *err);
/* Flushes, fsyncs and renames onto the final path; on any failure the
 * temporary file is removed and the destination is untouched. */
bcae_status bcae_atomic_commit(bcae_atomic_file *f, bcae_error *err);
/* Discards the temporary file (safe after a failed commit, and twice). */
void bcae_atomic_abort(bcae_atomic_file *f);

/* Creates a directory and its parents (like mkdir -p). */
bcae_status bcae_mkdir_p(const char *path, bcae_error *err);

/* Reads a whole regular file, refusing files larger than max_bytes. */
bcae_status bcae_read_file(const char *path, size_t max_bytes, unsigned char **data,
                           size_t *len, bcae_error *err);

/* Opens a file to read (write: read and write) and tells its size, refusing
 * anything but a regular file *before* it can block: the open is
 * non-blocking, so a FIFO without a writer (or a terminal, a device) is
 * refused at once instead of hanging the program. The parsers check every
 * length they read against the size before allocating. */
bcae_status bcae_open_regular_fd(const char *path, int write, int *fd, uint64_t *size,
                                 bcae_error *err);
/* The same as a stdio stream for reading. */
bcae_status bcae_open_regular(const char *path, FILE **fp, size_t *size, bcae_error *err);
/* Reads exactly n bytes; a short read is an I/O error or a file that shrank. */
bcae_status bcae_read_exact(FILE *fp, void *dst, size_t n, const char *path, bcae_error *err);

/* The bytes a parser reads: an open regular file or a buffer in memory,
 * behind one interface, so that a format's file reader and buffer reader
 * are one parser (a second copy of the prefix and allocation logic is
 * where bugs hide). `len` is the whole size, known before any read: the
 * file's from fstat, the buffer's length. */
typedef struct bcae_src {
    const char *name; /* for messages */
    FILE *fp;         /* NULL for memory */
    const unsigned char *mem;
    size_t len;
    size_t pos;
} bcae_src;

/* Opens a regular file (bcae_open_regular). */
bcae_status bcae_src_open(bcae_src *s, const char *path, bcae_error *err);
/* Bytes in memory (not copied; they must outlive the source). */
void bcae_src_mem(bcae_src *s, const void *buf, size_t len, const char *name);
void bcae_src_close(bcae_src *s);
/* Bytes not read yet, by the size known at the start. */
size_t bcae_src_left(const bcae_src *s);
/* Reads exactly n bytes (n <= bcae_src_left, which callers check first):
 * fewer means the file shrank while being read, or an I/O error. */
bcae_status bcae_src_read(bcae_src *s, void *dst, size_t n, bcae_error *err);
/* After the last byte the size promised: a file that grew is an error. */
bcae_status bcae_src_expect_end(bcae_src *s, bcae_error *err);

/* Joins a and b with one '/' into a fresh string (NULL on OOM). */
char *bcae_path_join(const char *a, const char *b);

/* How bcae_path_normalize treats "..". */
enum {
    /* Manifests: a ".." component anywhere, or a leading '/', is refused,
     * so a manifest cannot name anything outside its folder. */
    BCAE_PATH_STRICT = 0,
    /* Command-line inputs (their stored names): "x/.." cancels, and what
     * would climb above the start, and a leading '/', is dropped, as tar
     * does: `a/../b/w.npy` is stored as `b/w.npy`, `../d/w.npy` as `d/w.npy`. */
    BCAE_PATH_RESOLVE = 1,
};
/* The one lexical normalisation of relative paths (manifest lines, record
 * names): drops empty and "." components and handles ".." as `mode` says,
 * writing components joined by single '/' into out (room for
 * strlen(path) + 1: it never grows). Returns NULL, or why the path is
 * refused (nothing left is refused too). Lexical only: it never looks at
 * the file system. */
const char *bcae_path_normalize(const char *path, int mode, char *out);

/* A set of strings (record paths), to refuse duplicates. */
typedef struct bcae_pathset bcae_pathset;
bcae_pathset *bcae_pathset_new(void);
int bcae_pathset_has(const bcae_pathset *s, const char *path);
/* 1 if added, 0 if it was already there, -1 if out of memory. */
int bcae_pathset_add(bcae_pathset *s, const char *path);
void bcae_pathset_free(bcae_pathset *s);

/* An output folder that files are written beneath at relative paths. The
 * folder itself is followed as given (the user chose it); below it, every
 * component is opened with O_NOFOLLOW, so a symbolic link planted inside
 * (to a folder or a file) can never redirect a write outside it. */
typedef struct bcae_outdir {
    int fd;
    char *path;
} bcae_outdir;

/* Creates the folder if needed (mkdir -p) and opens it. */
bcae_status bcae_outdir_open(bcae_outdir *d, const char *path, bcae_error *err);
void bcae_outdir_close(bcae_outdir *d);
/* Whether rel (a valid record path) exists beneath d, without creating
 * anything: *exists is 1 if its final component exists (as anything,
 * a symbolic link included), else 0. A symbolic link or a non-folder
 * where a folder of rel belongs is an error. */
bcae_status bcae_outdir_exists(const bcae_outdir *d, const char *rel, int *exists,
                               bcae_error *err);
/* Starts writing d/rel atomically: creates the missing folders of rel
 * (refusing a symbolic link or non-folder among them) and a temporary file
 * next to it; bcae_atomic_commit renames it into place. Unless `overwrite`,
 * commit refuses an existing destination (atomically: link, not rename). A
 * symbolic link at the destination is replaced, never followed. */
bcae_status bcae_outdir_create(const bcae_outdir *d, const char *rel, int overwrite,
                               bcae_atomic_file *f, bcae_error *err);

#endif
