/*
 * process.c: the OS process that Python shares with the VM.
 *
 * A Python program owns its process; ours is a guest in the VM's. What
 * Python code may do to its own process is adjusted where it would harm
 * the VM:
 *
 * - SIGCHLD. The BEAM ignores it, which makes the kernel reap children at
 *   once, so Python's subprocess could never collect an exit status and
 *   would report 0 for every child. It goes back to its default (no
 *   handler, children kept until waited for). The BEAM's own children are
 *   the port helper's, not the VM process's, so nothing of the BEAM waits
 *   on it.
 *
 * - os._exit(n) in the VM's process raises SystemExit(n), as sys.exit(n)
 *   does, instead of ending the node. In a forked child it ends the child
 *   at once, as usual (multiprocessing's fork children end that way).
 *
 * - os.fork(). The child is a copy of the VM with one thread, the one that
 *   forked: it can run Python, but no scheduler runs there, so Erlang is
 *   out of reach (erlang.call, async_call and send raise RuntimeError), the
 *   call it was forked from is forgotten (its locks may be held by threads
 *   that did not come along, so time.sleep is Python's own there), and
 *   it must never return into the VM's code. Its signals get their default
 *   actions and are unblocked (the VM's handlers would forward them to the
 *   VM). When the child's Python code returns to the NIF, the child exits:
 *   with status 0, or 1 after printing the exception it raised, as a Python
 *   script ends when it runs off its end.
 *
 * - malloc. Large values (a 1 MB binary, a big array) make Python allocate
 *   and free big blocks on every call. glibc serves blocks above its mmap
 *   threshold with fresh mappings and gives the free top of a heap back to
 *   the kernel above its trim threshold (ERTS sets 128 KB at boot), so each
 *   such call pays a page fault per 4 KB it touches: about 0.5 ms per MB
 *   here, several times the copying itself. Both thresholds are raised,
 *   unless the user has set glibc's malloc tunables, which then win.
 *
 *   MMAP_THRESHOLD (32 MB, glibc's most) keeps blocks up to that size in
 *   the heaps. TRIM_THRESHOLD is how much free memory each malloc arena
 *   may keep at its top for reuse, and each thread gets an arena of its
 *   own until there are 8 per core: at 64 MB, an arena whose thread once
 *   held a 30 MB block kept all of it, and `make soak` ended at 512 MB
 *   from 52 MB, 16 arenas on 2 cores each keeping what its largest block
 *   had needed. 4 MB covers a call that handles a few 1 MB values (row 7
 *   of `make bench` stays within 3x a memcpy; 128 KB made it 13x) and
 *   keeps what idle arenas hold to 4 MB each (the soak ends at 75-89 MB).
 */
#include "process.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MMAP_THRESHOLD (32 * 1024 * 1024)
#define TRIM_THRESHOLD (4 * 1024 * 1024)

/* Set in a child by the atfork handler, while it is the child's only
 * thread; never written in the VM's process. */
static int forked_child;

/* In the child, at once after fork. The VM's signal handlers would pass a
 * signal to the child (a Pool's SIGTERM, say) on to the VM's own signal
 * pipe, which the child shares: the VM would act on it (stop, for
 * SIGTERM). The child gets the default actions instead; ignored signals
 * stay ignored. The forking thread may block signals that the VM handles
 * on another thread: the child, with that one thread, unblocks them. Only
 * async-signal-safe calls. */
static void
mark_forked_child(void)
{
    struct sigaction action;
    sigset_t none;
    int sig;

    forked_child = 1;
    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, NULL, &action) == 0 &&
            action.sa_handler != SIG_IGN && action.sa_handler != SIG_DFL) {
            action.sa_handler = SIG_DFL;
            action.sa_flags = 0;
            sigaction(sig, &action, NULL);
        }
    }
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
}

static void
restore_default_sigchld(void)
{
    struct sigaction action;

    if (sigaction(SIGCHLD, NULL, &action) == 0 && action.sa_handler == SIG_IGN) {
        action.sa_handler = SIG_DFL;
        sigaction(SIGCHLD, &action, NULL);
    }
}

static void
tune_malloc(void)
{
    const char *tunables = getenv("GLIBC_TUNABLES");

    if (getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TRIM_THRESHOLD_") ||
        (tunables && strstr(tunables, "glibc.malloc."))) {
        return;
    }
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
}

int
pyerl_process_setup(void)
{
    restore_default_sigchld();
    tune_malloc();
    return pthread_atfork(NULL, NULL, mark_forked_child) == 0 ? 0 : -1;
}

int
pyerl_in_forked_child(void)
{
    return forked_child;
}

void
pyerl_set_forked_child_error(const char *what)
{
    PyErr_Format(PyExc_RuntimeError,
                 "%s: Erlang cannot be reached from a process forked from the VM", what);
}

_Noreturn void
pyerl_end_forked_child(int failed)
{
    if (failed) {
        PyErr_Print();
    }
    _exit(failed ? 1 : 0);
}

static PyObject *
guarded_exit(PyObject *module, PyObject *status)
{
    long code;

    (void)module;
    code = PyLong_AsLong(status);
    if (code == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (forked_child) {
        _exit((int)code);
    }
    PyErr_SetObject(PyExc_SystemExit, status);
    return NULL;
}

static PyMethodDef guarded_exit_def = {
    "_exit", guarded_exit, METH_O,
    "_exit(status)\n--\n\nInside the Erlang VM: raises SystemExit(status) rather than "
    "ending the VM's process. In a forked child: exits the child at once with status."};

/* os._exit is posix._exit: both names get the guard. */
int
pyerl_install_exit_guard(void)
{
    static const char *const modules[] = {"os", "posix"};
    PyObject *guard = PyCFunction_NewEx(&guarded_exit_def, NULL, NULL);
    PyObject *module;
    size_t i;
    int rc = guard ? 0 : -1;

    for (i = 0; rc == 0 && i < sizeof modules / sizeof modules[0]; i++) {
        module = PyImport_ImportModule(modules[i]);
        rc = module ? PyObject_SetAttrString(module, "_exit", guard) : -1;
        Py_XDECREF(module);
    }
    Py_XDECREF(guard);
    return rc;
}
