/*
 * executor.c: py_nif:call/eval/exec and the operations on references, and
 * where their Python work runs;
 * also py_nif:stats/0, whose figures are mostly about where calls ran.
 *
 * The three NIFs are dirty I/O NIFs and run the Python work right there, on
 * the calling dirty scheduler: no hand-off to another thread, which is what
 * makes a short call cheap (docs/performance.md has the figures).
 *
 * A Python call may block (sleep, I/O, a queue), holding its dirty
 * scheduler meanwhile. So at most `dirty_limit` calls run on dirty
 * schedulers at once, by default one fewer than there are dirty I/O
 * schedulers; a call over the limit is handed to the pool (pool.c), whose
 * threads grow while all are busy. One dirty I/O scheduler is therefore
 * always free to admit new calls, and no call waits behind blocked ones.
 *
 * py_nif:call_method/getattr/to_term/release work on the object of a
 * reference (objref.c) in the same way, in the object's context; is_ref
 * only looks at its argument, on the normal scheduler.
 *
 * Arguments are checked before the GIL is taken; a caller's mistake gives
 * {error, {badarg, What}}. The work itself is run.c's, in the main
 * interpreter's context, or in the context (contexts.c) a context_ NIF
 * names.
 */
#include "executor.h"

#include "atoms.h"
#include "clock.h"
#include "context.h"
#include "contexts.h"
#include "convert.h"
#include "erts_access.h"
#include "errors.h"
#include "interrupt.h"
#include "objref.h"
#include "pool.h"
#include "run.h"
#include "stack.h"
#include "worker.h"

#include <stdatomic.h>
#include <string.h>

#define NAME_SIZE 1024

/* -1 until the first load sets the default; a reload (upgrade, or a load
 * after the module was purged) keeps what the application configured. */
static atomic_int dirty_limit = -1;
static atomic_int dirty_running;
static atomic_long dirty_calls;

void
pyerl_executor_init(int dirty_io_schedulers)
{
    int unset = -1;

    atomic_compare_exchange_strong(&dirty_limit, &unset,
                                   dirty_io_schedulers > 1 ? dirty_io_schedulers - 1 : 0);
}

/* ---- the NIFs --------------------------------------------------------- */

/* Timeout in ms (a non-negative integer or infinity) to a deadline. */
static int
get_deadline(ErlNifEnv *env, ERL_NIF_TERM term, int64_t *deadline_ns)
{
    ErlNifSInt64 ms;

    if (term == ATOM(infinity)) {
        *deadline_ns = INT64_MAX;
        return 1;
    }
    if (!enif_get_int64(env, term, &ms) || ms < 0) {
        return 0;
    }
    *deadline_ns = pyerl_deadline_after(ms);
    return 1;
}

struct dirty_run {
    ErlNifEnv *env;
    const struct pyerl_request *req;
    ErlNifPid self;
    ERL_NIF_TERM result;
};

static void
run_dirty(void *arg)
{
    struct dirty_run *run = arg;
    struct pyerl_inflight call;

    run->result = pyerl_run(run->env, run->req, run->env, &call, &run->self);
}

static ERL_NIF_TERM
dispatch(ErlNifEnv *env, struct pyerl_request *req)
{
    struct dirty_run run = {.env = env, .req = req};
    int ran;

    if (atomic_fetch_add(&dirty_running, 1) >= atomic_load(&dirty_limit)) {
        atomic_fetch_sub(&dirty_running, 1);
        return pyerl_pool_submit(env, req);
    }
    enif_self(env, &run.self);
    req->process_env = env;
    ran = pyerl_run_on_large_stack(run_dirty, &run) == 0;
    req->process_env = NULL;
    atomic_fetch_sub(&dirty_running, 1);
    if (!ran) {
        return pyerl_pool_submit(env, req);
    }
    atomic_fetch_add(&dirty_calls, 1);
    return run.result;
}

/* A call's frame (protocol.h): Depth, or {Depth, Pid} where Pid is the
 * process whose group leader the call's output goes to. */
static int
get_frame(ErlNifEnv *env, ERL_NIF_TERM term, struct pyerl_frame *frame)
{
    const ERL_NIF_TERM *parts;
    int arity;

    frame->has_output = 0;
    if (enif_get_tuple(env, term, &arity, &parts)) {
        if (arity != 2 || !enif_get_local_pid(env, parts[1], &frame->output)) {
            return 0;
        }
        frame->has_output = 1;
        term = parts[0];
    }
    return enif_get_int(env, term, &frame->depth) && frame->depth >= 0;
}

/* The last two arguments of every call NIF: Timeout, and the call's frame.
 * Returns 1, or 0 with the term to return in *error. */
static int
get_limits(ErlNifEnv *env, const ERL_NIF_TERM *timeout_and_frame, struct pyerl_request *req,
           ERL_NIF_TERM *error)
{
    if (!get_deadline(env, timeout_and_frame[0], &req->deadline_ns)) {
        *error = pyerl_badarg(env, "timeout");
        return 0;
    }
    if (!get_frame(env, timeout_and_frame[1], &req->frame)) {
        *error = enif_make_badarg(env);
        return 0;
    }
    return 1;
}

