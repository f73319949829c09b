/*
 * async.h: asyncio support, the C half of erlang.async_call, and
 * coroutines run for Erlang (async.c).
 */
#ifndef PYERL_ASYNC_H
#define PYERL_ASYNC_H

#include "common.h"

struct pyerl_ctx;

/* The erlang module's functions (erlang_module.c has their table). */
PyObject *pyerl_async_submit(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *pyerl_async_cancel(PyObject *module, PyObject *id);
PyObject *pyerl_async_fd(PyObject *module, PyObject *unused);
PyObject *pyerl_async_take(PyObject *module, PyObject *unused);

/* Runs a coroutine to completion in a new event loop (the erlang module's
 * _run_coroutine) and returns its result; NULL with an exception set.
 * ctx's GIL held. */
PyObject *pyerl_run_coroutine(struct pyerl_ctx *ctx, PyObject *coroutine);

/* Runs the Python file at path (the module's Python half) in the erlang
 * module's namespace. Returns 0, or -1 with an exception set. GIL held. */
int pyerl_async_install(PyObject *erlang_module, const char *path);

#endif
