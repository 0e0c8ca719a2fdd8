/* File helpers shared by every reader and writer: opening untrusted input
 * safely, one byte source for files and memory, atomic replacement, mkdir
 * -p, writing beneath an output folder without following planted links,
 * and the one lexical path normalisation of manifests and record names. */
#ifndef BCAE_IO_FILEUTIL_H
#define BCAE_IO_FILEUTIL_H

#include <stdint.h>
#include <stdio.h>

#include "bcae.h"

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

#endif
