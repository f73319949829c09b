/*
 * erlang_module.c: the built-in Python module `erlang` and its types.
 *
 *   erlang.Atom            a str subclass; converts back to the same atom
 *   erlang.Pid, erlang.Ref opaque handles on a pid or reference
 *   erlang.CallInterrupted raised inside Python when the Erlang side gave up
 *                          on the call (timeout, caller died)
 *   erlang.sleep           time.sleep that such an interruption cuts short
 *   erlang.call, erlang.send and registered names: see callback.c
 *   erlang.async_call      see async.c and priv/erlang_async.py
 *
 * Pid and Ref keep the term in external format (a bytes object) rather than
 * the term itself: a remote pid or any reference lives on a heap, and keeping
 * one would need an ErlNifEnv per object. The bytes are compared and hashed,
 * so equal pids are equal Python objects, and decoded back when converted.
 *
 * The types are created once per process and kept for its life: a purge and
 * reload of the NIF keeps the interpreter (interp.c), and objects of the old
 * types must keep converting.
 */
#include "pyerl.h"

PyTypeObject *pyerl_atom_type;
PyTypeObject *pyerl_pid_type;
PyTypeObject *pyerl_ref_type;
PyObject *pyerl_call_interrupted;

/* ---- Atom ------------------------------------------------------------ */

static PyObject *
atom_repr(PyObject *self)
{
    PyObject *text = PyUnicode_Type.tp_repr(self); /* new reference */
    PyObject *repr;

    if (!text) {
        return NULL;
    }
    repr = PyUnicode_FromFormat("Atom(%U)", text);
    Py_DECREF(text);
    return repr;
}

static PyType_Slot atom_slots[] = {
    {Py_tp_repr, atom_repr},
    {Py_tp_doc, "An Erlang atom: a str that converts back to the same atom.\n\n"
                "Atom('ok') == 'ok' is True; only an Atom becomes an atom when a\n"
                "value goes back to Erlang, a plain str becomes a binary."},
    {0, NULL},
};

static PyType_Spec atom_spec = {
    .name = "erlang.Atom",
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = atom_slots,
};

PyObject *
pyerl_atom_from_utf8(const char *text, Py_ssize_t len)
{
    PyObject *str = PyUnicode_DecodeUTF8(text, len, "strict");
    PyObject *atom;

    if (!str) {
        return NULL;
    }
    atom = PyObject_CallOneArg((PyObject *)pyerl_atom_type, str);
    Py_DECREF(str);
    return atom;
}

/* ---- Pid and Ref ----------------------------------------------------- */

struct opaque {
    PyObject_HEAD PyObject *ext; /* bytes: the term in external format; owned */
};

static void
opaque_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);

    Py_XDECREF(((struct opaque *)self)->ext);
    type->tp_free(self);
    Py_DECREF(type);
}

static Py_hash_t
opaque_hash(PyObject *self)
{
    return PyObject_Hash(((struct opaque *)self)->ext);
}

static PyObject *
opaque_richcompare(PyObject *self, PyObject *other, int op)
{
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(self) != Py_TYPE(other)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    return PyObject_RichCompare(((struct opaque *)self)->ext, ((struct opaque *)other)->ext, op);
}

static PyObject *
opaque_repr(PyObject *self)
{
    const char *kind = Py_TYPE(self) == pyerl_pid_type ? "Pid" : "Ref";
    ErlNifEnv *env = enif_alloc_env();
    ERL_NIF_TERM term;
    char text[128];
    PyObject *repr = NULL;

    if (!env) {
        return PyErr_NoMemory();
    }
    if (pyerl_opaque_to_term(env, self, &term)) {
        enif_snprintf(text, sizeof text, "%T", term);
        repr = PyUnicode_FromFormat("%s(%s)", kind, text);
    }
    enif_free_env(env);
    return repr;
}

static PyType_Slot pid_slots[] = {
    {Py_tp_dealloc, opaque_dealloc},
    {Py_tp_hash, opaque_hash},
    {Py_tp_richcompare, opaque_richcompare},
    {Py_tp_repr, opaque_repr},
    {Py_tp_doc, "An Erlang process identifier, as received from Erlang."},
    {0, NULL},
};

