/*
 * erts_access.h: the ERTS calls that hand the NIF memory from a process
 * heap, under names of our own so that valgrind builds can vouch for it.
 *
 * The BEAM's JIT runs Erlang code on a stack inside each process's heap,
 * which memcheck takes for a C stack: when that stack shrinks, memcheck
 * marks the part of the heap it leaves unusable, though ERTS goes on
 * building terms there. So in valgrind builds (-DPYERL_VALGRIND, see make
 * valgrind) what these calls hand the NIF from a heap (a tuple's elements,
 * a binary's bytes) is marked usable before we touch it; every other
 * access stays checked. In other builds they are the ERTS calls
 * themselves. Code of the NIF uses these, never the three enif_ calls.
 */
#ifndef PYERL_ERTS_ACCESS_H
#define PYERL_ERTS_ACCESS_H

#include "common.h"

#if defined(PYERL_VALGRIND)
#include <valgrind/memcheck.h>
#define PYERL_VG_DEFINED(addr, size) (void)VALGRIND_MAKE_MEM_DEFINED((addr), (size))
#define PYERL_VG_UNDEFINED(addr, size) (void)VALGRIND_MAKE_MEM_UNDEFINED((addr), (size))
#else
#define PYERL_VG_DEFINED(addr, size) ((void)0)
#define PYERL_VG_UNDEFINED(addr, size) ((void)0)
#endif

static inline int
pyerl_get_tuple(ErlNifEnv *env, ERL_NIF_TERM term, int *arity, const ERL_NIF_TERM **array)
{
    int ok = enif_get_tuple(env, term, arity, array);

    if (ok) {
        PYERL_VG_DEFINED(*array, (size_t)*arity * sizeof **array);
    }
    return ok;
}

static inline int
pyerl_inspect_binary(ErlNifEnv *env, ERL_NIF_TERM term, ErlNifBinary *bin)
{
    int ok = enif_inspect_binary(env, term, bin);

    if (ok) {
        PYERL_VG_DEFINED(bin->data, bin->size);
    }
    return ok;
}

static inline unsigned char *
pyerl_make_new_binary(ErlNifEnv *env, size_t size, ERL_NIF_TERM *term)
{
    unsigned char *data = enif_make_new_binary(env, size, term);

    if (data) {
        PYERL_VG_UNDEFINED(data, size);
    }
    return data;
}

#endif
