/*
 * worker.c: thread workers, the channel through which a Python thread waits
 * for the result of an Erlang function.
 *
 * A worker is a NIF resource with an eventfd and a one-request slot. A
 * thread takes one on its first erlang.call and keeps it, bound through a
 * thread-specific key whose destructor puts it back on a free list when the
 * thread exits; workers are reused, never freed while the VM runs.
 * * Each worker has an Erlang handler process (py_handler), started under
 * py_handler_sup by the coordinator on the worker's first request (sent
 * as an unbound_request, protocol.h) and then addressed directly.
 * The worker monitors its handler (and, until it has one, the coordinator
 * holding its first request): if that process dies, the down callback
 * fails the waiting request, so a waiter always wakes. Erlang never sees the
 * eventfd: the handler answers through py_nif:worker_reply/3, which takes
 * the worker resource, so a reply can only reach the worker it was meant
 * for, and a serial number drops a reply meant for an earlier request.
 *
 * Asynchronous calls (erlang.async_call) share the eventfd: any number may
 * be in flight, each with its own id. The handler runs each in a process of
 * its own, which answers through py_nif:worker_async_reply/3; answers queue
 * on the worker until the thread's event loop takes them all at once. If
 * the handler dies, every async call sent so far is reported lost (the
 * thread fails those still pending), so no await waits forever.
 *
 * If py_nif is deleted and purged, ERTS forgets its resource types, and the
 * module loaded afterwards makes a new worker type: existing workers (bound
 * to threads, or pooled) are then foreign to Erlang and to the new
 * instance's NIFs. A thread finds out on its next request, drops its
 * worker, and takes a new one. (An upgrade keeps the type: nothing to do.)
 *
 * Locking: `lock` guards the slot, the async queue and the handler fields.
 * It is never held while taking the GIL or waiting.
 */
#include "worker.h"

#include "atoms.h"
#include "clock.h"
#include "erts_access.h"
#include "interrupt.h"
#include "protocol.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A reply this small (in term nodes) is copied on the normal scheduler that
 * calls worker_reply; a larger one on a dirty CPU scheduler. */
#define SMALL_REPLY_NODES 256
#define SPIN_NS 20000
#define MIN_SPIN_NS 1000
#define PROBE_EVERY 64

struct pyerl_worker {
    int fd;              /* eventfd, written when a reply is ready */
    ErlNifEnv *send_env; /* builds requests; only the bound thread uses it */
    pthread_mutex_t lock;
    /* lock-guarded: */
    uint64_t last_serial;
    uint64_t waiting_serial; /* 0 when no request waits */
    int has_reply;
    atomic_int reply_ready; /* has_reply, readable without the lock */
    int sleeping;           /* the waiter found no reply and polls the fd */
    ErlNifEnv *reply_env;   /* owns reply */
    ERL_NIF_TERM reply;
    int has_handler; /* handler is this worker's handler */
    ErlNifPid handler;
    int monitoring; /* monitor is on the handler or on the coordinator */
    ErlNifMonitor monitor;
    uint64_t last_async_id;
    ErlNifEnv *async_env;       /* owns async_replies */
    ERL_NIF_TERM async_replies; /* [{Id, Reply}], newest first */
    uint64_t lost_upto;         /* async ids up to this lost their handler */
    uint64_t live_from;         /* lower ids were sent by a thread now gone */
    ErlNifResourceType *type;   /* what it was made as; set once */
    /* bound thread only: */
    int in_use;                     /* a request is being made or its reply read */
    ErlNifEnv *taken_env;           /* owns the batch last taken from async_replies */
    struct pyerl_worker *next_free; /* guarded by free_lock */
};

/* Set by load and upgrade while threads may be reading it. */
static ErlNifResourceType *_Atomic worker_type;
static pthread_key_t worker_key;
static _Thread_local struct pyerl_worker *thread_worker;

