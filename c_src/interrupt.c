/*
 * interrupt.c: stopping Python work that Erlang no longer waits for.
 *
 * Every call run for Erlang is registered here while it runs (struct
 * pyerl_inflight, which names the call's context). One watchdog thread
 * interrupts a call when its deadline passes, when its Erlang caller has
 * died, or when pyerl_inflight_abandon asks (a pool job whose caller gave * up). Interrupting
 * raises erlang.CallInterrupted in the call's thread through PyThreadState_SetAsyncExc, which
 * Python delivers at the next bytecode boundary (it searches the thread states of the current
 * interpreter only, so the watchdog enters the call's context to make it),
 * and wakes the call if it sleeps in erlang.sleep or waits in erlang.call.
 *
 * erlang.sleep replaces time.sleep inside the VM (erlang_module.c), and
 * sleeps here: Python only interrupts a sleep on its main thread (signals),
 * and calls never run there, so a plain time.sleep(60) would hold its * thread for the full minute.
 * Other blocking C calls (a socket read, a lock) see the exception when they return; that limit is
 * documented in docs/calls.md.
 *
 * A call that swallows the exception (a bare `except:`) gets it again every
 * REFIRE_NS until it ends.
 *
 * PyThreadState_SetAsyncExc names its thread by ident and sets the first
 * thread state it finds with that ident, newest first. Before 3.12, CPython
 * gives the state of a thread being started its creator's ident until the
 * new thread runs, so an interruption aimed at a call that has just started
 * a thread could land in the new thread instead. Interruptions are made
 * only while the ident is unambiguous (else retried after RETRY_NS).
 *
 * A forked child forgets the call its thread was running: it is the
 * parent's, watched by a watchdog (and guarded by locks) that the child
 * does not have.
 *
 * Locking: `lock` guards the list and the lock-guarded fields of struct * pyerl_inflight. The
 * watchdog takes a GIL holding no lock and `lock` inside it (the GIL is outermost, common.h). Calls
 * register and unregister with the GIL held, so while the watchdog holds the GIL, no call it finds
 * listed can end. Whether a caller is alive is asked of ERTS with no lock held.
 *
 * Wake-ups: the watchdog sleeps until the earliest deadline or, while calls
 * run, at most TICK_NS (to look at callers). After IDLE_TICKS ticks with no
 * call it sleeps until signalled. A new call signals it only if its deadline
 * comes before the planned wake-up, so most calls cost one short,
 * uncontended mutex hold on each side.
 */
#include "interrupt.h"

#include "clock.h"
#include "context.h"
#include "module_state.h"

#include <errno.h>
#include <sched.h>
#include <unistd.h>

#define TICK_NS (100 * 1000 * 1000LL)
#define LIVENESS_NS TICK_NS
#define REFIRE_NS (1000 * 1000 * 1000LL)
#define RETRY_NS (1000 * 1000LL)
#define IDLE_TICKS 10
#define BATCH 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int started; /* set once by pyerl_watchdog_start, from load */

/* lock-guarded: */
static pthread_cond_t watchdog_wake;
static struct pyerl_inflight *calls;
static uint64_t last_serial;
static int64_t planned_wake_ns = INT64_MAX;

static _Thread_local struct pyerl_inflight *current_call;

/* ---- raising in a call's thread ---------------------------------------- */

/* The GIL of ctx held. Sets exc (NULL: clears it) as the pending async
 * exception of the thread of ctx's interpreter whose ident is id; returns
 * -1, doing nothing, if more than one thread state has that ident (see the
 * top; from 3.12 a new thread's state has its own ident from the start, and
 * the newest state with an ident, the one Python finds first, is the
 * call's). Before 3.12 there are no own contexts, and the main
 * interpreter's states are added and removed with its GIL held, so the
 * list is stable while walked. */
static int
set_async_exc(struct pyerl_ctx *ctx, unsigned long id, PyObject *exc)
{
#if PY_VERSION_HEX < 0x030C0000
    PyThreadState *t;
    int matches = 0;

    for (t = PyInterpreterState_ThreadHead(ctx->interp); t; t = PyThreadState_Next(t)) {
        matches += t->thread_id == id;
    }
    if (matches > 1) {
        return -1;
    }
#else
    (void)ctx;
#endif
    PyThreadState_SetAsyncExc(id, exc);
    return 0;
}

