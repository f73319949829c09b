/*
 * pool.c: NIF-owned threads for the calls that are not run on a dirty
 * scheduler (see executor.c for when that is).
 *
 * A job is a NIF resource holding a copy of the request in its own env, the
 * caller's pid and a fresh reference. Threads take jobs from one FIFO queue.
 * When a job comes and no thread is free to take it, a new thread starts,
 * so a job never waits behind blocked ones; a thread idle for IDLE_EXIT_NS
 * exits. Threads have PYERL_STACK_SIZE stacks (address space; what they
 * touch is what they cost). With max_threads threads all busy, or when no
 * thread can be started, a job is refused at once with {error,
 * overloaded}: waiting behind calls that may block for ever would be an
 * unbounded wait.
 *
 * The result reaches the caller as {Ref, Result}. The caller may give up
 * first (its timeout): py_nif:cancel/1 then answers `sent` if the result has
 * been sent (the caller will receive it) or `cancelled` if it never will be,
 * and interrupts the work. The answer is exact because the thread sends and
 * cancel decides under the same job mutex.
 *
 * Lock order (common.h): pool lock and job locks are never held together;
 * a job lock may be held while taking the watchdog's lock
 * (pyerl_inflight_abandon). None is held while taking a GIL.
 */
#include "pool.h"

#include "atoms.h"
#include "clock.h"
#include "context.h"
#include "interrupt.h"
#include "run.h"
#include "stack.h"

#include <stdatomic.h>
#include <string.h>

#define DEFAULT_MAX_THREADS 4096
#define IDLE_EXIT_NS (30 * 1000 * 1000 * 1000LL)

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_SENT, JOB_CANCELLED };

struct job {
    ErlNifEnv *env; /* owns the request's terms and ref */
    struct pyerl_request req;
    ERL_NIF_TERM ref;
    ErlNifPid caller;
    struct pyerl_inflight call; /* registered with the watchdog while running */
    struct job *next;           /* guarded by the pool lock */
    pthread_mutex_t lock;
    enum job_state state; /* guarded by lock */
};

/* Set by load and upgrade while calls may be reading it. */
static ErlNifResourceType *_Atomic job_type;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
/* pool_lock-guarded: */
static pthread_cond_t work_ready;
static struct job *queue_head, *queue_tail;
static long queued, threads, idle, starting;
static atomic_long served;
/* py_nif:set_pool_limit/1; a reload keeps what the application set. */
static atomic_long max_threads = DEFAULT_MAX_THREADS;

static void
job_dtor(ErlNifEnv *env, void *obj)
{
    struct job *job = obj;

    (void)env;
    if (job->env) {
        enif_free_env(job->env);
    }
    pthread_mutex_destroy(&job->lock);
}

/* ---- the threads ------------------------------------------------------ */

/* Waits for a job; NULL when the thread has idled long enough to exit, or
 * is one more than the limit (lowered meanwhile). */
static struct job *
take_job(void)
{
    struct job *job = NULL;
    struct timespec until = pyerl_timespec_at(pyerl_now_ns() + IDLE_EXIT_NS);

    pthread_mutex_lock(&pool_lock);
    idle++;
    while (!queue_head && threads <= atomic_load(&max_threads)) {
        if (pthread_cond_timedwait(&work_ready, &pool_lock, &until) != 0 && !queue_head) {
            break;
        }
    }
    idle--;
    if (queue_head) {
        job = queue_head;
        queue_head = job->next;
        if (!queue_head) {
            queue_tail = NULL;
        }
        queued--;
    } else {
        threads--;
    }
    pthread_mutex_unlock(&pool_lock);
    return job;
}

static void
run_job(struct job *job)
{
    ErlNifEnv *out_env;
    ERL_NIF_TERM result, message;
    int wanted;

    pthread_mutex_lock(&job->lock);
    wanted = job->state == JOB_QUEUED && enif_is_process_alive(NULL, &job->caller);
    job->state = wanted ? JOB_RUNNING : JOB_CANCELLED;
    pthread_mutex_unlock(&job->lock);
    if (!wanted || !(out_env = enif_alloc_env())) {
        return;
    }
    result = pyerl_run(job->env, &job->req, out_env, &job->call, &job->caller);
    message = enif_make_tuple2(out_env, enif_make_copy(out_env, job->ref), result);
    /* Counted before the caller can see the result and ask for stats. */
    atomic_fetch_add(&served, 1);
    pthread_mutex_lock(&job->lock);
    if (job->state == JOB_RUNNING) {
        enif_send(NULL, &job->caller, out_env, message);
        job->state = JOB_SENT;
    }
    pthread_mutex_unlock(&job->lock);
    enif_free_env(out_env);
}

static void *
pool_thread_main(void *arg)
{
    struct job *job;

    (void)arg;
    pthread_mutex_lock(&pool_lock);
    starting--;
    pthread_mutex_unlock(&pool_lock);
    while ((job = take_job())) {
        run_job(job);
        enif_release_resource(job); /* the queue's reference */
    }
    pyerl_ctx_forget_thread();
    return NULL;
}

/* Pool lock held. Whether a thread is free, or starting, to take one more
 * job; else starts one, within max_threads. */