static pthread_mutex_t free_lock = PTHREAD_MUTEX_INITIALIZER;
/* free_lock-guarded: */
static struct pyerl_worker *free_workers; /* each holds one resource reference */
static long workers_bound, workers_free;
static atomic_long calls_served;

static void
signal_fd(int fd)
{
    uint64_t one = 1;

    while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

static void
worker_dtor(ErlNifEnv *env, void *obj)
{
    struct pyerl_worker *w = obj;

    (void)env;
    if (w->fd >= 0) {
        close(w->fd);
    }
    if (w->send_env) {
        enif_free_env(w->send_env);
    }
    if (w->reply_env) {
        enif_free_env(w->reply_env);
    }
    if (w->async_env) {
        enif_free_env(w->async_env);
    }
    if (w->taken_env) {
        enif_free_env(w->taken_env);
    }
    pthread_mutex_destroy(&w->lock);
}

/* Lock held. Stores the reply to the waiting request and wakes its thread
 * if it sleeps (a spinning one sees reply_ready: no system call). */
static void
put_reply(struct pyerl_worker *w, ERL_NIF_TERM reply)
{
    enif_clear_env(w->reply_env);
    w->reply = enif_make_copy(w->reply_env, reply);
    w->has_reply = 1;
    atomic_store_explicit(&w->reply_ready, 1, memory_order_release);
    if (w->sleeping) {
        signal_fd(w->fd);
    }
}

/* Lock held. The handler is gone: fails the waiting request, if any, and
 * reports every async call sent so far lost. */
static void
handler_lost(ErlNifEnv *env, struct pyerl_worker *w)
{
    if (w->waiting_serial && !w->has_reply) {
        put_reply(w, enif_make_tuple2(env, ATOM(error), ATOM(handler_died)));
    }
    if (w->last_async_id > w->lost_upto) {
        w->lost_upto = w->last_async_id;
        signal_fd(w->fd);
    }
}

/* Lock held. Whether the event loop has something to take. */
static int
async_ready(struct pyerl_worker *w)
{
    return !enif_is_empty_list(w->async_env, w->async_replies) || w->lost_upto;
}

/* Lock held. Drops queued async answers: their thread is gone. */
static void
clear_async(struct pyerl_worker *w)
{
    enif_clear_env(w->async_env);
    w->async_replies = enif_make_list(w->async_env, 0);
    w->lost_upto = 0;
    w->live_from = w->last_async_id + 1;
}

static void
worker_down(ErlNifEnv *env, void *obj, ErlNifPid *pid, ErlNifMonitor *mon)
{
    struct pyerl_worker *w = obj;

    (void)pid;
    pthread_mutex_lock(&w->lock);
    if (w->monitoring && enif_compare_monitors(mon, &w->monitor) == 0) {
        w->monitoring = 0;
        w->has_handler = 0;
        handler_lost(env, w);
    }
    pthread_mutex_unlock(&w->lock);
}

int
pyerl_send(ErlNifEnv *caller_env, const ErlNifPid *to, ErlNifEnv *msg_env, ERL_NIF_TERM msg)
{
    /* ERTS refuses a send from the env of a process that is exiting; the
     * same send from no process goes through. */
    return enif_send(caller_env, to, msg_env, msg) ||
           (caller_env && enif_send(NULL, to, msg_env, msg));
}

/* ---- binding workers to threads -------------------------------------- */

/* Whether w was made by the module instance loaded now (see the top). */
static int
is_current(const struct pyerl_worker *w)
{
    return w->type == worker_type;
}

/* A worker's thread is done with it: it goes on the free list, or is
 * dropped if it is no longer current. Checked under free_lock, as
 * drop_stale_pooled sweeps, so that no stale worker stays pooled. */
static void
return_worker(void *obj)
{
    struct pyerl_worker *w = obj;
    int current;

    pthread_mutex_lock(&w->lock);
    clear_async(w);
    pthread_mutex_unlock(&w->lock);
    pthread_mutex_lock(&free_lock);
    workers_bound--;
    current = is_current(w);
    if (current) {
        w->next_free = free_workers;
        free_workers = w;
        workers_free++;
    }
    pthread_mutex_unlock(&free_lock);
    if (!current) {
        enif_release_resource(w);
    }
}

/* After a load that made a new worker type: drops the pooled workers of
 * the old one. */
static void
drop_stale_pooled(void)
{
    struct pyerl_worker *w, **link, *stale = NULL;

    pthread_mutex_lock(&free_lock);
    link = &free_workers;
    while ((w = *link)) {
        if (is_current(w)) {
            link = &w->next_free;
            continue;
        }
        *link = w->next_free;
        workers_free--;
        w->next_free = stale;
        stale = w;
    }
    pthread_mutex_unlock(&free_lock);
    while ((w = stale)) {
        stale = w->next_free;
        enif_release_resource(w);
    }
}

static struct pyerl_worker *
new_worker(void)
{
    ErlNifResourceType *type = worker_type;
    struct pyerl_worker *w = enif_alloc_resource(type, sizeof *w);

    if (!w) {
        return NULL;
    }
    memset(w, 0, sizeof *w);
    w->type = type;
    pthread_mutex_init(&w->lock, NULL);
    w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w->send_env = enif_alloc_env();
    w->reply_env = enif_alloc_env();
    w->async_env = enif_alloc_env();
    w->taken_env = enif_alloc_env();
    if (w->fd < 0 || !w->send_env || !w->reply_env || !w->async_env || !w->taken_env) {
        enif_release_resource(w);
        return NULL;
    }
    w->async_replies = enif_make_list(w->async_env, 0);
    return w;
}

struct pyerl_worker *
pyerl_worker_for_thread(void)
{
    struct pyerl_worker *w = thread_worker;

    if (w && is_current(w)) {
        return w;
    }
    if (w) {
        thread_worker = NULL;
        pthread_setspecific(worker_key, NULL);
        return_worker(w);
    }
    pthread_mutex_lock(&free_lock);
    w = free_workers;
    if (w) {
        free_workers = w->next_free;
        workers_free--;
    }
    pthread_mutex_unlock(&free_lock);
    if (!w && !(w = new_worker())) {
        return NULL;
    }
    pthread_mutex_lock(&free_lock);
    workers_bound++;
    pthread_mutex_unlock(&free_lock);
    thread_worker = w;
    pthread_setspecific(worker_key, w);
    return w;
}

/* ---- one request ------------------------------------------------------ */

ErlNifEnv *
pyerl_worker_env(struct pyerl_worker *w)
{
    return w->send_env;
}

int
pyerl_worker_begin_use(struct pyerl_worker *w)
{
    if (w->in_use) {
        return 0;
    }
    w->in_use = 1;
    return 1;
}

void
pyerl_worker_end_use(struct pyerl_worker *w)
{
    w->in_use = 0;
}

/* A request's destination, read under the lock together with what the
 * request records (its serial or async id), so that a handler's death
 * either comes before (and the request goes to the coordinator) or covers
 * the request. */
struct route {
    int has_handler;
    ErlNifPid handler;
};

/* Lock held. */
static struct route
current_route(struct pyerl_worker *w)
{
    struct route route = {.has_handler = w->has_handler, .handler = w->handler};

    return route;
}

/* {Tag, Worker, SerialOrId, Name, Args, Frame} in send_env: an erlang_call
 * or erlang_async_call request (protocol.h). */
static ERL_NIF_TERM
make_request(struct pyerl_worker *w, ERL_NIF_TERM tag, uint64_t serial_or_id, ERL_NIF_TERM name,
             ERL_NIF_TERM args, const struct pyerl_frame *frame)
{
    ERL_NIF_TERM depth = enif_make_int(w->send_env, frame->depth);
    ERL_NIF_TERM parts[PYERL_REQUEST_ARITY] = {
        tag,
        enif_make_resource(w->send_env, w),
        enif_make_uint64(w->send_env, serial_or_id),
        name,
        args,
        frame->has_output
            ? enif_make_tuple2(w->send_env, depth, enif_make_pid(w->send_env, &frame->output))
            : depth};

    return enif_make_tuple_from_array(w->send_env, parts, PYERL_REQUEST_ARITY);
}

/* Sends msg (made in send_env) to the handler, or with the worker to the
 * coordinator when there is no handler yet. Returns 0 or -1. Either way
 * send_env is cleared for the next request: a successful enif_send
 * invalidates the env's terms.
 *
 * Several requests may reach the coordinator before it has bound a handler
 * (async calls do not wait); it binds one and forwards the rest to it. */
static int
send_request(struct pyerl_worker *w, ErlNifEnv *caller_env, ERL_NIF_TERM msg, struct route route)
{
    ErlNifPid to;
    int sent = 0;

    if (route.has_handler) {
        sent = pyerl_send(caller_env, &route.handler, w->send_env, msg);
    }
    if (!sent && enif_whereis_pid(caller_env, ATOM(py_coordinator), &to)) {
        /* Watch the coordinator until it binds a handler: if it stops with
         * the request unanswered, the waiter must still wake. With no
         * handler, a monitor in place is already on the coordinator; with
         * one (bound meanwhile, or dead and its down not yet run), its
         * monitor stays: the handler's end covers this request too. */
        pthread_mutex_lock(&w->lock);
        if (!w->has_handler && !w->monitoring) {
            w->monitoring = enif_monitor_process(caller_env, w, &to, &w->monitor) == 0;
        }
        pthread_mutex_unlock(&w->lock);
        msg = enif_make_tuple2(w->send_env, ATOM(unbound_request), msg);
        sent = pyerl_send(caller_env, &to, w->send_env, msg);
    }
    enif_clear_env(w->send_env);
    return sent ? 0 : -1;
}

/* Whether the reply came within ns of spinning. */
static int
spin(struct pyerl_worker *w, int64_t ns)
{
    int64_t until = pyerl_now_ns() + ns;
    int i;

    for (;;) {
        for (i = 0; i < 64; i++) {
            if (atomic_load_explicit(&w->reply_ready, memory_order_acquire)) {
                return 1;
            }
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
        if (pyerl_now_ns() > until) {
            return 0;
        }
    }
}

/* Waits a little for the reply before sleeping in poll. One thread spins at
 * a time: on a machine with few cores, more would take the CPU from the
 * schedulers that run the handlers.
 *
 * Spinning pays only while a core is free to run the handler: on a busy
 * machine the spinner takes that core, the reply comes after the spin, and
 * the spin has cost its whole window (a round trip went from 8 to 26 us in
 * the bench's baseline). So the window adapts to what spins have found:
 * each miss halves it, a hit restores it; once it is down to nothing, one
 * call in PROBE_EVERY spins the full window to see whether cores are free
 * again. */
static void
spin_for_reply(struct pyerl_worker *w)
{
    static atomic_int spinners;
    static atomic_int window_ns = SPIN_NS;
    static atomic_uint calls;
    int64_t ns = atomic_load_explicit(&window_ns, memory_order_relaxed);
    int probe = ns < MIN_SPIN_NS;

    if (probe) {
        if (atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed) % PROBE_EVERY) {
            return;
        }
        ns = SPIN_NS;
    }
    if (atomic_fetch_add(&spinners, 1) > 0) {
        atomic_fetch_sub(&spinners, 1);
        return;
    }
    /* A probe that misses leaves the window shut. */
    atomic_store_explicit(&window_ns,
                          spin(w, ns) ? SPIN_NS
                          : probe     ? 0
                                      : (int)(ns / 2),
                          memory_order_relaxed);
    atomic_fetch_sub(&spinners, 1);
}

int
pyerl_worker_call(struct pyerl_worker *w, ErlNifEnv *caller_env, ERL_NIF_TERM name,
                  ERL_NIF_TERM args, const struct pyerl_frame *frame, struct pyerl_inflight *call,
                  ERL_NIF_TERM *reply, ErlNifEnv **reply_env)
{
    struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
    uint64_t serial, count;
    ERL_NIF_TERM msg;
    int done, interrupted;
    struct route route;

    pthread_mutex_lock(&w->lock);
    serial = ++w->last_serial;
    w->waiting_serial = serial;
    w->has_reply = 0;
    atomic_store(&w->reply_ready, 0);
    route = current_route(w);
    pthread_mutex_unlock(&w->lock);
    msg = make_request(w, ATOM(erlang_call), serial, name, args, frame);
    if (send_request(w, caller_env, msg, route) < 0) {
        pthread_mutex_lock(&w->lock);
        w->waiting_serial = 0;
        pthread_mutex_unlock(&w->lock);
        return PYERL_WORKER_NOT_RUNNING;
    }

    if (call) {
        pyerl_inflight_set_wake_fd(call, w->fd);
    }
    Py_BEGIN_ALLOW_THREADS
    spin_for_reply(w);
    for (;;) {
        pthread_mutex_lock(&w->lock);
        done = w->has_reply;
        w->sleeping = !done;
        pthread_mutex_unlock(&w->lock);
        /* Checked after the wake fd is set, so an interruption either came
         * before (seen here) or writes the fd (wakes the poll). */
        interrupted = !done && call && pyerl_inflight_interrupted(call);
        if (done || interrupted || (poll(&pfd, 1, -1) < 0 && errno != EINTR)) {
            break;
        }
        while (read(w->fd, &count, sizeof count) < 0 && errno == EINTR) {
        }
    }
    Py_END_ALLOW_THREADS

    pthread_mutex_lock(&w->lock);
    w->waiting_serial = 0;
    w->sleeping = 0;
    if (async_ready(w)) {
        /* The wait may have read the signal meant for the event loop. */
        signal_fd(w->fd);
    }
    if (!done && w->monitoring && w->has_handler) {
        /* The handler is still busy with the abandoned request: leave it to
         * finish (its late reply is stale, and it then exits) and have the
         * next request start a new one. A monitor on the coordinator (no
         * handler yet) stays: async requests may wait there. */
        enif_demonitor_process(caller_env, w, &w->monitor);
        w->monitoring = 0;
        w->has_handler = 0;
    }
    pthread_mutex_unlock(&w->lock);
    if (!done) {
        return interrupted ? PYERL_WORKER_INTERRUPTED : PYERL_WORKER_FAILED;
    }
    atomic_fetch_add(&calls_served, 1);
    *reply = w->reply;
    *reply_env = w->reply_env;
    return 0;
}

/* ---- asynchronous requests -------------------------------------------- */

int
pyerl_worker_fd(struct pyerl_worker *w)
{
    return w->fd;
}

int
pyerl_worker_async_send(struct pyerl_worker *w, ErlNifEnv *caller_env, ERL_NIF_TERM name,
                        ERL_NIF_TERM args, const struct pyerl_frame *frame, uint64_t *id)
{
    ERL_NIF_TERM msg;
    struct route route;

    pthread_mutex_lock(&w->lock);
    *id = ++w->last_async_id;
    route = current_route(w);
    pthread_mutex_unlock(&w->lock);
    msg = make_request(w, ATOM(erlang_async_call), *id, name, args, frame);
    return send_request(w, caller_env, msg, route) < 0 ? PYERL_WORKER_NOT_RUNNING : 0;
}

void
pyerl_worker_async_cancel(struct pyerl_worker *w, ErlNifEnv *caller_env, uint64_t id)
{
    struct route route;

    pthread_mutex_lock(&w->lock);
    route = current_route(w);
    pthread_mutex_unlock(&w->lock);
    send_request(w, caller_env,
                 enif_make_tuple3(w->send_env, ATOM(erlang_async_cancel),
                                  enif_make_resource(w->send_env, w),
                                  enif_make_uint64(w->send_env, id)),
                 route);
}

ERL_NIF_TERM
pyerl_worker_async_take(struct pyerl_worker *w, ErlNifEnv **env, uint64_t *lost_upto)
{
    ErlNifEnv *taken = w->taken_env;
    ERL_NIF_TERM replies;
    uint64_t count;

    while (read(w->fd, &count, sizeof count) < 0 && errno == EINTR) {
    }
    enif_clear_env(taken);
    pthread_mutex_lock(&w->lock);
    w->taken_env = w->async_env;
    w->async_env = taken;
    replies = w->async_replies;
    w->async_replies = enif_make_list(w->async_env, 0);
    *lost_upto = w->lost_upto;
    w->lost_upto = 0;
    pthread_mutex_unlock(&w->lock);
    *env = w->taken_env;
    return replies;
}

void
pyerl_worker_counts(long *bound, long *pooled, long *served)
{
    pthread_mutex_lock(&free_lock);
    *bound = workers_bound;
    *pooled = workers_free;
    pthread_mutex_unlock(&free_lock);
    *served = atomic_load(&calls_served);
}

/* ---- NIFs used by the coordinator and handlers ------------------------ */

/* worker_bind(Worker, Handler): the coordinator gives a worker its handler. */
ERL_NIF_TERM
pyerl_nif_worker_bind(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_worker *w;
    ErlNifPid pid;
    ERL_NIF_TERM result = ATOM(ok);

    (void)argc;
    if (!enif_get_resource(env, argv[0], worker_type, (void **)&w) ||
        !enif_get_local_pid(env, argv[1], &pid)) {
        return enif_make_badarg(env);
    }
    pthread_mutex_lock(&w->lock);
    if (w->monitoring) {
        enif_demonitor_process(env, w, &w->monitor);
    }
    w->monitoring = enif_monitor_process(env, w, &pid, &w->monitor) == 0;
    w->has_handler = w->monitoring;
    w->handler = pid;
    if (!w->has_handler) {
        handler_lost(env, w);
        result = enif_make_tuple2(env, ATOM(error), ATOM(handler_died));
    }
    pthread_mutex_unlock(&w->lock);
    return result;
}

/* worker_handler(Worker) -> {ok, Handler} | none: the handler the worker
 * is bound to, for the coordinator. */
ERL_NIF_TERM
pyerl_nif_worker_handler(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_worker *w;
    ERL_NIF_TERM result = ATOM(none);

    (void)argc;
    if (!enif_get_resource(env, argv[0], worker_type, (void **)&w)) {
        return enif_make_badarg(env);
    }
    pthread_mutex_lock(&w->lock);
    if (w->has_handler) {
        result = enif_make_tuple2(env, ATOM(ok), enif_make_pid(env, &w->handler));
    }
    pthread_mutex_unlock(&w->lock);
    return result;
}

/* Counts term nodes up to budget; returns what is left of it (0: large). */
static int
term_budget(ErlNifEnv *env, ERL_NIF_TERM term, int budget)
{
    ERL_NIF_TERM head, key, value;
    const ERL_NIF_TERM *elements;
    ErlNifMapIterator iter;
    int arity, i;

    if (--budget <= 0) {
        return 0;
    }
    if (enif_get_list_cell(env, term, &head, &term)) {
        budget = term_budget(env, head, budget);
        return budget > 0 ? term_budget(env, term, budget) : 0;
    }
    if (pyerl_get_tuple(env, term, &arity, &elements)) {
        for (i = 0; i < arity && budget > 0; i++) {
            budget = term_budget(env, elements[i], budget);
        }
        return budget;
    }
    if (enif_is_map(env, term) &&
        enif_map_iterator_create(env, term, &iter, ERL_NIF_MAP_ITERATOR_FIRST)) {
        while (budget > 0 && enif_map_iterator_get_pair(env, &iter, &key, &value)) {
            budget = term_budget(env, key, budget);
            budget = budget > 0 ? term_budget(env, value, budget) : 0;
            enif_map_iterator_next(env, &iter);
        }
        enif_map_iterator_destroy(env, &iter);
    }
    return budget;
}

static ERL_NIF_TERM
store_async_reply(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_worker *w;
    ErlNifUInt64 id;
    ERL_NIF_TERM entry;

    (void)argc;
    if (!enif_get_resource(env, argv[0], worker_type, (void **)&w) ||
        !enif_get_uint64(env, argv[1], &id)) {
        return enif_make_badarg(env);
    }
    pthread_mutex_lock(&w->lock);
    if (id >= w->live_from && id <= w->last_async_id) {
        entry = enif_make_tuple2(w->async_env, enif_make_uint64(w->async_env, id),
                                 enif_make_copy(w->async_env, argv[2]));
        if (!async_ready(w)) {
            signal_fd(w->fd);
        }
        w->async_replies = enif_make_list_cell(w->async_env, entry, w->async_replies);
        atomic_fetch_add(&calls_served, 1);
    }
    pthread_mutex_unlock(&w->lock);
    return ATOM(ok);
}

static ERL_NIF_TERM
store_reply(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_worker *w;
    ErlNifUInt64 serial;
    ERL_NIF_TERM answer = ATOM(stale);

    (void)argc;
    if (!enif_get_resource(env, argv[0], worker_type, (void **)&w) ||
        !enif_get_uint64(env, argv[1], &serial)) {
        return enif_make_badarg(env);
    }
    pthread_mutex_lock(&w->lock);
    if (serial == w->waiting_serial && !w->has_reply) {
        put_reply(w, argv[2]);
        answer = ATOM(ok);
    }
    pthread_mutex_unlock(&w->lock);
    return answer;
}

/* worker_reply(Worker, Serial, Reply) -> ok | stale. The copy of a large
 * reply is made on a dirty scheduler. */
ERL_NIF_TERM
pyerl_nif_worker_reply(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    if (term_budget(env, argv[2], SMALL_REPLY_NODES) == 0) {
        return enif_schedule_nif(env, "worker_reply", ERL_NIF_DIRTY_JOB_CPU_BOUND, store_reply,
                                 argc, argv);
    }
    return store_reply(env, argc, argv);
}

/* worker_async_reply(Worker, Id, Reply) -> ok. Queues the answer to async
 * call Id for the thread's event loop; dropped if the thread that sent it
 * has gone. (An answer to a call already reported lost is dropped by the
 * loop, which no longer waits for it.) */
ERL_NIF_TERM
pyerl_nif_worker_async_reply(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    if (term_budget(env, argv[2], SMALL_REPLY_NODES) == 0) {
        return enif_schedule_nif(env, "worker_async_reply", ERL_NIF_DIRTY_JOB_CPU_BOUND,
                                 store_async_reply, argc, argv);
    }
    return store_async_reply(env, argc, argv);
}

int
pyerl_worker_init(ErlNifEnv *env)
{
    static int key_ready;
    ErlNifResourceTypeInit init = {.dtor = worker_dtor, .down = worker_down};
    ErlNifResourceType *previous = worker_type, *type;

    type = enif_open_resource_type_x(env, "pyerl_worker", &init,
                                     ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    if (!type) {
        return -1;
    }
    worker_type = type;
    if (previous && previous != type) {
        drop_stale_pooled();
    }
    if (!key_ready) {
        if (pthread_key_create(&worker_key, return_worker) != 0) {
            return -1;
        }
        key_ready = 1;
    }
    return 0;
}
