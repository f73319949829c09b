/*
 * run.h: running one py:call, py:eval, py:exec or operation on a reference
 * on the calling thread (run.c): the spine that executor.c and pool.c
 * share.
 */
#ifndef PYERL_RUN_H
#define PYERL_RUN_H

#include "common.h"
#include "protocol.h"

struct pyerl_ctx;
struct pyerl_drain;
struct pyerl_inflight;

enum pyerl_op {
    PYERL_CALL,
    PYERL_EVAL,
    PYERL_EXEC,
    PYERL_METHOD,
    PYERL_GETATTR,
    PYERL_TO_TERM,
    PYERL_RELEASE
};

/* What to run, as terms of one env: CALL uses module, function, args,
 * kwargs; EVAL uses code and locals; EXEC uses code; the other four work
 * on the object of target (a reference, objref.h), METHOD with function
 * (the method's name), args and kwargs, GETATTR with function (the
 * attribute's name). */
struct pyerl_request {
    enum pyerl_op op;
    struct pyerl_ctx *ctx; /* where it runs; the target's context */
    /* A call through a context handle (contexts.h), else all NULL and 0: */
    ERL_NIF_TERM context;      /* the handle's term, which keeps these alive */
    struct pyerl_drain *calls; /* the handle's calls, counted while this runs */
    PyObject *globals;         /* its namespace; NULL: the context's globals */
    PyObject *main_module;     /* what Module '__main__' names, if not the
                                * interpreter's __main__ */
    ERL_NIF_TERM module, function, args, kwargs;
    ERL_NIF_TERM code, locals;
    ERL_NIF_TERM target;
    int return_ref;           /* the result as a reference, not converted */
    int64_t deadline_ns;      /* monotonic; INT64_MAX: no limit */
    struct pyerl_frame frame; /* protocol.h */
    ErlNifEnv *process_env;   /* the caller's env while run on its dirty
                               * scheduler; NULL on a pool thread */
};

/* Runs the request in its context on the calling thread (which must not be
 * a normal scheduler and must hold no GIL), watched as call, and returns
 * the result term made in out_env: {ok, V} | ok | {error, timeout} |
 * {error, interrupted} (py:interrupt) | {error, context_stopped} |
 * {error, {T, M}, Traceback} | {error, {badarg, ref}} (a target released). */
ERL_NIF_TERM pyerl_run(ErlNifEnv *in_env, const struct pyerl_request *req, ErlNifEnv *out_env,
                       struct pyerl_inflight *call, const ErlNifPid *caller);

#endif
