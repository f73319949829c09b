/* * module_state.c: what the erlang module holds in each interpreter that
 * imports it: its types and its exception classes.
 *
 *   erlang.Atom            a str subclass; converts back to the same atom
 *   erlang.Pid, erlang.Ref opaque handles on a pid or reference
 *   erlang.ObjectRef       what erlang.ref(obj) makes: obj, to be handed to
 *                          Erlang by reference (objref.c) instead of converted
 *   erlang.CallInterrupted raised inside Python when the Erlang side gave up
 *                          on the call (timeout, caller died)
 *   erlang.ErlangError     an Erlang function called from Python raised
 *   erlang.UnknownFunctionError  nothing is registered under the name
 *
 * The types are immutable heap types made from specs with the module
 * (PyType_FromModuleAndSpec), one set per interpreter, as CPython's own
 * modules make theirs: an own-GIL subinterpreter must share no object with
 * another. The module's methods are in erlang_module.c.
 *
 * Objects are recognised by the C functions their types are made of, not
 * by identity with one module's types: a module imported again (after
 * `del sys.modules['erlang']`) makes new types, and atoms, pids and
 * references of either must convert the same.
 *
 * Pid and Ref keep the term in external format (a bytes object) rather than
 * the term itself: a remote pid or any reference lives on a heap, and keeping
 * one would need an ErlNifEnv per object. The bytes are compared and hashed,
 * so equal pids are equal Python objects, and decoded back when converted.
 */
#include "module_state.h"

#include <string.h>

/* Tags of the external term format. */
#define EXT_NEW_PID 88
#define EXT_PID 103

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
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = atom_slots,
};

PyObject *
pyerl_atom_from_utf8(const struct pyerl_module_state *st, const char *text, Py_ssize_t len)
{
    PyObject *str = PyUnicode_DecodeUTF8(text, len, "strict");
    PyObject *atom;

    if (!str) {
        return NULL;
    }
    atom = PyObject_CallOneArg((PyObject *)st->atom_type, str);
    Py_DECREF(str);
    return atom;
}

