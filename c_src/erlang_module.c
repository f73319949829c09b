/*
 * erlang_module.c: the built-in Python module `erlang`: its functions and
 * its definition.
 *
 * - erlang.call, erlang.send and the registered names: callback.c;
 * - erlang.async_call: async.c, and priv/erlang_async.py, the module's
 *   Python half, run in each new module;
 * - erlang.sleep, here: time.sleep, cut short when the call from Erlang is
 *   interrupted;
 * - erlang._unraisablehook, here: sys.unraisablehook, which raises again
 *   an interruption that a callback swallowed;
 * - erlang.ref, here: wraps an object to be handed to Erlang by reference;
 * - erlang._stream_pump and _stream_send: stream.c;
 * - erlang._prime_extension: extensions.c;
 * - erlang.Atom, Pid, Ref, ObjectRef and the exception classes:
 *   module_state.c; erlang.Channel: channel_type.c.
 *
 * The module uses multi-phase initialisation with a module state
 * (module_state.h), as CPython's own modules do: every interpreter that
 * imports it gets a module of its own, with its own types, and it declares
 * that it supports interpreters with their own GIL (Python 3.12+), since
 * nothing it holds is shared between interpreters. boot.c ties the main
 * interpreter's module to its context (the state's ctx); in an interpreter
 * that is no context, Erlang is out of reach (erlang.call raises
 * RuntimeError) but the types work. pyerl_erlang_module_bind does the
 * same for every context boot.c and contexts.c make.
 *
 * A purge and reload of the NIF keeps the interpreter and this module (in
 * sys.modules): the library stays loaded (boot.c), so the functions and
 * types the module points at stay valid.
 */
#include "erlang_module.h"

#include "async.h"
#include "callback.h"
#include "channel_type.h"
#include "context.h"
#include "extensions.h"
#include "interrupt.h"
#include "module_state.h"
#include "process.h"
#include "stream.h"

#include <string.h>
/* Written at load, before any import of the module; read-only afterwards
 * (a reload writes the same path while Python may read it, hence once). */
static char python_half[4096];

int
pyerl_erlang_module_set_python_half(const char *path, size_t size)
{
    if (python_half[0]) {
        return 0;
    }
    if (size >= sizeof python_half || memchr(path, '\0', size)) {
        return -1;
    }
    memcpy(python_half, path, size);
    python_half[size] = '\0';
    return 0;
}

