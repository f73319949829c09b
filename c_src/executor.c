/*
 * executor.c: py_nif:call/eval/exec, and where their Python work runs.
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
 * Arguments are checked before the GIL is taken; a caller's mistake gives
 * {error, {badarg, What}}.
 */
#include "pyerl.h"

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

/* ---- running a request (GIL held) ------------------------------------ */

/* The arguments' large binaries are noted in passed (pyref.c). */
static PyObject *
run_call(ErlNifEnv *env, const struct pyerl_request *req, struct pyerl_passed *passed)
{
    PyObject *function = NULL, *args = NULL, *kwargs = NULL, *result = NULL;
    size_t kwargs_size = 0;

    if (!(function = pyerl_callable(env, req->module, req->function))) {
        goto done;
    }
    enif_get_map_size(env, req->kwargs, &kwargs_size);
    pyerl_passed_watch(passed);
    args = pyerl_args_to_py(env, req->args, "args");
    if (args && kwargs_size > 0) {
        kwargs = pyerl_kwargs_to_py(env, req->kwargs, "kwargs");
    }
    pyerl_passed_watch(NULL);
    if (!args || (kwargs_size > 0 && !kwargs)) {
        goto done;
    }
    result = PyObject_Call(function, args, kwargs);
done:
    Py_XDECREF(function);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return result;
}

/* Compiles source (not NUL-terminated); new reference or NULL with an
 * exception. */
static PyObject *
compile_source(const ErlNifBinary *bin, int start, const char *filename)
{
    char *source;
    PyObject *compiled;

    if (memchr(bin->data, '\0', bin->size)) {
        PyErr_SetString(PyExc_SyntaxError, "source code cannot contain null bytes");
        return NULL;
    }
    source = enif_alloc(bin->size + 1);
    if (!source) {
        return PyErr_NoMemory();
    }
    memcpy(source, bin->data, bin->size);
    source[bin->size] = '\0';
    compiled = Py_CompileString(source, filename, start);
    enif_free(source);
    return compiled;
}

/* The request's code, compiled or from the cache (code_cache.c, keyed by
 * the op). eval takes an expression, or failing that statements (whose
 * value is None), so that py:eval also runs a loop or an assignment. New
 * reference or NULL with an exception. */
static PyObject *
compile_request(ErlNifEnv *env, const struct pyerl_request *req)
{
    ErlNifBinary bin;
    PyObject *code;

    enif_inspect_binary(env, req->code, &bin);
    if ((code = pyerl_code_cache_get(req->op, bin.data, bin.size))) {
        return code;
    }
    if (req->op == PYERL_EXEC) {
        code = compile_source(&bin, Py_file_input, "<py:exec>");
    } else {
        code = compile_source(&bin, Py_eval_input, "<py:eval>");
        if (!code && PyErr_ExceptionMatches(PyExc_SyntaxError)) {
            PyErr_Clear();
            code = compile_source(&bin, Py_file_input, "<py:eval>");
        }
    }
    if (code) {
        pyerl_code_cache_put(req->op, bin.data, bin.size, code);
    }
    return code;
}

/* Eval's locals' large binaries are noted in passed (pyref.c). */
static PyObject *
run_code(ErlNifEnv *env, const struct pyerl_request *req, struct pyerl_passed *passed)
{
    int is_eval = req->op == PYERL_EVAL;
    PyObject *code = compile_request(env, req);
    PyObject *locals = NULL, *result = NULL;
    size_t locals_size = 0;

    if (!code) {
        return NULL;
    }
    if (is_eval) {
        enif_get_map_size(env, req->locals, &locals_size);
    }
    if (locals_size > 0) {
        pyerl_passed_watch(passed);
        locals = pyerl_kwargs_to_py(env, req->locals, "locals");
        pyerl_passed_watch(NULL);
        if (!locals) {
            goto done;
        }
    }
    result = PyEval_EvalCode(code, pyerl_main_dict(), locals ? locals : pyerl_main_dict());
done:
    Py_DECREF(code);
    Py_XDECREF(locals);
    return result;
}

ERL_NIF_TERM
pyerl_run(ErlNifEnv *in_env, const struct pyerl_request *req, ErlNifEnv *out_env,
          struct pyerl_call *call, const ErlNifPid *caller)
{
    struct pyerl_passed passed = {.env = in_env};
    PyObject *result;
    ERL_NIF_TERM value = ATOM(ok), out;
    int converted, interrupted;