static PyType_Slot ref_slots[] = {
    {Py_tp_dealloc, opaque_dealloc},
    {Py_tp_hash, opaque_hash},
    {Py_tp_richcompare, opaque_richcompare},
    {Py_tp_repr, opaque_repr},
    {Py_tp_doc, "An Erlang reference, as received from Erlang."},
    {0, NULL},
};

static PyType_Spec pid_spec = {
    .name = "erlang.Pid",
    .basicsize = sizeof(struct opaque),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = pid_slots,
};

static PyType_Spec ref_spec = {
    .name = "erlang.Ref",
    .basicsize = sizeof(struct opaque),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = ref_slots,
};

PyObject *
pyerl_opaque_from_term(PyTypeObject *type, ErlNifEnv *env, ERL_NIF_TERM term)
{
    ErlNifBinary bin;
    struct opaque *obj;
    PyObject *ext;

    if (!enif_term_to_binary(env, term, &bin)) {
        return PyErr_NoMemory();
    }
    ext = PyBytes_FromStringAndSize((const char *)bin.data, (Py_ssize_t)bin.size);
    enif_release_binary(&bin);
    if (!ext) {
        return NULL;
    }
    obj = (struct opaque *)type->tp_alloc(type, 0);
    if (!obj) {
        Py_DECREF(ext);
        return NULL;
    }
    obj->ext = ext;
    return (PyObject *)obj;
}

int
pyerl_opaque_to_term(ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out)
{
    PyObject *ext = ((struct opaque *)obj)->ext;

    if (!enif_binary_to_term(env, (const unsigned char *)PyBytes_AS_STRING(ext),
                             (size_t)PyBytes_GET_SIZE(ext), out, 0)) {
        PyErr_Format(PyExc_ValueError, "%s refers to a term this VM cannot decode",
                     Py_TYPE(obj)->tp_name);
        return 0;
    }
    return 1;
}

/* ---- the module ------------------------------------------------------ */

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
    {"sleep", pyerl_sleep, METH_O,
     "sleep(seconds)\n--\n\nLike time.sleep (which is this function inside the VM), but "
     "a call from Erlang that times out or whose caller dies wakes it at once."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef erlang_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "erlang",
    .m_doc = "Access to the Erlang VM that embeds this interpreter.",
    .m_size = -1,
    .m_methods = erlang_methods,
};

static int
create_types(void)
{
    if (pyerl_atom_type) {
        return 0;
    }
    pyerl_atom_type =
        (PyTypeObject *)PyType_FromSpecWithBases(&atom_spec, (PyObject *)&PyUnicode_Type);
    pyerl_pid_type = (PyTypeObject *)PyType_FromSpec(&pid_spec);
    pyerl_ref_type = (PyTypeObject *)PyType_FromSpec(&ref_spec);
    pyerl_call_interrupted = PyErr_NewExceptionWithDoc(
        "erlang.CallInterrupted",
        "The Erlang side stopped waiting for this call: its timeout expired or\n"
        "the calling process died. Derives from KeyboardInterrupt, as an\n"
        "interruption from outside: `except Exception` does not swallow it,\n"
        "and asyncio lets it end the loop at once rather than logging it.",
        PyExc_KeyboardInterrupt, NULL);
    if (!pyerl_atom_type || !pyerl_pid_type || !pyerl_ref_type || !pyerl_call_interrupted) {
        Py_CLEAR(pyerl_atom_type);
        Py_CLEAR(pyerl_pid_type);
        Py_CLEAR(pyerl_ref_type);
        Py_CLEAR(pyerl_call_interrupted);
        return -1;
    }
    return 0;
}

PyObject *
pyerl_erlang_module_init(void)
{
    PyObject *module;

    if (create_types() < 0) {
        return NULL;
    }
    module = PyModule_Create(&erlang_module_def);
    if (!module) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Atom", (PyObject *)pyerl_atom_type) < 0 ||
        PyModule_AddObjectRef(module, "Pid", (PyObject *)pyerl_pid_type) < 0 ||
        PyModule_AddObjectRef(module, "Ref", (PyObject *)pyerl_ref_type) < 0 ||
        PyModule_AddObjectRef(module, "CallInterrupted", pyerl_call_interrupted) < 0 ||
        pyerl_callback_init(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
