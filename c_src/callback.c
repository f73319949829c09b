/*
 * callback.c: Python calling Erlang: erlang.call, erlang.send, and the
 * registered Erlang functions as attributes of the erlang module.
 *
 * erlang.call converts its arguments, hands the request to the thread's
 * worker (worker.c; the messages are in protocol.h), which waits with the GIL released, and turns
 * the reply into a value or an exception:
 *
 *   erlang.ErlangError           the function raised (error, exit, throw):
 *                                .erlang_class, .reason, .stacktrace
 *   erlang.UnknownFunctionError  no function is registered under the name
 *   RecursionError               Python -> Erlang -> Python nesting deeper
 *                                than max_callback_depth
 * * Attribute lookup on the module finds only registered names, kept in a set
 * (the context's, context.h) that py_registry updates through
 * erlang._set_registered, so tools that
 * probe modules (hasattr(erlang, '__path__'), copy, inspect) see an
 * ordinary module.
 */
#include "callback.h"

#include "atoms.h"
#include "context.h"
#include "convert.h"
#include "erts_access.h"
#include "interrupt.h"
#include "module_state.h"
#include "process.h"
#include "protocol.h"
#include "worker.h"

#include <stdatomic.h>

#define DEFAULT_MAX_DEPTH 64

/* Process-wide: the application's setting, for every context. */
static atomic_int max_depth = DEFAULT_MAX_DEPTH;

/* ---- replies --------------------------------------------------------- */

/* Sets erlang.ErlangError from {error, Class, Reason, Text, Stack}. */
static void
raise_erlang_error(const struct pyerl_conv *cv, ErlNifEnv *env, const ERL_NIF_TERM *reply)
{
    PyObject *erlang_error = cv->ctx->state->erlang_error;
    PyObject *text = pyerl_term_to_py(cv, env, reply[PYERL_ERR_TEXT], "text");
    PyObject *klass = text ? pyerl_term_to_py(cv, env, reply[PYERL_ERR_CLASS], "class") : NULL;
    PyObject *stack =
        klass ? pyerl_term_to_py(cv, env, reply[PYERL_ERR_STACK], "stacktrace") : NULL;
    PyObject *reason = NULL, *exc = NULL;

    if (stack && !(reason = pyerl_term_to_py(cv, env, reply[PYERL_ERR_REASON], "reason"))) {
        /* A reason with no Python form (a fun, say) is given as its text. */
        PyErr_Clear();
        reason = Py_NewRef(text);
    }
    if (reason && (exc = PyObject_CallOneArg(erlang_error, text)) &&
        PyObject_SetAttrString(exc, "erlang_class", klass) == 0 &&
        PyObject_SetAttrString(exc, "reason", reason) == 0 &&
        PyObject_SetAttrString(exc, "stacktrace", stack) == 0) {
        PyErr_SetObject(erlang_error, exc);
    }
    Py_XDECREF(text);
    Py_XDECREF(klass);
    Py_XDECREF(stack);
    Py_XDECREF(reason);
    Py_XDECREF(exc);
}

PyObject *
pyerl_decode_reply(struct pyerl_ctx *ctx, ErlNifEnv *env, ERL_NIF_TERM reply, PyObject *name)
{
    struct pyerl_conv cv = {.ctx = ctx};
    const ERL_NIF_TERM *parts;
    int arity;

    if (!pyerl_get_tuple(env, reply, &arity, &parts)) {
        arity = 0;
    }
    if (arity == 2 && parts[0] == ATOM(ok)) {
        return pyerl_term_to_py(&cv, env, parts[1], "result");
    }
    if (arity == PYERL_REPLY_ERROR_ARITY && parts[0] == ATOM(error)) {
        raise_erlang_error(&cv, env, parts);
        return NULL;
    }
    if (arity == 2 && parts[0] == ATOM(unknown)) {
        if ((name = pyerl_term_to_py(&cv, env, parts[1], "name"))) {
            PyErr_Format(ctx->state->unknown_function_error,
                         "no Erlang function is registered as %R", name);
            Py_DECREF(name);
        }
        return NULL;
    }
    if (arity == 2 && parts[0] == ATOM(error) && parts[1] == ATOM(handler_died)) {
        PyErr_Format(ctx->state->erlang_error,
                     "the Erlang process running %R died before it answered", name);
        return NULL;
    }
    PyErr_Format(PyExc_SystemError, "unexpected reply from Erlang to a call of %R", name);
    return NULL;
}

