/*
 * The .bcae container (docs/FORMAT.md): the compressed form of a set of
 * wedges. A file header names the model that made the codes (its weights'
 * fingerprint and architecture) and the code's shape; then one record per
 * wedge (relative path, original shape, the fp16 code, raw or zstd, and
 * CRC-32Cs); then a 16-byte end marker that counts the records, so that a
 * file cut at a record boundary is still seen to be incomplete.
 *
 * Streaming both ways: the writer emits each record as it is appended, the
 * reader decodes one record at a time from a FILE*, and neither ever holds
 * more than one record. A reader's allocations are bounded by the code size
 * its header declares (itself capped), never by a length field alone.
 *
 * Errors name the file, the record (index from 0, and its path once that is
 * known) and what is wrong: "x.bcae: record 3 (\"12-2_0-0/a.npy\"): CRC
 * mismatch ...". Records returned before an error were fully verified:
 * they are the file's intact prefix.
 */
#ifndef BCAE_IO_CONTAINER_H
#define BCAE_IO_CONTAINER_H

#include <stddef.h>
#include <stdint.h>

#include "bcae.h"

/* The format version this code writes and the only one it reads. */
#define BCAE_CTR_VERSION 1
/* The first 4 bytes of every .bcae file ("BCAE"): how `bcae inspect` tells
 * a container from a .npy without trusting the extension. */
#define BCAE_CTR_MAGIC "BCAE"
#define BCAE_CTR_MAGIC_LEN 4

#define BCAE_CTR_MAX_NDIM 4      /* of the code and of the original array */
#define BCAE_CTR_ARCH_MAX 64     /* bytes of the architecture string */
#define BCAE_CTR_PATH_MAX 4096   /* bytes of a record's relative path */
/* The largest code a file may declare: BCAE codes are ~50 KiB, so this only
 * bounds what a hostile header can make a reader allocate. */
#define BCAE_CTR_MAX_CODE_BYTES ((size_t)64 << 20)
/* Fixed sizes: file header 64 + arch length; record 44 + path length +
 * payload; end marker 16 (docs/FORMAT.md has the byte tables). */
#define BCAE_CTR_HEADER_FIXED 64
#define BCAE_CTR_RECORD_OVERHEAD 44
#define BCAE_CTR_END_BYTES 16

/* Element types, by their on-disk codes. */
enum { BCAE_CTR_DTYPE_U16 = 1, BCAE_CTR_DTYPE_F16 = 2 };
/* Payload encodings. */
enum { BCAE_CTR_RAW = 0, BCAE_CTR_ZSTD = 1 };

/* What the file header says. The writer takes it (version is ignored and
 * written as BCAE_CTR_VERSION); the reader fills it. */
typedef struct bcae_ctr_info {
    unsigned version;
    uint8_t fingerprint[32]; /* bcae_st_fingerprint of the weights file */
    char arch[BCAE_CTR_ARCH_MAX + 1]; /* printable ASCII, 1..64 bytes */
    int code_dtype; /* BCAE_CTR_DTYPE_F16: the only one version 1 has */
    int code_ndim;  /* 1..4 */
    size_t code_shape[BCAE_CTR_MAX_NDIM];
} bcae_ctr_info;

/* Elements of the code (product of code_shape); 0 if the shape is invalid. */
size_t bcae_ctr_code_count(const bcae_ctr_info *info);

/* Checks that a file's header matches the model about to use it: same
 * fingerprint, architecture, code dtype and shape. On a mismatch the
 * message names `name` (the file) and both fingerprints (BCAE_ERR_UNSUPPORTED). */
bcae_status bcae_ctr_check_model(const bcae_ctr_info *file, const bcae_ctr_info *model,
                                 const char *name, bcae_error *err);

/* Checks a record path: 1..4096 bytes of valid UTF-8, no control
 * characters, relative ('/'-separated, no empty, "." or ".." component).
 * `len` is its length in bytes (a NUL inside is an error). */
bcae_status bcae_ctr_check_path(const char *path, size_t len, bcae_error *err);

/* One record as read. */
typedef struct bcae_ctr_record {
    uint64_t index;  /* from 0, in file order */
    uint64_t offset; /* of the record's first byte in the file */
    char path[BCAE_CTR_PATH_MAX + 1];
    int orig_dtype;  /* BCAE_CTR_DTYPE_U16 */
    int orig_ndim;   /* 1..4 */
    size_t orig_shape[BCAE_CTR_MAX_NDIM];
    int encoding;    /* BCAE_CTR_RAW or BCAE_CTR_ZSTD */
    size_t raw_bytes;    /* code bytes: 2 x bcae_ctr_code_count */
    size_t stored_bytes; /* payload bytes in the file */
    size_t record_bytes; /* the whole record: 44 + path + payload */
} bcae_ctr_record;

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

typedef struct bcae_ctr_writer bcae_ctr_writer;

/* Starts a new file: writes to a temporary name next to `path` and renames
 * it on bcae_ctr_writer_finish, so no reader ever sees a partial file and
 * an abort (or a crash) leaves no file at `path` (an existing one stays). */
bcae_status bcae_ctr_writer_open(const char *path, const bcae_ctr_info *info,
                                 bcae_ctr_writer **out, bcae_error *err);

/* Flag of bcae_ctr_append_open: if the file lacks its end marker because
 * an earlier append was interrupted, drop the incomplete tail (after
 * verifying every record before it) instead of refusing. */
#define BCAE_CTR_APPEND_REPAIR 1

