/*
 * objref.h: Python objects that Erlang holds by reference (objref.c).
 */
#ifndef PYERL_OBJREF_H
#define PYERL_OBJREF_H

#include "common.h"

struct pyerl_ctx;

/* A reference: a resource holding one object of one context. */
struct pyerl_objref;

/* Opens the resource type, then makes it the one new references get, once
 * the load cannot fail any more (generations.h); from load and upgrade.
 * Init returns 0 or -1. */
int pyerl_objref_init(ErlNifEnv *env);
void pyerl_objref_commit(void);

/* A new reference to obj, an object of ctx, as a term of env. Returns 1, or
 * 0 with an exception set (out of memory, or ctx being finalised). The
 * GIL of ctx held. */
int pyerl_objref_make(struct pyerl_ctx *ctx, ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out);

/* The reference term is, or NULL if it is none. Any thread, no GIL. */
struct pyerl_objref *pyerl_objref_get(ErlNifEnv *env, ERL_NIF_TERM term);

/* The context the reference's object belongs to. Any thread, no GIL. */
struct pyerl_ctx *pyerl_objref_ctx(const struct pyerl_objref *ref);

/* A new reference to the object, or NULL (no exception) once released.
 * The GIL of its context held. */
PyObject *pyerl_objref_object(const struct pyerl_objref *ref);

/* Lets go of the objects of every reference into ctx, an own context
 * being finalised, and refuses new references there. The GIL of ctx
 * held. */
void pyerl_objref_release_all(struct pyerl_ctx *ctx);

/* Lets go of the object now (py:release); later uses find it released.
 * The GIL of its context held. */
void pyerl_objref_release(struct pyerl_objref *ref);

/* The references among one call's arguments and the objects they became,
 * so that an object with no Erlang form in the result goes back as the
 * reference it came from. Owned by the call (run.c), zeroed but for env;
 * the notes hold strong references. */
struct pyerl_ref_args {
    ErlNifEnv *env;
    size_t count, capacity, sorted; /* notes[0..sorted) are in address order */
    struct pyerl_ref_note *notes;
};

/* Notes that term (a reference of env) became obj. Returns 1, or 0 with
 * MemoryError set. GIL held. */
int pyerl_ref_args_note(struct pyerl_ref_args *refs, ERL_NIF_TERM term, PyObject *obj);

/* The reference obj came from, made in env, if refs notes it. GIL held. */
int pyerl_ref_args_find(struct pyerl_ref_args *refs, ErlNifEnv *env, PyObject *obj,
                        ERL_NIF_TERM *out);

/* Drops the noted objects and the notes. GIL held. */
void pyerl_ref_args_release(struct pyerl_ref_args *refs);

#endif
