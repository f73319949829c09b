/*
 * context.c: entering and leaving a context, and what is left for the
 * next thread that enters it.
 *
 * Every OS thread that runs Python for us (dirty schedulers, pool threads,
 * the watchdog) gets one PyThreadState per context on its first use and
 * keeps it: making one per call would cost more than a short call. It is
 * found through a pthread key of the context. Only pool threads exit while
 * the VM runs, and they forget their states first.
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
 * 10, against 1.6 times without it).
 */
#include "context.h"

#include <errno.h>
#include <semaphore.h>
#include <string.h>
#include <time.h>

#define GATHER_NS (1000 * 1000L)

/* Written once by boot.c at the first load, read-only afterwards. */
static struct pyerl_ctx *main_ctx;

/* Posted when a context's list of dropped objects stops being empty. */
static sem_t dropped_signal;
static atomic_int releaser_started; /* set once by pyerl_ctx_start_releaser, from load */

struct pyerl_ctx *
pyerl_ctx_new(PyInterpreterState *interp)
{
    struct pyerl_ctx *ctx = enif_alloc(sizeof *ctx);

    if (!ctx) {
        return NULL;
    }
    memset(ctx, 0, sizeof *ctx);
    if (pthread_key_create(&ctx->tstate_key, NULL) != 0) {
        enif_free(ctx);
        return NULL;
    }
    ctx->interp = interp;
    atomic_init(&ctx->dropped, NULL);
    atomic_init(&ctx->releases, 0);
    return ctx;
}

struct pyerl_ctx *
pyerl_ctx_of_interp(PyInterpreterState *interp)
{
    return main_ctx && main_ctx->interp == interp ? main_ctx : NULL;
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

int
pyerl_ctx_enter(struct pyerl_ctx *ctx)
{
    PyThreadState *tstate = pthread_getspecific(ctx->tstate_key);

    if (!tstate) {
        if (!(tstate = PyThreadState_New(ctx->interp))) {
            return -1;
        }
        pthread_setspecific(ctx->tstate_key, tstate);
    }
    PyEval_RestoreThread(tstate);
    if (atomic_load_explicit(&ctx->dropped, memory_order_relaxed)) {
        release_dropped(ctx);
    }
    return 0;
}

void
pyerl_ctx_leave(struct pyerl_ctx *ctx)
{
    (void)ctx;
    PyEval_SaveThread();
}

void
pyerl_ctx_forget_thread(struct pyerl_ctx *ctx)
{
    PyThreadState *tstate = pthread_getspecific(ctx->tstate_key);

    if (!tstate) {
        return;
    }
    PyEval_RestoreThread(tstate);
    PyThreadState_Clear(tstate);
    PyThreadState_DeleteCurrent();
    pthread_setspecific(ctx->tstate_key, NULL);
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
        /* One pass answers every post made so far. */
        while (sem_trywait(&dropped_signal) == 0) {
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
    struct pyerl_ctx *ctx;

    (void)arg;
    for (;;) {
        while (sem_wait(&dropped_signal) < 0 && errno == EINTR) {
        }
        /* The main context is the only one yet. */
        ctx = main_ctx;
        if (ctx && left_to_release(ctx) && pyerl_ctx_enter(ctx) == 0) {
            pyerl_ctx_leave(ctx);
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
