/*
 * errors.h: Python exceptions as Erlang terms (errors.c).
 */
#ifndef PYERL_ERRORS_H
#define PYERL_ERRORS_H

#include "common.h"

/* Takes the current Python exception and returns
 * {error, {Type, Message}, Traceback}; clears the exception. GIL held. */
ERL_NIF_TERM pyerl_error_from_python(ErlNifEnv *env);

/* The pending exception, normalised, with its traceback attached: a new
 * reference, or NULL if none is pending. Clears the error indicator. GIL
 * held. */
PyObject *pyerl_take_exception(void);

/* {error, {badarg, Detail}}: a caller's mistake found by the NIF. No GIL
 * needed. */
ERL_NIF_TERM pyerl_badarg(ErlNifEnv *env, const char *what);

#endif
