/*
 * buffers.h: binaries over the buffers of Python objects, and the large
 * binaries a call was given (buffers.c).
 */
#ifndef PYERL_BUFFERS_H
#define PYERL_BUFFERS_H

#include "common.h"

struct pyerl_ctx;

/* Opens the resource type; from load and upgrade. Returns 0 or -1. */
int pyerl_buffers_init(ErlNifEnv *env);

#define PYERL_LARGE_ARGS_MAX 8

/* The large binaries among one call's arguments (of env) and the objects
 * they became, so that a result that is one of those objects goes back as
 * the very binary it came from. Owned by the call (run.c), on its stack. */
struct pyerl_large_args {
    ErlNifEnv *env;
    int count;
    ERL_NIF_TERM binaries[PYERL_LARGE_ARGS_MAX];
    PyObject *objects[PYERL_LARGE_ARGS_MAX]; /* strong references */
};

/* Notes that binary (size bytes, of env) became obj, if it is large and of
 * large->env. GIL held. */
void pyerl_large_args_note(struct pyerl_large_args *large, ErlNifEnv *env, ERL_NIF_TERM binary,
                           size_t size, PyObject *obj);

/* Drops the noted objects. GIL held. */
void pyerl_large_args_release(struct pyerl_large_args *large);

/* The size bytes at data as a binary in env. When large, and owner (an
 * immutable object of ctx's interpreter that owns the bytes) is given: the
 * binary obj came from, if large notes it (large may be NULL), else a
 * binary over the buffer itself that keeps owner alive. Otherwise a copy.
 * Returns 1, or 0 with MemoryError set. GIL held. */
int pyerl_buffer_to_term(struct pyerl_ctx *ctx, const struct pyerl_large_args *large,
                         ErlNifEnv *env, PyObject *owner, const char *data, Py_ssize_t size,
                         ERL_NIF_TERM *out);

#endif
