/*
 * generations.h: resource types whose resources outlive a delete, purge
 * and load of py_nif (generations.c).
 */
#ifndef PYERL_GENERATIONS_H
#define PYERL_GENERATIONS_H

#include "common.h"

#include <stdatomic.h>

#define PYERL_GENERATIONS 8

/* The types made under one name by the loads of the library: a static,
 * zeroed but for name and init. A slot is set by a load, while calls may
 * read it, and emptied by the destructor of its last resource unless it is
 * the current one, or by a load, of every slot but the new current one
 * with no resource left (ERTS frees such a type when the library is
 * purged, and its address may then be another type's); a load takes a
 * slot that is empty or has no resource left. */
struct pyerl_generations {
    const char *name;            /* the resource type's name */
    ErlNifResourceTypeInit init; /* its callbacks; the dtor must end with
                                  * pyerl_generations_destroyed */
    struct {
        ErlNifResourceType *_Atomic type;
        atomic_long live; /* resources of this type not yet destroyed */
    } slots[PYERL_GENERATIONS];
    atomic_int current;         /* the slot new resources are made in */
    ErlNifResourceType *opened; /* by pyerl_generations_open, until committed */
};

/* Opens (load) or takes over (upgrade) the type, which new resources get
 * once pyerl_generations_commit has made it current: a load that fails
 * after opening (ERTS then drops the type) commits nothing. Open returns
 * 0, or -1 if the type cannot be made or no slot has room; commit, after
 * a successful open, cannot fail. */
int pyerl_generations_open(struct pyerl_generations *g, ErlNifEnv *env);
void pyerl_generations_commit(struct pyerl_generations *g);

/* A new resource of size bytes of the current type, or NULL. *generation
 * is its slot, which its destructor hands to pyerl_generations_destroyed.
 * Any thread. */
void *pyerl_generations_alloc(struct pyerl_generations *g, size_t size, int *generation);

/* The resource term is, of any live generation, or NULL. Any thread. */
void *pyerl_generations_get(struct pyerl_generations *g, ErlNifEnv *env, ERL_NIF_TERM term);

/* Ends the destructor of a resource of that generation. */
void pyerl_generations_destroyed(struct pyerl_generations *g, int generation);

#endif
