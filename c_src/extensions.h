/*
 * extensions.h: extension modules imported in own contexts under Python
 * 3.12 (extensions.c).
 */
#ifndef PYERL_EXTENSIONS_H
#define PYERL_EXTENSIONS_H

#include "common.h"

/* erlang._prime_extension(name, origin): in an own context on Python
 * 3.12, creates the extension module at origin in the main interpreter
 * first, so that CPython refuses a single-phase one without running its
 * init function here. Elsewhere it does nothing. */
PyObject *pyerl_erlang_prime_extension(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

#endif
