/* File helpers shared by every writer: atomic replacement and mkdir -p. */
#ifndef BCAE_IO_FILEUTIL_H
#define BCAE_IO_FILEUTIL_H

#include <stdio.h>

#include "bcae.h"

/* A file being written under a temporary name next to its destination.
 * Readers never see a partial file: either the old one or the whole new one. */
typedef struct bcae_atomic_file {
    FILE *fp;
    char *final_path;
    char *temp_path;
} bcae_atomic_file;

bcae_status bcae_atomic_open(bcae_atomic_file *f, const char *path, bcae_error *err);
/* Flushes, fsyncs and renames onto the final path; on any failure the
 * temporary file is removed and the destination is untouched. */
bcae_status bcae_atomic_commit(bcae_atomic_file *f, bcae_error *err);
/* Discards the temporary file (safe after a failed commit, and twice). */
void bcae_atomic_abort(bcae_atomic_file *f);

/* Creates a directory and its parents (like mkdir -p). */
bcae_status bcae_mkdir_p(const char *path, bcae_error *err);

/* Reads a whole file, refusing files larger than max_bytes. */
bcae_status bcae_read_file(const char *path, size_t max_bytes, unsigned char **data,
                           size_t *len, bcae_error *err);

/* Opens a regular file for reading and tells its size: the parsers check
 * every length they read against it before allocating. */
bcae_status bcae_open_regular(const char *path, FILE **fp, size_t *size, bcae_error *err);
/* Reads exactly n bytes; a short read is an I/O error or a file that shrank. */
bcae_status bcae_read_exact(FILE *fp, void *dst, size_t n, const char *path, bcae_error *err);

/* Joins a and b with one '/' into a fresh string (NULL on OOM). */
char *bcae_path_join(const char *a, const char *b);

#endif