int
pyerl_is_atom(PyObject *obj)
{
    for (PyTypeObject *type = Py_TYPE(obj); type; type = type->tp_base) {
        if (type->tp_repr == atom_repr) {
            return 1;
        }
    }
    return 0;
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
    const char *name = Py_TYPE(self)->tp_name, *dot = strrchr(name, '.');
    ErlNifEnv *env = enif_alloc_env();
    ERL_NIF_TERM term;
    char text[128];
    PyObject *repr = NULL;

    if (!env) {
        return PyErr_NoMemory();
    }
    if (pyerl_opaque_to_term(env, self, &term)) {
        enif_snprintf(text, sizeof text, "%T", term);
        repr = PyUnicode_FromFormat("%s(%s)", dot ? dot + 1 : name, text);
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
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = pid_slots,
};

static PyType_Spec ref_spec = {
    .name = "erlang.Ref",
    .basicsize = sizeof(struct opaque),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
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
pyerl_is_opaque(PyObject *obj)
{
    return Py_TYPE(obj)->tp_dealloc == opaque_dealloc;
}

int
pyerl_is_pid(PyObject *obj)
{
    const char *ext;

    if (!pyerl_is_opaque(obj)) {
        return 0;
    }
    /* The tag after the version byte. */
    ext = PyBytes_AS_STRING(((struct opaque *)obj)->ext);
    return PyBytes_GET_SIZE(((struct opaque *)obj)->ext) > 1 &&
           (ext[1] == EXT_NEW_PID || ext[1] == EXT_PID);
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

/* ---- ObjectRef ------------------------------------------------------- */

struct object_ref {
    PyObject_HEAD PyObject *obj; /* owned */
};

static void
object_ref_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    Py_CLEAR(((struct object_ref *)self)->obj);
    type->tp_free(self);
    Py_DECREF(type);
}

static int
object_ref_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((struct object_ref *)self)->obj);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int
object_ref_clear(PyObject *self)
{
    Py_CLEAR(((struct object_ref *)self)->obj);
    return 0;
}

static PyObject *
object_ref_repr(PyObject *self)
{
    PyObject *obj = ((struct object_ref *)self)->obj;

    return obj ? PyUnicode_FromFormat("erlang.ref(%R)", obj) : PyUnicode_FromString("erlang.ref()");
}

static PyObject *
object_ref_get_obj(PyObject *self, void *closure)
{
    PyObject *obj = ((struct object_ref *)self)->obj;

    (void)closure;
    return Py_NewRef(obj ? obj : Py_None);
}

static PyGetSetDef object_ref_getset[] = {
    {"obj", object_ref_get_obj, NULL, "The object Erlang gets a reference to.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot object_ref_slots[] = {
    {Py_tp_dealloc, object_ref_dealloc},
    {Py_tp_traverse, object_ref_traverse},
    {Py_tp_clear, object_ref_clear},
    {Py_tp_repr, object_ref_repr},
    {Py_tp_getset, object_ref_getset},
    {Py_tp_doc, "A Python object handed to Erlang by reference, made by erlang.ref(obj).\n\n"
                "Erlang receives a reference to obj itself, not a converted value."},
    {0, NULL},
};

static PyType_Spec object_ref_spec = {
    .name = "erlang.ObjectRef",
    .basicsize = sizeof(struct object_ref),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = object_ref_slots,
};

PyObject *
pyerl_object_ref_new(const struct pyerl_module_state *st, PyObject *obj)
{
    struct object_ref *wrapper;

    if (pyerl_is_object_ref(obj)) {
        return Py_NewRef(obj);
    }
    if (!(wrapper = PyObject_GC_New(struct object_ref, st->object_ref_type))) {
        return NULL;
    }
    wrapper->obj = Py_NewRef(obj);
    PyObject_GC_Track(wrapper);
    return (PyObject *)wrapper;
}

int
pyerl_is_object_ref(PyObject *obj)
{
    return Py_TYPE(obj)->tp_dealloc == object_ref_dealloc;
}

PyObject *
pyerl_object_ref_target(PyObject *wrapper)
{
    return ((struct object_ref *)wrapper)->obj;
}

/* ---- the state -------------------------------------------------------- */

struct pyerl_ctx *
pyerl_module_ctx(PyObject *module)
{
    struct pyerl_module_state *st = PyModule_GetState(module);

    if (!st || !st->ctx) {
        PyErr_SetString(
            PyExc_RuntimeError,
            "this interpreter was not started by erlang_python: Erlang is out of reach");
        return NULL;
    }
    return st->ctx;
}

int
pyerl_module_state_init(PyObject *module, struct pyerl_module_state *st)
{
    PyObject *functools;

    st->atom_type =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &atom_spec, (PyObject *)&PyUnicode_Type);
    st->pid_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &pid_spec, NULL);
    st->ref_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &ref_spec, NULL);
    st->object_ref_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &object_ref_spec, NULL);
    st->call_interrupted = PyErr_NewExceptionWithDoc(
        "erlang.CallInterrupted",
        "The Erlang side stopped waiting for this call: its timeout expired or\n"
        "the calling process died. Derives from KeyboardInterrupt, as an\n"
        "interruption from outside: `except Exception` does not swallow it,\n"
        "and asyncio lets it end the loop at once rather than logging it.",
        PyExc_KeyboardInterrupt, NULL);
    st->erlang_error = PyErr_NewExceptionWithDoc(
        "erlang.ErlangError",
        "An Erlang function called from Python raised. Attributes:\n"
        "erlang_class (Atom 'error', 'exit' or 'throw'), reason (the\n"
        "reason converted, or its text if it has no Python form) and\n"
        "stacktrace (list of str). str(e) is the reason as Erlang prints it.",
        PyExc_RuntimeError, NULL);
    st->unknown_function_error = PyErr_NewExceptionWithDoc(
        "erlang.UnknownFunctionError",
        "No Erlang function is registered under the name that was called.", PyExc_RuntimeError,
        NULL);
    st->channel_closed = PyErr_NewExceptionWithDoc(
        "erlang.ChannelClosed",
        "The channel is closed and every message it held has been received.", PyExc_Exception,
        NULL);
    functools = PyImport_ImportModule("functools");
    st->partial = functools ? PyObject_GetAttrString(functools, "partial") : NULL;
    Py_XDECREF(functools);
    if (!st->atom_type || !st->pid_type || !st->ref_type || !st->object_ref_type ||
        !st->call_interrupted || !st->erlang_error || !st->unknown_function_error ||
        !st->channel_closed || !st->partial) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "Atom", (PyObject *)st->atom_type) < 0 ||
        PyModule_AddObjectRef(module, "Pid", (PyObject *)st->pid_type) < 0 ||
        PyModule_AddObjectRef(module, "Ref", (PyObject *)st->ref_type) < 0 ||
        PyModule_AddObjectRef(module, "ObjectRef", (PyObject *)st->object_ref_type) < 0 ||
        PyModule_AddObjectRef(module, "CallInterrupted", st->call_interrupted) < 0 ||
        PyModule_AddObjectRef(module, "ErlangError", st->erlang_error) < 0 ||
        PyModule_AddObjectRef(module, "UnknownFunctionError", st->unknown_function_error) < 0 ||
        PyModule_AddObjectRef(module, "ChannelClosed", st->channel_closed) < 0) {
        return -1;
    }
    return 0;
}

int
pyerl_module_state_traverse(struct pyerl_module_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->atom_type);
    Py_VISIT(st->pid_type);
    Py_VISIT(st->ref_type);
    Py_VISIT(st->object_ref_type);
    Py_VISIT(st->channel_type);
    Py_VISIT(st->channel_wait_type);
    Py_VISIT(st->call_interrupted);
    Py_VISIT(st->erlang_error);
    Py_VISIT(st->unknown_function_error);
    Py_VISIT(st->channel_closed);
    Py_VISIT(st->partial);
    Py_VISIT(st->original_sleep);
    Py_VISIT(st->original_unraisablehook);
    return 0;
}

void
pyerl_module_state_clear(struct pyerl_module_state *st)
{
    Py_CLEAR(st->atom_type);
    Py_CLEAR(st->pid_type);
    Py_CLEAR(st->ref_type);
    Py_CLEAR(st->object_ref_type);
    Py_CLEAR(st->channel_type);
    Py_CLEAR(st->channel_wait_type);
    Py_CLEAR(st->call_interrupted);
    Py_CLEAR(st->erlang_error);
    Py_CLEAR(st->unknown_function_error);
    Py_CLEAR(st->channel_closed);
    Py_CLEAR(st->partial);
    Py_CLEAR(st->original_sleep);
    Py_CLEAR(st->original_unraisablehook);
}
