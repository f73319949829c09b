/*
 * context.h: a context is one Python interpreter as the NIF uses it, with
 * everything that belongs to that interpreter (context.c).
 *
 * The main interpreter's context is made at load by boot.c and kept for
 * the life of the VM. From Python 3.12, contexts.c also makes contexts of
 * subinterpreters with their own GIL ("own" contexts), which are stopped:
 * closed to new work, drained of the threads inside, then finalised.
 * Every in-flight call knows its context (interrupt.h), every conversion
 * is given it (convert.h), and nothing that belongs to an interpreter is
 * a C global.
 */
#ifndef PYERL_CONTEXT_H
#define PYERL_CONTEXT_H

#include "common.h"

#include "drain.h"

#include <stdatomic.h>

struct pyerl_module_state;
struct pyerl_names;
struct pyerl_code_cache;
struct pyerl_objref;

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
    pthread_key_t tstate_key;         /* each OS thread's PyThreadState for interp;
                                       * not in an own context (context.c) */
    /* Guarded by the context's GIL: */
    struct pyerl_names *names;     /* py:call's names and modules (callable.c) */
    struct pyerl_code_cache *code; /* compiled eval and exec sources (code_cache.c) */
    PyObject *registered;          /* set of str: names registered in Erlang; strong */
    /* Lock-free, any thread: */
    _Atomic(struct pyerl_dropped *) dropped; /* objects to release */
    atomic_ulong releases;                   /* times the list was emptied */

    /* Only in an own context (own is set once, when made): */
    int own;
    struct pyerl_drain users;     /* threads inside (enter to leave) */
    atomic_int holders;           /* of the struct: its handle, its references;
                                   * the last frees it (pyerl_ctx_unref) */
    PyThreadState *keeper;        /* its first state, kept (context.c) */
    pthread_mutex_t objrefs_lock; /* leaf; guards the two below (objref.c) */
    struct pyerl_objref *objrefs; /* its live references */
    int objrefs_closed;           /* set by the finaliser: no more */
    struct pyerl_ctx *next;       /* in the list of own contexts */
};

/* A new context for interp, with nothing else filled in yet; NULL if out
 * of memory. */
struct pyerl_ctx *pyerl_ctx_new(PyInterpreterState *interp);

/* A new own context for interp, a subinterpreter just made, whose first
 * state is the calling thread's current one, the GIL held: held once and
 * listed among the own contexts. NULL if out of memory. */
struct pyerl_ctx *pyerl_ctx_new_own(PyInterpreterState *interp);

/* Called by the thread that made an own context, when it has set it up:
 * keeps the context's first state, detached and bound to no thread, and
 * releases the GIL. 0, or -1 (the GIL still held) if no state can be
 * made. */
int pyerl_ctx_keep_first_state(struct pyerl_ctx *ctx);

/* One more holder; and one fewer, the last freeing the struct (after
 * pyerl_ctx_end). Any thread, no GIL. */
void pyerl_ctx_ref(struct pyerl_ctx *ctx);
void pyerl_ctx_unref(struct pyerl_ctx *ctx);

/* The context of interp, or NULL if it is none of ours. */
struct pyerl_ctx *pyerl_ctx_of_interp(PyInterpreterState *interp);

/* The main interpreter's context, once boot.c has made it; else NULL. */
struct pyerl_ctx *pyerl_main_ctx(void);
void pyerl_set_main_ctx(struct pyerl_ctx *ctx);

#define PYERL_CTX_NO_STATE (-1)
#define PYERL_CTX_CLOSED (-2)

/* Takes ctx's GIL on the calling thread, with the thread's state for its
 * interpreter (made on the thread's first use and kept; made for this
 * entry in an own context), and releases the objects dropped meanwhile. Returns 0, or (nothing
 * taken) PYERL_CTX_NO_STATE if the thread state cannot be made, PYERL_CTX_CLOSED if ctx is an own
 * context being stopped. The caller holds no lock and no other GIL. */
int pyerl_ctx_enter(struct pyerl_ctx *ctx);

/* For a thread that knows a thread is inside ctx (the watchdog, which
 * sees its call listed): counts it inside even if ctx is closed, without
 * taking the GIL; pyerl_ctx_enter_held then takes it (0, or
 * PYERL_CTX_NO_STATE having left). */
void pyerl_ctx_hold(struct pyerl_ctx *ctx);
int pyerl_ctx_enter_held(struct pyerl_ctx *ctx);
void pyerl_ctx_unhold(struct pyerl_ctx *ctx); /* a hold not entered */

/* As pyerl_ctx_enter, for a thread that may not keep a state for ctx
 * (one that a subinterpreter's code started): *made says whether the
 * state was made now, and pyerl_ctx_leave_for_now then deletes it. */
int pyerl_ctx_enter_for_now(struct pyerl_ctx *ctx, int *made);
void pyerl_ctx_leave_for_now(struct pyerl_ctx *ctx, int made);

/* Releases the GIL that pyerl_ctx_enter took (deleting the state of an
 * own context), and leaves. */
void pyerl_ctx_leave(struct pyerl_ctx *ctx);

/* For a thread about to exit, holding no GIL: deletes its state for the
 * main interpreter. */
void pyerl_ctx_forget_thread(void);

/* Closes an own context to new entries (pyerl_ctx_enter fails). Returns 1
 * if this call closed it. */
int pyerl_ctx_close(struct pyerl_ctx *ctx);

/* The GIL of an own context held by its finaliser (through
 * pyerl_ctx_enter_held), with nobody else inside (closed and drained), its
 * references emptied (objref.c) and its caches and objects released
 * (contexts.c): unlists the context, releases the dropped objects and
 * ends the interpreter (which leaves no GIL held and deletes the
 * finaliser's state). What happens to a thread the interpreter's code started and
 * that has not ended is Py_EndInterpreter's: it waits for it. */
void pyerl_ctx_end(struct pyerl_ctx *ctx);

/* Hands obj (a reference node) to the next thread that enters ctx, to be
 * released there, or to the release thread within milliseconds. Any
 * thread, no GIL; never blocks. */
void pyerl_ctx_drop_later(struct pyerl_ctx *ctx, struct pyerl_dropped *node);

/* Starts the thread that releases dropped objects when no call comes;
 * from load, once (later loads find it running). Returns 0 or -1. */
int pyerl_ctx_start_releaser(void);

#endif
