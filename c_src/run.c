/*
 * run.c: one py:call, py:eval, py:exec, or operation on a referenced object
 * (py:call_method, getattr, to_term, release), run on the calling thread in
 * the request's context: take the context's GIL, convert the arguments,
 * find or compile what to run, run it, convert the result (or make a
 * reference to it), and tell the watchdog (interrupt.c) when the call
 * starts and ends so that a timeout or the caller's death interrupts it.
 *
 * executor.c calls it on dirty schedulers, pool.c on its threads.
 */
#include "run.h"

#include "async.h"
#include "atoms.h"
#include "buffers.h"
#include "callable.h"
#include "code_cache.h"
#include "context.h"
#include "convert.h"
#include "drain.h"
#include "erts_access.h"
#include "errors.h"
#include "interrupt.h"
#include "objref.h"
#include "process.h"

#include <string.h>

/* function(*args, **kwargs) with the request's arguments, whose large
 * binaries and references are noted in cv (buffers.c, objref.c). GIL held. */
static PyObject *
call_with_args(const struct pyerl_conv *cv, ErlNifEnv *env, const struct pyerl_request *req,
               PyObject *function)
{
    PyObject *args = NULL, *kwargs = NULL, *result = NULL;
    size_t kwargs_size = 0;

    enif_get_map_size(env, req->kwargs, &kwargs_size);
    args = pyerl_args_to_py(cv, env, req->args, "args");
    if (args && kwargs_size > 0) {
        kwargs = pyerl_kwargs_to_py(cv, env, req->kwargs, "kwargs");
    }
    if (!args || (kwargs_size > 0 && !kwargs)) {
        goto done;
    }
    result = PyObject_Call(function, args, kwargs);
done:
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return result;
}

static PyObject *run_code(const struct pyerl_conv *cv, ErlNifEnv *env,
                          const struct pyerl_request *req);

static PyObject *
run_call(const struct pyerl_conv *cv, ErlNifEnv *env, const struct pyerl_request *req)
{
    PyObject *function =
        req->main_module ? pyerl_attribute(req->ctx->names, env, req->main_module, req->function)
                         : pyerl_callable(req->ctx->names, env, req->module, req->function);
    PyObject *result = function ? call_with_args(cv, env, req, function) : NULL;

    Py_XDECREF(function);
    return result;
}

/* METHOD, GETATTR, TO_TERM and RELEASE, on the object of the request's
 * target. Sets *released, returning NULL with no exception, if the
 * reference was released before. GIL held. */
static PyObject *
run_on_object(const struct pyerl_conv *cv, ErlNifEnv *env, const struct pyerl_request *req,
              int *released)
{
    struct pyerl_objref *ref = pyerl_objref_get(env, req->target);
    PyObject *obj = pyerl_objref_object(ref), *method, *result;

    if (!obj) {
        *released = 1;
        return NULL;
    }
    switch (req->op) {
    case PYERL_METHOD:
        method = pyerl_attribute(req->ctx->names, env, obj, req->function);
        result = method ? call_with_args(cv, env, req, method) : NULL;
        Py_XDECREF(method);
        break;
    case PYERL_GETATTR:
        result = pyerl_attribute(req->ctx->names, env, obj, req->function);
        break;
    case PYERL_TO_TERM:
        result = Py_NewRef(obj);
        break;
    default:
        /* RELEASE. The object goes, and its __del__ runs, with obj below. */
        pyerl_objref_release(ref);
        result = Py_NewRef(Py_None);
        break;
    }
    Py_DECREF(obj);
    return result;
}

static PyObject *
run_request(const struct pyerl_conv *cv, ErlNifEnv *env, const struct pyerl_request *req,
            int *released)
{
    switch (req->op) {
    case PYERL_CALL:
        return run_call(cv, env, req);
    case PYERL_EVAL:
    case PYERL_EXEC:
        return run_code(cv, env, req);
    default:
        return run_on_object(cv, env, req, released);
    }
}

