/*
 * pyref.c: large Erlang binaries made over the buffers of Python objects,
 * without copying them.
 *
 * A bytes or str value of LARGE_BYTES or more that crosses into Erlang
 * becomes a resource binary over the object's own buffer (the bytes, or the
 * str's UTF-8 form, which the str keeps); the resource holds a reference to
 * the object, so the buffer lives as long as any term refers to it. Both
 * kinds are immutable, so the binary never changes under Erlang's feet.
 * Smaller values are copied: a resource costs more than a short memcpy.
 *
 * The resource's destructor runs on whichever ERTS thread drops the last
 * reference, without the GIL, and must neither take it nor block. It pushes
 * the object on a lock-free list instead, and the next thread that takes
 * the GIL for a call releases everything on it (pyerl_release_dropped).
 * Objects wait there at most until the next call into Python.
 *
 * The other way, a large binary must be copied into the bytes or str it
 * becomes. But when a call's result is one of the very objects its
 * arguments became (a function handing back what it was given, or putting
 * it in a dict), the binary it came from is the answer: both are immutable
 * and equal. So while a call's arguments are converted, the large binaries
 * among them are noted with their objects (struct pyerl_passed), and the
 * result's conversion returns the noted binary for a noted object. The
 * note holds a reference to each object, so that no other object can take
 * its address before the result is converted.
 */
#include "pyerl.h"

#include <stdatomic.h>
#include <string.h>

#define LARGE_BYTES (64 * 1024)

/* One object waiting for the GIL to be released. */
struct dropped {
    PyObject *obj;
    struct dropped *next;
};

struct pyref {
    struct dropped *node; /* allocated with the resource, pushed by the dtor */
};

/* Set by load and upgrade while calls may be reading it. */
static ErlNifResourceType *_Atomic pyref_type;
static _Atomic(struct dropped *) dropped_list;

static void
pyref_dtor(ErlNifEnv *env, void *arg)
{
    struct pyref *ref = arg;
    struct dropped *node = ref->node, *head;

    (void)env;
    head = atomic_load_explicit(&dropped_list, memory_order_relaxed);
    do {
        node->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&dropped_list, &head, node,
                                                    memory_order_release, memory_order_relaxed));
}

int
pyerl_pyref_init(ErlNifEnv *env)
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
pyerl_release_dropped(void)
{
    struct dropped *node, *next;

    if (!atomic_load_explicit(&dropped_list, memory_order_relaxed)) {
        return;
    }
    /* Taking the whole list at once leaves pushers nothing to race with. */
    node = atomic_exchange_explicit(&dropped_list, NULL, memory_order_acquire);
    for (; node; node = next) {
        next = node->next;
        Py_DECREF(node->obj);
        enif_free(node);
    }
}

/* The passed binaries this thread notes or looks up, if any; see
 * pyerl_passed_watch. */
static _Thread_local struct pyerl_passed *watched;

void
pyerl_passed_watch(struct pyerl_passed *passed)
{
    watched = passed;
}

void
pyerl_passed_note(ErlNifEnv *env, ERL_NIF_TERM binary, size_t size, PyObject *obj)
{
    struct pyerl_passed *passed;

    if (size < LARGE_BYTES) {
        return; /* the common case, decided without reading the thread-local */
    }
    passed = watched;
    if (passed && passed->env == env && passed->count < PYERL_PASSED_MAX) {
        passed->binaries[passed->count] = binary;
        passed->objects[passed->count] = Py_NewRef(obj);
        passed->count++;
    }
}

void
pyerl_passed_release(struct pyerl_passed *passed)
{
    for (int i = 0; i < passed->count; i++) {
        Py_DECREF(passed->objects[i]);
    }
    passed->count = 0;
}

/* The binary obj came from, made in env, if it is a noted one. */
static int
find_passed(ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out)
{
    struct pyerl_passed *passed = watched;

    for (int i = 0; passed && i < passed->count; i++) {
        if (passed->objects[i] == obj) {
            *out =
                env == passed->env ? passed->binaries[i] : enif_make_copy(env, passed->binaries[i]);
            return 1;
        }
    }
    return 0;
}

int
pyerl_buffer_to_term(ErlNifEnv *env, PyObject *owner, const char *data, Py_ssize_t size,
                     ERL_NIF_TERM *out)
{
    struct dropped *node;
    struct pyref *ref;
    unsigned char *copy;

    if (owner && size >= LARGE_BYTES) {
        /* The binary it came from, else a binary over its buffer. */
        if (find_passed(env, owner, out)) {
            return 1;
        }
        if ((node = enif_alloc(sizeof *node))) {
            if ((ref = enif_alloc_resource(pyref_type, sizeof *ref))) {
                node->obj = Py_NewRef(owner);
                ref->node = node;
                *out = enif_make_resource_binary(env, ref, data, (size_t)size);
                enif_release_resource(ref);
                return 1;
            }
            enif_free(node);
        }
    }
    if (!(copy = enif_make_new_binary(env, (size_t)size, out))) {
        PyErr_NoMemory();
        return 0;
    }
    memcpy(copy, data, (size_t)size);
    return 1;
}
