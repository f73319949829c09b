/*
 * callback.c: Python calling Erlang: erlang.call, erlang.send, and the
 * registered Erlang functions as attributes of the erlang module.
 *
 * erlang.call converts its arguments, hands the request to the thread's
 * worker (worker.c), which waits with the GIL released, and turns the reply
 * into a value or an exception:
 *
 *   erlang.ErlangError           the function raised (error, exit, throw):
 *                                .erlang_class, .reason, .stacktrace
 *   erlang.UnknownFunctionError  no function is registered under the name
 *   RecursionError               Python -> Erlang -> Python nesting deeper
 *                                than max_callback_depth
 *
 * Attribute lookup on the module finds only registered names, kept in a set
 * that py_registry updates through erlang._set_registered, so tools that
 * probe modules (hasattr(erlang, '__path__'), copy, inspect) see an
 * ordinary module.
 */
#include "pyerl.h"

#include <stdatomic.h>

#define DEFAULT_MAX_DEPTH 64

PyObject *pyerl_erlang_error;
PyObject *pyerl_unknown_function_error;

static PyObject *registered; /* set of str: names registered in Erlang; GIL */
static PyObject *partial;    /* functools.partial; GIL */
static atomic_int max_depth = DEFAULT_MAX_DEPTH;

/* ---- replies --------------------------------------------------------- */

/* Sets erlang.ErlangError from {error, Class, Reason, Text, Stack}. */
static void
raise_erlang_error(ErlNifEnv *env, const ERL_NIF_TERM *reply)
{
    PyObject *text = pyerl_term_to_py(env, reply[3], "text");
    PyObject *klass = text ? pyerl_term_to_py(env, reply[1], "class") : NULL;
    PyObject *stack = klass ? pyerl_term_to_py(env, reply[4], "stacktrace") : NULL;
    PyObject *reason = NULL, *exc = NULL;

    if (stack && !(reason = pyerl_term_to_py(env, reply[2], "reason"))) {
        /* A reason with no Python form (a fun, say) is given as its text. */
        PyErr_Clear();
        reason = Py_NewRef(text);
    }
    if (reason && (exc = PyObject_CallOneArg(pyerl_erlang_error, text)) &&
        PyObject_SetAttrString(exc, "erlang_class", klass) == 0 &&
        PyObject_SetAttrString(exc, "reason", reason) == 0 &&
        PyObject_SetAttrString(exc, "stacktrace", stack) == 0) {
        PyErr_SetObject(pyerl_erlang_error, exc);
    }
    Py_XDECREF(text);
    Py_XDECREF(klass);
    Py_XDECREF(stack);
    Py_XDECREF(reason);
    Py_XDECREF(exc);
}