/* Return: value (the result converted) or ref (a reference to it). */
static int
get_return(ErlNifEnv *env, ERL_NIF_TERM term, struct pyerl_request *req, ERL_NIF_TERM *error)
{
    if (term != ATOM(value) && term != ATOM(ref)) {
        *error = pyerl_badarg(env, "return");
        return 0;
    }
    req->return_ref = term == ATOM(ref);
    return 1;
}

/* Name, Args and Kwargs of a call or method call: 0 with the term to
 * return in *error if one is malformed. */
static int
get_call(ErlNifEnv *env, const ERL_NIF_TERM *name_args_kwargs, const char *name_is,
         struct pyerl_request *req, ERL_NIF_TERM *error)
{
    char name[NAME_SIZE];
    unsigned length;

    if (pyerl_name_text(env, name_args_kwargs[0], name, sizeof name) <= 0) {
        *error = pyerl_badarg(env, name_is);
    } else if (!enif_get_list_length(env, name_args_kwargs[1], &length)) {
        *error = pyerl_badarg(env, "args");
    } else if (!enif_is_map(env, name_args_kwargs[2])) {
        *error = pyerl_badarg(env, "kwargs");
    } else {
        req->function = name_args_kwargs[0];
        req->args = name_args_kwargs[1];
        req->kwargs = name_args_kwargs[2];
        return 1;
    }
    return 0;
}

/* The reference the operation is on: it runs in the object's context. */
static int
get_target(ErlNifEnv *env, ERL_NIF_TERM term, struct pyerl_request *req, ERL_NIF_TERM *error)
{
    struct pyerl_objref *ref = pyerl_objref_get(env, term);

    if (!ref) {
        *error = pyerl_badarg(env, "ref");
        return 0;
    }
    req->target = term;
    req->ctx = pyerl_objref_ctx(ref);
    return 1;
}

/* Module, Function, Args, Kwargs, Timeout, Depth, Return of a call in
 * req's context, or in the context Context names if not 0. */
static ERL_NIF_TERM
call_in(ErlNifEnv *env, ERL_NIF_TERM context, const ERL_NIF_TERM argv[])
{
    struct pyerl_request req = {.op = PYERL_CALL, .ctx = pyerl_main_ctx()};
    char name[NAME_SIZE];
    ERL_NIF_TERM error;

    if (pyerl_name_text(env, argv[0], name, sizeof name) <= 0) {
        return pyerl_badarg(env, "module");
    }
    if (context && !pyerl_context_request(env, context, &req, strcmp(name, "__main__") == 0)) {
        return pyerl_badarg(env, "context");
    }
    if (!get_call(env, argv + 1, "function", &req, &error) ||
        !get_limits(env, argv + 4, &req, &error) || !get_return(env, argv[6], &req, &error)) {
        return error;
    }
    req.module = argv[0];
    return dispatch(env, &req);
}

/* call(Module, Function, Args, Kwargs, Timeout, Depth, Return) */
ERL_NIF_TERM
pyerl_nif_call(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    return call_in(env, 0, argv);
}

/* context_call(Context, Module, Function, Args, Kwargs, Timeout, Depth,
 * Return) */
ERL_NIF_TERM
pyerl_nif_context_call(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    return call_in(env, argv[0], argv + 1);
}

/* Code, Locals, Timeout, Depth, Return of an eval, as call_in. */
static ERL_NIF_TERM
eval_in(ErlNifEnv *env, ERL_NIF_TERM context, const ERL_NIF_TERM argv[])
{
    struct pyerl_request req = {.op = PYERL_EVAL, .ctx = pyerl_main_ctx()};
    ERL_NIF_TERM error;

    if (context && !pyerl_context_request(env, context, &req, 0)) {
        return pyerl_badarg(env, "context");
    }
    if (!enif_is_binary(env, argv[0])) {
        return pyerl_badarg(env, "code");
    }
    if (!enif_is_map(env, argv[1])) {
        return pyerl_badarg(env, "locals");
    }
    if (!get_limits(env, argv + 2, &req, &error) || !get_return(env, argv[4], &req, &error)) {
        return error;
    }
    req.code = argv[0];
    req.locals = argv[1];
    return dispatch(env, &req);
}

/* eval(Code, Locals, Timeout, Depth, Return) */
ERL_NIF_TERM
pyerl_nif_eval(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    return eval_in(env, 0, argv);
}

/* context_eval(Context, Code, Locals, Timeout, Depth, Return) */
ERL_NIF_TERM
pyerl_nif_context_eval(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    return eval_in(env, argv[0], argv + 1);
}

/* call_method(Ref, Name, Args, Kwargs, Timeout, Depth, Return) */
ERL_NIF_TERM
pyerl_nif_call_method(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_request req = {.op = PYERL_METHOD};
    ERL_NIF_TERM error;

    (void)argc;
    if (!get_target(env, argv[0], &req, &error) || !get_call(env, argv + 1, "name", &req, &error) ||
        !get_limits(env, argv + 4, &req, &error) || !get_return(env, argv[6], &req, &error)) {
        return error;
    }
    return dispatch(env, &req);
}

