/*
 * code_cache.c: compiled code of py:eval and py:exec, kept for reuse.
 *
 * Compiling `1+1` costs several times more than evaluating it, and callers
 * tend to send the same few sources again and again. So the code object a
 * source compiled to is kept, keyed by the source's bytes and by what it
 * was compiled as (an eval's expression or statements, an exec's
 * statements), and the next request with the same bytes runs it without
 * compiling. A code object is immutable, so sharing one between calls and
 * threads is what Python itself does for a loop's body.
 *
 * The cache is small and bounded: SLOTS entries in sets of WAYS, sources
 * of at most MAX_SOURCE bytes (a long script is rarely sent twice, and its
 * compilation dwarfs the lookup anyway). A full set drops its least
 * recently used entry. Only sources that compiled are kept: an error is
 * compiled (and reported) every time.
 *
 * Each interpreter (context) has a cache of its own: code objects belong to
 * the interpreter that made them. Everything here runs with the GIL of
 * that interpreter held, which is also the lock of its table.
 */
#include "code_cache.h"

#include <string.h>

#define SLOTS 256
#define WAYS 4
#define MAX_SOURCE 4096

struct entry {
    uint64_t hash;
    int kind;
    size_t size;
    unsigned char *source; /* enif_alloc'd copy; NULL when the entry is free */
    PyObject *code;        /* strong reference */
    uint64_t used;         /* the value of `uses` at its last use */
};

struct pyerl_code_cache {
    struct entry table[SLOTS];
    uint64_t uses; /* a clock of lookups, for least recently used */
};

struct pyerl_code_cache *
pyerl_code_cache_new(void)
{
    struct pyerl_code_cache *cache = enif_alloc(sizeof *cache);

    if (cache) {
        memset(cache, 0, sizeof *cache);
    }
    return cache;
}

void
pyerl_code_cache_free(struct pyerl_code_cache *cache)
{
    for (size_t i = 0; i < SLOTS; i++) {
        enif_free(cache->table[i].source);
        Py_XDECREF(cache->table[i].code);
    }
    enif_free(cache);
}

/* FNV-1a: short sources, and no need for more than a table index. */
static uint64_t
hash_source(int kind, const unsigned char *source, size_t size)
{
    uint64_t hash = 14695981039346656037ULL ^ (uint64_t)kind;

    for (size_t i = 0; i < size; i++) {
        hash = (hash ^ source[i]) * 1099511628211ULL;
    }
    return hash;
}

static struct entry *
set_of(struct pyerl_code_cache *cache, uint64_t hash)
{
    return &cache->table[(hash % (SLOTS / WAYS)) * WAYS];
}

PyObject *
pyerl_code_cache_get(struct pyerl_code_cache *cache, int kind, const unsigned char *source,
                     size_t size)
{
    uint64_t hash;
    struct entry *set;

    if (size > MAX_SOURCE) {
        return NULL;
    }
    hash = hash_source(kind, source, size);
    set = set_of(cache, hash);
    for (int i = 0; i < WAYS; i++) {
        struct entry *e = &set[i];

        if (e->source && e->hash == hash && e->kind == kind && e->size == size &&
            memcmp(e->source, source, size) == 0) {
            e->used = ++cache->uses;
            return Py_NewRef(e->code);
        }
    }
    return NULL;
}

void
pyerl_code_cache_put(struct pyerl_code_cache *cache, int kind, const unsigned char *source,
                     size_t size, PyObject *code)
{
    uint64_t hash;
    struct entry *set, *victim;
    unsigned char *copy, *old_source;
    PyObject *old_code;

    if (size > MAX_SOURCE || !(copy = enif_alloc(size ? size : 1))) {
        return;
    }
    memcpy(copy, source, size);
    hash = hash_source(kind, source, size);
    set = set_of(cache, hash);
    victim = &set[0];
    for (int i = 0; i < WAYS; i++) {
        if (!set[i].source) {
            victim = &set[i];
            break;
        }
        if (set[i].used < victim->used) {
            victim = &set[i];
        }
    }
    old_source = victim->source;
    old_code = victim->code;
    victim->hash = hash;
    victim->kind = kind;
    victim->size = size;
    victim->source = copy;
    victim->code = Py_NewRef(code);
    victim->used = ++cache->uses;
    /* Last, with the table consistent: dropping a code object could run
     * Python code (a weak reference's callback). */
    if (old_source) {
        enif_free(old_source);
    }
    Py_XDECREF(old_code);
}
