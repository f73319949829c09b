/*
 * objref.c: Python objects that Erlang holds by reference.
 *
 * A reference is a NIF resource, so its term is what enif_make_resource
 * makes: an Erlang reference, unique, cheap to copy between processes and
 * to keep in ETS, printed #Ref<...>, and naming the node that made it
 * (node/1), which is how a reference that travelled to another node is
 * recognised there (src/py.erl). The resource holds a strong reference to
 * its object and the context (interpreter) the object belongs to; the
 * object is only touched under that context's GIL.
 *
 * The object lives while any term refers to the resource. The resource's
 * destructor runs on whichever ERTS thread drops the last term, without
 * the GIL, and must neither take it nor block: it hands the object to its
 * context's list of dropped objects (context.c), in a node allocated with
 * the resource so that the destructor allocates nothing. py:release drops
 * the object at once, under the GIL; the resource then stays, empty, and
 * every later use finds it released.
 *
 * A reference into an own context (a subinterpreter, contexts.c) holds
 * the context's struct and is listed in it, so that its finaliser can let
 * go of every object before the interpreter ends; a reference used after
 * that finds it released, and its context closed.
 *
 * The library and the interpreter outlive any reload of py_nif (boot.c),
 * and so do the objects: the resource type is one of generations.c's, so
 * that a reference made before a delete, purge and load of py_nif is still
 * recognised after it.
 *
 * The references among a call's arguments are noted (struct
 * pyerl_ref_args) so that an object with no Erlang form that the call
 * hands back goes back as the reference it came as: an identity function
 * over an opaque object is lossless. The notes hold strong references, so
 * that no other object can take a noted object's address while the call
 * runs, even if the reference is released meanwhile.
 */
#include "objref.h"

#include "context.h"
#include "generations.h"

#include <string.h>

#define NOTES_FIRST 8

struct pyerl_objref {
    struct pyerl_ctx *ctx;            /* set when made, read-only afterwards; held
                                       * if an own context */
    struct pyerl_objref *prev, *next; /* in an own context's list, under its
                                       * objrefs_lock */
    struct pyerl_dropped *node;       /* node->obj: the object, strong, or NULL once
                                       * released; read and written under the GIL of
                                       * ctx, or by the destructor */
    int generation;                   /* its type's slot (generations.h) */
};

static void objref_dtor(ErlNifEnv *env, void *arg);

static struct pyerl_generations generations = {.name = "pyerl_objref",
                                               .init = {.dtor = objref_dtor}};

/* objrefs_lock held. */
static void
unlink_ref(struct pyerl_objref *ref)
{
    if (ref->prev) {
        ref->prev->next = ref->next;
    } else {
        ref->ctx->objrefs = ref->next;
    }
    if (ref->next) {
        ref->next->prev = ref->prev;
    }
}

static void
objref_dtor(ErlNifEnv *env, void *arg)
{
    struct pyerl_objref *ref = arg;

    (void)env;
    if (ref->ctx->own) {
        pthread_mutex_lock(&ref->ctx->objrefs_lock);
        unlink_ref(ref);
    }
    if (ref->node->obj) {
        pyerl_ctx_drop_later(ref->ctx, ref->node);
    } else {
        enif_free(ref->node);
    }
    if (ref->ctx->own) {
        pthread_mutex_unlock(&ref->ctx->objrefs_lock);
        pyerl_ctx_unref(ref->ctx);
    }
    pyerl_generations_destroyed(&generations, ref->generation);
}

int
pyerl_objref_init(ErlNifEnv *env)
{
    return pyerl_generations_open(&generations, env);
}

void
pyerl_objref_commit(void)
{
    pyerl_generations_commit(&generations);
}

int
pyerl_objref_make(struct pyerl_ctx *ctx, ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out)
{
    struct pyerl_dropped *node;
    struct pyerl_objref *ref;
    int generation;

    /* Set by the finaliser under this same GIL. */
    if (ctx->own && ctx->objrefs_closed) {
        PyErr_SetString(PyExc_RuntimeError, "the context is being stopped");
        return 0;
    }
    if (!(node = enif_alloc(sizeof *node))) {
        PyErr_NoMemory();
        return 0;
    }
    if (!(ref = pyerl_generations_alloc(&generations, sizeof *ref, &generation))) {
        enif_free(node);
        PyErr_NoMemory();
        return 0;
    }
    node->obj = NULL;
    ref->ctx = ctx;
    ref->node = node;
    ref->generation = generation;
    ref->prev = NULL;
    if (ctx->own) {
        pthread_mutex_lock(&ctx->objrefs_lock);
        ref->next = ctx->objrefs;
        if (ref->next) {
            ref->next->prev = ref;
        }
        ctx->objrefs = ref;
        pyerl_ctx_ref(ctx);
        pthread_mutex_unlock(&ctx->objrefs_lock);
    }
    node->obj = Py_NewRef(obj);
    *out = enif_make_resource(env, ref);
    enif_release_resource(ref);
    return 1;
}

