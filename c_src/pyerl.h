/*
 * pyerl.h: what the files of the NIF share.
 *
 * CPython requires Python.h before any system header, so it comes first and
 * erl_nif.h second; every .c file of the NIF includes this header and nothing
 * of Python or ERTS directly. Each section below lists what one .c file
 * offers the others. Every non-static symbol carries the pyerl_ prefix.
 *
 * Threads and locks, for the whole NIF:
 *  - Python runs on dirty I/O schedulers and on threads of our pool
 *    (pool.c), never on a normal scheduler.
 *  - Lock order: the GIL is outermost. A NIF mutex may be taken while
 *    holding the GIL, never the other way round.
 */
#ifndef PYERL_H
#define PYERL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <erl_nif.h>

#include <pthread.h>
#include <stdint.h>

/* ---- valgrind builds (-DPYERL_VALGRIND, see make valgrind) ------------ */

/* The BEAM's JIT runs Erlang code on a stack inside each process's heap,
 * which memcheck takes for a C stack: when that stack shrinks, memcheck
 * marks the part of the heap it leaves unusable, though ERTS goes on
 * building terms there. So what these three calls hand the NIF from a heap
 * (a tuple's elements, a binary's bytes) is marked usable before we touch
 * it; every other access stays checked. */
#if defined(PYERL_VALGRIND)
#include <valgrind/memcheck.h>

static inline int
pyerl_vg_get_tuple(ErlNifEnv *env, ERL_NIF_TERM term, int *arity, const ERL_NIF_TERM **array)
{
    int ok = enif_get_tuple(env, term, arity, array);

    if (ok) {
        (void)VALGRIND_MAKE_MEM_DEFINED(*array, (size_t)*arity * sizeof **array);
    }
    return ok;
}

static inline int
pyerl_vg_inspect_binary(ErlNifEnv *env, ERL_NIF_TERM term, ErlNifBinary *bin)
{
    int ok = enif_inspect_binary(env, term, bin);

    if (ok) {
        (void)VALGRIND_MAKE_MEM_DEFINED(bin->data, bin->size);
    }
    return ok;
}

static inline unsigned char *
pyerl_vg_make_new_binary(ErlNifEnv *env, size_t size, ERL_NIF_TERM *term)
{
    unsigned char *data = enif_make_new_binary(env, size, term);

    if (data) {
        (void)VALGRIND_MAKE_MEM_UNDEFINED(data, size);
    }
    return data;
}

#define enif_get_tuple pyerl_vg_get_tuple
#define enif_inspect_binary pyerl_vg_inspect_binary
#define enif_make_new_binary pyerl_vg_make_new_binary
#endif

/* ---- atoms.c: atoms made once at load ------------------------------- */

#define PYERL_ATOM_NAMES(X)                                                                        \
    X(badarg)                                                                                      \
    X(cancelled)                                                                                   \
    X(dirty_calls)                                                                                 \
    X(dirty_limit)                                                                                 \
    X(dirty_running)                                                                               \
    X(error)                                                                                       \
    X(exit)                                                                                        \
    X(false)                                                                                       \
    X(handler_died)                                                                                \
    X(infinity)                                                                                    \
    X(new_worker)                                                                                  \
    X(nil)                                                                                         \
    X(none)                                                                                        \
    X(ok)                                                                                          \
    X(pool_calls)                                                                                  \
    X(pool_idle)                                                                                   \
    X(pool_queued)                                                                                 \
    X(pool_threads)                                                                                \
    X(erlang_calls)                                                                                \
    X(workers_live)                                                                                \
    X(workers_pooled)                                                                              \
    X(py_async)                                                                                    \
    X(py_async_cancel)                                                                             \
    X(py_call)                                                                                     \
    X(py_coordinator)                                                                              \
    X(python_version)                                                                              \
    X(queued)                                                                                      \
    X(sent)                                                                                        \
    X(stale)                                                                                       \
    X(timeout)                                                                                     \
    X(true)                                                                                        \
    X(undefined)                                                                                   \
    X(unknown)

struct pyerl_atoms {
#define PYERL_ATOM_FIELD(name) ERL_NIF_TERM name;
    PYERL_ATOM_NAMES(PYERL_ATOM_FIELD)
#undef PYERL_ATOM_FIELD
};

