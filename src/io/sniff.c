/* Telling formats apart by their first bytes (io/sniff.h). */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "io/container.h"
#include "io/fileutil.h"
#include "io/safetensors.h"

/* b (n bytes) is the magic, or a file cut inside it. */
static int starts_like(const unsigned char *b, size_t n, const char *magic, size_t len)
{
    return memcmp(b, magic, n < len ? n : len) == 0;
}

bcae_file_kind bcae_sniff_bytes(const unsigned char *b, size_t n)
{
    if (n == 0) return BCAE_FILE_EMPTY;
    if (starts_like(b, n, "\x93NUMPY", 6)) return BCAE_FILE_NPY;
    if (starts_like(b, n, BCAE_CTR_MAGIC, BCAE_CTR_MAGIC_LEN)) return BCAE_FILE_BCAE;
    if (n >= 4 && !memcmp(b, "PK\x03\x04", 4)) return BCAE_FILE_ZIP;
    if (n >= 4 && !memcmp(b, "\x28\xb5\x2f\xfd", 4)) return BCAE_FILE_ZSTD;
    if (n >= 2 && !memcmp(b, "\x1f\x8b", 2)) return BCAE_FILE_GZIP;
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return BCAE_FILE_PNG;
    if (n >= 9 && b[8] == '{') {
        uint64_t h = 0;
        for (int i = 7; i >= 0; i--) h = h << 8 | b[i];
        if (h >= 2 && h <= BCAE_ST_MAX_HEADER) return BCAE_FILE_SAFETENSORS;
    }
    for (size_t i = 0; i < n; i++)
        if (!((b[i] >= 0x20 && b[i] < 0x7f) || b[i] == '\n' || b[i] == '\r' || b[i] == '\t'))
            return BCAE_FILE_UNKNOWN;
    return BCAE_FILE_TEXT;
}

bcae_status bcae_sniff_file(const char *path, bcae_file_kind *kind, unsigned char *first,
                            size_t *n, bcae_error *err)
{
    *kind = BCAE_FILE_UNKNOWN;
    *n = 0;
    FILE *fp;
    size_t size;
    bcae_status st = bcae_open_regular(path, &fp, &size, err);
    if (st) return st;
    size_t want = size < BCAE_SNIFF_BYTES ? size : BCAE_SNIFF_BYTES;
    st = bcae_read_exact(fp, first, want, path, err);
    fclose(fp);
    if (st) return st;
    *n = want;
    *kind = bcae_sniff_bytes(first, want);
    return BCAE_OK;
}

const char *bcae_file_kind_name(bcae_file_kind k)
{
    switch (k) {
    case BCAE_FILE_EMPTY: return "an empty file";
    case BCAE_FILE_NPY: return "a NumPy .npy file";
    case BCAE_FILE_BCAE: return "a .bcae container";
    case BCAE_FILE_SAFETENSORS: return "a safetensors file, such as model weights";
    case BCAE_FILE_ZIP: return "a zip archive, such as .npz or a PyTorch .pth";
    case BCAE_FILE_ZSTD: return "a zstd-compressed file";
    case BCAE_FILE_GZIP: return "a gzip-compressed file";
    case BCAE_FILE_PNG: return "a PNG image";
    case BCAE_FILE_TEXT: return "text";
    case BCAE_FILE_UNKNOWN: break;
    }
    return "an unknown format";
}
