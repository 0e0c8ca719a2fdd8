/*
 * The safetensors header: a strict recursive-descent parser for exactly the
 * JSON subset the format uses, an object of
 *   name: {"dtype": string, "shape": [int, ...], "data_offsets": [int, int]}
 * plus at most one "__metadata__": {string: string, ...}. Anything else
 * (other value types, fractions, negative numbers, unknown or repeated
 * keys, bad escapes, malformed UTF-8, trailing bytes other than the
 * padding) is refused with the byte offset where it went wrong. The
 * grammar has a fixed depth, so no input can make it recurse deeply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/safetensors_internal.h"

/* ------------------------------------------------------------------ */
/* The header's JSON, parsed within [p, end)                           */
/* ------------------------------------------------------------------ */

typedef struct parser {
    const char *start, *p, *end;
    const char *file;   /* for messages */
    const char *tensor; /* the tensor being parsed, for messages; NULL outside one */
    bcae_error *err;
} parser;

static bcae_status syntax(parser *ps, const char *what)
{
    size_t at = (size_t)(ps->p - ps->start);
    if (!ps->tensor)
        return bcae_fail(ps->err, BCAE_ERR_FORMAT, "%s: safetensors header, byte %zu: %s",
                         ps->file, at, what);
    char a[ST_NAME_SHOWN + 4];
    bcae_st_shown(a, ps->tensor);
    return bcae_fail(ps->err, BCAE_ERR_FORMAT, "%s: tensor '%s': safetensors header, byte %zu: %s",
                     ps->file, a, at, what);
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* Skips whitespace and consumes ch if it comes next. */
static int accept(parser *ps, char ch)
{
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ch) {
        ps->p++;
        return 1;
    }
    return 0;
}

