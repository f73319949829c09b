/*
 * erlang_module.h: the built-in Python module `erlang` (erlang_module.c).
 */
#ifndef PYERL_ERLANG_MODULE_H
#define PYERL_ERLANG_MODULE_H

#include "common.h"

/* The Python half of the module (priv/erlang_async.py), run in every new
 * erlang module: its path, from load, before the module is first imported.
 * Returns 0, or -1 if the path is too long. */
int pyerl_erlang_module_set_python_half(const char *path, size_t size);

/* The module's init function, for PyImport_AppendInittab: returns the
 * module's definition (multi-phase init); Python makes one module per
 * interpreter that imports it. */
PyObject *pyerl_erlang_module_init(void);

struct pyerl_ctx;

/* Imports the erlang module into ctx's interpreter (whose GIL is held),
 * ties it to ctx (ctx->module, ctx->state), puts it in ctx->globals (set
 * already) and makes the interpreter's time.sleep, sys.unraisablehook and
 * os._exit the VM's. Returns 0 or -1 with an exception set. */
int pyerl_erlang_module_bind(struct pyerl_ctx *ctx);

#endif