extern struct pyerl_atoms pyerl_atoms;
#define ATOM(name) (pyerl_atoms.name)

void pyerl_atoms_init(ErlNifEnv *env);

/* ---- interp.c: the one interpreter and per-thread Python state -------- */

/* Starts CPython once per OS process and runs async_source (the path of
 * erlang_async.py) in the erlang module. Returns 0, or -1 with a message in
 * err. Called from load/upgrade on a normal scheduler; a second call after a
 * reload finds the interpreter running and returns 0. */
int pyerl_interp_start(const char *async_source, char *err, size_t err_size);

/* Takes the GIL on the calling thread, creating the thread's Python state
 * on its first use; returns -1 (GIL not taken) if that state cannot be
 * made. The caller must hold no NIF mutex. */
int pyerl_gil_acquire(void);
void pyerl_gil_release(void);

/* Drops the calling thread's Python state; for threads about to exit.
 * The caller must not hold the GIL. */
void pyerl_thread_state_drop(void);

/* The __main__ module's dict: borrowed, lives forever. GIL held. */
PyObject *pyerl_main_dict(void);

/* ---- process.c: what Python may do to the VM's process ----------------- */

/* Puts SIGCHLD back to its default, tunes malloc for large values and
 * starts watching for forks. Before Python starts; returns 0 or -1. */
int pyerl_process_setup(void);

/* Replaces os._exit (and posix._exit) with the guarded one. GIL held;
 * returns 0 or -1 with an exception set. */
int pyerl_install_exit_guard(void);

/* Whether this is a child that Python code forked from the VM. */
int pyerl_in_forked_child(void);

/* Sets RuntimeError: what (a call's usage) cannot reach Erlang from a
 * forked child. */
void pyerl_set_forked_child_error(const char *what);

/* Ends a forked child whose Python code returned to the NIF: status 0, or
 * 1 after printing the exception set (failed). GIL held; does not return. */
_Noreturn void pyerl_end_forked_child(int failed);

/* ---- erlang_module.c: the Python `erlang` module ---------------------- */

PyObject *pyerl_erlang_module_init(void);

/* Borrowed references, valid once the module is initialised. */
extern PyTypeObject *pyerl_atom_type;
extern PyTypeObject *pyerl_pid_type;
extern PyTypeObject *pyerl_ref_type;
extern PyObject *pyerl_call_interrupted;

/* New erlang.Atom from UTF-8 text, or NULL with an exception set. */
PyObject *pyerl_atom_from_utf8(const char *text, Py_ssize_t len);

/* Wraps a pid or reference term as erlang.Pid / erlang.Ref (new reference,
 * or NULL with an exception set). */
PyObject *pyerl_opaque_from_term(PyTypeObject *type, ErlNifEnv *env, ERL_NIF_TERM term);

/* The term wrapped by a Pid or Ref object, made in env. Returns 1, or 0 with
 * an exception set. */
int pyerl_opaque_to_term(ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out);

/* ---- convert.c: terms <-> Python objects ------------------------------ */

/* Containers nested deeper than this are refused with a clear error. It
 * bounds the C stack used by conversion on every thread that converts. */
#define PYERL_MAX_DEPTH 512

/* Erlang term to a new Python reference, or NULL with an exception set. GIL
 * held. `where` names the value in error messages ("args", "result"). */
PyObject *pyerl_term_to_py(ErlNifEnv *env, ERL_NIF_TERM term, const char *where);

/* Python object to a term made in env. Returns 1, or 0 with an exception set
 * (TypeError or ValueError naming the type and where it was). GIL held. */
int pyerl_py_to_term(ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out, const char *where);

/* A list of arguments to a new tuple, or NULL with an exception set. GIL
 * held. */
PyObject *pyerl_args_to_py(ErlNifEnv *env, ERL_NIF_TERM list, const char *where);

/* Keyword arguments or eval locals: a map whose keys are atoms or binaries,
 * to a new dict with str keys, or NULL with an exception set. GIL held. */
PyObject *pyerl_kwargs_to_py(ErlNifEnv *env, ERL_NIF_TERM map, const char *where);

