/*
 * code_cache.h: compiled sources of py:eval and py:exec, kept for reuse
 * (code_cache.c).
 */
#ifndef PYERL_CODE_CACHE_H
#define PYERL_CODE_CACHE_H

#include "common.h"

/* The code one interpreter compiled for eval and exec. */
struct pyerl_code_cache;

/* A new, empty cache; NULL if out of memory. */
struct pyerl_code_cache *pyerl_code_cache_new(void);

/* Drops the cache and its code. The GIL of its interpreter held. */
void pyerl_code_cache_free(struct pyerl_code_cache *cache);

/* The code object `kind` (the caller's tag for how it was compiled) of
 * these source bytes compiled to, as a new reference; NULL (no exception)
 * if none is kept. The GIL of the cache's interpreter held. */
PyObject *pyerl_code_cache_get(struct pyerl_code_cache *cache, int kind,
                               const unsigned char *source, size_t size);

/* Keeps code as what source compiled to, if the source is short enough;
 * takes its own reference. The GIL of the cache's interpreter held. */
void pyerl_code_cache_put(struct pyerl_code_cache *cache, int kind, const unsigned char *source,
                          size_t size, PyObject *code);

#endif
