/*
 * errors.c: Python exceptions as Erlang terms.
 *
 * An exception becomes {error, {Type, Message}, Traceback}; py.erl hands the
 * caller {error, {Type, Message}} and keeps the traceback for
 * py:last_traceback/0.
 *
 * Type is an atom only for Python's own exception classes (the ones the
 * builtins module holds under their name, a fixed set), so Python code that
 * makes classes at run time cannot grow the atom table. Every other class is
 * a binary "module.QualifiedName".
 */
#include "errors.h"

#include "atoms.h"
#include "erts_access.h"

#include <string.h>

PyObject *
pyerl_take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *traceback;

    PyErr_Fetch(&type, &value, &traceback);
    if (!type) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &traceback);
    if (value && traceback) {
        PyException_SetTraceback(value, traceback);
    }
    if (!value) {
        value = Py_NewRef(type);
    }
    Py_DECREF(type);
    Py_XDECREF(traceback);
    return value;
#endif
}

static ERL_NIF_TERM
cstr_term(ErlNifEnv *env, const char *text)
{
    ERL_NIF_TERM term;
    size_t len = strlen(text);
    unsigned char *data = pyerl_make_new_binary(env, len, &term);

    if (!data) {
        return enif_make_list(env, 0);
    }
    memcpy(data, text, len);
    return term;
}

/* A binary holding obj's text (str(obj) unless obj is a str), UTF-8 with
 * unencodable characters escaped; <<>> if there is no text to be had. */
static ERL_NIF_TERM
text_term(ErlNifEnv *env, PyObject *obj)
{
    PyObject *text = PyUnicode_Check(obj) ? Py_NewRef(obj) : PyObject_Str(obj);
    PyObject *utf8 = text ? PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace") : NULL;
    ERL_NIF_TERM term;
    unsigned char *data;

    if (utf8 && (data = pyerl_make_new_binary(env, (size_t)PyBytes_GET_SIZE(utf8), &term))) {
        memcpy(data, PyBytes_AS_STRING(utf8), (size_t)PyBytes_GET_SIZE(utf8));
    } else {
        term = cstr_term(env, "");
    }
    PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(utf8);
    return term;
}

static int
is_builtin_class(PyTypeObject *type)
{
    PyObject *builtins = PyEval_GetBuiltins(); /* borrowed */
    PyObject *found;

    if (!builtins || strchr(type->tp_name, '.')) {
        return 0;
    }
    found = PyDict_GetItemString(builtins, type->tp_name); /* borrowed */
    return found == (PyObject *)type;
}

static ERL_NIF_TERM
type_term(ErlNifEnv *env, PyTypeObject *type)
{
    PyObject *module, *qualname, *name;
    ERL_NIF_TERM term;

    if (is_builtin_class(type)) {
        return enif_make_atom(env, type->tp_name);
    }
    module = PyObject_GetAttrString((PyObject *)type, "__module__");
    qualname = PyObject_GetAttrString((PyObject *)type, "__qualname__");
    name = module && qualname ? PyUnicode_FromFormat("%S.%S", module, qualname) : NULL;
    PyErr_Clear();
    term = name ? text_term(env, name) : cstr_term(env, type->tp_name);
    Py_XDECREF(module);
    Py_XDECREF(qualname);
    Py_XDECREF(name);
    return term;
}

static ERL_NIF_TERM
traceback_term(ErlNifEnv *env, PyObject *exc)
{
    PyObject *module = PyImport_ImportModule("traceback"); /* the interpreter's own */
    PyObject *lines = NULL, *empty = NULL, *text = NULL;
    ERL_NIF_TERM term;

    if (module && (lines = PyObject_CallMethod(module, "format_exception", "O", exc)) &&
        (empty = PyUnicode_FromString(""))) {
        text = PyUnicode_Join(empty, lines);
    }
    PyErr_Clear();
    term = text ? text_term(env, text) : cstr_term(env, "");
    Py_XDECREF(module);
    Py_XDECREF(lines);
    Py_XDECREF(empty);
    Py_XDECREF(text);
    return term;
}

ERL_NIF_TERM
pyerl_error_from_python(ErlNifEnv *env)
{
    PyObject *exc = pyerl_take_exception();
    ERL_NIF_TERM type, message, traceback;

    if (!exc) {
        return enif_make_tuple3(
            env, ATOM(error),
            enif_make_tuple2(env, enif_make_atom(env, "SystemError"),
                             cstr_term(env, "an error was reported without an exception")),
            cstr_term(env, ""));
    }
    type = type_term(env, Py_TYPE(exc));
    message = text_term(env, exc);
    traceback = traceback_term(env, exc);
    Py_DECREF(exc);
    return enif_make_tuple3(env, ATOM(error), enif_make_tuple2(env, type, message), traceback);
}

ERL_NIF_TERM
pyerl_badarg(ErlNifEnv *env, const char *what)
{
    return enif_make_tuple2(env, ATOM(error),
                            enif_make_tuple2(env, ATOM(badarg), enif_make_atom(env, what)));
}