/* erlang.sleep(seconds). */
static PyObject *
erlang_sleep(PyObject *module, PyObject *arg)
{
    struct pyerl_module_state *st = PyModule_GetState(module);
    struct pyerl_inflight *call = pyerl_inflight_current();
    double seconds = call ? PyFloat_AsDouble(arg) : -1.0;

    if (!call || !(seconds >= 0.0)) {
        /* Not in a call made by Erlang, or an argument time.sleep should
         * judge: let it, with its own errors. */
        PyErr_Clear();
        return PyObject_CallOneArg(st->original_sleep, arg);
    }
    if (pyerl_inflight_sleep(call, seconds)) {
        PyErr_SetNone(st->call_interrupted);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* erlang._unraisablehook(unraisable): sys.unraisablehook inside the VM.
 *
 * The watchdog raises CallInterrupted at whatever bytecode the call's
 * thread runs, and that may be inside a weakref callback or a __del__
 * method, where Python cannot let an exception out: it reports it through
 * sys.unraisablehook ("Exception ignored in ...") and goes on, so the
 * call runs on until the watchdog fires again, a second later (a loop of
 * such callbacks took seconds, or never ended). An interruption of the
 * thread's call that arrives here is raised again at once, and not
 * printed; everything else goes to the hook this one replaced. */
static PyObject *
erlang_unraisablehook(PyObject *module, PyObject *unraisable)
{
    struct pyerl_module_state *st = PyModule_GetState(module);
    struct pyerl_inflight *call = pyerl_inflight_current();
    PyObject *exc;
    int ours;

    if (call) {
        if (!(exc = PyObject_GetAttrString(unraisable, "exc_value"))) {
            return NULL;
        }
        ours = PyErr_GivenExceptionMatches(exc, st->call_interrupted);
        Py_DECREF(exc);
        if (ours && pyerl_inflight_rearm(call)) {
            Py_RETURN_NONE;
        }
    }
    return PyObject_CallOneArg(st->original_unraisablehook, unraisable);
}

/* erlang.ref(obj). */
static PyObject *
erlang_ref(PyObject *module, PyObject *obj)
{
    return pyerl_object_ref_new(PyModule_GetState(module), obj);
}

/* erlang._output_target(): the process to whose group leader the output
 * of the call running on this thread goes (an erlang.Pid), or None: no
 * call runs here, or its output goes to the OS process's own stdout and
 * stderr. */
static PyObject *
erlang_output_target(PyObject *module, PyObject *unused)
{
    struct pyerl_module_state *st = PyModule_GetState(module);
    struct pyerl_inflight *call = pyerl_inflight_current();
    ErlNifEnv *env;
    PyObject *pid;

    (void)unused;
    if (!call || !call->frame.has_output) {
        Py_RETURN_NONE;
    }
    if (!(env = enif_alloc_env())) {
        return PyErr_NoMemory();
    }
    pid = pyerl_opaque_from_term(st->pid_type, env, enif_make_pid(env, &call->frame.output));
    enif_free_env(env);
    return pid;
}

static PyMethodDef erlang_methods[] = {
    {"call", (PyCFunction)(void (*)(void))pyerl_erlang_call, METH_FASTCALL,
     "call(name, *args)\n--\n\nCalls the Erlang function registered as name with the "
     "list of args and returns its result. Raises ErlangError if it raises, "
     "UnknownFunctionError if nothing is registered as name."},
    {"send", (PyCFunction)(void (*)(void))pyerl_erlang_send, METH_FASTCALL,
     "send(pid, message)\n--\n\nSends message to the Erlang process pid, like pid ! message."},
    {"__getattr__", pyerl_erlang_getattr, METH_O,
     "Registered Erlang functions as attributes: erlang.name(*args)."},
    {"_set_registered", (PyCFunction)(void (*)(void))pyerl_erlang_set_registered, METH_FASTCALL,
     "Kept up to date by the Erlang registry; not for use."},
    {"_clear_registered", pyerl_erlang_clear_registered, METH_NOARGS,
     "Kept up to date by the Erlang registry; not for use."},
    {"_async_submit", (PyCFunction)(void (*)(void))pyerl_async_submit, METH_FASTCALL,
     "Sends an async call; used by async_call."},
    {"_async_cancel", pyerl_async_cancel, METH_O, "Cancels an async call; used by async_call."},
    {"_async_fd", pyerl_async_fd, METH_NOARGS, "The fd async answers wake; used by async_call."},
    {"_async_take", pyerl_async_take, METH_NOARGS, "Takes async answers; used by async_call."},
    {"_stream_pump", (PyCFunction)(void (*)(void))pyerl_stream_pump, METH_FASTCALL,
     "Sends a stream's items as they come; used by erlang_python.streams."},
    {"_stream_send", (PyCFunction)(void (*)(void))pyerl_stream_send, METH_FASTCALL,
     "Sends one item of a stream; used by erlang_python.streams."},
    {"_prime_extension", (PyCFunction)(void (*)(void))pyerl_erlang_prime_extension, METH_FASTCALL,
     "In a context of its own on Python 3.12: creates an extension module in the main "
     "interpreter before it is imported here (extensions.c)."},
    {"_unraisablehook", erlang_unraisablehook, METH_O,
     "sys.unraisablehook inside the VM: an interruption a callback swallowed is raised again."},
    {"_output_target", erlang_output_target, METH_NOARGS,
     "Where this call's output goes: used by erlang_python.output."},
    {"ref", erlang_ref, METH_O,
     "ref(obj)\n--\n\nHands obj to Erlang by reference: as an argument of erlang.call, in "
     "erlang.send or as a result, Erlang gets a reference to obj itself (what py:call's "
     "return => ref gives), which comes back into Python as obj. Any object will do."},
    {"sleep", erlang_sleep, METH_O,
     "sleep(seconds)\n--\n\nLike time.sleep (which is this function inside the VM), but "
     "a call from Erlang that times out or whose caller dies wakes it at once."},
    {NULL, NULL, 0, NULL},
};

/* Py_mod_exec: fills the state of a new module. */
static int
erlang_exec(PyObject *module)
{
    struct pyerl_module_state *st = PyModule_GetState(module);
    PyObject *time_module;

    if (pyerl_module_state_init(module, st) < 0 || pyerl_channel_type_add(module, st) < 0) {
        return -1;
    }
    /* A module imported again in a context's interpreter (after `del
     * sys.modules['erlang']`) serves that context too. At boot the context
     * is not known yet: boot.c ties it. */
    st->ctx = pyerl_ctx_of_interp(PyInterpreterState_Get());
    /* time.sleep and sys.unraisablehook as they were, for erlang.sleep outside
     * calls and for what erlang._unraisablehook passes on. */
    if (!(time_module = PyImport_ImportModule("time"))) {
        return -1;
    }
    st->original_sleep = PyObject_GetAttrString(time_module, "sleep");
    Py_DECREF(time_module);
    st->original_unraisablehook = Py_XNewRef(PySys_GetObject("unraisablehook"));
    if (!st->original_sleep || !st->original_unraisablehook) {
        return -1;
    }
    return pyerl_async_install(module, python_half);
}

static int
erlang_traverse(PyObject *module, visitproc visit, void *arg)
{
    return pyerl_module_state_traverse(PyModule_GetState(module), visit, arg);
}

static int
erlang_clear(PyObject *module)
{
    pyerl_module_state_clear(PyModule_GetState(module));
    return 0;
}

static void
erlang_free(void *module)
{
    erlang_clear(module);
}

static PyModuleDef_Slot erlang_slots[] = {
    {Py_mod_exec, erlang_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef erlang_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "erlang",
    .m_doc = "Access to the Erlang VM that embeds this interpreter.",
    .m_size = sizeof(struct pyerl_module_state),
    .m_methods = erlang_methods,
    .m_slots = erlang_slots,
    .m_traverse = erlang_traverse,
    .m_clear = erlang_clear,
    .m_free = erlang_free,
};

PyObject *
pyerl_erlang_module_init(void)
{
    return PyModuleDef_Init(&erlang_module_def);
}

/* Makes time.sleep and sys.unraisablehook the module's in the module's
 * interpreter. Returns 0 or -1 with an exception set. */
static int
replace_hooks(PyObject *module)
{
    PyObject *time_module = PyImport_ImportModule("time");
    PyObject *sleep = time_module ? PyObject_GetAttrString(module, "sleep") : NULL;
    PyObject *hook = sleep ? PyObject_GetAttrString(module, "_unraisablehook") : NULL;
    int rc = hook && PyObject_SetAttrString(time_module, "sleep", sleep) == 0 &&
                     PySys_SetObject("unraisablehook", hook) == 0
                 ? 0
                 : -1;

    Py_XDECREF(time_module);
    Py_XDECREF(sleep);
    Py_XDECREF(hook);
    return rc;
}

int
pyerl_erlang_module_bind(struct pyerl_ctx *ctx)
{
    PyObject *module = PyImport_ImportModule("erlang");

    if (!module) {
        return -1;
    }
    ctx->module = module;
    ctx->state = PyModule_GetState(module);
    ctx->state->ctx = ctx;
    if (replace_hooks(module) < 0 || pyerl_install_exit_guard() < 0 ||
        PyDict_SetItemString(ctx->globals, "erlang", module) < 0) {
        return -1;
    }
    return 0;
}