    if (pyerl_gil_acquire() < 0) {
        return enif_make_tuple2(out_env, ATOM(error), enif_make_atom(out_env, "no_thread_state"));
    }
    pyerl_call_begin(call, caller, req->process_env, req->deadline_ns, req->depth);
    result =
        req->op == PYERL_CALL ? run_call(in_env, req, &passed) : run_code(in_env, req, &passed);
    if (result && req->op != PYERL_EXEC && PyCoro_CheckExact(result)) {
        /* An async def function: its result is what the coroutine returns. */
        Py_SETREF(result, pyerl_run_coroutine(result));
    }
    if (pyerl_in_forked_child()) {
        /* os.fork() in this call, and this is the child: the VM's code
         * below cannot run here. */
        pyerl_end_forked_child(result == NULL);
    }
    pyerl_passed_watch(&passed);
    converted =
        result && (req->op == PYERL_EXEC || pyerl_py_to_term(out_env, result, &value, "result"));
    pyerl_passed_watch(NULL);
    /* Dropping the result may run __del__ code: still inside the call. */
    Py_XDECREF(result);
    pyerl_passed_release(&passed);
    interrupted = pyerl_call_end(call);
    if (interrupted) {
        PyErr_Clear();
        out = enif_make_tuple2(out_env, ATOM(error), ATOM(timeout));
    } else if (!converted) {
        out = pyerl_error_from_python(out_env);
    } else {
        out = req->op == PYERL_EXEC ? ATOM(ok) : enif_make_tuple2(out_env, ATOM(ok), value);
    }
    pyerl_gil_release();
    return out;
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
    struct pyerl_call call;

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

/* The last two arguments of every call NIF: Timeout, and the depth of
 * Python -> Erlang -> Python nesting (0 from plain Erlang). Returns 1, or 0
 * with the term to return in *error. */
static int
get_limits(ErlNifEnv *env, const ERL_NIF_TERM *timeout_and_depth, struct pyerl_request *req,
           ERL_NIF_TERM *error)
{
    if (!get_deadline(env, timeout_and_depth[0], &req->deadline_ns)) {
        *error = pyerl_badarg(env, "timeout");
        return 0;
    }
    if (!enif_get_int(env, timeout_and_depth[1], &req->depth) || req->depth < 0) {
        *error = enif_make_badarg(env);
        return 0;
    }
    return 1;
}

/* call(Module, Function, Args, Kwargs, Timeout, Depth) */
ERL_NIF_TERM
pyerl_nif_call(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_request req = {.op = PYERL_CALL};
    char name[NAME_SIZE];
    unsigned length;
    ERL_NIF_TERM error;

    (void)argc;
    if (pyerl_name_text(env, argv[0], name, sizeof name) <= 0) {
        return pyerl_badarg(env, "module");
    }
    if (pyerl_name_text(env, argv[1], name, sizeof name) <= 0) {
        return pyerl_badarg(env, "function");
    }
    if (!enif_get_list_length(env, argv[2], &length)) {
        return pyerl_badarg(env, "args");
    }
    if (!enif_is_map(env, argv[3])) {
        return pyerl_badarg(env, "kwargs");
    }
    if (!get_limits(env, argv + 4, &req, &error)) {
        return error;
    }
    req.module = argv[0];
    req.function = argv[1];
    req.args = argv[2];
    req.kwargs = argv[3];
    return dispatch(env, &req);
}

/* eval(Code, Locals, Timeout, Depth) */
ERL_NIF_TERM
pyerl_nif_eval(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_request req = {.op = PYERL_EVAL};
    ERL_NIF_TERM error;

    (void)argc;
    if (!enif_is_binary(env, argv[0])) {
        return pyerl_badarg(env, "code");
    }
    if (!enif_is_map(env, argv[1])) {
        return pyerl_badarg(env, "locals");
    }
    if (!get_limits(env, argv + 2, &req, &error)) {
        return error;
    }
    req.code = argv[0];
    req.locals = argv[1];
    return dispatch(env, &req);
}

/* exec(Code, Timeout, Depth) */
ERL_NIF_TERM
pyerl_nif_exec(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_request req = {.op = PYERL_EXEC};
    ERL_NIF_TERM error;

    (void)argc;
    if (!enif_is_binary(env, argv[0])) {
        return pyerl_badarg(env, "code");
    }
    if (!get_limits(env, argv + 1, &req, &error)) {
        return error;
    }
    req.code = argv[0];
    return dispatch(env, &req);
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
    long threads, idle, queued, served, bound, pooled, erlang_calls;
    ERL_NIF_TERM keys[11], values[11], map;
    const char *version = Py_GetVersion();
    unsigned char *text;

    (void)argc;
    (void)argv;
    pyerl_pool_counts(&threads, &idle, &queued, &served);
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
    text = enif_make_new_binary(env, strcspn(version, " "), &values[7]);
    memcpy(text, version, strcspn(version, " "));
    keys[8] = ATOM(workers_live);
    values[8] = enif_make_long(env, bound);
    keys[9] = ATOM(workers_pooled);
    values[9] = enif_make_long(env, pooled);
    keys[10] = ATOM(erlang_calls);
    values[10] = enif_make_long(env, erlang_calls);
    enif_make_map_from_arrays(env, keys, values, 11, &map);
    return map;
}