static int
thread_for_one_more(void)
{
    pthread_attr_t attr;
    pthread_t thread;
    int started;

    if (queued < idle + starting) {
        return 1;
    }
    if (threads >= atomic_load(&max_threads) || pthread_attr_init(&attr) != 0) {
        return 0;
    }
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, PYERL_STACK_SIZE);
    started = pthread_create(&thread, &attr, pool_thread_main, NULL) == 0;
    if (started) {
        threads++;
        starting++;
    }
    pthread_attr_destroy(&attr);
    return started;
}

/* ---- submitting and cancelling ---------------------------------------- */

/* A request's term into the job's env; 0 (a term the request leaves
 * unset) stays 0. */
static ERL_NIF_TERM
copy_term(ErlNifEnv *env, ERL_NIF_TERM term)
{
    return term ? enif_make_copy(env, term) : 0;
}

ERL_NIF_TERM
pyerl_pool_submit(ErlNifEnv *env, const struct pyerl_request *req)
{
    struct job *job = enif_alloc_resource(job_type, sizeof *job);
    ERL_NIF_TERM handle;

    if (!job) {
        return enif_make_tuple2(env, ATOM(error), enif_make_atom(env, "enomem"));
    }
    memset(job, 0, sizeof *job);
    pthread_mutex_init(&job->lock, NULL);
    job->env = enif_alloc_env();
    if (!job->env) {
        enif_release_resource(job);
        return enif_make_tuple2(env, ATOM(error), enif_make_atom(env, "enomem"));
    }
    job->req = *req;
    job->req.module = copy_term(job->env, req->module);
    job->req.function = copy_term(job->env, req->function);
    job->req.args = copy_term(job->env, req->args);
    job->req.kwargs = copy_term(job->env, req->kwargs);
    job->req.code = copy_term(job->env, req->code);
    job->req.locals = copy_term(job->env, req->locals);
    job->req.target = copy_term(job->env, req->target);
    job->req.context = copy_term(job->env, req->context);
    job->ref = enif_make_ref(job->env);
    job->state = JOB_QUEUED;
    enif_self(env, &job->caller);

    pthread_mutex_lock(&pool_lock);
    if (!thread_for_one_more()) {
        pthread_mutex_unlock(&pool_lock);
        enif_release_resource(job);
        return enif_make_tuple2(env, ATOM(error), ATOM(overloaded));
    }
    handle = enif_make_resource(env, job); /* the caller's reference */
    if (queue_tail) {
        queue_tail->next = job;
    } else {
        queue_head = job;
    }
    queue_tail = job;
    queued++;
    pthread_cond_signal(&work_ready);
    pthread_mutex_unlock(&pool_lock);
    /* The queue's reference is the one enif_alloc_resource gave us. */
    return enif_make_tuple3(env, ATOM(queued), enif_make_copy(env, job->ref), handle);
}

/* cancel(Job) -> sent | cancelled. Runs on a normal scheduler: takes only
 * short mutexes. */
ERL_NIF_TERM
pyerl_nif_cancel(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct job *job;
    ERL_NIF_TERM answer;

    (void)argc;
    if (!enif_get_resource(env, argv[0], job_type, (void **)&job)) {
        return enif_make_badarg(env);
    }
    pthread_mutex_lock(&job->lock);
    if (job->state == JOB_SENT) {
        answer = ATOM(sent);
    } else {
        if (job->state == JOB_RUNNING) {
            pyerl_inflight_abandon(&job->call);
        }
        job->state = JOB_CANCELLED;
        answer = ATOM(cancelled);
    }
    pthread_mutex_unlock(&job->lock);
    return answer;
}

/* set_pool_limit(N): how many threads the pool may have. Idle threads over
 * it exit at once, busy ones when their job is done. */
ERL_NIF_TERM
pyerl_nif_set_pool_limit(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    long limit;

    (void)argc;
    if (!enif_get_long(env, argv[0], &limit) || limit < 1) {
        return enif_make_badarg(env);
    }
    atomic_store(&max_threads, limit);
    /* Idle threads over the new limit exit now. */
    pthread_mutex_lock(&pool_lock);
    pthread_cond_broadcast(&work_ready);
    pthread_mutex_unlock(&pool_lock);
    return ATOM(ok);
}

void
pyerl_pool_counts(long *n_threads, long *n_idle, long *n_queued, long *n_served, long *limit)
{
    pthread_mutex_lock(&pool_lock);
    *n_threads = threads;
    *n_idle = idle;
    *n_queued = queued;
    pthread_mutex_unlock(&pool_lock);
    *n_served = atomic_load(&served);
    *limit = atomic_load(&max_threads);
}

int
pyerl_pool_init(ErlNifEnv *env)
{
    static int cond_ready;
    ErlNifResourceType *type = enif_open_resource_type(
        env, NULL, "pyerl_job", job_dtor, ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);

    if (!type) {
        return -1;
    }
    job_type = type;
    if (!cond_ready) {
        if (!pyerl_monotonic_condattr() ||
            pthread_cond_init(&work_ready, pyerl_monotonic_condattr()) != 0) {
            return -1;
        }
        cond_ready = 1;
    }
    return 0;
}