/* Text of an atom or binary into buf as NUL-terminated UTF-8. Returns its
 * length, or -1 when the term is neither, is too long, or holds a NUL byte.
 * No GIL needed. */
Py_ssize_t pyerl_name_text(ErlNifEnv *env, ERL_NIF_TERM term, char *buf, size_t size);

/* ---- pyref.c: binaries over Python buffers ---------------------------- */

/* Opens the resource type; from load and upgrade. Returns 0 or -1. */
int pyerl_pyref_init(ErlNifEnv *env);

/* The size bytes at data as a binary in env: over the buffer itself, keeping
 * owner (an immutable object that owns it) alive, when large; else a copy.
 * owner may be NULL (always a copy). Returns 1, or 0 with MemoryError set.
 * GIL held. */
int pyerl_buffer_to_term(ErlNifEnv *env, PyObject *owner, const char *data, Py_ssize_t size,
                         ERL_NIF_TERM *out);

/* Releases the objects of binaries Erlang has dropped since. GIL held. */
void pyerl_release_dropped(void);

/* Large binaries of one call's arguments and the objects they became. */
#define PYERL_PASSED_MAX 8
struct pyerl_passed {
    ErlNifEnv *env; /* the arguments' env */
    int count;
    ERL_NIF_TERM binaries[PYERL_PASSED_MAX];
    PyObject *objects[PYERL_PASSED_MAX]; /* strong references */
};

/* From now on, until called again with NULL, the calling thread notes its
 * large binaries of passed->env in passed (pyerl_passed_note), and its
 * large bytes and str into Erlang that are noted objects become their
 * binaries again (pyerl_buffer_to_term). GIL held. */
void pyerl_passed_watch(struct pyerl_passed *passed);

/* Notes that binary (size bytes, of env) became obj, if watched. GIL held. */
void pyerl_passed_note(ErlNifEnv *env, ERL_NIF_TERM binary, size_t size, PyObject *obj);

/* Drops the noted objects. GIL held. */
void pyerl_passed_release(struct pyerl_passed *passed);

/* ---- utf8.c: which binaries are text --------------------------------- */

/* How many of the n bytes at s, from the start, are ASCII. */
size_t pyerl_ascii_prefix(const unsigned char *s, size_t n);

/* Whether the n bytes at s are well-formed UTF-8, as Python's strict
 * decoder judges. */
int pyerl_utf8_valid(const unsigned char *s, size_t n);

/* ---- errors.c: Python exceptions as terms ----------------------------- */

/* Takes the current Python exception and returns
 * {error, {Type, Message}, Traceback}; clears the exception. GIL held. */
ERL_NIF_TERM pyerl_error_from_python(ErlNifEnv *env);

/* The pending exception, normalised, with its traceback attached: a new
 * reference, or NULL if none is pending. Clears the error indicator. */
PyObject *pyerl_take_exception(void);

/* {error, {badarg, Detail}}: a caller's mistake found by the NIF. */
ERL_NIF_TERM pyerl_badarg(ErlNifEnv *env, const char *what);

/* ---- interrupt.c: timeouts, dead callers, interruptible sleep -------- */

/* One Python call being run for Erlang, known to the watchdog thread while
 * it runs so that it can be interrupted. Fields after `lock-guarded` are
 * guarded by the watchdog mutex. */
struct pyerl_call {
    unsigned long thread_id; /* PyThread ident of the running thread */
    ErlNifPid caller;        /* the Erlang process waiting for the call */
    ErlNifEnv *env;          /* the caller's env on a dirty scheduler, else NULL */
    int depth;               /* Erlang -> Python nesting: 0 for a call from plain Erlang */
    /* lock-guarded: */
    struct pyerl_call *prev, *next;
    uint64_t serial; /* tells a reused struct from the one the watchdog saw */
    int64_t deadline_ns;
    int64_t next_check_ns; /* when to look again whether the caller lives */
    int registered;
    int interrupted;     /* for good: its deadline passed or its caller died */
    int delivered;       /* this round's CallInterrupted is raised or armed */
    int wake_fd;         /* an eventfd the call waits on in erlang.call, or -1 */
    pthread_cond_t wake; /* wakes an interruptible sleep in this call */
};