/* Opens an existing file to add records in place: checks its header
 * against `model` (bcae_ctr_check_model) and that it ends with a valid end
 * marker, which the first appended record overwrites; finish writes a new
 * one. This reads the header, the last 16 bytes and each record's header
 * and path (seeking over the payloads: their paths may not be repeated),
 * never the payloads. The file is locked (fcntl) against a second appender. If an
 * append fails or is aborted, the file is restored to its old length and
 * end marker. A crash in between leaves the old records intact, then zero
 * or more complete new records, then possibly a partial one, and no end
 * marker: readers return every intact record and then fail with
 * "truncated", and only BCAE_CTR_APPEND_REPAIR appends to it again. */
bcae_status bcae_ctr_append_open(const char *path, const bcae_ctr_info *model, int flags,
                                 bcae_ctr_writer **out, bcae_error *err);

/* What bcae_ctr_repair found and did. */
typedef struct bcae_ctr_repair_report {
    uint64_t records;       /* intact records in the file (kept) */
    uint64_t file_bytes;    /* the file's size now, end marker included */
    uint64_t dropped_bytes; /* the incomplete tail cut off */
    int was_complete;       /* it had a valid end marker: left as it was */
} bcae_ctr_repair_report;

/* Repairs a file that an interrupted write or append left without its end
 * marker: verifies every record (both CRCs, decoding), cuts the file after
 * the last intact one and writes an end marker there (cut, marker, fsync:
 * a crash in between leaves it torn and repairable again, never half
 * repaired). A complete file is verified and left as it is. Damage of any
 * other kind (a CRC mismatch, a bad field) is refused with the reader's
 * message: dropping records that are there but damaged is not a repair.
 * Takes the same lock as an appender. */
bcae_status bcae_ctr_repair(const char *path, bcae_ctr_repair_report *rep, bcae_error *err);

/* Adds one record: `code_f16` holds bcae_ctr_code_count(info) IEEE binary16
 * values (native uint16 bit patterns); orig_shape the wedge's shape
 * (orig_ndim 1..4, uint16 ADC). zstd_level 0 stores the code raw; 1..22
 * compresses it with zstd at that level, falling back to raw if that would
 * not be smaller. A path already in the file (appending: among the old
 * records too) is refused (BCAE_ERR_INVALID_ARGUMENT), as are invalid
 * paths. After a write failure the writer only accepts abort. */
bcae_status bcae_ctr_writer_append(bcae_ctr_writer *w, const char *relpath,
                                   const size_t *orig_shape, int orig_ndim,
                                   const uint16_t *code_f16, int zstd_level, bcae_error *err);

/* Whether a record with this path is in the file already (appending: the
 * old records too), i.e. whether bcae_ctr_writer_append would refuse it:
 * lets a caller refuse before doing the work of encoding. */
int bcae_ctr_writer_has_path(const bcae_ctr_writer *w, const char *relpath);

/* Writes the end marker, fsyncs and (new file) renames into place. Frees w
 * whatever happens; on failure a new file is discarded and an appended one
 * restored. */
bcae_status bcae_ctr_writer_finish(bcae_ctr_writer *w, bcae_error *err);
/* Discards what this writer added and frees it (NULL is fine). */
void bcae_ctr_writer_abort(bcae_ctr_writer *w);

typedef struct bcae_ctr_stats {
    uint64_t records;        /* in the file, earlier ones (append) included */
    uint64_t file_bytes;     /* the file's size once finished (end marker included) */
    uint64_t new_records;    /* appended by this writer */
    uint64_t new_orig_bytes; /* their original arrays at 16 bits per value */
    uint64_t new_bytes;      /* their records' bytes in the file */
    uint64_t repaired_bytes; /* incomplete tail dropped by BCAE_CTR_APPEND_REPAIR */
} bcae_ctr_stats;

void bcae_ctr_writer_stats(const bcae_ctr_writer *w, bcae_ctr_stats *st);

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

typedef struct bcae_ctr_reader bcae_ctr_reader;

/* Opens a regular file and reads and verifies its header. Anything else (a
 * FIFO, a device, a folder) is refused before it can block: the reader
 * needs the file's size to report truncation before allocating. */
bcae_status bcae_ctr_reader_open(const char *path, bcae_ctr_reader **out, bcae_error *err);
/* A hint for progress bars: the record count of a complete file, read from
 * its end marker alone (1 if it has a valid one, else 0: not a regular
 * file, a cut file). The reader still checks the count when it gets there. */
int bcae_ctr_peek_count(const char *path, uint64_t *records);
/* The same over bytes in memory (not copied: they must outlive the reader;
 * `name` is used in messages). */
bcae_status bcae_ctr_reader_open_mem(const void *buf, size_t len, const char *name,
                                     bcae_ctr_reader **out, bcae_error *err);
const bcae_ctr_info *bcae_ctr_reader_info(const bcae_ctr_reader *r);

/* Reads the next record into *rec and, if code_out is not NULL, its code
 * (bcae_ctr_code_count values, native fp16 bit patterns) after checking
 * both CRCs and decompressing. At the end marker sets *end = 1 (then rec
 * and code_out are untouched) after checking the record count and that
 * nothing follows. An error is final: later calls repeat it. */
bcae_status bcae_ctr_reader_next(bcae_ctr_reader *r, bcae_ctr_record *rec, uint16_t *code_out,
                                 int *end, bcae_error *err);
/* Bytes consumed and verified so far: after an error, the length of the
 * intact prefix (header and whole records); at the end, the file size. */
uint64_t bcae_ctr_reader_offset(const bcae_ctr_reader *r);
/* Records returned so far. */
uint64_t bcae_ctr_reader_records(const bcae_ctr_reader *r);
void bcae_ctr_reader_close(bcae_ctr_reader *r);

#endif