/* The result as a term: a reference if asked for, else converted. */
static int
result_to_term(const struct pyerl_conv *cv, ErlNifEnv *env, const struct pyerl_request *req,
               PyObject *result, ERL_NIF_TERM *out)
{
    if (req->return_ref) {
        return pyerl_objref_make(req->ctx, env, result, out);
    }
    return pyerl_py_to_term(cv, env, result, out, "result");
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

    pyerl_inspect_binary(env, req->code, &bin);
    if ((code = pyerl_code_cache_get(req->ctx->code, req->op, bin.data, bin.size))) {
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
        pyerl_code_cache_put(req->ctx->code, req->op, bin.data, bin.size, code);
    }
    return code;
}

/* Eval's locals' large binaries are noted in cv->large (buffers.c). GIL
 * held. */
static PyObject *
run_code(const struct pyerl_conv *cv, ErlNifEnv *env, const struct pyerl_request *req)
{
    PyObject *globals = req->globals ? req->globals : req->ctx->globals;
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
        locals = pyerl_kwargs_to_py(cv, env, req->locals, "locals");
        if (!locals) {
            goto done;
        }
    }
    result = PyEval_EvalCode(code, globals, locals ? locals : globals);
done:
    Py_DECREF(code);
    Py_XDECREF(locals);
    return result;
}

ERL_NIF_TERM
pyerl_run(ErlNifEnv *in_env, const struct pyerl_request *req, ErlNifEnv *out_env,
          struct pyerl_inflight *call, const ErlNifPid *caller)
{
    struct pyerl_large_args large = {.env = in_env};
    struct pyerl_ref_args refs = {.env = in_env};
    struct pyerl_conv cv = {.ctx = req->ctx, .large = &large, .refs = &refs};
    int returns_ok = req->op == PYERL_EXEC || req->op == PYERL_RELEASE;
    PyObject *result;
    ERL_NIF_TERM value = ATOM(ok), out;
    int converted, interrupted, released = 0, entered;

    if (req->calls && pyerl_drain_enter(req->calls) < 0) {
        return enif_make_tuple2(out_env, ATOM(error), ATOM(context_stopped));
    }
    if ((entered = pyerl_ctx_enter(req->ctx)) < 0) {
        if (req->calls) {
            pyerl_drain_leave(req->calls);
        }
        return enif_make_tuple2(out_env, ATOM(error),
                                entered == PYERL_CTX_CLOSED
                                    ? ATOM(context_stopped)
                                    : enif_make_atom(out_env, "no_thread_state"));
    }
    pyerl_inflight_begin(call, req->ctx, req->calls, caller, req->process_env, req->deadline_ns,
                         &req->frame);
    result = run_request(&cv, in_env, req, &released);
    if (result && (req->op == PYERL_CALL || req->op == PYERL_EVAL || req->op == PYERL_METHOD) &&
        PyCoro_CheckExact(result)) {
        /* An async def function: its result is what the coroutine returns. */
        Py_SETREF(result, pyerl_run_coroutine(req->ctx, result));
    }
    if (pyerl_in_forked_child()) {
        /* os.fork() in this call, and this is the child: the VM's code
         * below cannot run here. */
        pyerl_end_forked_child(result == NULL);
    }
    converted = result && (returns_ok || result_to_term(&cv, out_env, req, result, &value));
    /* Dropping the result may run __del__ code: still inside the call. */
    Py_XDECREF(result);
    pyerl_large_args_release(&large);
    pyerl_ref_args_release(&refs);
    interrupted = pyerl_inflight_end(call);
    if (interrupted) {
        PyErr_Clear();
        out = enif_make_tuple2(out_env, ATOM(error),
                               interrupted == PYERL_STOPPED       ? ATOM(context_stopped)
                               : interrupted == PYERL_INTERRUPTED ? ATOM(interrupted)
                                                                  : ATOM(timeout));
    } else if (released) {
        out = pyerl_badarg(out_env, "ref");
    } else if (!converted) {
        out = pyerl_error_from_python(out_env);
    } else {
        out = returns_ok ? ATOM(ok) : enif_make_tuple2(out_env, ATOM(ok), value);
    }
    pyerl_ctx_leave(req->ctx);
    if (req->calls) {
        pyerl_drain_leave(req->calls);
    }
    return out;
}