static bcae_status expect(parser *ps, char ch, const char *what)
{
    if (accept(ps, ch)) return BCAE_OK;
    return syntax(ps, ps->p >= ps->end ? "unexpected end of the header" : what);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (within end), or -1. */
static long hex4(const char *p, const char *end)
{
    if (end - p < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t put_utf8(unsigned char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
size_t bcae_st_utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    /* The lead byte gives the length, its payload bits and the smallest
     * code point that needs that length (anything less is overlong). */
    size_t n = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (!n) return 0;
    unsigned long cp = c & (0x7fu >> n);
    unsigned long min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

/* A JSON string, decoded into a fresh NUL-terminated buffer. The escapes
 * \" \\ \/ \b \f \n \r \t \uXXXX (surrogate pairs joined) are decoded;
 * raw control characters, malformed UTF-8, lone surrogates and NUL (our
 * names are C strings) are refused. The decoded text is never longer than
 * its source, which bounds the allocation by the header size. */
static bcae_status parse_string(parser *ps, const char *what, char **out)
{
    *out = NULL;
    skip_ws(ps);
    if (ps->p >= ps->end) return syntax(ps, "unexpected end of the header");
    if (*ps->p != '"') {
        char msg[64];
        snprintf(msg, sizeof msg, "expected a string (%s)", what);
        return syntax(ps, msg);
    }
    const char *s = ++ps->p;
    const char *q = s;
    while (q < ps->end && *q != '"') q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    if (q >= ps->end) return syntax(ps, "unterminated string");
    unsigned char *o = malloc((size_t)(q - s) + 1);
    if (!o) return bcae_fail(ps->err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", ps->file);
    size_t n = 0;
    while (ps->p < q) {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) {
            free(o);
            return syntax(ps, "control character in a string");
        }
        if (c != '\\') {
            size_t k =
                bcae_st_utf8_len((const unsigned char *)ps->p, (const unsigned char *)q);
            if (!k) {
                free(o);
                return syntax(ps, "string is not valid UTF-8");
            }
            memcpy(o + n, ps->p, k);
            n += k;
            ps->p += k;
            continue;
        }
        static const char escapes[] = "\"\\/bfnrt", decoded[] = "\"\\/\b\f\n\r\t";
        char e = ps->p[1]; /* the scan above guarantees it is before q */
        const char *simple = e ? strchr(escapes, e) : NULL;
        if (simple) {
            o[n++] = (unsigned char)decoded[simple - escapes];
            ps->p += 2;
            continue;
        }
        if (e != 'u') {
            free(o);
            return syntax(ps, "bad escape in a string");
        }
        long cp = hex4(ps->p + 2, q);
        size_t used = 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            /* A high surrogate must be followed by \u and a low one. */
            long lo = (q - ps->p >= 12 && ps->p[6] == '\\' && ps->p[7] == 'u')
                          ? hex4(ps->p + 8, q)
                          : -1;
            if (lo < 0xdc00 || lo > 0xdfff) {
                free(o);
                return syntax(ps, "lone surrogate in a \\u escape");
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            used = 12;
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            free(o);
            return syntax(ps, "lone surrogate in a \\u escape");
        }
        if (cp < 0) {
            free(o);
            return syntax(ps, "bad \\u escape");
        }
        if (cp == 0) {
            free(o);
            return syntax(ps, "NUL character in a string");
        }
        n += put_utf8(o + n, (unsigned long)cp);
        ps->p += used;
    }
    ps->p = q + 1;
    o[n] = '\0';
    *out = (char *)o;
    return BCAE_OK;
}

/* A non-negative JSON integer: "0" or no leading zero, no sign, no
 * fraction or exponent, within SIZE_MAX. */
static bcae_status parse_uint(parser *ps, size_t *v)
{
    skip_ws(ps);
    if (ps->p >= ps->end) return syntax(ps, "unexpected end of the header");
    if (*ps->p == '-') return syntax(ps, "negative number");
    if (*ps->p < '0' || *ps->p > '9') return syntax(ps, "expected an integer");
    const char *first = ps->p;
    size_t x = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        size_t d = (size_t)(*ps->p - '0');
        if (x > (SIZE_MAX - d) / 10) return syntax(ps, "integer too large");
        x = x * 10 + d;
        ps->p++;
    }
    if (*first == '0' && ps->p - first > 1) return syntax(ps, "integer with a leading zero");
    if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E'))
        return syntax(ps, "expected an integer, not a fraction");
    *v = x;
    return BCAE_OK;
}

/* [n, n, ...] with at most max items; *count receives how many. */
static bcae_status parse_uint_array(parser *ps, size_t *v, int max, int *count,
                                    const char *what, int *too_many)
{
    bcae_status st = expect(ps, '[', what);
    if (st) return st;
    *count = 0;
    *too_many = 0;
    if (accept(ps, ']')) return BCAE_OK;
    for (;;) {
        size_t x = 0;
        if ((st = parse_uint(ps, &x))) return st;
        if (*count < max) v[(*count)++] = x;
        else *too_many = 1; /* keep parsing: a syntax error still reads as one */
        if (accept(ps, ',')) continue;
        return expect(ps, ']', "expected ',' or ']' in an array");
    }
}

/* The dtype string of tensor `tname`. */
static bcae_status parse_dtype(parser *ps, const char *tname, bcae_dtype *dtype)
{
    char *s;
    bcae_status st = parse_string(ps, "dtype", &s);
    if (st) return st;
    int known = bcae_st_dtype_parse(s, dtype);
    char a[ST_NAME_SHOWN + 4], b[ST_NAME_SHOWN + 4];
    bcae_st_shown(a, tname);
    bcae_st_shown(b, s);
    free(s);
    if (known > 0) return BCAE_OK;
    if (known < 0)
        return bcae_fail(ps->err, BCAE_ERR_UNSUPPORTED,
                         "%s: tensor '%s': dtype %s is not supported", ps->file, a, b);
    return bcae_fail(ps->err, BCAE_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", ps->file,
                     a, b);
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]}, each exactly
 * once, in any order, nothing else. */
static bcae_status parse_tensor(parser *ps, st_info *info)
{
    const char *tname = info->t.name;
    char a[ST_NAME_SHOWN + 4];
    bcae_st_shown(a, tname);
    bcae_status st = expect(ps, '{', "a tensor's value must be an object");
    if (st) return st;
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    if (!accept(ps, '}')) {
        for (;;) {
            char *key;
            if ((st = parse_string(ps, "a tensor's key", &key))) return st;
            if ((st = expect(ps, ':', "expected ':' after a key"))) {
                free(key);
                return st;
            }
            int *seen = !strcmp(key, "dtype") ? &have_dtype
                        : !strcmp(key, "shape") ? &have_shape
                        : !strcmp(key, "data_offsets") ? &have_offsets
                                                       : NULL;
            if (!seen || *seen) {
                char k[ST_NAME_SHOWN + 4];
                bcae_st_shown(k, key);
                free(key);
                return bcae_fail(ps->err, BCAE_ERR_FORMAT, "%s: tensor '%s': %s key '%s'",
                                 ps->file, a, seen ? "duplicate" : "unexpected", k);
            }
            free(key);
            *seen = 1;
            if (seen == &have_dtype) {
                st = parse_dtype(ps, tname, &info->t.dtype);
            } else if (seen == &have_shape) {
                int too_many;
                st = parse_uint_array(ps, info->t.shape, BCAE_MAX_DIMS, &info->t.ndim,
                                      "shape must be an array", &too_many);
                if (!st && too_many)
                    return bcae_fail(ps->err, BCAE_ERR_UNSUPPORTED,
                                     "%s: tensor '%s': more than %d dimensions", ps->file, a,
                                     BCAE_MAX_DIMS);
            } else {
                size_t off[2];
                int n, too_many;
                st = parse_uint_array(ps, off, 2, &n, "data_offsets must be an array",
                                      &too_many);
                if (!st && (n != 2 || too_many))
                    return bcae_fail(ps->err, BCAE_ERR_FORMAT,
                                     "%s: tensor '%s': data_offsets must be [begin, end]",
                                     ps->file, a);
                info->begin = off[0];
                info->end = off[1];
            }
            if (st) return st;
            if (accept(ps, ',')) continue;
            if ((st = expect(ps, '}', "expected ',' or '}' in a tensor"))) return st;
            break;
        }
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return bcae_fail(ps->err, BCAE_ERR_FORMAT, "%s: tensor '%s' lacks '%s'", ps->file, a,
                         !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return BCAE_OK;
}

/* Makes room for `need` items in a growing array: returns the array
 * (moved or not), or NULL with the old one untouched. The growth is bounded
 * by the header's size because every element consumed header bytes. */
static void *grow(void *arr, size_t *cap, size_t need, size_t item)
{
    if (need <= *cap) return arr;
    size_t c = *cap ? *cap * 2 : 16;
    if (c < need) c = need;
    if (c > SIZE_MAX / item) return NULL;
    void *p = realloc(arr, c * item);
    if (p) *cap = c;
    return p;
}

/* {"key": "value", ...}: strings only, keys unique. */
static bcae_status parse_metadata(parser *ps, bcae_st_file *f)
{
    size_t kcap = 0, vcap = 0;
    bcae_status st = expect(ps, '{', "__metadata__ must be an object");
    if (st) return st;
    if (accept(ps, '}')) return BCAE_OK;
    for (;;) {
        char **keys = grow(f->meta_keys, &kcap, f->nmeta + 1, sizeof *keys);
        if (!keys) goto oom;
        f->meta_keys = keys;
        char **values = grow(f->meta_values, &vcap, f->nmeta + 1, sizeof *values);
        if (!values) goto oom;
        f->meta_values = values;
        char *key, *value;
        if ((st = parse_string(ps, "a metadata key", &key))) return st;
        char k[ST_NAME_SHOWN + 4];
        bcae_st_shown(k, key);
        for (size_t i = 0; i < f->nmeta; i++)
            if (!strcmp(f->meta_keys[i], key)) {
                free(key);
                return bcae_fail(ps->err, BCAE_ERR_FORMAT, "%s: duplicate metadata key '%s'",
                                 ps->file, k);
            }
        if ((st = expect(ps, ':', "expected ':' after a key"))) {
            free(key);
            return st;
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p != '"') {
            free(key);
            return bcae_fail(ps->err, BCAE_ERR_FORMAT,
                             "%s: metadata value of '%s' is not a string", ps->file, k);
        }
        if ((st = parse_string(ps, "a metadata value", &value))) {
            free(key);
            return st;
        }
        f->meta_keys[f->nmeta] = key;
        f->meta_values[f->nmeta] = value;
        f->nmeta++;
        if (accept(ps, ',')) continue;
        return expect(ps, '}', "expected ',' or '}' in __metadata__");
    }
oom:
    return bcae_fail(ps->err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory", ps->file);
}

/* The whole header: an object of tensors and at most one __metadata__,
 * then only whitespace (the padding). */
static bcae_status parse_object(parser *ps, bcae_st_file *f, st_info **infos, size_t *ninfo)
{
    size_t cap = 0;
    int have_meta = 0;
    *infos = NULL;
    *ninfo = 0;
    /* Like the reference implementation, the JSON must start right away. */
    if (ps->p >= ps->end || *ps->p != '{') return syntax(ps, "header is not a JSON object");
    ps->p++;
    bcae_status st = BCAE_OK;
    if (!accept(ps, '}')) {
        for (;;) {
            char *key;
            if ((st = parse_string(ps, "a tensor name", &key))) return st;
            if ((st = expect(ps, ':', "expected ':' after a key"))) {
                free(key);
                return st;
            }
            if (!strcmp(key, ST_META)) {
                free(key);
                if (have_meta)
                    return bcae_fail(ps->err, BCAE_ERR_FORMAT, "%s: duplicate __metadata__",
                                     ps->file);
                have_meta = 1;
                if ((st = parse_metadata(ps, f))) return st;
            } else {
                st_info *more = grow(*infos, &cap, *ninfo + 1, sizeof *more);
                if (!more) {
                    free(key);
                    return bcae_fail(ps->err, BCAE_ERR_OUT_OF_MEMORY, "%s: out of memory",
                                     ps->file);
                }
                *infos = more;
                st_info *info = &(*infos)[(*ninfo)++];
                memset(info, 0, sizeof *info);
                info->t.name = key; /* owned by the array from now on */
                ps->tensor = key;
                if ((st = parse_tensor(ps, info))) return st;
                ps->tensor = NULL;
            }
            if (accept(ps, ',')) continue;
            if ((st = expect(ps, '}', "expected ',' or '}' after a tensor"))) return st;
            break;
        }
    }
    skip_ws(ps);
    if (ps->p != ps->end) return syntax(ps, "unexpected bytes after the header object");
    return BCAE_OK;
}

bcae_status bcae_st_parse_header(const char *text, size_t len, const char *file,
                                bcae_st_file *f, st_info **infos, size_t *n, bcae_error *err)
{
    parser ps = {text, text, text + len, file, NULL, err};
    return parse_object(&ps, f, infos, n);
}
