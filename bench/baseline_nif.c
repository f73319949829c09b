/*
 * baseline_nif.c: what the benchmark measures as baselines, so that every
 * figure can be given as a ratio to what the same machine does, in the same
 * run, without Python. Not part of the application.
 *
 *   noop/0, dirty_noop/0   a NIF call on a normal / a dirty I/O scheduler,
 *                          timed by py_bench itself.
 *   round_trips/5          a plain C thread enif_send()s to an Erlang
 *                          process, which answers through pong/1; pong
 *                          wakes the thread (condvar, or eventfd after an
 *                          optional spin, the way a thread worker waits).
 *   ping_pongs/2           two C threads handing a turn back and forth
 *                          through a mutex and two condvars.
 *   memcpys/3              memcpy of a buffer.
 *
 * The last three run on a timer thread created here, which times every
 * round with CLOCK_MONOTONIC and sends {Ref, Samples} (durations in ns) or
 * {Ref, {error, Reason}} to the caller; py_bench computes the percentiles,
 * so that every row of the table is summarised the same way.
 */
#include <erl_nif.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 10000000

static ERL_NIF_TERM am_ok, am_error, am_ping, am_condvar, am_eventfd, am_echo_gone, am_enomem;
static ErlNifResourceType *channel_type;

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the timer thread ------------------------------------------------- */

/* One timed round: 0, or -1 when the baseline cannot go on (with *why set). */
typedef int (*round_fn)(void *state, ERL_NIF_TERM *why);

struct timer {
    round_fn round;
    void (*finish)(void *state); /* releases state; runs on the timer thread */
    void *state;
    int warmup, n;
    int64_t *samples; /* n durations in ns */
    ErlNifPid caller;
    ErlNifEnv *env; /* owns ref and the reply */
    ERL_NIF_TERM ref;
};

static void
free_timer(struct timer *t)
{
    t->finish(t->state);
    if (t->env) {
        enif_free_env(t->env);
    }
    if (t->samples) {
        enif_free(t->samples);
    }
    enif_free(t);
}

static ERL_NIF_TERM
samples_list(struct timer *t)
{
    ERL_NIF_TERM list = enif_make_list(t->env, 0);
    int i;

    for (i = t->n - 1; i >= 0; i--) {
        list = enif_make_list_cell(t->env, enif_make_int64(t->env, t->samples[i]), list);
    }
    return list;
}

static void *
timer_main(void *arg)
{
    struct timer *t = arg;
    ERL_NIF_TERM why, result;
    int64_t start;
    int i, failed = 0;

    for (i = 0; i < t->warmup && !failed; i++) {
        failed = t->round(t->state, &why) < 0;
    }
    for (i = 0; i < t->n && !failed; i++) {
        start = now_ns();
        failed = t->round(t->state, &why) < 0;
        t->samples[i] = now_ns() - start;
    }
    result = failed ? enif_make_tuple2(t->env, am_error, why) : samples_list(t);
    enif_send(NULL, &t->caller, t->env, enif_make_tuple2(t->env, t->ref, result));
    free_timer(t);
    return NULL;
}

/* Starts a timer thread for `round` and returns the Ref its reply will
 * carry. Owns `state` from here on: finish(state) runs on the timer thread
 * when it is done, or here if the thread cannot be started. */
static ERL_NIF_TERM
start_timer(ErlNifEnv *env, round_fn round, void (*finish)(void *), void *state, int warmup, int n)
{
    struct timer *t;
    pthread_t thread;
    ERL_NIF_TERM result;

    if (!(t = enif_alloc(sizeof *t))) {
        finish(state);
        return enif_raise_exception(env, am_enomem);
    }
    *t = (struct timer){.round = round, .finish = finish, .state = state, .warmup = warmup, .n = n};
    if (!(t->samples = enif_alloc(n * sizeof *t->samples)) || !(t->env = enif_alloc_env())) {
        result = enif_raise_exception(env, am_enomem);
        goto failed;
    }
    enif_self(env, &t->caller);
    result = enif_make_ref(env);
    t->ref = enif_make_copy(t->env, result);
    if (pthread_create(&thread, NULL, timer_main, t) != 0) {
        result = enif_raise_exception(env, enif_make_atom(env, "thread_create"));
        goto failed;
    }
    pthread_detach(thread);
    return result;

failed:
    free_timer(t);
    return result;
}

static int
get_rounds(ErlNifEnv *env, const ERL_NIF_TERM argv[], int *warmup, int *n)
{
    return enif_get_int(env, argv[0], warmup) && *warmup >= 0 && enif_get_int(env, argv[1], n) &&
           *n > 0 && *warmup <= MAX_ROUNDS && *n <= MAX_ROUNDS;
}

/* ---- C thread -> Erlang process -> C thread --------------------------- */

