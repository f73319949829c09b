/*
 * extensions.c: extension modules imported in an own context (a
 * subinterpreter with its own GIL) under Python 3.12.
 *
 * An own context refuses extension modules that use single-phase
 * initialisation (numpy, most older C extensions) with an ImportError.
 * But CPython 3.12 runs the module's init function in the subinterpreter
 * before it checks, and what the init function sets up for the whole
 * process is then tied to an interpreter that must not own it: measured
 * here, importing such a module in the main interpreter afterwards aborts
 * the VM ("double free or corruption"; CPython issue gh-117953, fixed in
 * 3.13 by running init functions in the main interpreter first).
 *
 * The same fix, from outside: in an own context under 3.12,
 * priv/erlang_async.py makes every extension module's import call
 * erlang._prime_extension first, which creates the module in the main
 * interpreter (its init function runs there, and CPython puts a
 * single-phase one in the main interpreter's sys.modules), unless the
 * main interpreter has it already. The import in the subinterpreter then finds the module known,
 * and a single-phase one is refused without its init function running
 * again. The thread lets go of the subinterpreter's GIL before it takes
 * the main one, and a thread the subinterpreter started, which has no
 * state for the main interpreter, gets one for the moment.
 */
#include "extensions.h"

#include "context.h"
#include "module_state.h"

#include <string.h>

#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
#define PRIMING 1
#endif

#ifdef PRIMING

/* The main GIL held: creates the module at origin, unless sys.modules has
 * name. Failures are left to the import that follows. */
static void
create_in_main(const char *name, const char *origin)
{
    PyObject *modules = PyImport_GetModuleDict(); /* borrowed */
    PyObject *util = NULL, *imp = NULL, *spec = NULL, *created = NULL;

    if (PyMapping_HasKeyString(modules, name)) {
        return;
    }
    if ((util = PyImport_ImportModule("importlib.util")) && (imp = PyImport_ImportModule("_imp")) &&
        (spec = PyObject_CallMethod(util, "spec_from_file_location", "ss", name, origin)) &&
        spec != Py_None) {
        created = PyObject_CallMethod(imp, "create_dynamic", "O", spec);
    }
    Py_XDECREF(created);
    Py_XDECREF(spec);
    Py_XDECREF(imp);
    Py_XDECREF(util);
    PyErr_Clear();
}

/* A copy of a str's UTF-8, or NULL with an exception. */
static char *
utf8_copy(PyObject *text)
{
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &size);
    char *copy;

    if (!utf8) {
        return NULL;
    }
    if (!(copy = enif_alloc(size + 1))) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(copy, utf8, size + 1);
    return copy;
}

#endif

PyObject *
pyerl_erlang_prime_extension(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyerl_module_state *st = PyModule_GetState(module);

    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_prime_extension(name: str, origin: str)");
        return NULL;
    }
#ifdef PRIMING
    if (st && st->ctx && st->ctx->own) {
        char *name = utf8_copy(args[0]), *origin = name ? utf8_copy(args[1]) : NULL;
        struct pyerl_ctx *main_ctx = pyerl_main_ctx();
        PyThreadState *sub;
        int made;

        if (!origin) {
            enif_free(name);
            return NULL;
        }
        sub = PyEval_SaveThread();
        if (pyerl_ctx_enter_for_now(main_ctx, &made) == 0) {
            create_in_main(name, origin);
            pyerl_ctx_leave_for_now(main_ctx, made);
        }
        PyEval_RestoreThread(sub);
        enif_free(name);
        enif_free(origin);
    }
#else
    (void)st;
#endif
    Py_RETURN_NONE;
}