int pyerl_watchdog_start(void);

/* Monotonic time in nanoseconds; any thread. */
int64_t pyerl_now_ns(void);

/* The monotonic time timeout_ms from now; INT64_MAX for timeout_ms < 0. */
int64_t pyerl_deadline_after(int64_t timeout_ms);

/* Starts and ends the watch over one call; both on the running thread with
 * the GIL held. caller is the process waiting for the call (its death
 * interrupts it); deadline_ns is monotonic. pyerl_call_end returns 1
 * when the call was interrupted (timeout or dead caller), after clearing any
 * interruption not yet delivered to Python. */
void pyerl_call_begin(struct pyerl_call *call, const ErlNifPid *caller, ErlNifEnv *env,
                      int64_t deadline_ns, int depth);
int pyerl_call_end(struct pyerl_call *call);

/* The call running on this thread, or NULL (a thread Python started). */
struct pyerl_call *pyerl_current_call(void);

/* In a forked child: the call the forking thread was running is the
 * parent's, watched by a watchdog (and guarded by locks) that the child
 * does not have. Async-signal-safe. */
void pyerl_call_forget_current(void);

/* The eventfd an interruption must write to: the thread's worker fd, once
 * the call has waited on Erlang or watched async calls (-1 before). It
 * stays set: a spurious wake-up is harmless to every waiter. Any thread. */
void pyerl_call_set_wake_fd(struct pyerl_call *call, int fd);
int pyerl_call_is_interrupted(struct pyerl_call *call);

/* Clears the interruption pending for the call, which runs on the calling
 * thread, so that it is raised where the caller chooses rather than at the
 * next bytecode; the watchdog then arms none until its next round. GIL
 * held (it may be released for a moment). */
void pyerl_call_take_interrupt(struct pyerl_call *call);

/* If the watchdog has a CallInterrupted due for the call (on the calling
 * thread) that is neither raised nor armed yet, takes it as
 * pyerl_call_take_interrupt does and returns 1: the caller raises it. Else
 * 0. Lets code the thread reaches often (an event loop's wake-up) stop a
 * call without waiting for the watchdog to get the GIL. GIL held. */
int pyerl_call_take_due_interrupt(struct pyerl_call *call);

/* Asks the watchdog to interrupt the call now. Any thread, no GIL; cheap, so
 * a normal scheduler may call it. */
void pyerl_call_interrupt(struct pyerl_call *call);

/* erlang.sleep / time.sleep replacement; see interrupt.c. */
PyObject *pyerl_sleep(PyObject *module, PyObject *seconds);

/* Replaces time.sleep with pyerl_sleep. GIL held. Returns 0 or -1 with an
 * exception set. */
int pyerl_install_sleep(PyObject *erlang_module);

/* ---- stack.c: a large stack for Python on small-stack threads -------- */

/* Every thread that runs Python has at least this much stack. */
#define PYERL_STACK_SIZE (8 * 1024 * 1024)

/* Runs fn(arg) on the calling thread, on a stack of PYERL_STACK_SIZE (its
 * own if large enough). Returns 0, or -1 if no such stack could be had (fn
 * has not run). */
int pyerl_run_on_large_stack(void (*fn)(void *), void *arg);

/* ---- worker.c: per-thread channels for waiting on Erlang ----------- */

struct pyerl_worker;

#define PYERL_WORKER_NOT_RUNNING (-1)
#define PYERL_WORKER_INTERRUPTED (-2)
#define PYERL_WORKER_FAILED (-3)

int pyerl_worker_init(ErlNifEnv *env);

/* enif_send from a thread that may run a call for an Erlang process:
 * caller_env is that process's env on a dirty scheduler, else NULL. Still
 * sends when the process is exiting (a call of a dead caller finishing).
 * Returns enif_send's result. */
int pyerl_send(ErlNifEnv *caller_env, const ErlNifPid *to, ErlNifEnv *msg_env, ERL_NIF_TERM msg);

/* The calling thread's worker, taken on first use; NULL if none can be
 * made. */
struct pyerl_worker *pyerl_worker_for_thread(void);