/* getattr(Ref, Name, Timeout, Depth, Return) */
ERL_NIF_TERM
pyerl_nif_getattr(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_request req = {.op = PYERL_GETATTR};
    char name[NAME_SIZE];
    ERL_NIF_TERM error;

    (void)argc;
    if (!get_target(env, argv[0], &req, &error)) {
        return error;
    }
    if (pyerl_name_text(env, argv[1], name, sizeof name) <= 0) {
        return pyerl_badarg(env, "name");
    }
    if (!get_limits(env, argv + 2, &req, &error) || !get_return(env, argv[4], &req, &error)) {
        return error;
    }
    req.function = argv[1];
    return dispatch(env, &req);
}

/* to_term(Ref, Timeout, Depth) and release(Ref, Timeout, Depth). */
static ERL_NIF_TERM
on_target(ErlNifEnv *env, enum pyerl_op op, const ERL_NIF_TERM argv[])
{
    struct pyerl_request req = {.op = op};
    ERL_NIF_TERM error;

    if (!get_target(env, argv[0], &req, &error) || !get_limits(env, argv + 1, &req, &error)) {
        return error;
    }
    return dispatch(env, &req);
}

ERL_NIF_TERM
pyerl_nif_to_term(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    return on_target(env, PYERL_TO_TERM, argv);
}

ERL_NIF_TERM
pyerl_nif_release(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    return on_target(env, PYERL_RELEASE, argv);
}

/* is_ref(Term): whether Term is a reference to a Python object. */
ERL_NIF_TERM
pyerl_nif_is_ref(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    return pyerl_objref_get(env, argv[0]) ? ATOM(true) : ATOM(false);
}

/* Code, Timeout, Depth of an exec, as call_in. */
static ERL_NIF_TERM
exec_in(ErlNifEnv *env, ERL_NIF_TERM context, const ERL_NIF_TERM argv[])
{
    struct pyerl_request req = {.op = PYERL_EXEC, .ctx = pyerl_main_ctx()};
    ERL_NIF_TERM error;

    if (context && !pyerl_context_request(env, context, &req, 0)) {
        return pyerl_badarg(env, "context");
    }
    if (!enif_is_binary(env, argv[0])) {
        return pyerl_badarg(env, "code");
    }
    if (!get_limits(env, argv + 1, &req, &error)) {
        return error;
    }
    req.code = argv[0];
    return dispatch(env, &req);
}

/* exec(Code, Timeout, Depth) */
ERL_NIF_TERM
pyerl_nif_exec(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    return exec_in(env, 0, argv);
}

/* context_exec(Context, Code, Timeout, Depth) */
ERL_NIF_TERM
pyerl_nif_context_exec(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    return exec_in(env, argv[0], argv + 1);
}

/* set_dirty_limit(N): how many calls may run on dirty schedulers at once;
 * 0 sends every call to the pool. */
ERL_NIF_TERM
pyerl_nif_set_dirty_limit(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    int limit;

    (void)argc;
    if (!enif_get_int(env, argv[0], &limit) || limit < 0) {
        return enif_make_badarg(env);
    }
    atomic_store(&dirty_limit, limit);
    return ATOM(ok);
}

ERL_NIF_TERM
pyerl_nif_stats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    long threads, idle, queued, served, limit, bound, pooled, erlang_calls;
    ERL_NIF_TERM keys[12], values[12], map;
    const char *version = Py_GetVersion();
    unsigned char *text;

    (void)argc;
    (void)argv;
    pyerl_pool_counts(&threads, &idle, &queued, &served, &limit);
    pyerl_worker_counts(&bound, &pooled, &erlang_calls);
    keys[0] = ATOM(dirty_limit);
    values[0] = enif_make_int(env, atomic_load(&dirty_limit));
    keys[1] = ATOM(dirty_running);
    values[1] = enif_make_int(env, atomic_load(&dirty_running));
    keys[2] = ATOM(dirty_calls);
    values[2] = enif_make_long(env, atomic_load(&dirty_calls));
    keys[3] = ATOM(pool_threads);
    values[3] = enif_make_long(env, threads);
    keys[4] = ATOM(pool_idle);
    values[4] = enif_make_long(env, idle);
    keys[5] = ATOM(pool_queued);
    values[5] = enif_make_long(env, queued);
    keys[6] = ATOM(pool_calls);
    values[6] = enif_make_long(env, served);
    keys[7] = ATOM(python_version);
    if (!(text = pyerl_make_new_binary(env, strcspn(version, " "), &values[7]))) {
        return enif_raise_exception(env, enif_make_atom(env, "enomem"));
    }
    memcpy(text, version, strcspn(version, " "));
    keys[8] = ATOM(workers_live);
    values[8] = enif_make_long(env, bound);
    keys[9] = ATOM(workers_pooled);
    values[9] = enif_make_long(env, pooled);
    keys[10] = ATOM(erlang_calls);
    values[10] = enif_make_long(env, erlang_calls);
    keys[11] = ATOM(pool_limit);
    values[11] = enif_make_long(env, limit);
    enif_make_map_from_arrays(env, keys, values, 12, &map);
    return map;
}
