/*
 * context.c: entering and leaving a context, and what is left for the
 * next thread that enters it.
 *
 * Every OS thread that runs Python for us (dirty schedulers, pool threads,
 * the watchdog) gets one PyThreadState per context on its first use and
 * keeps it: making one per call would cost more than a short call. It is
 * found through a pthread key of the context (the main interpreter's;
 * own contexts differ, below). Only pool threads and contexts' finalisers
 * exit while the VM runs, and they forget their states first.
 *
 * Objects that Erlang drops (the owner of a binary made over a Python
 * buffer, see buffers.c; the object of a reference, objref.c) are released
 * by the next thread that enters the context, because the resource
 * destructor that drops them runs on an ERTS thread without the GIL and
 * must neither take it nor block. They wait on a lock-free list. When the
 * list goes from empty to not empty, the destructor also posts a semaphore
 * (which never blocks), and the release thread looks again every
 * GATHER_NS: while calls come, they empty the list; once a GATHER_NS
 * passes with objects left and no call releasing any, the thread enters
 * the context itself. So a dropped model or connection is closed within
 * milliseconds even when no call comes, a burst of drops costs the GIL
 * once, and the thread never takes the GIL from calls that would release
 * the objects anyway (that cost a call 2.4 times a plain one in bench row
 * 10, against 1.6 times without it). Own contexts' lists are emptied the
 * same way, without the wait for calls.
 *
 * Own contexts (subinterpreters, contexts.c) can be stopped, so they count
 * the threads inside them (drain.h) and can be closed. A thread takes a
 * new state for an own context each time it enters and deletes it when it
 * leaves, rather than keeping one: CPython (3.12, 3.13) binds a thread's
 * PyGILState to the state it last activated and, when it later activates
 * another, writes into that one, so a kept state of an interpreter that
 * ended, deleted by its finaliser on another thread, would be written
 * after it was freed (ThreadSanitizer saw that SEGV). Deleting its own
 * state on the way out leaves a thread bound to none. It costs about
 * 0.3 us a call (1.13-1.17 times a plain py:call against 1.0-1.07 with
 * kept states, warm, measured in turns), and an own context then has no
 * state left but the one it keeps (below) once nobody is inside, which
 * is what Py_EndInterpreter requires of all but its caller's. Python's
 * thread-local data therefore lasts one call in an own context.
 *
 * The interpreter's first state is kept for its whole life, detached:
 * CPython 3.12.1 gives a new state the interpreter's built-in first one
 * whenever its list of states is empty, and does not reset that one when
 * it is deleted, so the next call failed, fatally, with "thread state
 * already initialized". The kept state is bound to no thread; a call
 * made later on the thread that made the context has a newer state with
 * the same ident, which is the one Python finds first (interrupt.c).
 *
 * Own contexts are listed (under list_lock) for the release thread and to
 * find the context of an interpreter.
 */
#include "context.h"

#include <errno.h>
#include <semaphore.h>
#include <string.h>
#include <time.h>

#define GATHER_NS (1000 * 1000L)

/* Written once by boot.c at the first load, read-only afterwards. */
static struct pyerl_ctx *main_ctx;

/* The list of own contexts; held while a drain's lock may be taken
 * (common.h), else a leaf. */
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pyerl_ctx *own_contexts;

/* Posted when a context's list of dropped objects stops being empty. */
static sem_t dropped_signal;
static atomic_int releaser_started; /* set once by pyerl_ctx_start_releaser, from load */

/* A zeroed context for interp; NULL if out of memory. */
static struct pyerl_ctx *
alloc_ctx(PyInterpreterState *interp)
{
    struct pyerl_ctx *ctx = enif_alloc(sizeof *ctx);

    if (ctx) {
        memset(ctx, 0, sizeof *ctx);
        ctx->interp = interp;
        atomic_init(&ctx->dropped, NULL);
        atomic_init(&ctx->releases, 0);
    }
    return ctx;
}

struct pyerl_ctx *
pyerl_ctx_new(PyInterpreterState *interp)
{
    struct pyerl_ctx *ctx = alloc_ctx(interp);

    if (ctx && pthread_key_create(&ctx->tstate_key, NULL) != 0) {
        enif_free(ctx);
        return NULL;
    }
    return ctx;
}

struct pyerl_ctx *
pyerl_ctx_new_own(PyInterpreterState *interp)
{
    struct pyerl_ctx *ctx = alloc_ctx(interp);

    if (!ctx) {
        return NULL;
    }
    if (pyerl_drain_init(&ctx->users) < 0) {
        enif_free(ctx);
        return NULL;
    }
    pthread_mutex_init(&ctx->objrefs_lock, NULL);
    ctx->own = 1;
    atomic_init(&ctx->holders, 1);
    pthread_mutex_lock(&list_lock);
    ctx->next = own_contexts;
    own_contexts = ctx;
    pthread_mutex_unlock(&list_lock);
    return ctx;
}