/* The channel between the timer thread and the echo process; a resource,
 * so that a ping still queued at the process keeps it alive. */
struct channel {
    ErlNifPid echo;
    ErlNifEnv *msg_env; /* the timer thread's, for building pings */
    int64_t spin_ns;    /* eventfd only: how long to spin before poll */
    int fd;             /* eventfd; -1 when the thread waits on cond */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int answered;     /* lock-guarded: condvar wait */
    atomic_int ready; /* eventfd wait: set by pong before it writes fd */
};

static void
channel_dtor(ErlNifEnv *env, void *obj)
{
    struct channel *c = obj;

    (void)env;
    if (c->fd >= 0) {
        close(c->fd);
    }
    if (c->msg_env) {
        enif_free_env(c->msg_env);
    }
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
}

static void
wait_condvar(struct channel *c)
{
    pthread_mutex_lock(&c->lock);
    while (!c->answered) {
        pthread_cond_wait(&c->cond, &c->lock);
    }
    c->answered = 0;
    pthread_mutex_unlock(&c->lock);
}

/* As a thread worker waits: spin a little on the flag, then sleep in poll.
 * A count left in the eventfd by a reply the spin caught only makes a later
 * poll return early; the flag decides. */
static void
wait_eventfd(struct channel *c)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int64_t until = now_ns() + c->spin_ns;
    uint64_t count;
    int i;

    while (!atomic_load_explicit(&c->ready, memory_order_acquire) && now_ns() < until) {
        for (i = 0; i < 64 && !atomic_load_explicit(&c->ready, memory_order_acquire); i++) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
    }
    while (!atomic_load_explicit(&c->ready, memory_order_acquire)) {
        if (poll(&pfd, 1, -1) > 0) {
            while (read(c->fd, &count, sizeof count) < 0 && errno == EINTR) {
            }
        }
    }
    atomic_store(&c->ready, 0);
}

static int
round_trip(void *state, ERL_NIF_TERM *why)
{
    struct channel *c = state;
    ERL_NIF_TERM msg = enif_make_tuple2(c->msg_env, am_ping, enif_make_resource(c->msg_env, c));
    int sent = enif_send(NULL, &c->echo, c->msg_env, msg);

    enif_clear_env(c->msg_env);
    if (!sent) {
        *why = am_echo_gone;
        return -1;
    }
    if (c->fd < 0) {
        wait_condvar(c);
    } else {
        wait_eventfd(c);
    }
    return 0;
}

static void
release_channel(void *state)
{
    enif_release_resource(state);
}