void
pyerl_inflight_disarm(struct pyerl_inflight *call)
{
    pthread_mutex_lock(&lock);
    call->delivered = 1;
    pthread_mutex_unlock(&lock);
    /* A thread this one started is about to take its own ident: let it. */
    while (set_async_exc(call->ctx, call->thread_id, NULL) < 0) {
        Py_BEGIN_ALLOW_THREADS
        sched_yield();
        Py_END_ALLOW_THREADS
    }
}

int
pyerl_inflight_claim_due(struct pyerl_inflight *call)
{
    int due;

    pthread_mutex_lock(&lock);
    due = call->interrupted && !call->delivered;
    pthread_mutex_unlock(&lock);
    if (due) {
        pyerl_inflight_disarm(call);
    }
    return due;
}

int
pyerl_inflight_rearm(struct pyerl_inflight *call)
{
    int interrupted;
    pthread_mutex_lock(&lock);
    interrupted = call->interrupted;
    if (interrupted) {
        call->delivered = 1;
    }
    pthread_mutex_unlock(&lock);
    return interrupted &&
           set_async_exc(call->ctx, call->thread_id, call->ctx->state->call_interrupted) == 0;
}

/* ---- registering calls ------------------------------------------------ */

void
pyerl_inflight_begin(struct pyerl_inflight *call, struct pyerl_ctx *ctx, const void *tag,
                     const ErlNifPid *caller, ErlNifEnv *env, int64_t deadline_ns,
                     const struct pyerl_frame *frame)
{
    int64_t now = pyerl_coarse_now_ns();

    call->ctx = ctx;
    call->tag = tag;
    call->thread_id = PyThread_get_thread_ident();
    call->caller = *caller;
    call->env = env;
    call->frame = *frame;
    call->wake_fd = -1;
    pthread_cond_init(&call->wake, pyerl_monotonic_condattr());

    pthread_mutex_lock(&lock);
    call->serial = ++last_serial;
    call->deadline_ns = deadline_ns;
    call->next_check_ns = now + LIVENESS_NS;
    call->interrupted = 0;
    call->reason = PYERL_TIMED_OUT;
    call->delivered = 0;
    call->registered = 1;
    call->prev = NULL;
    call->next = calls;
    if (calls) {
        calls->prev = call;
    }
    calls = call;
    if (call->deadline_ns < planned_wake_ns || call->next_check_ns < planned_wake_ns) {
        pthread_cond_signal(&watchdog_wake);
    }
    pthread_mutex_unlock(&lock);
    current_call = call;
}

int
pyerl_inflight_end(struct pyerl_inflight *call)
{
    int interrupted;

    current_call = NULL;
    pthread_mutex_lock(&lock);
    if (call->prev) {
        call->prev->next = call->next;
    } else {
        calls = call->next;
    }
    if (call->next) {
        call->next->prev = call->prev;
    }
    call->registered = 0;
    interrupted = call->interrupted ? call->reason : 0;
    pthread_mutex_unlock(&lock);
    pthread_cond_destroy(&call->wake);
    if (interrupted) {
        /* An interruption raised but not yet delivered must not hit the
         * thread's next call. */
        pyerl_inflight_disarm(call);
    }
    return interrupted;
}

struct pyerl_inflight *
pyerl_inflight_current(void)
{
    return current_call;
}

/* In a forked child, at once after fork: async-signal-safe. */
static void
forget_current_call(void)
{
    current_call = NULL;
}

void
pyerl_inflight_set_wake_fd(struct pyerl_inflight *call, int fd)
{
    (void)pyerl_inflight_exchange_wake_fd(call, fd);
}

int
pyerl_inflight_exchange_wake_fd(struct pyerl_inflight *call, int fd)
{
    int old;

    pthread_mutex_lock(&lock);
    old = call->wake_fd;
    call->wake_fd = fd;
    pthread_mutex_unlock(&lock);
    return old;
}

int
pyerl_inflight_interrupted(struct pyerl_inflight *call)
{
    int interrupted;

    pthread_mutex_lock(&lock);
    interrupted = call->interrupted;
    pthread_mutex_unlock(&lock);
    return interrupted;
}

