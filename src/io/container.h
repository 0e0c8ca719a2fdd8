/*
 * The .bcae container's internals (docs/FORMAT.md has the byte tables). Its
 * API, reader and writer, is public: include/bcae.h, "The .bcae container".
 * This header adds only what the reader, the writer and their tests share.
 */
#ifndef BCAE_IO_CONTAINER_H
#define BCAE_IO_CONTAINER_H

#include <stddef.h>
#include <stdint.h>

#include "bcae.h"

/* Fixed sizes: file header 64 + arch length; record 44 + path length +
 * payload; end marker 16 (docs/FORMAT.md has the byte tables). */
#define BCAE_CTR_HEADER_FIXED 64
#define BCAE_CTR_RECORD_OVERHEAD 44
#define BCAE_CTR_END_BYTES 16

#endif
