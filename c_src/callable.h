/*
 * callable.h: the Python object py:call's Module and Function name, and
 * the attributes py:call_method and py:getattr name (callable.c).
 */
#ifndef PYERL_CALLABLE_H
#define PYERL_CALLABLE_H

#include "common.h"

/* The names and modules one interpreter has looked up for py:call. */
struct pyerl_names;

/* New, empty tables; NULL if out of memory. */
struct pyerl_names *pyerl_names_new(void);

/* Drops the tables and what they hold. The GIL of their interpreter held. */
void pyerl_names_free(struct pyerl_names *names);

/* The attribute (a dotted path) of obj that name (an atom or binary)
 * names. New reference or NULL with an exception. The GIL of the tables'
 * interpreter held. */
PyObject *pyerl_attribute(struct pyerl_names *names, ErlNifEnv *env, PyObject *obj,
                          ERL_NIF_TERM name);

/* The attribute (a dotted path) Function of module Module, importing it
 * if need be; both are atoms or binaries. New reference or NULL with an
 * exception. The GIL of the tables' interpreter held. */
PyObject *pyerl_callable(struct pyerl_names *names, ErlNifEnv *env, ERL_NIF_TERM module,
                         ERL_NIF_TERM function);

#endif