PyObject *
pyerl_decode_reply(ErlNifEnv *env, ERL_NIF_TERM reply, PyObject *name)
{
    const ERL_NIF_TERM *parts;
    int arity;

    if (!enif_get_tuple(env, reply, &arity, &parts)) {
        arity = 0;
    }
    if (arity == 2 && parts[0] == ATOM(ok)) {
        return pyerl_term_to_py(env, parts[1], "result");
    }
    if (arity == 5 && parts[0] == ATOM(error)) {
        raise_erlang_error(env, parts);
        return NULL;
    }
    if (arity == 2 && parts[0] == ATOM(unknown)) {
        if ((name = pyerl_term_to_py(env, parts[1], "name"))) {
            PyErr_Format(pyerl_unknown_function_error, "no Erlang function is registered as %R",
                         name);
            Py_DECREF(name);
        }
        return NULL;
    }
    if (arity == 2 && parts[0] == ATOM(error) && parts[1] == ATOM(handler_died)) {
        PyErr_Format(pyerl_erlang_error, "the Erlang process running %R died before it answered",
                     name);
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
pyerl_encode_request(PyObject *const *args, Py_ssize_t nargs, const char *usage,
                     struct pyerl_request_terms *out)
{
    struct pyerl_call *call = pyerl_current_call();
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
    out->depth = (call ? call->depth : 0) + 1;
    if (out->depth > limit) {
        PyErr_Format(PyExc_RecursionError,
                     "Python -> Erlang -> Python nesting deeper than %d levels", limit);
        return NULL;
    }
    env = pyerl_worker_env(w);
    if (!(list = PyList_New(nargs - 1))) {
        return NULL;
    }
    for (i = 1; i < nargs; i++) {
        PyList_SET_ITEM(list, i - 1, Py_NewRef(args[i]));
    }
    rc = pyerl_py_to_term(env, args[0], &out->name, "name") &&
         pyerl_py_to_term(env, list, &out->args, "args");
    Py_DECREF(list);
    if (!rc) {
        enif_clear_env(env);
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
    struct pyerl_request_terms req;
    struct pyerl_worker *w;
    struct pyerl_call *call;
    ErlNifEnv *reply_env;
    ERL_NIF_TERM reply;
    int rc;

    (void)module;
    if (!(w = pyerl_encode_request(args, nargs, "erlang.call(name, *args)", &req))) {
        return NULL;
    }
    call = req.call;
    rc = pyerl_worker_call(w, req.caller_env, req.name, req.args, req.depth, call, &reply,
                           &reply_env);
    if (rc == PYERL_WORKER_NOT_RUNNING) {
        pyerl_set_not_running();
        return NULL;
    }
    if (rc == PYERL_WORKER_FAILED) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (rc == PYERL_WORKER_INTERRUPTED) {
        pyerl_call_take_interrupt(call);
        PyErr_SetNone(pyerl_call_interrupted);
        return NULL;
    }
    return pyerl_decode_reply(reply_env, reply, args[0]);
}

/* ---- erlang.send ------------------------------------------------------ */

PyObject *
pyerl_erlang_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyerl_call *call = pyerl_current_call();
    ErlNifEnv *env;
    ERL_NIF_TERM pid_term, message;
    ErlNifPid pid;
    int ok;

    (void)module;
    if (nargs != 2 || Py_TYPE(args[0]) != pyerl_pid_type) {
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
    ok = ok && pyerl_py_to_term(env, args[1], &message, "message");
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
    PyObject *call, *bound;

    if (PyUnicode_Check(name) && PyUnicode_GET_LENGTH(name) > 0 &&
        PyUnicode_READ_CHAR(name, 0) != '_' && PySet_Contains(registered, name) == 1) {
        if (!(call = PyObject_GetAttrString(module, "call"))) {
            return NULL;
        }
        bound = PyObject_CallFunctionObjArgs(partial, call, name, NULL);
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
    (void)module;
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_set_registered(name: str, flag: bool)");
        return NULL;
    }
    if ((PyObject_IsTrue(args[1]) ? PySet_Add(registered, args[0])
                                  : PySet_Discard(registered, args[0])) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* erlang._clear_registered(): py_registry starts with no names. */
PyObject *
pyerl_erlang_clear_registered(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    if (PySet_Clear(registered) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* set_max_depth(N): the deepest Python -> Erlang -> Python nesting. */
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

int
pyerl_callback_init(PyObject *module)
{
    PyObject *functools;

    if (!registered) {
        pyerl_erlang_error = PyErr_NewExceptionWithDoc(
            "erlang.ErlangError",
            "An Erlang function called from Python raised. Attributes:\n"
            "erlang_class (Atom 'error', 'exit' or 'throw'), reason (the\n"
            "reason converted, or its text if it has no Python form) and\n"
            "stacktrace (list of str). str(e) is the reason as Erlang prints it.",
            PyExc_RuntimeError, NULL);
        pyerl_unknown_function_error = PyErr_NewExceptionWithDoc(
            "erlang.UnknownFunctionError",
            "No Erlang function is registered under the name that was called.", PyExc_RuntimeError,
            NULL);
        functools = PyImport_ImportModule("functools");
        partial = functools ? PyObject_GetAttrString(functools, "partial") : NULL;
        Py_XDECREF(functools);
        registered = PySet_New(NULL);
        if (!pyerl_erlang_error || !pyerl_unknown_function_error || !partial || !registered) {
            return -1;
        }
    }
    if (PyModule_AddObjectRef(module, "ErlangError", pyerl_erlang_error) < 0 ||
        PyModule_AddObjectRef(module, "UnknownFunctionError", pyerl_unknown_function_error) < 0) {
        return -1;
    }
    return 0;
}
