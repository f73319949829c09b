/*
 * boot.c: the VM's CPython, started once, and the main interpreter's
 * context.
 *
 * The interpreter starts when the NIF library first loads and is never
 * finalised: most C extension modules (numpy among them) cannot be set up
 * twice in one process. A purge and reload of py_nif therefore finds Python
 * running and reuses it, and the library pins itself in memory
 * (RTLD_NODELETE) because Python keeps pointers to our functions and types.
 *
 * libpython is promoted to global symbol scope: the BEAM opens NIF libraries
 * with local scope, and extension modules expect the interpreter's symbols to
 * be global because they do not link libpython themselves.
 *
 * Python's signal handlers stay off (the BEAM owns the process's signals) and
 * standard streams are unbuffered, so output from Python reaches the VM's
 * terminal when it is written, interleaved correctly with Erlang's.
 *
 * What Python may do to the process it shares with the VM (signals, fork,
 * os._exit) is set up by process.c.
 *
 * The main context (context.h) gathers what belongs to the main * interpreter: its __main__
 * namespace, its erlang module (imported into
 * __main__, with time.sleep and sys.unraisablehook replaced by the
 * module's), the lookup tables of
 * py:call and the compiled-code cache.
 */
#include "boot.h"

#include "callable.h"
#include "code_cache.h"
#include "context.h"
#include "erlang_module.h"
#include "process.h"

#include <dlfcn.h>
#include <stdio.h>

#ifndef PYERL_LIBPYTHON
#error "PYERL_LIBPYTHON must name libpython's soname (set by c_src/Makefile)"
#endif
#ifndef PYERL_PYTHON_EXE
#error "PYERL_PYTHON_EXE must name the Python executable (set by c_src/Makefile)"
#endif

static int
pin_libraries(char *err, size_t err_size)
{
    Dl_info self;

    if (!dlopen(PYERL_LIBPYTHON, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) {
        snprintf(err, err_size, "cannot make %s global: %s", PYERL_LIBPYTHON, dlerror());
        return -1;
    }
    if (!dladdr((void *)&pin_libraries, &self) ||
        !dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD)) {
        snprintf(err, err_size, "cannot pin the NIF library: %s", dlerror());
        return -1;
    }
    return 0;
}

static int
init_python(char *err, size_t err_size)
{
    PyConfig config;
    PyStatus status;
    char *argv[] = {""};

    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    config.buffered_stdio = 0;
    status = PyConfig_SetBytesString(&config, &config.program_name, PYERL_PYTHON_EXE);
    if (!PyStatus_Exception(status)) {
        status = PyConfig_SetBytesArgv(&config, 1, argv);
    }
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        snprintf(err, err_size, "Python did not start: %s", status.err_msg ? status.err_msg : "?");
        return -1;
    }
    return 0;
}

/* With the GIL held after Py_Initialize: the main context, with its erlang
 * module's hooks. */
static int
make_main_context(char *err, size_t err_size)
{
    PyObject *main_module = PyImport_AddModule("__main__"); /* borrowed */
    struct pyerl_ctx *ctx = pyerl_ctx_new(PyInterpreterState_Get());

    if (!ctx || !(ctx->names = pyerl_names_new()) || !(ctx->code = pyerl_code_cache_new())) {
        snprintf(err, err_size, "out of memory for the main context");
        return -1;
    }
    if (!main_module || !(ctx->registered = PySet_New(NULL))) {
        goto failed;
    }
    ctx->globals = Py_NewRef(PyModule_GetDict(main_module));
    if (pyerl_erlang_module_bind(ctx) < 0) {
        goto failed;
    }
    pyerl_set_main_ctx(ctx);
    return 0;
failed:
    snprintf(err, err_size, "Python started but could not be set up (the error is above)");
    PyErr_Print();
    return -1;
}

int
pyerl_boot(char *err, size_t err_size)
{
    int rc;

    if (pyerl_main_ctx()) {
        return 0;
    }
    if (pin_libraries(err, err_size) < 0) {
        return -1;
    }
    if (PyImport_AppendInittab("erlang", pyerl_erlang_module_init) < 0) {
        snprintf(err, err_size, "cannot register the erlang module");
        return -1;
    }
    if (pyerl_process_setup() < 0) {
        snprintf(err, err_size, "cannot watch for forks");
        return -1;
    }
    if (init_python(err, err_size) < 0) {
        return -1;
    }
    rc = make_main_context(err, err_size);
    /* The loading scheduler thread keeps its thread state but never runs
     * Python again: normal schedulers do not take the GIL. */
    PyEval_SaveThread();
    return rc;
}
