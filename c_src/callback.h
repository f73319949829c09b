/*
 * callback.h: Python calling Erlang: erlang.call, erlang.send and the
 * registered names (callback.c), and what erlang.async_call shares with
 * them (async.c).
 */
#ifndef PYERL_CALLBACK_H
#define PYERL_CALLBACK_H

#include "common.h"
#include "protocol.h"

struct pyerl_ctx;
struct pyerl_inflight;
struct pyerl_worker;

/* A request to Erlang, made by pyerl_encode_request. */
struct pyerl_encoded_request {
    ERL_NIF_TERM name, args;     /* in the worker's env */
    struct pyerl_frame frame;    /* the Erlang function's (protocol.h) */
    struct pyerl_inflight *call; /* the call running on this thread, or NULL */
    ErlNifEnv *caller_env;       /* for enif_send: the caller's env, or NULL */
};

/* The calling thread's worker, or NULL with an exception set: RuntimeError
 * (naming usage) in a forked child, where Erlang is out of reach, or
 * MemoryError. GIL held. */
struct pyerl_worker *pyerl_thread_worker(const char *usage);

/* Checks and converts (name, *args) of erlang.call or async_call (usage
 * names it in errors) into the thread's worker env. Returns the thread's
 * worker, in use (pyerl_worker_begin_use) until the caller is done with
 * the request and its reply, or NULL with an exception set (bad name or
 * argument, nesting too deep, no memory, a request of this thread's
 * already in the making). ctx's GIL held. */
struct pyerl_worker *pyerl_encode_request(struct pyerl_ctx *ctx, PyObject *const *args,
                                          Py_ssize_t nargs, const char *usage,
                                          struct pyerl_encoded_request *out);

/* The reply of an Erlang function (protocol.h) to a Python value of ctx,
 * or NULL with the exception it stands for set. name (the function's
 * name, for messages) may be NULL. ctx's GIL held. */
PyObject *pyerl_decode_reply(struct pyerl_ctx *ctx, ErlNifEnv *env, ERL_NIF_TERM reply,
                             PyObject *name);

/* Sets RuntimeError: the application is not running. */
void pyerl_set_not_running(void);

/* The erlang module's functions (erlang_module.c has their table). */
PyObject *pyerl_erlang_call(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *pyerl_erlang_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *pyerl_erlang_getattr(PyObject *module, PyObject *name);
PyObject *pyerl_erlang_set_registered(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *pyerl_erlang_clear_registered(PyObject *module, PyObject *unused);

/* set_max_depth(N): the deepest Python -> Erlang -> Python nesting. */
ERL_NIF_TERM pyerl_nif_set_max_depth(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
