/*
 * interp.c: the VM's one CPython interpreter, and each OS thread's Python
 * thread state.
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
 * Every OS thread that runs Python for us (dirty schedulers, pool threads)
 * gets one PyThreadState on its first use and keeps it: making one per call
 * would cost more than a short call.
 */
#include "pyerl.h"

#include <dlfcn.h>
#include <stdio.h>

#ifndef PYERL_LIBPYTHON
#error "PYERL_LIBPYTHON must name libpython's soname (set by c_src/Makefile)"
#endif
#ifndef PYERL_PYTHON_EXE
#error "PYERL_PYTHON_EXE must name the Python executable (set by c_src/Makefile)"
#endif

/* Written once by pyerl_interp_start, read-only afterwards. */
static PyInterpreterState *interp;
static PyObject *main_dict;

static _Thread_local PyThreadState *thread_tstate;

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

/* With the GIL held after Py_Initialize: the __main__ namespace, with
 * `erlang` already imported in it, and the erlang module's hooks and its
 * Python half (async_source). */
static int
setup_interpreter(const char *async_source, char *err, size_t err_size)
{
    PyObject *main_module = PyImport_AddModule("__main__"); /* borrowed */
    PyObject *erlang_module = NULL;
    int rc = -1;

    if (!main_module) {
        goto done;
    }
    main_dict = PyModule_GetDict(main_module);
    Py_INCREF(main_dict);
    erlang_module = PyImport_ImportModule("erlang");
    if (!erlang_module || pyerl_install_sleep(erlang_module) < 0 ||
        pyerl_install_exit_guard() < 0 || pyerl_async_install(erlang_module, async_source) < 0 ||
        PyDict_SetItemString(main_dict, "erlang", erlang_module) < 0) {
        goto done;
    }
    rc = 0;
done:
    if (rc < 0) {
        snprintf(err, err_size, "Python started but could not be set up (the error is above)");
        PyErr_Print();
    }
    Py_XDECREF(erlang_module);
    return rc;
}

int
pyerl_interp_start(const char *async_source, char *err, size_t err_size)
{
    if (interp) {
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
    if (setup_interpreter(async_source, err, err_size) < 0) {
        PyEval_SaveThread();
        return -1;
    }
    interp = PyInterpreterState_Get();
    /* The loading scheduler thread keeps its thread state but never runs
     * Python again: normal schedulers do not take the GIL. */
    PyEval_SaveThread();
    return 0;
}

int
pyerl_gil_acquire(void)
{
    if (!thread_tstate) {
        thread_tstate = PyThreadState_New(interp);
        if (!thread_tstate) {
            return -1;
        }
    }
    PyEval_RestoreThread(thread_tstate);
    pyerl_release_dropped();
    return 0;
}

void
pyerl_gil_release(void)
{
    PyEval_SaveThread();
}

void
pyerl_thread_state_drop(void)
{
    if (!thread_tstate) {
        return;
    }
    PyEval_RestoreThread(thread_tstate);
    PyThreadState_Clear(thread_tstate);
    PyThreadState_DeleteCurrent();
    thread_tstate = NULL;
}

PyObject *
pyerl_main_dict(void)
{
    return main_dict;
}
