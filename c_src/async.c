/*
 * async.c: asyncio support, the C half of erlang.async_call.
 *
 * The Python half (priv/erlang_async.py, run inside the erlang module when
 * the interpreter starts) keeps the futures and the event-loop side; this
 * file gives it four primitives on the thread's worker (worker.c):
 *
 *   erlang._async_submit(name, *args) -> id   send the request, do not wait
 *   erlang._async_cancel(id)                  tell Erlang it is not awaited
 *   erlang._async_fd() -> fd                  the fd the event loop watches
 *   erlang._async_take() -> (answers, lost)   answers as (id, ok, value)
 *
 * Both submit and _async_fd make the worker's fd the one an interruption of
 * the running call writes to, so a timed-out call wakes its event loop, and
 * _async_take, which the loop then runs, raises the interruption itself.
 *
 * It also runs coroutines for Erlang: when py:call or py:eval produces a
 * coroutine, pyerl_run_coroutine hands it to erlang._run_coroutine.
 */
#include "async.h"

#include "callback.h"
#include "context.h"
#include "erts_access.h"
#include "errors.h"
#include "interrupt.h"
#include "module_state.h"
#include "worker.h"

#include <stdio.h>

#define ASYNC_USAGE "erlang.async_call(name, *args)"

/* Makes the worker's fd the current call's wake fd; see the top comment. */
static void
watch_interrupts(struct pyerl_worker *w)
{
    struct pyerl_inflight *call = pyerl_inflight_current();

    if (call) {
        pyerl_inflight_set_wake_fd(call, pyerl_worker_fd(w));
    }
}

PyObject *
pyerl_async_submit(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyerl_ctx *ctx = pyerl_module_ctx(module);
    struct pyerl_encoded_request req;
    struct pyerl_worker *w;
    uint64_t id;

    if (!ctx || !(w = pyerl_encode_request(ctx, args, nargs, ASYNC_USAGE, &req))) {
        return NULL;
    }
    if (pyerl_worker_async_send(w, req.caller_env, req.name, req.args, &req.frame, &id) < 0) {
        pyerl_worker_end_use(w);
        pyerl_set_not_running();
        return NULL;
    }
    pyerl_worker_end_use(w);
    watch_interrupts(w);
    return PyLong_FromUnsignedLongLong(id);
}

PyObject *
pyerl_async_cancel(PyObject *module, PyObject *id_obj)
{
    struct pyerl_inflight *call = pyerl_inflight_current();
    struct pyerl_worker *w;
    unsigned long long id;

    (void)module;
    if (!(w = pyerl_thread_worker(ASYNC_USAGE))) {
        return NULL;
    }
    id = PyLong_AsUnsignedLongLong(id_obj);
    if (id == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    pyerl_worker_async_cancel(w, call ? call->env : NULL, id);
    Py_RETURN_NONE;
}

PyObject *
pyerl_async_fd(PyObject *module, PyObject *unused)
{
    struct pyerl_worker *w;

    (void)module;
    (void)unused;
    if (!(w = pyerl_thread_worker(ASYNC_USAGE))) {
        return NULL;
    }
    watch_interrupts(w);
    return PyLong_FromLong(pyerl_worker_fd(w));
}

/* One answer {Id, Reply} as (id, True, value) or (id, False, exception). */
static PyObject *
decode_answer(struct pyerl_ctx *ctx, ErlNifEnv *env, ERL_NIF_TERM answer)
{
    const ERL_NIF_TERM *parts;
    ErlNifUInt64 id;
    PyObject *value;
    int arity, ok;

    if (!pyerl_get_tuple(env, answer, &arity, &parts) || arity != 2 ||
        !enif_get_uint64(env, parts[0], &id)) {
        PyErr_SetString(PyExc_SystemError, "malformed async answer");
        return NULL;
    }
    value = pyerl_decode_reply(ctx, env, parts[1], NULL);
    ok = value != NULL;
    if (!ok && !(value = pyerl_take_exception())) {
        return NULL;
    }
    return Py_BuildValue("(KNN)", (unsigned long long)id, PyBool_FromLong(ok), value);
}

PyObject *
pyerl_async_take(PyObject *module, PyObject *unused)
{
    struct pyerl_ctx *ctx = pyerl_module_ctx(module);
    struct pyerl_inflight *call = pyerl_inflight_current();
    struct pyerl_worker *w;
    ErlNifEnv *env;
    ERL_NIF_TERM answers, answer;
    uint64_t lost_upto;
    unsigned length;
    PyObject *list, *item;
    Py_ssize_t i;

    (void)unused;
    if (!ctx || !(w = pyerl_thread_worker(ASYNC_USAGE))) {
        return NULL;
    }
    if (call && pyerl_inflight_claim_due(call)) {
        /* The watchdog woke the loop to stop the call: stop it here rather
         * than wait for the watchdog to get the GIL from a busy loop. */
        PyErr_SetNone(ctx->state->call_interrupted);
        return NULL;
    }
    /* Without the GIL: a large answer may hold the worker's lock while it
     * is copied in. */
    Py_BEGIN_ALLOW_THREADS
    answers = pyerl_worker_async_take(w, &env, &lost_upto);
    Py_END_ALLOW_THREADS
    if (!enif_get_list_length(env, answers, &length)) {
        PyErr_SetString(PyExc_SystemError, "malformed async answer queue");
        return NULL;
    }
    if (!(list = PyList_New(length))) {
        return NULL;
    }
    /* Newest first in the queue: fill from the end for arrival order. */
    for (i = (Py_ssize_t)length - 1; enif_get_list_cell(env, answers, &answer, &answers); i--) {
        if (!(item = decode_answer(ctx, env, answer))) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return Py_BuildValue("(NK)", list, (unsigned long long)lost_upto);
}

PyObject *
pyerl_run_coroutine(struct pyerl_ctx *ctx, PyObject *coroutine)
{
    return PyObject_CallMethod(ctx->module, "_run_coroutine", "O", coroutine);
}

/* The whole file at path, NUL-terminated, in memory from PyMem_Malloc. */
static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long size;

    if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = PyMem_Malloc((size_t)size + 1))) {
        if (fread(text, 1, (size_t)size, f) == (size_t)size) {
            text[size] = '\0';
        } else {
            PyMem_Free(text);
            text = NULL;
        }
    }
    if (f) {
        fclose(f);
    }
    if (!text) {
        PyErr_Format(PyExc_OSError, "cannot read %s", path);
    }
    return text;
}

int
pyerl_async_install(PyObject *erlang_module, const char *path)
{
    PyObject *globals = PyModule_GetDict(erlang_module); /* borrowed */
    PyObject *code = NULL, *result = NULL;
    char *source = read_file(path);

    if (source && (code = Py_CompileString(source, path, Py_file_input))) {
        result = PyEval_EvalCode(code, globals, globals);
    }
    PyMem_Free(source);
    Py_XDECREF(code);
    Py_XDECREF(result);
    return result ? 0 : -1;
}