/* ---- erlang.call ------------------------------------------------------ */

struct pyerl_worker *
pyerl_thread_worker(const char *usage)
{
    struct pyerl_worker *w;

    if (pyerl_in_forked_child()) {
        pyerl_set_forked_child_error(usage);
        return NULL;
    }
    if (!(w = pyerl_worker_for_thread())) {
        PyErr_NoMemory();
    }
    return w;
}

struct pyerl_worker *
pyerl_encode_request(struct pyerl_ctx *ctx, PyObject *const *args, Py_ssize_t nargs,
                     const char *usage, struct pyerl_encoded_request *out)
{
    struct pyerl_conv cv = {.ctx = ctx};
    struct pyerl_inflight *call = pyerl_inflight_current();
    int limit = atomic_load(&max_depth), rc;
    struct pyerl_worker *w;
    ErlNifEnv *env;
    PyObject *list;
    Py_ssize_t i;

    if (nargs < 1 || !PyUnicode_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s: name must be a str", usage);
        return NULL;
    }
    if (!(w = pyerl_thread_worker(usage))) {
        return NULL;
    }
    if (!pyerl_worker_begin_use(w)) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s: made by Python code that runs while this thread converts the "
                     "values of another call to Erlang",
                     usage);
        return NULL;
    }
    out->frame.depth = (call ? call->frame.depth : 0) + 1;
    out->frame.has_output = call && call->frame.has_output;
    if (out->frame.has_output) {
        out->frame.output = call->frame.output;
    }
    if (out->frame.depth > limit) {
        pyerl_worker_end_use(w);
        PyErr_Format(PyExc_RecursionError,
                     "Python -> Erlang -> Python nesting deeper than %d levels", limit);
        return NULL;
    }
    env = pyerl_worker_env(w);
    if (!(list = PyList_New(nargs - 1))) {
        pyerl_worker_end_use(w);
        return NULL;
    }
    for (i = 1; i < nargs; i++) {
        PyList_SET_ITEM(list, i - 1, Py_NewRef(args[i]));
    }
    rc = pyerl_py_to_term(&cv, env, args[0], &out->name, "name") &&
         pyerl_py_to_term(&cv, env, list, &out->args, "args");
    Py_DECREF(list);
    if (!rc) {
        enif_clear_env(env);
        pyerl_worker_end_use(w);
        return NULL;
    }
    out->call = call;
    out->caller_env = call ? call->env : NULL;
    return w;
}

void
pyerl_set_not_running(void)
{
    PyErr_SetString(PyExc_RuntimeError, "the erlang_python application is not running");
}

PyObject *
pyerl_erlang_call(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyerl_ctx *ctx = pyerl_module_ctx(module);
    struct pyerl_encoded_request req;
    struct pyerl_worker *w;
    struct pyerl_inflight *call;
    ErlNifEnv *reply_env;
    ERL_NIF_TERM reply;
    PyObject *result = NULL;
    int rc;

    if (!ctx || !(w = pyerl_encode_request(ctx, args, nargs, "erlang.call(name, *args)", &req))) {
        return NULL;
    }
    call = req.call;
    rc = pyerl_worker_call(w, req.caller_env, req.name, req.args, &req.frame, call, &reply,
                           &reply_env);
    if (rc == PYERL_WORKER_NOT_RUNNING) {
        pyerl_set_not_running();
    } else if (rc == PYERL_WORKER_FAILED) {
        PyErr_SetFromErrno(PyExc_OSError);
    } else if (rc == PYERL_WORKER_INTERRUPTED) {
        pyerl_inflight_disarm(call);
        PyErr_SetNone(ctx->state->call_interrupted);
    } else {
        result = pyerl_decode_reply(ctx, reply_env, reply, args[0]);
    }
    pyerl_worker_end_use(w);
    return result;
}

