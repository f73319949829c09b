/*
 * interrupt.h: in-flight calls, and the watchdog that interrupts those
 * Erlang no longer waits for (interrupt.c).
 */
#ifndef PYERL_INTERRUPT_H
#define PYERL_INTERRUPT_H

#include "common.h"
#include "protocol.h"

struct pyerl_ctx;

/* One call from Erlang (py:call, eval or exec) while Python runs it, known
 * to the watchdog so that it can be interrupted. Owned by whoever runs the
 * call (on its stack, or in a pool job). Fields after `lock-guarded` are
 * guarded by the watchdog's lock. */
/* Why a call was interrupted (pyerl_inflight_end's answer); 0: it was
 * not. */
enum pyerl_interruption {
    PYERL_TIMED_OUT = 1, /* its deadline passed, or its caller died or gave up */
    PYERL_INTERRUPTED,   /* py:interrupt on its context */
    PYERL_STOPPED        /* its context is being stopped */
};

struct pyerl_inflight {
    struct pyerl_ctx *ctx;    /* the interpreter the call runs in */
    const void *tag;          /* what else names the calls to interrupt
                               * together (a context's), or NULL */
    unsigned long thread_id;  /* PyThread ident of the running thread */
    ErlNifPid caller;         /* the Erlang process waiting for the call */
    ErlNifEnv *env;           /* the caller's env on a dirty scheduler, else NULL */
    struct pyerl_frame frame; /* its nesting, and where its output goes */
    /* lock-guarded: */
    struct pyerl_inflight *prev, *next;
    uint64_t serial; /* tells a reused struct from the one the watchdog saw */
    int64_t deadline_ns;
    int64_t next_check_ns; /* when to look again whether the caller lives */
    int registered;
    int interrupted;     /* for good: its deadline passed or its caller died */
    int reason;          /* enum pyerl_interruption, once interrupted */
    int delivered;       /* this round's CallInterrupted is raised or armed */
    int wake_fd;         /* an eventfd the call waits on in erlang.call, or -1 */
    pthread_cond_t wake; /* wakes an erlang.sleep in this call */
};

/* Starts the watchdog thread, once; from load. Returns 0 or -1. */
int pyerl_watchdog_start(void);

/* Starts and ends the watch over one call; both on the running thread with
 * ctx's GIL held. caller is the process waiting for the call (its death
 * interrupts it); deadline_ns is monotonic; tag as in the struct.
 * pyerl_inflight_end returns why the call was interrupted (enum
 * pyerl_interruption), after disarming any interruption not yet delivered
 * to Python, or 0. */
void pyerl_inflight_begin(struct pyerl_inflight *call, struct pyerl_ctx *ctx, const void *tag,
                          const ErlNifPid *caller, ErlNifEnv *env, int64_t deadline_ns,
                          const struct pyerl_frame *frame);
int pyerl_inflight_end(struct pyerl_inflight *call);

/* Interrupts, for reason, every running call tagged tag (if not NULL) or
 * running in ctx (if not NULL) that is not interrupted already. Any
 * thread, no GIL, never blocks but on the watchdog's short lock. */
void pyerl_inflight_interrupt_all(const void *tag, struct pyerl_ctx *ctx,
                                  enum pyerl_interruption reason);

/* The call running on this thread, or NULL (a thread Python started). */
struct pyerl_inflight *pyerl_inflight_current(void);

/* Asks the watchdog to interrupt the call now (its caller gave up). Any
 * thread, no GIL; cheap, so a normal scheduler may call it. */
void pyerl_inflight_abandon(struct pyerl_inflight *call);

/* Whether the watchdog has interrupted the call. Any thread. */
int pyerl_inflight_interrupted(struct pyerl_inflight *call);

/* The eventfd an interruption must write to: the thread's worker fd, once
 * the call has waited on Erlang or watched async calls (-1 before). It
 * stays set: a spurious wake-up is harmless to every waiter. Any thread. */
void pyerl_inflight_set_wake_fd(struct pyerl_inflight *call, int fd);

/* Sets the call's wake fd for one wait of the caller's own and returns the
 * one it replaces, which the caller puts back (with this function) when
 * its wait ends. Any thread. */
int pyerl_inflight_exchange_wake_fd(struct pyerl_inflight *call, int fd);

/* Disarms the CallInterrupted the watchdog may have armed for the call
 * (running on the calling thread), so that it is raised where the caller
 * chooses rather than at the next bytecode; the watchdog then arms none
 * until its next round. The call's GIL held (it may be released for a
 * moment). */
void pyerl_inflight_disarm(struct pyerl_inflight *call);

/* If the watchdog has a CallInterrupted due for the call (on the calling
 * thread) that is neither raised nor armed yet, disarms it and returns 1:
 * the caller raises it. Else 0. Lets code the thread reaches often (an
 * event loop's wake-up) stop a call without waiting for the watchdog to
 * get the GIL. The call's GIL held. */
int pyerl_inflight_claim_due(struct pyerl_inflight *call);

/* Raises the call's interruption again at once, on the call's thread (the
 * first was swallowed where Python could not let it out). Returns 1, or 0
 * if the call is not interrupted or the thread cannot be told apart (the
 * watchdog then raises it again later). The call's GIL held. */
int pyerl_inflight_rearm(struct pyerl_inflight *call);

/* Sleeps seconds (>= 0) with the call's GIL released, unless the call is
 * interrupted first. Returns 1 if it was (disarmed: the caller raises
 * CallInterrupted), else 0. On the call's thread, GIL held. */
int pyerl_inflight_sleep(struct pyerl_inflight *call, double seconds);

#endif