/* round_trips(Echo, condvar | eventfd, SpinNs, Warmup, N) -> Ref */
static ERL_NIF_TERM
round_trips(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct channel *c;
    ErlNifSInt64 spin_ns;
    ErlNifPid echo;
    int warmup, n, use_eventfd;

    (void)argc;
    use_eventfd = enif_is_identical(argv[1], am_eventfd);
    if (!enif_get_local_pid(env, argv[0], &echo) ||
        !(use_eventfd || enif_is_identical(argv[1], am_condvar)) ||
        !enif_get_int64(env, argv[2], &spin_ns) || spin_ns < 0 ||
        !get_rounds(env, argv + 3, &warmup, &n)) {
        return enif_make_badarg(env);
    }
    if (!(c = enif_alloc_resource(channel_type, sizeof *c))) {
        return enif_raise_exception(env, am_enomem);
    }
    *c = (struct channel){.echo = echo, .spin_ns = spin_ns, .fd = -1};
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    atomic_init(&c->ready, 0);
    if (!(c->msg_env = enif_alloc_env()) ||
        (use_eventfd && (c->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)) {
        enif_release_resource(c);
        return enif_raise_exception(env, am_enomem);
    }
    return start_timer(env, round_trip, release_channel, c, warmup, n);
}

/* pong(Channel): the echo process's answer; wakes the timer thread. */
static ERL_NIF_TERM
pong(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct channel *c;
    uint64_t one = 1;

    (void)argc;
    if (!enif_get_resource(env, argv[0], channel_type, (void **)&c)) {
        return enif_make_badarg(env);
    }
    if (c->fd < 0) {
        pthread_mutex_lock(&c->lock);
        c->answered = 1;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
    } else {
        atomic_store_explicit(&c->ready, 1, memory_order_release);
        while (write(c->fd, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
    return am_ok;
}

/* ---- two C threads, condvar ping-pong --------------------------------- */

struct ping_pong {
    pthread_t partner;
    pthread_mutex_t lock;
    pthread_cond_t to_partner, to_timer;
    int turn; /* lock-guarded: 1 while the partner owes an answer */
    int stop; /* lock-guarded */
};

static void *
partner_main(void *arg)
{
    struct ping_pong *p = arg;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->turn && !p->stop) {
            pthread_cond_wait(&p->to_partner, &p->lock);
        }
        if (p->stop) {
            break;
        }
        p->turn = 0;
        pthread_cond_signal(&p->to_timer);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static int
ping(void *state, ERL_NIF_TERM *why)
{
    struct ping_pong *p = state;

    (void)why;
    pthread_mutex_lock(&p->lock);
    p->turn = 1;
    pthread_cond_signal(&p->to_partner);
    while (p->turn) {
        pthread_cond_wait(&p->to_timer, &p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static void
free_ping_pong(struct ping_pong *p)
{
    pthread_cond_destroy(&p->to_timer);
    pthread_cond_destroy(&p->to_partner);
    pthread_mutex_destroy(&p->lock);
    enif_free(p);
}

static void
stop_ping_pong(void *state)
{
    struct ping_pong *p = state;

    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_signal(&p->to_partner);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->partner, NULL);
    free_ping_pong(p);
}

/* ping_pongs(Warmup, N) -> Ref */
static ERL_NIF_TERM
ping_pongs(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct ping_pong *p;
    int warmup, n;

    (void)argc;
    if (!get_rounds(env, argv, &warmup, &n)) {
        return enif_make_badarg(env);
    }
    if (!(p = enif_alloc(sizeof *p))) {
        return enif_raise_exception(env, am_enomem);
    }
    *p = (struct ping_pong){.turn = 0};
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->to_partner, NULL);
    pthread_cond_init(&p->to_timer, NULL);
    if (pthread_create(&p->partner, NULL, partner_main, p) != 0) {
        free_ping_pong(p);
        return enif_raise_exception(env, enif_make_atom(env, "thread_create"));
    }
    return start_timer(env, ping, stop_ping_pong, p, warmup, n);
}

/* ---- memcpy ----------------------------------------------------------- */

struct copy {
    size_t bytes;
    char *src, *dst;
};

static int
copy_once(void *state, ERL_NIF_TERM *why)
{
    struct copy *c = state;

    (void)why;
    memcpy(c->dst, c->src, c->bytes);
    /* The copy is never read: keep the compiler from dropping it. */
    __asm__ __volatile__("" : : "r"(c->dst) : "memory");
    return 0;
}

static void
free_copy(void *state)
{
    struct copy *c = state;

    enif_free(c->src);
    enif_free(c->dst);
    enif_free(c);
}

/* memcpys(Bytes, Warmup, N) -> Ref */
static ERL_NIF_TERM
memcpys(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct copy *c;
    unsigned long bytes;
    int warmup, n;

    (void)argc;
    if (!enif_get_ulong(env, argv[0], &bytes) || bytes == 0 || bytes > (1ul << 30) ||
        !get_rounds(env, argv + 1, &warmup, &n)) {
        return enif_make_badarg(env);
    }
    if (!(c = enif_alloc(sizeof *c))) {
        return enif_raise_exception(env, am_enomem);
    }
    *c = (struct copy){.bytes = bytes, .src = enif_alloc(bytes), .dst = enif_alloc(bytes)};
    if (!c->src || !c->dst) {
        free_copy(c);
        return enif_raise_exception(env, am_enomem);
    }
    /* Touch both buffers so no round pays for first-use page faults. */
    memset(c->src, 0x5a, bytes);
    memset(c->dst, 0, bytes);
    return start_timer(env, copy_once, free_copy, c, warmup, n);
}

/* ---- no-ops and the table --------------------------------------------- */

static ERL_NIF_TERM
noop(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)env;
    (void)argc;
    (void)argv;
    return am_ok;
}

static int
load(ErlNifEnv *env, void **priv, ERL_NIF_TERM info)
{
    (void)priv;
    (void)info;
    am_ok = enif_make_atom(env, "ok");
    am_error = enif_make_atom(env, "error");
    am_ping = enif_make_atom(env, "baseline_ping");
    am_condvar = enif_make_atom(env, "condvar");
    am_eventfd = enif_make_atom(env, "eventfd");
    am_echo_gone = enif_make_atom(env, "echo_gone");
    am_enomem = enif_make_atom(env, "enomem");
    channel_type = enif_open_resource_type(env, NULL, "baseline_channel", channel_dtor,
                                           ERL_NIF_RT_CREATE, NULL);
    return channel_type ? 0 : -1;
}

/* The starters create threads and allocate buffers: dirty, to keep that off
 * the normal schedulers. pong stays on a normal scheduler, as the reply NIF
 * of a thread worker does. */
static ErlNifFunc funcs[] = {
    {"noop", 0, noop, 0},
    {"dirty_noop", 0, noop, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"round_trips", 5, round_trips, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"ping_pongs", 2, ping_pongs, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"memcpys", 3, memcpys, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"pong", 1, pong, 0},
};

ERL_NIF_INIT(baseline_nif, funcs, load, NULL, NULL, NULL)