/* ---- erlang.send ------------------------------------------------------ */

PyObject *
pyerl_erlang_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyerl_ctx *ctx = pyerl_module_ctx(module);
    struct pyerl_conv cv = {.ctx = ctx};
    struct pyerl_inflight *call = pyerl_inflight_current();
    ErlNifEnv *env;
    ERL_NIF_TERM pid_term, message;
    ErlNifPid pid;
    int ok;

    if (!ctx) {
        return NULL;
    }
    if (nargs != 2 || !pyerl_is_pid(args[0])) {
        PyErr_SetString(PyExc_TypeError, "erlang.send(pid, message): pid must be an erlang.Pid");
        return NULL;
    }
    if (pyerl_in_forked_child()) {
        pyerl_set_forked_child_error("erlang.send(pid, message)");
        return NULL;
    }
    if (!(env = enif_alloc_env())) {
        return PyErr_NoMemory();
    }
    ok = pyerl_opaque_to_term(env, args[0], &pid_term);
    if (ok && !enif_get_local_pid(env, pid_term, &pid)) {
        PyErr_SetString(PyExc_ValueError, "erlang.send: the pid is not of this node");
        ok = 0;
    }
    ok = ok && pyerl_py_to_term(&cv, env, args[1], &message, "message");
    if (ok) {
        /* A dead process is no error, as in Erlang. */
        pyerl_send(call ? call->env : NULL, &pid, env, message);
    }
    enif_free_env(env);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- registered names as attributes ----------------------------------- */

PyObject *
pyerl_erlang_getattr(PyObject *module, PyObject *name)
{
    struct pyerl_module_state *st = PyModule_GetState(module);
    PyObject *call, *bound;

    if (PyUnicode_Check(name) && PyUnicode_GET_LENGTH(name) > 0 &&
        PyUnicode_READ_CHAR(name, 0) != '_' && st->ctx &&
        PySet_Contains(st->ctx->registered, name) == 1) {
        if (!(call = PyObject_GetAttrString(module, "call"))) {
            return NULL;
        }
        bound = PyObject_CallFunctionObjArgs(st->partial, call, name, NULL);
        Py_DECREF(call);
        return bound;
    }
    PyErr_Format(PyExc_AttributeError, "module 'erlang' has no attribute %R", name);
    return NULL;
}

/* erlang._set_registered(name, flag): kept up to date by py_registry. */
PyObject *
pyerl_erlang_set_registered(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyerl_ctx *ctx = pyerl_module_ctx(module);

    if (!ctx) {
        return NULL;
    }
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_set_registered(name: str, flag: bool)");
        return NULL;
    }
    if ((PyObject_IsTrue(args[1]) ? PySet_Add(ctx->registered, args[0])
                                  : PySet_Discard(ctx->registered, args[0])) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* erlang._clear_registered(): py_registry starts with no names. */
PyObject *
pyerl_erlang_clear_registered(PyObject *module, PyObject *unused)
{
    struct pyerl_ctx *ctx = pyerl_module_ctx(module);

    (void)unused;
    if (!ctx || PySet_Clear(ctx->registered) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

ERL_NIF_TERM
pyerl_nif_set_max_depth(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    int depth;

    (void)argc;
    if (!enif_get_int(env, argv[0], &depth) || depth < 1) {
        return enif_make_badarg(env);
    }
    atomic_store(&max_depth, depth);
    return ATOM(ok);
}