/* The env in which to make a request's terms; owned by the worker's thread. */
ErlNifEnv *pyerl_worker_env(struct pyerl_worker *w);

/* Sends {py_call, Worker, Serial, Name, Args, Depth} (Name and Args made in
 * the worker's env) to the worker's handler and waits for the reply with
 * the GIL released (GIL held on entry and on return). Returns 0 with the
 * reply in *reply (in *reply_env, valid until the thread's next request),
 * PYERL_WORKER_NOT_RUNNING if the application is not running, or
 * PYERL_WORKER_INTERRUPTED if call was interrupted meanwhile, or
 * PYERL_WORKER_FAILED if waiting failed (errno set). caller_env is
 * the calling process's env on a dirty scheduler, else NULL. */
int pyerl_worker_call(struct pyerl_worker *w, ErlNifEnv *caller_env, ERL_NIF_TERM name,
                      ERL_NIF_TERM args, int depth, struct pyerl_call *call, ERL_NIF_TERM *reply,
                      ErlNifEnv **reply_env);

/* The worker's eventfd: readable when a reply or an async answer waits. */
int pyerl_worker_fd(struct pyerl_worker *w);

/* Sends {py_async, Worker, Id, Name, Args, Depth} to the handler without
 * waiting; *id is the call's id, unique for the worker's life. Returns 0
 * or PYERL_WORKER_NOT_RUNNING. Bound thread only. */
int pyerl_worker_async_send(struct pyerl_worker *w, ErlNifEnv *caller_env, ERL_NIF_TERM name,
                            ERL_NIF_TERM args, int depth, uint64_t *id);

/* Sends {py_async_cancel, Worker, Id} to the handler (or through the
 * coordinator): async call id is no longer awaited. */
void pyerl_worker_async_cancel(struct pyerl_worker *w, ErlNifEnv *caller_env, uint64_t id);

/* Takes every queued async answer: [{Id, Reply}] newest first, made in
 * *env (valid until the next take), and in *lost_upto the highest id whose
 * handler died unanswered since the last take (0: none). Clears the
 * eventfd. Bound thread only. */
ERL_NIF_TERM pyerl_worker_async_take(struct pyerl_worker *w, ErlNifEnv **env, uint64_t *lost_upto);

/* Workers bound to live threads, workers pooled for reuse, and erlang.call
 * requests answered since load. */
void pyerl_worker_counts(long *bound, long *pooled, long *served);