struct pyerl_objref *
pyerl_objref_get(ErlNifEnv *env, ERL_NIF_TERM term)
{
    return pyerl_generations_get(&generations, env, term);
}

struct pyerl_ctx *
pyerl_objref_ctx(const struct pyerl_objref *ref)
{
    return ref->ctx;
}

PyObject *
pyerl_objref_object(const struct pyerl_objref *ref)
{
    return Py_XNewRef(ref->node->obj);
}

void
pyerl_objref_release_all(struct pyerl_ctx *ctx)
{
    struct pyerl_objref *ref;
    PyObject **objs;
    size_t n = 0, size = 0;

    /* References are made under this GIL, so the list can only shrink
     * (destructors) between the count and the emptying. */
    pthread_mutex_lock(&ctx->objrefs_lock);
    for (ref = ctx->objrefs; ref; ref = ref->next) {
        size++;
    }
    pthread_mutex_unlock(&ctx->objrefs_lock);
    objs = enif_alloc((size ? size : 1) * sizeof *objs);
    pthread_mutex_lock(&ctx->objrefs_lock);
    for (ref = ctx->objrefs; ref; ref = ref->next) {
        /* Out of memory, the objects are left to the interpreter's end. */
        if (ref->node->obj && objs) {
            objs[n++] = ref->node->obj;
        }
        ref->node->obj = NULL;
    }
    ctx->objrefs_closed = 1;
    pthread_mutex_unlock(&ctx->objrefs_lock);
    /* Outside the lock: __del__ may drop references. */
    for (size_t i = 0; i < n; i++) {
        Py_DECREF(objs[i]);
    }
    enif_free(objs);
}

void
pyerl_objref_release(struct pyerl_objref *ref)
{
    /* Cleared first: the object's __del__ may use the reference again. */
    PyObject *obj = ref->node->obj;

    ref->node->obj = NULL;
    Py_XDECREF(obj);
}

/* ---- the references among a call's arguments ------------------------- */

struct pyerl_ref_note {
    PyObject *obj; /* strong */
    ERL_NIF_TERM term;
};

int
pyerl_ref_args_note(struct pyerl_ref_args *refs, ERL_NIF_TERM term, PyObject *obj)
{
    size_t capacity = refs->capacity ? 2 * refs->capacity : NOTES_FIRST;
    struct pyerl_ref_note *notes;

    if (refs->count == refs->capacity) {
        if (!(notes = enif_realloc(refs->notes, capacity * sizeof *notes))) {
            PyErr_NoMemory();
            return 0;
        }
        refs->notes = notes;
        refs->capacity = capacity;
    }
    refs->notes[refs->count].obj = Py_NewRef(obj);
    refs->notes[refs->count].term = term;
    refs->count++;
    return 1;
}

static int
by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct pyerl_ref_note *)a)->obj;
    uintptr_t y = (uintptr_t)((const struct pyerl_ref_note *)b)->obj;

    return (x > y) - (x < y);
}

int
pyerl_ref_args_find(struct pyerl_ref_args *refs, ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out)
{
    struct pyerl_ref_note key = {.obj = obj}, *found;

    if (refs->count == 0) {
        return 0;
    }
    /* Sorted at the first lookup, so that a result of many objects costs
     * a binary search each. */
    if (refs->sorted != refs->count) {
        qsort(refs->notes, refs->count, sizeof *refs->notes, by_address);
        refs->sorted = refs->count;
    }
    if (!(found = bsearch(&key, refs->notes, refs->count, sizeof *refs->notes, by_address))) {
        return 0;
    }
    *out = env == refs->env ? found->term : enif_make_copy(env, found->term);
    return 1;
}

void
pyerl_ref_args_release(struct pyerl_ref_args *refs)
{
    for (size_t i = 0; i < refs->count; i++) {
        Py_DECREF(refs->notes[i].obj);
    }
    enif_free(refs->notes);
    refs->notes = NULL;
    refs->count = refs->capacity = refs->sorted = 0;
}
