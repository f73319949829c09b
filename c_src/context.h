/*
 * context.h: a context is one Python interpreter as the NIF uses it, with
 * everything that belongs to that interpreter (context.c).
 *
 * Today there is one context, the main interpreter's, made at load by
 * boot.c and kept for the life of the VM. Every in-flight call knows its
 * context (interrupt.h), every conversion is given it (convert.h), and
 * nothing that belongs to an interpreter is a C global.
 */
#ifndef PYERL_CONTEXT_H
#define PYERL_CONTEXT_H

#include "common.h"

#include <stdatomic.h>

struct pyerl_module_state;
struct pyerl_names;
struct pyerl_code_cache;

/* A Python object that Erlang has let go of, waiting for a thread that
 * holds the context's GIL to release it (a resource destructor may
 * neither take the GIL nor block). */
struct pyerl_dropped {
    PyObject *obj; /* the reference to release */
    struct pyerl_dropped *next;
};

struct pyerl_ctx {
    /* Set once when the context is made, read-only afterwards: */
    PyInterpreterState *interp;
    PyObject *globals;                /* the namespace of py:eval/exec; strong */
    PyObject *module;                 /* the interpreter's erlang module; strong */
    struct pyerl_module_state *state; /* the module's state (module_state.h) */
    pthread_key_t tstate_key;         /* each OS thread's PyThreadState for interp */
    /* Guarded by the context's GIL: */
    struct pyerl_names *names;     /* py:call's names and modules (callable.c) */
    struct pyerl_code_cache *code; /* compiled eval and exec sources (code_cache.c) */
    PyObject *registered;          /* set of str: names registered in Erlang; strong */
    /* Lock-free, any thread: */
    _Atomic(struct pyerl_dropped *) dropped; /* objects to release */
    atomic_ulong releases;                   /* times the list was emptied */
};

/* A new context for interp, with nothing else filled in yet; NULL if out
 * of memory. */
struct pyerl_ctx *pyerl_ctx_new(PyInterpreterState *interp);

/* The context of interp, or NULL if it is none of ours. */
struct pyerl_ctx *pyerl_ctx_of_interp(PyInterpreterState *interp);

/* The main interpreter's context, once boot.c has made it; else NULL. */
struct pyerl_ctx *pyerl_main_ctx(void);
void pyerl_set_main_ctx(struct pyerl_ctx *ctx);

/* Takes ctx's GIL on the calling thread, with the thread's state for its
 * interpreter (made on the thread's first use and kept), and releases the
 * objects dropped meanwhile. Returns -1 (nothing taken) if the thread state
 * cannot be made. The caller holds no lock and no other GIL. */
int pyerl_ctx_enter(struct pyerl_ctx *ctx);

/* Releases the GIL that pyerl_ctx_enter took. */
void pyerl_ctx_leave(struct pyerl_ctx *ctx);

/* Deletes the calling thread's state for ctx's interpreter, for a thread
 * about to exit. The caller holds no GIL. */
void pyerl_ctx_forget_thread(struct pyerl_ctx *ctx);

/* Hands obj (a reference node) to the next thread that enters ctx, to be
 * released there, or to the release thread within milliseconds. Any
 * thread, no GIL; never blocks. */
void pyerl_ctx_drop_later(struct pyerl_ctx *ctx, struct pyerl_dropped *node);

/* Starts the thread that releases dropped objects when no call comes;
 * from load, once (later loads find it running). Returns 0 or -1. */
int pyerl_ctx_start_releaser(void);

#endif
