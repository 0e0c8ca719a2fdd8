/* Helpers shared by the safetensors reader (safetensors.c) and writer
 * (safetensors_write.c); not for other modules. */
#ifndef BCAE_IO_SAFETENSORS_INTERNAL_H
#define BCAE_IO_SAFETENSORS_INTERNAL_H

#include <stddef.h>

#include "bcae.h"
#include "io/safetensors.h"

#define ST_PREFIX 8      /* the u64 header length */
#define ST_ALIGN 8       /* header padding, and where repacked tensors start */
#define ST_META "__metadata__"
#define ST_NAME_SHOWN 64 /* characters of a tensor name quoted in messages */

int bcae_st_host_le(void);
/* safetensors dtype string -> dtype: 1 if we handle it, -1 if the format
 * defines it but we do not (FP8, ...), 0 if it is unknown. */
int bcae_st_dtype_parse(const char *s, bcae_dtype *dtype);
/* Items of shape times item size, or 0 with *overflow set; a zero
 * dimension anywhere makes it 0 whatever the others are. */
size_t bcae_st_shape_bytes(int ndim, const size_t *shape, size_t item, int *overflow);
/* A name as it can be quoted in a message: printable ASCII, bounded. */
void bcae_st_shown(char dst[ST_NAME_SHOWN + 4], const char *s);
/* Reverses the bytes of each item of a buffer (byte-order changes). */
void bcae_st_swap_items(unsigned char *p, size_t bytes, size_t item);
/* Length of the well-formed UTF-8 sequence at p, or 0. */
size_t bcae_st_utf8_len(const unsigned char *p, const unsigned char *end);

/* What the header says about one tensor, before the cross-checks. */
typedef struct st_info {
    bcae_st_tensor t;    /* name owned; nbytes and data not yet set */
    size_t begin, end;   /* data_offsets */
} st_info;

/* Parses the header JSON (len bytes, not terminated) into *infos (n
 * entries, a fresh array whose names the caller then owns, also on
 * failure) and f's metadata. Checks syntax and types only. */
bcae_status bcae_st_parse_header(const char *text, size_t len, const char *file,
                                 bcae_st_file *f, st_info **infos, size_t *n, bcae_error *err);

#endif