void
pyerl_inflight_abandon(struct pyerl_inflight *call)
{
    pthread_mutex_lock(&lock);
    if (call->registered && !call->interrupted) {
        call->deadline_ns = 0;
        pthread_cond_signal(&watchdog_wake);
    }
    pthread_mutex_unlock(&lock);
}

void
pyerl_inflight_interrupt_all(const void *tag, struct pyerl_ctx *ctx, enum pyerl_interruption reason)
{
    struct pyerl_inflight *c;
    int any = 0;

    pthread_mutex_lock(&lock);
    for (c = calls; c; c = c->next) {
        if (!c->interrupted && ((tag && c->tag == tag) || (ctx && c->ctx == ctx))) {
            c->reason = reason;
            c->deadline_ns = 0;
            any = 1;
        }
    }
    if (any) {
        pthread_cond_signal(&watchdog_wake);
    }
    pthread_mutex_unlock(&lock);
}

/* ---- the watchdog ----------------------------------------------------- */

struct target {
    struct pyerl_inflight *call; /* compared, never dereferenced unless listed */
    uint64_t serial;
    ErlNifPid caller;
    struct pyerl_ctx *ctx; /* the call's context, held while the target is due */
};

/* Lock held. The listed call that target names, or NULL if it has ended. */
static struct pyerl_inflight *
find_listed(const struct target *t)
{
    struct pyerl_inflight *c;

    for (c = calls; c; c = c->next) {
        if (c == t->call && c->serial == t->serial) {
            return c;
        }
    }
    return NULL;
}

/* Lock held. Fills due (calls past deadline, their contexts held, and
 * their structs too, until the watchdog has left them: a listed call is
 * inside its context, which therefore cannot end before the hold) and
 * check (callers to look at); returns when the watchdog should wake
 * next. */
static int64_t
scan(int64_t now, struct target *due, int *n_due, struct target *check, int *n_check)
{
    int64_t next = INT64_MAX;
    struct pyerl_inflight *c;

    *n_due = *n_check = 0;
    for (c = calls; c; c = c->next) {
        if (c->deadline_ns <= now && *n_due < BATCH) {
            pyerl_ctx_ref(c->ctx);
            pyerl_ctx_hold(c->ctx);
            due[(*n_due)++] = (struct target){c, c->serial, c->caller, c->ctx};
        } else if (c->deadline_ns < next) {
            next = c->deadline_ns;
        }
        if (c->next_check_ns <= now && *n_check < BATCH) {
            check[(*n_check)++] = (struct target){c, c->serial, c->caller, c->ctx};
            c->next_check_ns = now + LIVENESS_NS;
        }
        if (c->next_check_ns < next) {
            next = c->next_check_ns;
        }
    }
    return next;
}

/* No lock held. Marks due the calls whose caller has died, unless they
 * are interrupted already (their interruption then comes again on its own
 * schedule, every REFIRE_NS). */
static void
check_callers(struct target *check, int n_check)
{
    int i;
    struct pyerl_inflight *c;

    for (i = 0; i < n_check; i++) {
        check[i].serial = enif_is_process_alive(NULL, &check[i].caller) ? 0 : check[i].serial;
    }
    pthread_mutex_lock(&lock);
    for (i = 0; i < n_check; i++) {
        if (check[i].serial && (c = find_listed(&check[i])) && !c->interrupted) {
            c->deadline_ns = 0;
        }
    }
    pthread_mutex_unlock(&lock);
}

/* No lock held; ctx's GIL held. Raises CallInterrupted in the due calls
 * of ctx that are still running, unless a call's thread has already raised
 * this round's itself. */
static void
raise_due_in(struct pyerl_ctx *ctx, const struct target *due, int n_due)
{
    struct pyerl_inflight *c;
    int i;

    pthread_mutex_lock(&lock);
    for (i = 0; i < n_due; i++) {
        if (due[i].ctx != ctx || !(c = find_listed(&due[i]))) {
            continue;
        }
        if (!c->delivered) {
            if (set_async_exc(ctx, c->thread_id, ctx->state->call_interrupted) < 0) {
                c->deadline_ns = pyerl_now_ns() + RETRY_NS;
                continue;
            }
            c->delivered = 1;
        }
        c->deadline_ns = pyerl_now_ns() + REFIRE_NS;
    }
    pthread_mutex_unlock(&lock);
}