int
pyerl_ctx_keep_first_state(struct pyerl_ctx *ctx)
{
    PyThreadState *first = PyThreadState_Get(), *passing = PyThreadState_New(ctx->interp);

    if (!passing) {
        return -1;
    }
    /* Running passing binds the thread to it instead of first; deleting
     * passing then leaves the thread bound to none. */
    PyThreadState_Swap(passing);
    ctx->keeper = first;
    PyThreadState_Clear(passing);
    PyThreadState_DeleteCurrent();
    return 0;
}

void
pyerl_ctx_ref(struct pyerl_ctx *ctx)
{
    if (ctx->own) {
        atomic_fetch_add(&ctx->holders, 1);
    }
}

void
pyerl_ctx_unref(struct pyerl_ctx *ctx)
{
    if (!ctx->own || atomic_fetch_sub(&ctx->holders, 1) != 1) {
        return;
    }
    pyerl_drain_destroy(&ctx->users);
    pthread_mutex_destroy(&ctx->objrefs_lock);
    enif_free(ctx);
}

struct pyerl_ctx *
pyerl_ctx_of_interp(PyInterpreterState *interp)
{
    struct pyerl_ctx *ctx;

    if (main_ctx && main_ctx->interp == interp) {
        return main_ctx;
    }
    pthread_mutex_lock(&list_lock);
    for (ctx = own_contexts; ctx && ctx->interp != interp; ctx = ctx->next) {
    }
    pthread_mutex_unlock(&list_lock);
    return ctx;
}

struct pyerl_ctx *
pyerl_main_ctx(void)
{
    return main_ctx;
}

void
pyerl_set_main_ctx(struct pyerl_ctx *ctx)
{
    main_ctx = ctx;
}

/* GIL held. Takes the whole list at once, which leaves pushers nothing to
 * race with. */
static void
release_dropped(struct pyerl_ctx *ctx)
{
    struct pyerl_dropped *node, *next;

    node = atomic_exchange_explicit(&ctx->dropped, NULL, memory_order_acquire);
    atomic_fetch_add_explicit(&ctx->releases, 1, memory_order_relaxed);
    for (; node; node = next) {
        next = node->next;
        Py_DECREF(node->obj);
        enif_free(node);
    }
}

/* Takes the GIL of ctx, which the caller is counted inside: with the
 * thread's kept state for the main interpreter, or a new state for an own
 * context (see the top). */
static int
take_gil(struct pyerl_ctx *ctx)
{
    PyThreadState *tstate;

    if (ctx->own) {
        tstate = PyThreadState_New(ctx->interp);
    } else if (!(tstate = pthread_getspecific(ctx->tstate_key)) &&
               (tstate = PyThreadState_New(ctx->interp))) {
        pthread_setspecific(ctx->tstate_key, tstate);
    }
    if (!tstate) {
        return PYERL_CTX_NO_STATE;
    }
    PyEval_RestoreThread(tstate);
    if (atomic_load_explicit(&ctx->dropped, memory_order_relaxed)) {
        release_dropped(ctx);
    }
    return 0;
}

int
pyerl_ctx_enter(struct pyerl_ctx *ctx)
{
    if (ctx->own && pyerl_drain_enter(&ctx->users) < 0) {
        return PYERL_CTX_CLOSED;
    }
    return pyerl_ctx_enter_held(ctx);
}

/* GIL held, with the thread's kept state for ctx: deletes that state,
 * which releases the GIL. */
static void
delete_kept_state(struct pyerl_ctx *ctx)
{
    PyThreadState_Clear(PyThreadState_Get());
    PyThreadState_DeleteCurrent();
    pthread_setspecific(ctx->tstate_key, NULL);
}

int
pyerl_ctx_enter_for_now(struct pyerl_ctx *ctx, int *made)
{
    *made = !ctx->own && !pthread_getspecific(ctx->tstate_key);
    return pyerl_ctx_enter(ctx);
}

void
pyerl_ctx_leave_for_now(struct pyerl_ctx *ctx, int made)
{
    if (!made || ctx->own) {
        pyerl_ctx_leave(ctx);
        return;
    }
    delete_kept_state(ctx);
}

void
pyerl_ctx_hold(struct pyerl_ctx *ctx)
{
    if (ctx->own) {
        pyerl_drain_hold(&ctx->users);
    }
}

void
pyerl_ctx_unhold(struct pyerl_ctx *ctx)
{
    if (ctx->own) {
        pyerl_drain_leave(&ctx->users);
    }
}

int
pyerl_ctx_enter_held(struct pyerl_ctx *ctx)
{
    int rc = take_gil(ctx);

    if (rc < 0 && ctx->own) {
        pyerl_drain_leave(&ctx->users);
    }
    return rc;
}

