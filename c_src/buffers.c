/*
 * buffers.c: large Erlang binaries made over the buffers of Python objects,
 * without copying them.
 *
 * A bytes or str value of LARGE_BYTES or more that crosses into Erlang
 * becomes a resource binary over the object's own buffer (the bytes, or the
 * str's UTF-8 form, which the str keeps); the resource holds a reference to
 * the object, so the buffer lives as long as any term refers to it. Both
 * kinds are immutable, so the binary never changes under Erlang's feet.
 * Smaller values are copied: a resource costs more than a short memcpy.
 * So are the values of an own context (a subinterpreter), whose objects
 * cannot outlive it, where a binary can.
 *
 * The resource's destructor runs on whichever ERTS thread drops the last
 * reference, without the GIL, and must neither take it nor block. It pushes
 * the object on its context's list of dropped objects instead, and the
 * next thread that enters the context releases it (context.c).
 *
 * The other way, a large binary must be copied into the bytes or str it
 * becomes. But when a call's result is one of the very objects its
 * arguments became (a function handing back what it was given, or putting
 * it in a dict), the binary it came from is the answer: both are immutable
 * and equal. So while a call's arguments are converted, the large binaries
 * among them are noted with their objects, and the
 * result's conversion returns the noted binary for a noted object. The
 * note holds a reference to each object, so that no other object can take
 * its address before the result is converted.
 */
#include "buffers.h"

#include "context.h"
#include "erts_access.h"

#include <string.h>

#define LARGE_BYTES (64 * 1024)

/* A binary's hold on a Python object. */
struct pyref {
    struct pyerl_ctx *ctx;      /* the object's interpreter */
    struct pyerl_dropped *node; /* allocated with the resource, handed over by the dtor */
};

/* Set by load and upgrade while calls may be reading it. */
static ErlNifResourceType *_Atomic pyref_type;

static void
pyref_dtor(ErlNifEnv *env, void *arg)
{
    struct pyref *ref = arg;

    (void)env;
    pyerl_ctx_drop_later(ref->ctx, ref->node);
}

int
pyerl_buffers_init(ErlNifEnv *env)
{
    ErlNifResourceType *type = enif_open_resource_type(
        env, NULL, "pyerl_pyref", pyref_dtor, ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);

    if (!type) {
        return -1;
    }
    pyref_type = type;
    return 0;
}

void
pyerl_large_args_note(struct pyerl_large_args *large, ErlNifEnv *env, ERL_NIF_TERM binary,
                      size_t size, PyObject *obj)
{
    if (size >= LARGE_BYTES && large->env == env && large->count < PYERL_LARGE_ARGS_MAX) {
        large->binaries[large->count] = binary;
        large->objects[large->count] = Py_NewRef(obj);
        large->count++;
    }
}

void
pyerl_large_args_release(struct pyerl_large_args *large)
{
    for (int i = 0; i < large->count; i++) {
        Py_DECREF(large->objects[i]);
    }
    large->count = 0;
}

/* The binary obj came from, made in env, if large notes it. */
static int
find_noted(const struct pyerl_large_args *large, ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out)
{
    for (int i = 0; large && i < large->count; i++) {
        if (large->objects[i] == obj) {
            *out = env == large->env ? large->binaries[i] : enif_make_copy(env, large->binaries[i]);
            return 1;
        }
    }
    return 0;
}

int
pyerl_buffer_to_term(struct pyerl_ctx *ctx, const struct pyerl_large_args *large, ErlNifEnv *env,
                     PyObject *owner, const char *data, Py_ssize_t size, ERL_NIF_TERM *out)
{
    struct pyerl_dropped *node;
    struct pyref *ref;
    unsigned char *copy;

    if (owner && size >= LARGE_BYTES) {
        /* The binary it came from, else a binary over its buffer. */
        if (find_noted(large, env, owner, out)) {
            return 1;
        }
        if (!ctx->own && (node = enif_alloc(sizeof *node))) {
            if ((ref = enif_alloc_resource(pyref_type, sizeof *ref))) {
                node->obj = Py_NewRef(owner);
                ref->ctx = ctx;
                ref->node = node;
                *out = enif_make_resource_binary(env, ref, data, (size_t)size);
                enif_release_resource(ref);
                return 1;
            }
            enif_free(node);
        }
    }
    if (!(copy = pyerl_make_new_binary(env, (size_t)size, out))) {
        PyErr_NoMemory();
        return 0;
    }
    memcpy(copy, data, (size_t)size);
    return 1;
}
