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
 * buffer, see buffers.c) are released by the next thread that enters the
 * context, because the resource destructor that drops them runs on an ERTS
 * thread without the GIL and must neither take it nor block. They wait on
 * a lock-free list at most until the next call into that interpreter.
 */
#include "context.h"

#include <string.h>

/* Written once by boot.c at the first load, read-only afterwards. */
static struct pyerl_ctx *main_ctx;

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
}
