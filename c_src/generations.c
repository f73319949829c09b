/*
 * generations.c: resource types whose resources outlive a delete, purge
 * and load of py_nif.
 *
 * The library and the interpreter outlive any reload of py_nif (boot.c),
 * and so do the resources Erlang holds: references to Python objects
 * (objref.c), channels (channel.c). A reload (upgrade) takes a resource
 * type over. But when py_nif is deleted and purged, ERTS orphans the type,
 * and a later load must make a new one, which ERTS does not link to the
 * old: resources of the old type would no longer be recognised (a
 * reference passed to Python would silently become an erlang.Ref). So
 * each type made is a generation, kept with a count of its live
 * resources, and a term is looked for in every generation that still has
 * some. A generation's slot is reused once its resources are all gone
 * (ERTS then frees its type; only its address was ever compared).
 */
#include "generations.h"

/* The slot the opened type goes to: the current one if it is the same type
 * (taken over) or none is set yet (the first load), else one with no
 * resource left; -1 if none has room. */
static int
slot_for(struct pyerl_generations *g)
{
    int now = atomic_load(&g->current);

    if (!atomic_load(&g->slots[now].type) || atomic_load(&g->slots[now].type) == g->opened) {
        return now;
    }
    for (int slot = 0; slot < PYERL_GENERATIONS; slot++) {
        if (slot != now && atomic_load(&g->slots[slot].live) == 0) {
            return slot;
        }
    }
    return -1; /* as many unloads as slots, each with resources alive */
}

int
pyerl_generations_open(struct pyerl_generations *g, ErlNifEnv *env)
{
    g->opened = enif_open_resource_type_x(env, g->name, &g->init,
                                          ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    return g->opened && slot_for(g) >= 0 ? 0 : -1;
}

void
pyerl_generations_commit(struct pyerl_generations *g)
{
    int slot = slot_for(g); /* found by open: resources only go */
    ErlNifResourceType *old;

    atomic_store(&g->slots[slot].type, g->opened);
    atomic_store(&g->current, slot);
    /* The types of a purged library with no resource left are freed. */
    for (int other = 0; other < PYERL_GENERATIONS; other++) {
        old = atomic_load(&g->slots[other].type);
        if (other != slot && old && atomic_load(&g->slots[other].live) == 0) {
            atomic_compare_exchange_strong(&g->slots[other].type, &old, NULL);
        }
    }
}

void *
pyerl_generations_alloc(struct pyerl_generations *g, size_t size, int *generation)
{
    int now = atomic_load(&g->current);
    void *resource = enif_alloc_resource(atomic_load(&g->slots[now].type), size);

    if (resource) {
        atomic_fetch_add(&g->slots[now].live, 1);
        *generation = now;
    }
    return resource;
}

void *
pyerl_generations_get(struct pyerl_generations *g, ErlNifEnv *env, ERL_NIF_TERM term)
{
    int now = atomic_load(&g->current);
    ErlNifResourceType *type;
    void *resource;

    if (enif_get_resource(env, term, atomic_load(&g->slots[now].type), &resource)) {
        return resource;
    }
    if (!enif_is_ref(env, term)) {
        return NULL;
    }
    for (int slot = 0; slot < PYERL_GENERATIONS; slot++) {
        type = atomic_load(&g->slots[slot].type);
        if (slot != now && type && enif_get_resource(env, term, type, &resource)) {
            return resource;
        }
    }
    return NULL;
}

void
pyerl_generations_destroyed(struct pyerl_generations *g, int generation)
{
    ErlNifResourceType *type = atomic_load(&g->slots[generation].type); /* ours while we live */

    /* The last of an old generation: its slot is free. A load may have
     * taken the slot meanwhile, hence the exchange only if unchanged. */
    if (atomic_fetch_sub(&g->slots[generation].live, 1) == 1 &&
        generation != atomic_load(&g->current)) {
        atomic_compare_exchange_strong(&g->slots[generation].type, &type, NULL);
    }
}
