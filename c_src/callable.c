/*
 * callable.c: the Python object py:call's Module and Function name.
 *
 * A call names its target by two atoms (or binaries), and most programs
 * call a handful of targets over and over. Making Python strings of the
 * names, importing and looking up each time was a good part of a short
 * call's cost, so for atoms two things are kept:
 *
 *  - the name as an interned str, made once per atom (atoms live as long
 *    as the VM, so an atom's term is a stable key);
 *  - the module the atom named the last time, which is used again as long
 *    as sys.modules still holds that very object under the name. Anything
 *    that changes what the name means (a reload putting a new module in
 *    sys.modules, a test replacing it, `del sys.modules[...]`) shows as a
 *    different object there, and the module is looked up afresh.
 *
 * The function is looked up on the module every time (a dict lookup with
 * the interned name), so rebinding `math.sqrt` is seen at once. The
 * attribute names of py:call_method and py:getattr share the function
 * names' table. Binary
 * names are made into strings each time. A module caught in the middle of
 * its import (a module whose top level calls Erlang, which calls back into
 * it) is not kept: Python's own lookup, used instead, makes another thread
 * wait until the import is done.
 *
 * Each interpreter (context) has tables of its own, guarded by its GIL:
 * names and modules are objects of one interpreter. A lookup that imports
 * may release the GIL (the module's code runs, and may call Erlang), so an entry is
 * never held across one. A module removed from sys.modules stays alive in
 * its entry until another atom takes the slot: at most one per slot.
 */
#include "callable.h"

#include "convert.h"

#include <string.h>

#define SLOTS 512
#define NAME_SIZE 1024

struct name_entry {
    ERL_NIF_TERM atom; /* 0: free */
    PyObject *name;    /* the atom's text, interned; strong */
    PyObject *module;  /* what sys.modules held under it when last imported
                        * by this name, strong; or NULL */
};

/* Module names and function names have a table each, so that a call's
 * two atoms never take each other's slot. */
struct pyerl_names {
    struct name_entry modules[SLOTS];
    struct name_entry functions[SLOTS];
};

struct pyerl_names *
pyerl_names_new(void)
{
    struct pyerl_names *names = enif_alloc(sizeof *names);

    if (names) {
        memset(names, 0, sizeof *names);
    }
    return names;
}

void
pyerl_names_free(struct pyerl_names *names)
{
    struct name_entry *tables[] = {names->modules, names->functions};

    for (size_t t = 0; t < 2; t++) {
        for (size_t i = 0; i < SLOTS; i++) {
            Py_XDECREF(tables[t][i].name);
            Py_XDECREF(tables[t][i].module);
        }
    }
    enif_free(names);
}

static struct name_entry *
slot_of(struct name_entry *table, ERL_NIF_TERM atom)
{
    /* An atom's term is its index in the atom table, shifted and tagged. */
    return &table[(atom >> 6) % SLOTS];
}

/* The name as a str, from its text; new reference or NULL with an
 * exception. */
static PyObject *
name_from_text(ErlNifEnv *env, ERL_NIF_TERM term)
{
    char text[NAME_SIZE];
    Py_ssize_t len = pyerl_name_text(env, term, text, sizeof text);

    if (len <= 0) {
        PyErr_SetString(PyExc_ValueError, "names must be non-empty atoms or binaries");
        return NULL;
    }
    return PyUnicode_DecodeUTF8(text, len, "strict");
}

/* The entry of an atom, made if need be (evicting another atom's); NULL
 * with an exception if its name cannot be made. */
static struct name_entry *
entry_for(struct name_entry *table, ErlNifEnv *env, ERL_NIF_TERM atom)
{
    struct name_entry *entry = slot_of(table, atom);
    PyObject *name, *old_name, *old_module;

    /* Dropping the evicted module may run Python code, which may come back
     * here and take the slot again: hence the loop. */
    while (entry->atom != atom) {
        if (!(name = name_from_text(env, atom))) {
            return NULL;
        }
        PyUnicode_InternInPlace(&name);
        old_name = entry->name;
        old_module = entry->module;
        entry->atom = atom;
        entry->name = name;
        entry->module = NULL;
        Py_XDECREF(old_name);
        Py_XDECREF(old_module);
    }
    return entry;
}

