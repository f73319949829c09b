/*
 * module_state.h: the erlang module's state in one interpreter: its types
 * (Atom, Pid, Ref, ObjectRef; Channel is channel_type.c's), its exception
 * classes, and the context it serves (module_state.c).
 */
#ifndef PYERL_MODULE_STATE_H
#define PYERL_MODULE_STATE_H

#include "common.h"

struct pyerl_ctx;

/* One per interpreter that imported the erlang module (PyModule_GetState).
 * The Python objects are strong references, visited and cleared by the
 * module's m_traverse and m_clear, and are used under that interpreter's
 * GIL. */
struct pyerl_module_state {
    PyTypeObject *atom_type;           /* erlang.Atom */
    PyTypeObject *pid_type;            /* erlang.Pid */
    PyTypeObject *ref_type;            /* erlang.Ref */
    PyTypeObject *object_ref_type;     /* erlang.ObjectRef */
    PyTypeObject *channel_type;        /* erlang.Channel, made by channel_type.c */
    PyTypeObject *channel_wait_type;   /* erlang._ChannelWait, likewise */
    PyObject *call_interrupted;        /* erlang.CallInterrupted */
    PyObject *erlang_error;            /* erlang.ErlangError */
    PyObject *unknown_function_error;  /* erlang.UnknownFunctionError */
    PyObject *channel_closed;          /* erlang.ChannelClosed */
    PyObject *partial;                 /* functools.partial */
    PyObject *original_sleep;          /* time.sleep before erlang.sleep replaced it */
    PyObject *original_unraisablehook; /* sys.unraisablehook before ours replaced it */
    struct pyerl_ctx *ctx;             /* the context this interpreter is; NULL in an
                                        * interpreter that Python code made itself */
};

/* Makes the types and exception classes of a new erlang module and adds the public ones to it.
 * Returns 0, or -1 with an exception set. */
int pyerl_module_state_init(PyObject *module, struct pyerl_module_state *st);

int pyerl_module_state_traverse(struct pyerl_module_state *st, visitproc visit, void *arg);
void pyerl_module_state_clear(struct pyerl_module_state *st);

/* The context that module (an erlang module) serves, or NULL with
 * RuntimeError set when its interpreter is none of the NIF's contexts. */
struct pyerl_ctx *pyerl_module_ctx(PyObject *module);

/* New erlang.Atom from UTF-8 text, or NULL with an exception set. */
PyObject *pyerl_atom_from_utf8(const struct pyerl_module_state *st, const char *text,
                               Py_ssize_t len);

/* Whether obj (a str) is an erlang.Atom, of this interpreter's erlang
 * module or of another instance of it (a module imported again after it
 * was deleted from sys.modules), or of a subclass. */
int pyerl_is_atom(PyObject *obj);

/* Whether obj is an erlang.Pid or erlang.Ref (of any instance of the
 * module), and whether it is a Pid. */
int pyerl_is_opaque(PyObject *obj);
int pyerl_is_pid(PyObject *obj);

/* obj wrapped as an erlang.ObjectRef (obj itself if it is one): a new
 * reference, or NULL with an exception set. */
PyObject *pyerl_object_ref_new(const struct pyerl_module_state *st, PyObject *obj);

/* Whether obj is an erlang.ObjectRef (of any instance of the module), and
 * the object it wraps (borrowed). */
int pyerl_is_object_ref(PyObject *obj);
PyObject *pyerl_object_ref_target(PyObject *wrapper);

/* Wraps a pid or reference term as an object of type (the state's Pid or
 * Ref type): a new reference, or NULL with an exception set. */
PyObject *pyerl_opaque_from_term(PyTypeObject *type, ErlNifEnv *env, ERL_NIF_TERM term);

/* The term wrapped by a Pid or Ref object, made in env. Returns 1, or 0 with
 * an exception set. */
int pyerl_opaque_to_term(ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out);

#endif