void
pyerl_ctx_leave(struct pyerl_ctx *ctx)
{
    if (!ctx->own) {
        PyEval_SaveThread();
        return;
    }
    PyThreadState_Clear(PyThreadState_Get());
    PyThreadState_DeleteCurrent();
    pyerl_drain_leave(&ctx->users);
}

int
pyerl_ctx_close(struct pyerl_ctx *ctx)
{
    return pyerl_drain_close(&ctx->users);
}

void
pyerl_ctx_forget_thread(void)
{
    PyThreadState *tstate = pthread_getspecific(main_ctx->tstate_key);

    if (!tstate) {
        return;
    }
    PyEval_RestoreThread(tstate);
    delete_kept_state(main_ctx);
}

void
pyerl_ctx_end(struct pyerl_ctx *ctx)
{
    struct pyerl_ctx **at;

    pthread_mutex_lock(&list_lock);
    for (at = &own_contexts; *at && *at != ctx; at = &(*at)->next) {
    }
    if (*at) {
        *at = ctx->next;
    }
    pthread_mutex_unlock(&list_lock);
    release_dropped(ctx);
    if (ctx->keeper) {
        PyThreadState_Clear(ctx->keeper);
        PyThreadState_Delete(ctx->keeper);
        ctx->keeper = NULL;
    }
    Py_EndInterpreter(PyThreadState_Get());
}

void
pyerl_ctx_drop_later(struct pyerl_ctx *ctx, struct pyerl_dropped *node)
{
    struct pyerl_dropped *head = atomic_load_explicit(&ctx->dropped, memory_order_relaxed);

    do {
        node->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&ctx->dropped, &head, node,
                                                    memory_order_release, memory_order_relaxed));
    if (!head && atomic_load_explicit(&releaser_started, memory_order_acquire)) {
        sem_post(&dropped_signal);
    }
}

#define OWN_BATCH 16

/* Releases the dropped objects of own contexts, OWN_BATCH contexts at a
 * time; returns whether more may be left. */
static int
release_own(void)
{
    struct pyerl_ctx *batch[OWN_BATCH], *ctx;
    int n = 0, more = 0;

    pthread_mutex_lock(&list_lock);
    for (ctx = own_contexts; ctx; ctx = ctx->next) {
        if (!atomic_load_explicit(&ctx->dropped, memory_order_relaxed)) {
            continue;
        }
        if (n == OWN_BATCH) {
            more = 1;
            break;
        }
        /* Counted inside, it stays listed until we leave, and held, its
         * struct stays until we are done with it; a closed one is emptied
         * by its finaliser. */
        if (pyerl_drain_enter(&ctx->users) == 0) {
            pyerl_ctx_ref(ctx);
            batch[n++] = ctx;
        }
    }
    pthread_mutex_unlock(&list_lock);
    for (int i = 0; i < n; i++) {
        if (pyerl_ctx_enter_held(batch[i]) == 0) {
            pyerl_ctx_leave(batch[i]);
        }
        pyerl_ctx_unref(batch[i]);
    }
    return more;
}

/* Waits GATHER_NS, then whether ctx still has dropped objects and no call
 * has released any meanwhile: calls that come release them, and taking
 * the GIL from under them would only slow them down. */
static int
left_to_release(struct pyerl_ctx *ctx)
{
    struct timespec gather = {.tv_sec = 0, .tv_nsec = GATHER_NS};
    unsigned long releases;

    for (;;) {
        releases = atomic_load_explicit(&ctx->releases, memory_order_relaxed);
        nanosleep(&gather, NULL);
        /* One pass answers every post made so far; own contexts do not
         * wait for the main interpreter's calls to stop. */
        while (sem_trywait(&dropped_signal) == 0) {
        }
        while (release_own()) {
        }
        if (!atomic_load_explicit(&ctx->dropped, memory_order_relaxed)) {
            return 0;
        }
        if (atomic_load_explicit(&ctx->releases, memory_order_relaxed) == releases) {
            return 1;
        }
    }
}

/* The release thread: waits for the signal, and releases what no call
 * releases. */
static void *
releaser_main(void *arg)
{
    (void)arg;
    for (;;) {
        while (sem_wait(&dropped_signal) < 0 && errno == EINTR) {
        }
        if (main_ctx && left_to_release(main_ctx) && pyerl_ctx_enter(main_ctx) == 0) {
            pyerl_ctx_leave(main_ctx);
        }
    }
    return NULL;
}

int
pyerl_ctx_start_releaser(void)
{
    pthread_attr_t attr;
    pthread_t thread;
    int rc;

    if (atomic_load(&releaser_started)) {
        return 0;
    }
    if (sem_init(&dropped_signal, 0, 0) != 0) {
        return -1;
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&thread, &attr, releaser_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        sem_destroy(&dropped_signal);
        return -1;
    }
    atomic_store_explicit(&releaser_started, 1, memory_order_release);
    return 0;
}