/* Whether the module is still running its top-level code: what Python's
 * own lookup checks before it hands a module to another thread. 1 or 0, or
 * -1 with an exception (other than a missing attribute). */
static int
is_initializing(PyObject *module)
{
    PyObject *spec, *flag;
    int initializing;

    if (!(spec = PyObject_GetAttrString(module, "__spec__"))) {
        goto missing;
    }
    flag = PyObject_GetAttrString(spec, "_initializing");
    Py_DECREF(spec);
    if (!flag) {
        goto missing;
    }
    initializing = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    return initializing;
missing:
    if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
        return -1;
    }
    PyErr_Clear();
    return 0;
}

/* The module named by name (a str), imported if need be; new reference or
 * NULL with an exception. */
static PyObject *
import_by_name(PyObject *name)
{
    PyObject *module = PyImport_GetModule(name);

    if (module == Py_None) {
        /* None in sys.modules blocks the import: the import system says
         * so with ModuleNotFoundError. */
        Py_CLEAR(module);
    }
    if (!module && !PyErr_Occurred()) {
        module = PyImport_Import(name);
    }
    return module;
}

static PyObject *
import_module(struct pyerl_names *names, ErlNifEnv *env, ERL_NIF_TERM term)
{
    struct name_entry *entry;
    PyObject *name, *module, *held;
    int initializing;

    if (!enif_is_atom(env, term)) {
        if (!(name = name_from_text(env, term))) {
            return NULL;
        }
        module = import_by_name(name);
        Py_DECREF(name);
        return module;
    }
    if (!(entry = entry_for(names->modules, env, term))) {
        return NULL;
    }
    held = PyDict_GetItemWithError(PyImport_GetModuleDict(), entry->name);
    if (held && held == entry->module) {
        return Py_NewRef(held);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    name = Py_NewRef(entry->name);
    module = import_by_name(name);
    Py_DECREF(name);
    if (!module || (initializing = is_initializing(module)) == 1) {
        return module;
    }
    if (initializing < 0) {
        Py_DECREF(module);
        return NULL;
    }
    /* The import may have let other threads change the table. */
    if ((entry = entry_for(names->modules, env, term))) {
        Py_XSETREF(entry->module, Py_NewRef(module));
    } else {
        PyErr_Clear();
    }
    return module;
}

/* obj.a.b.c for the dotted path "a.b.c" (a str); new reference or NULL
 * with an exception. */
static PyObject *
get_attribute_path(PyObject *obj, PyObject *path)
{
    PyObject *dot, *parts, *current, *next;
    Py_ssize_t count;

    if (PyUnicode_FindChar(path, '.', 0, PyUnicode_GET_LENGTH(path), 1) < 0) {
        return PyObject_GetAttr(obj, path);
    }
    if (!(dot = PyUnicode_FromString(".")) || !(parts = PyUnicode_Split(path, dot, -1))) {
        Py_XDECREF(dot);
        return NULL;
    }
    Py_DECREF(dot);
    current = Py_NewRef(obj);
    count = PyList_GET_SIZE(parts);
    for (Py_ssize_t i = 0; i < count && current; i++) {
        next = PyObject_GetAttr(current, PyList_GET_ITEM(parts, i));
        Py_SETREF(current, next);
    }
    Py_DECREF(parts);
    return current;
}

PyObject *
pyerl_attribute(struct pyerl_names *names, ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM name_term)
{
    struct name_entry *entry;
    PyObject *name, *attribute;

    if (enif_is_atom(env, name_term)) {
        entry = entry_for(names->functions, env, name_term);
        name = entry ? Py_NewRef(entry->name) : NULL;
    } else {
        name = name_from_text(env, name_term);
    }
    attribute = name ? get_attribute_path(obj, name) : NULL;
    Py_XDECREF(name);
    return attribute;
}

PyObject *
pyerl_callable(struct pyerl_names *names, ErlNifEnv *env, ERL_NIF_TERM module_term,
               ERL_NIF_TERM function_term)
{
    PyObject *module, *function;

    if (!(module = import_module(names, env, module_term))) {
        return NULL;
    }
    function = pyerl_attribute(names, env, module, function_term);
    Py_DECREF(module);
    return function;
}