/* No lock held. Interrupts each due call still running, in two steps.
 * Lets go of the targets' holds on their contexts.
 * First, with no GIL, what the call's own waits look at: the flag, the
 * sleep's condition and the wake fd (an erlang.call, an erlang.sleep or an
 * event loop watching the fd then stops at once, however busy other
 * threads keep the GIL). Then, with the GIL of each context in turn, the
 * exception for Python code that is running. A swallowed exception comes
 * again after REFIRE_NS. */
static void
interrupt_due(struct target *due, int n_due)
{
    struct pyerl_inflight *c;
    struct pyerl_ctx *ctx;
    int i, j;

    if (n_due == 0) {
        return;
    }
    pthread_mutex_lock(&lock);
    for (i = 0; i < n_due; i++) {
        if ((c = find_listed(&due[i]))) {
            c->interrupted = 1;
            c->delivered = 0;
            pthread_cond_broadcast(&c->wake);
            if (c->wake_fd >= 0) {
                uint64_t one = 1;
                (void)!write(c->wake_fd, &one, sizeof one);
            }
        }
    }
    pthread_mutex_unlock(&lock);
    for (i = 0; i < n_due; i++) {
        for (j = 0; j < i && due[j].ctx != due[i].ctx; j++) {
        }
        ctx = due[i].ctx;
        if (j < i) {
            pyerl_ctx_unhold(ctx); /* its context was done with due[j]'s */
        } else if (pyerl_ctx_enter_held(ctx) == 0) {
            raise_due_in(ctx, due, n_due);
            pyerl_ctx_leave(ctx);
        }
        pyerl_ctx_unref(ctx);
    }
}

static void *
watchdog_main(void *arg)
{
    struct target due[BATCH], check[BATCH];
    int n_due, n_check, idle_ticks = 0;
    int64_t now, next;
    struct timespec until;

    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        now = pyerl_now_ns();
        next = scan(now, due, &n_due, check, &n_check);
        if (n_due > 0 || n_check > 0) {
            pthread_mutex_unlock(&lock);
            check_callers(check, n_check);
            interrupt_due(due, n_due);
            pthread_mutex_lock(&lock);
            continue;
        }
        idle_ticks = calls ? 0 : idle_ticks + 1;
        if (idle_ticks <= IDLE_TICKS && next > now + TICK_NS) {
            next = now + TICK_NS;
        }
        planned_wake_ns = next;
        if (next == INT64_MAX) {
            pthread_cond_wait(&watchdog_wake, &lock);
        } else {
            until = pyerl_timespec_at(next);
            pthread_cond_timedwait(&watchdog_wake, &lock, &until);
        }
        planned_wake_ns = 0;
    }
    return NULL;
}

int
pyerl_watchdog_start(void)
{
    pthread_t thread;
    pthread_attr_t attr;
    int rc;

    if (started) {
        return 0;
    }
    if (!pyerl_monotonic_condattr() ||
        pthread_cond_init(&watchdog_wake, pyerl_monotonic_condattr()) != 0 ||
        pthread_atfork(NULL, NULL, forget_current_call) != 0 || pthread_attr_init(&attr) != 0) {
        return -1;
    }
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&thread, &attr, watchdog_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        return -1;
    }
    started = 1;
    return 0;
}

/* ---- sleeping --------------------------------------------------------- */

int
pyerl_inflight_sleep(struct pyerl_inflight *call, double seconds)
{
    int64_t end = seconds < 1e9 ? pyerl_now_ns() + (int64_t)(seconds * 1e9) : INT64_MAX / 2;
    struct timespec until = pyerl_timespec_at(end);
    int interrupted;

    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&lock);
    while (!call->interrupted && pyerl_now_ns() < end) {
        if (pthread_cond_timedwait(&call->wake, &lock, &until) == ETIMEDOUT) {
            break;
        }
    }
    interrupted = call->interrupted;
    pthread_mutex_unlock(&lock);
    Py_END_ALLOW_THREADS
    if (interrupted) {
        /* Raised by the caller rather than at the next bytecode, and once. */
        pyerl_inflight_disarm(call);
    }
    return interrupted;
}