ERL_NIF_TERM pyerl_nif_worker_bind(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_worker_handler(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_worker_reply(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_worker_async_reply(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* ---- callback.c: erlang.call, erlang.send and names from Erlang ------- */

extern PyObject *pyerl_erlang_error;
extern PyObject *pyerl_unknown_function_error;

/* ---- async.c: erlang.async_call's C half, coroutines run for Erlang ---- */

PyObject *pyerl_async_submit(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *pyerl_async_cancel(PyObject *module, PyObject *id);
PyObject *pyerl_async_fd(PyObject *module, PyObject *unused);
PyObject *pyerl_async_take(PyObject *module, PyObject *unused);

/* Runs a coroutine to completion in a new event loop (erlang._run_coroutine)
 * and returns its result; NULL with an exception set. GIL held. */
PyObject *pyerl_run_coroutine(PyObject *coroutine);

/* Runs the Python file at path in the erlang module's namespace. Returns 0,
 * or -1 with an exception set. GIL held. */
int pyerl_async_install(PyObject *erlang_module, const char *path);

/* The calling thread's worker, or NULL with an exception set: RuntimeError
 * (naming usage) in a forked child, where Erlang is out of reach, or
 * MemoryError. GIL held. */
struct pyerl_worker *pyerl_thread_worker(const char *usage);

/* A request to Erlang, encoded by pyerl_encode_request. */
struct pyerl_request_terms {
    ERL_NIF_TERM name, args; /* in the worker's env */
    int depth;               /* nesting depth the Erlang function runs at */
    struct pyerl_call *call; /* the call running on this thread, or NULL */
    ErlNifEnv *caller_env;   /* for enif_send: the caller's env, or NULL */
};

/* Checks and converts (name, *args) of erlang.call or async_call (usage
 * names it in errors) into the thread's worker env. Returns the thread's
 * worker, or NULL with an exception set (bad name or argument, nesting too
 * deep, no memory). GIL held. */
struct pyerl_worker *pyerl_encode_request(PyObject *const *args, Py_ssize_t nargs,
                                          const char *usage, struct pyerl_request_terms *out);

/* The answer of an Erlang function, as the handler sends it, to a Python
 * value, or NULL with the exception it stands for set. name (the function's
 * name, for messages) may be NULL. GIL held. */
PyObject *pyerl_decode_reply(ErlNifEnv *env, ERL_NIF_TERM reply, PyObject *name);

/* Sets RuntimeError: the application is not running. */
void pyerl_set_not_running(void);

PyObject *pyerl_erlang_call(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *pyerl_erlang_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *pyerl_erlang_getattr(PyObject *module, PyObject *name);
PyObject *pyerl_erlang_set_registered(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *pyerl_erlang_clear_registered(PyObject *module, PyObject *unused);

/* Exception classes and the registered-name set; at module creation. */
int pyerl_callback_init(PyObject *module);

ERL_NIF_TERM pyerl_nif_set_max_depth(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* ---- executor.c: running call / eval / exec --------------------------- */

enum pyerl_op { PYERL_CALL, PYERL_EVAL, PYERL_EXEC };

/* What to run, as terms of one env: CALL uses module, function, args,
 * kwargs; EVAL uses code and locals; EXEC uses code. */
struct pyerl_request {
    enum pyerl_op op;
    ERL_NIF_TERM module, function, args, kwargs;
    ERL_NIF_TERM code, locals;
    int64_t deadline_ns;    /* monotonic; INT64_MAX: no limit */
    int depth;              /* see struct pyerl_call */
    ErlNifEnv *process_env; /* the caller's env while run on its dirty
                             * scheduler; NULL on a pool thread */
};

/* Runs the request on the calling thread (which must not be a normal
 * scheduler and must not hold the GIL) and returns the result term made in
 * out_env: {ok, V} | ok | {error, timeout} | {error, {T, M}, Traceback}. */
ERL_NIF_TERM pyerl_run(ErlNifEnv *in_env, const struct pyerl_request *req, ErlNifEnv *out_env,
                       struct pyerl_call *call, const ErlNifPid *caller);

ERL_NIF_TERM pyerl_nif_call(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_eval(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_exec(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_set_dirty_limit(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_stats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* How many calls may run on dirty schedulers at once: the default, set by
 * the first load; a later load keeps the limit in force. */
void pyerl_executor_init(int dirty_io_schedulers);

/* ---- callable.c: what py:call's Module and Function name ------------- */

/* The attribute (a dotted path) Function of module Module, importing it
 * if need be; both are atoms or binaries. New reference or NULL with an
 * exception. GIL held. */
PyObject *pyerl_callable(ErlNifEnv *env, ERL_NIF_TERM module, ERL_NIF_TERM function);

/* ---- code_cache.c: compiled sources of eval and exec, for reuse ------ */

/* The code object `kind` (the caller's tag for how it was compiled) of
 * these source bytes compiled to, as a new reference; NULL (no exception)
 * if none is kept. GIL held. */
PyObject *pyerl_code_cache_get(int kind, const unsigned char *source, size_t size);

/* Keeps code as what source compiled to, if the source is short enough;
 * takes its own reference. GIL held. */
void pyerl_code_cache_put(int kind, const unsigned char *source, size_t size, PyObject *code);

/* ---- pool.c: NIF-owned threads for calls that do not fit on dirty ---- */

int pyerl_pool_init(ErlNifEnv *env);

/* Queues a copy of req for the pool and returns {queued, Ref, Job}; the
 * caller gets {Ref, Result} later unless it cancels. */
ERL_NIF_TERM pyerl_pool_submit(ErlNifEnv *env, const struct pyerl_request *req);

ERL_NIF_TERM pyerl_nif_cancel(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* Pool figures for stats(): threads, idle threads, queued jobs, jobs run. */
void pyerl_pool_counts(long *threads, long *idle, long *queued, long *served);

#endif
