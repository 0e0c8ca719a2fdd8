/* Relative paths: the one lexical normalisation that manifest lines and
 * record names go through, and a set of paths to refuse duplicates. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileutil.h"

const char *bcae_path_normalize(const char *path, int mode, char *out)
{
    if (path[0] == '/' && mode == BCAE_PATH_STRICT) return "is absolute";
    size_t o = 0;
    for (const char *p = path; *p;) {
        while (*p == '/') p++;
        const char *e = p;
        while (*e && *e != '/') e++;
        size_t len = (size_t)(e - p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (mode == BCAE_PATH_STRICT) return "has a '..' component";
            /* Cancel the last component kept; above the start, drop it. */
            while (o > 0 && out[o - 1] != '/') o--;
            if (o > 0) o--;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (o) out[o++] = '/';
            memmove(out + o, p, len); /* out may be path itself */
            o += len;
        }
        p = e;
    }
    out[o] = '\0';
    return o ? NULL : "names no file";
}

/* ------------------------------------------------------------------ */
/* A set of strings: open addressing, FNV-1a, at most half full        */
/* ------------------------------------------------------------------ */

struct bcae_pathset {
    char **slots;
    size_t cap; /* a power of two */
    size_t count;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

bcae_pathset *bcae_pathset_new(void)
{
    bcae_pathset *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cap = 64;
    s->slots = calloc(s->cap, sizeof *s->slots);
    if (!s->slots) {
        free(s);
        return NULL;
    }
    return s;
}

/* The slot holding key, or the empty one where it would go. */
static size_t find(char **slots, size_t cap, const char *key)
{
    size_t i = (size_t)hash(key) & (cap - 1);
    while (slots[i] && strcmp(slots[i], key) != 0) i = (i + 1) & (cap - 1);
    return i;
}

int bcae_pathset_has(const bcae_pathset *s, const char *path)
{
    return s->slots[find(s->slots, s->cap, path)] != NULL;
}

int bcae_pathset_add(bcae_pathset *s, const char *path)
{
    size_t i = find(s->slots, s->cap, path);
    if (s->slots[i]) return 0;
    if (2 * (s->count + 1) > s->cap) {
        size_t cap = 2 * s->cap;
        char **slots = calloc(cap, sizeof *slots);
        if (!slots) return -1;
        for (size_t k = 0; k < s->cap; k++)
            if (s->slots[k]) slots[find(slots, cap, s->slots[k])] = s->slots[k];
        free(s->slots);
        s->slots = slots;
        s->cap = cap;
        i = find(s->slots, s->cap, path);
    }
    size_t n = strlen(path) + 1;
    char *copy = malloc(n);
    if (!copy) return -1;
    memcpy(copy, path, n);
    s->slots[i] = copy;
    s->count++;
    return 1;
}

void bcae_pathset_free(bcae_pathset *s)
{
    if (!s) return;
    for (size_t k = 0; k < s->cap; k++) free(s->slots[k]);
    free(s->slots);
    free(s);
}
