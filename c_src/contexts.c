/*
 * contexts.c: py_context's contexts, made, looked up, interrupted and
 * stopped; the NIFs behind src/py_context.erl.
 *
 * A context is a NIF resource, the handle (struct pyerl_context), which a
 * call names to run there. There are two modes:
 *
 * - worker: a namespace of its own in the main interpreter: a module
 *   object named __main__, whose dict is the globals of the context's
 *   eval and exec and where its calls of Module '__main__' look. Modules
 *   (sys.modules) and everything else are the main interpreter's.
 * - owngil (Python 3.12 and later): a subinterpreter with its own GIL, its
 *   own modules and its own erlang module, made here as an own context
 *   (context.h). Its Python runs in parallel with the main interpreter's
 *   and with other own contexts'.
 *
 * Either way a call runs where its caller already is, on its dirty
 * scheduler or pool thread, which takes a thread state of the context's
 * interpreter (context.c): no hand-off to a thread of the context's.
 *
 * A context belongs to the process that made it: a monitor stops it when
 * that process ends. Stopping closes it (new calls, and for owngil the
 * uses of its references, give {error, context_stopped}), interrupts its
 * running calls, which end with {error, context_stopped}, and starts a
 * finaliser thread, so that no scheduler waits. The finaliser waits for
 * the last call to leave, interrupting again what is still running, then
 * empties a worker's namespace, or lets go of an own context's references
 * and caches and ends its interpreter, and tells the processes waiting in
 * py_context:stop. A running context holds its own handle, so it is
 * stopped only on purpose or by its owner's end, never by the garbage
 * collection of its terms; the handle's memory goes when both have
 * happened.
 *
 * Lock: a context's lock is a leaf; enif_send is made under it (the
 * finaliser's messages to the stoppers), and a thread is started under it.
 */
#include "contexts.h"

#include "atoms.h"
#include "callable.h"
#include "code_cache.h"
#include "context.h"
#include "drain.h"
#include "erlang_module.h"
#include "errors.h"
#include "generations.h"
#include "interrupt.h"
#include "module_state.h"
#include "objref.h"
#include "run.h"

#include <string.h>
#include <time.h>

#define WAIT_SLICE_NS (50 * 1000 * 1000LL)
#define OWNGIL_SUPPORTED (PY_VERSION_HEX >= 0x030C0000)

enum mode { WORKER, OWNGIL };
enum state { RUNNING, STOPPING, STOPPED };

struct pyerl_context {
    /* Set when made, read-only afterwards. The objects are dropped by the
     * finaliser once no call can reach them (calls is closed and drained),
     * and never read again. */
    int mode;
    struct pyerl_ctx *ctx; /* the interpreter: the main one, or its own (held) */
    PyObject *namespace;   /* worker: the module of its namespace, strong */
    PyObject *globals;     /* the namespace's dict; owngil: its __main__'s */
    ErlNifPid owner;
    int generation;           /* its type's slot (generations.h) */
    struct pyerl_drain calls; /* calls through this handle */
    int calls_ready;          /* calls is made (for the destructor) */
    pthread_mutex_t lock;     /* guards the fields below */
    int state;                /* enum state */
    int finaliser_started;
    ErlNifMonitor monitor;  /* on the owner */
    ErlNifEnv *waiters_env; /* the stoppers' refs; NULL until the first */
    size_t n_waiters, waiters_size;
    struct waiter {
        ErlNifPid pid;
        ERL_NIF_TERM ref; /* in waiters_env */
    } * waiters;
};

static void context_dtor(ErlNifEnv *env, void *arg);
static void context_down(ErlNifEnv *env, void *arg, ErlNifPid *pid, ErlNifMonitor *monitor);

static struct pyerl_generations generations = {
    .name = "pyerl_context",
    .init = {.dtor = context_dtor, .down = context_down},
};

static struct pyerl_context *
get_context(ErlNifEnv *env, ERL_NIF_TERM term)
{
    return pyerl_generations_get(&generations, env, term);
}

int
pyerl_contexts_init(ErlNifEnv *env)
{
    return pyerl_generations_open(&generations, env);
}

void
pyerl_contexts_commit(void)
{
    pyerl_generations_commit(&generations);
}

int
pyerl_context_request(ErlNifEnv *env, ERL_NIF_TERM term, struct pyerl_request *req,
                      int module_is_main)
{
    struct pyerl_context *h = get_context(env, term);

    if (!h) {
        return 0;
    }
    req->context = term;
    req->ctx = h->ctx;
    req->calls = &h->calls;
    req->globals = h->globals;
    req->main_module = module_is_main ? h->namespace : NULL;
    return 1;
}

/* Its state (enum state), read under its lock. */
static int
state_of(struct pyerl_context *h)
{
    int state;

    pthread_mutex_lock(&h->lock);
    state = h->state;
    pthread_mutex_unlock(&h->lock);
    return state;
}

/* Interrupts, for reason, every call running through the handle and, for
 * owngil, every other call in its interpreter (on its references). */
static void
interrupt_calls(struct pyerl_context *h, enum pyerl_interruption reason)
{
    pyerl_inflight_interrupt_all(&h->calls, h->mode == OWNGIL ? h->ctx : NULL, reason);
}

/* ---- making ----------------------------------------------------------- */

/* A worker's namespace, in the main interpreter. */
static int
make_worker(struct pyerl_context *h, ErlNifEnv *env, ERL_NIF_TERM *error)
{
    struct pyerl_ctx *main_ctx = pyerl_main_ctx();
    PyObject *module, *dict;

    if (pyerl_ctx_enter(main_ctx) < 0) {
        *error = enif_make_tuple2(env, ATOM(error), enif_make_atom(env, "no_thread_state"));
        return 0;
    }
    module = PyModule_New("__main__");
    dict = module ? PyModule_GetDict(module) : NULL;
    if (!dict || PyDict_SetItemString(dict, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        PyDict_SetItemString(dict, "erlang", main_ctx->module) < 0) {
        *error = pyerl_error_from_python(env);
        Py_XDECREF(module);
        pyerl_ctx_leave(main_ctx);
        return 0;
    }
    h->ctx = main_ctx;
    h->namespace = module;
    h->globals = dict;
    pyerl_ctx_leave(main_ctx);
    return 1;
}

/* The GIL of an own context held: waits, the GIL released between looks,
 * until no thread state is left in it but the caller's and the kept one.
 * Py_EndInterpreter waits for the threads that `threading` started, but
 * aborts the process if any other state is left: a thread of
 * _thread.start_new_thread's, or of a C extension's. */
static void
wait_for_other_threads(struct pyerl_ctx *ctx)
{
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000L};
    PyThreadState *self = PyThreadState_Get(), *t;
    int others;

    for (;;) {
        others = 0;
        for (t = PyInterpreterState_ThreadHead(ctx->interp); t; t = PyThreadState_Next(t)) {
            others += t != self && t != ctx->keeper;
        }
        if (!others) {
            return;
        }
        Py_BEGIN_ALLOW_THREADS
        nanosleep(&pause, NULL);
        Py_END_ALLOW_THREADS
    }
}

/* The GIL of an own context held: lets go of its references, waits for
 * its own threads to end (they may still call Erlang), then lets go of
 * the rest and ends its interpreter (context.h). Its erlang module no
 * longer reaches Erlang from then on, so that the interpreter's last code
 * (atexit) cannot use what is being released. */
static void
end_own(struct pyerl_ctx *ctx)
{
    pyerl_objref_release_all(ctx);
    wait_for_other_threads(ctx);
    if (ctx->state) {
        ctx->state->ctx = NULL;
    }
    Py_CLEAR(ctx->globals);
    Py_CLEAR(ctx->module);
    Py_CLEAR(ctx->registered);
    if (ctx->names) {
        pyerl_names_free(ctx->names);
        ctx->names = NULL;
    }
    if (ctx->code) {
        pyerl_code_cache_free(ctx->code);
        ctx->code = NULL;
    }
    pyerl_ctx_end(ctx);
}

#if OWNGIL_SUPPORTED

/* The main interpreter's sys.path, copied as UTF-8 so that the new
 * interpreter can have it without sharing an object. */
struct paths {
    char **items;
    size_t n;
};

static void
free_paths(struct paths *paths)
{
    for (size_t i = 0; i < paths->n; i++) {
        enif_free(paths->items[i]);
    }
    enif_free(paths->items);
}

/* The main GIL held. 0, or -1 with an exception set. */
static int
copy_paths(struct paths *paths)
{
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    Py_ssize_t n = path && PyList_Check(path) ? PyList_GET_SIZE(path) : 0, size;
    const char *text;

    paths->n = 0;
    if (!(paths->items = enif_alloc((n ? n : 1) * sizeof *paths->items))) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(path, i);

        if (!PyUnicode_Check(item)) {
            continue;
        }
        if (!(text = PyUnicode_AsUTF8AndSize(item, &size))) {
            free_paths(paths);
            return -1;
        }
        if (!(paths->items[paths->n] = enif_alloc(size + 1))) {
            free_paths(paths);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(paths->items[paths->n++], text, size + 1);
    }
    return 0;
}

/* The new interpreter's GIL held. 0, or -1 with an exception set. */
static int
set_paths(const struct paths *paths)
{
    PyObject *list = PyList_New(0), *item;
    int rc = list ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < paths->n; i++) {
        item = PyUnicode_FromString(paths->items[i]);
        rc = item ? PyList_Append(list, item) : -1;
        Py_XDECREF(item);
    }
    if (rc == 0) {
        rc = PySys_SetObject("path", list);
    }
    Py_XDECREF(list);
    return rc;
}

/* The new interpreter's GIL held: what a context needs there, the guard
 * on extension modules (extensions.c) among it. 0, or -1 with an
 * exception set. */
static int
set_up_own(struct pyerl_ctx *ctx, const struct paths *paths)
{
    PyObject *main_module, *guarded;

    if (!(ctx->names = pyerl_names_new()) || !(ctx->code = pyerl_code_cache_new())) {
        PyErr_NoMemory();
        return -1;
    }
    if (!(main_module = PyImport_AddModule("__main__")) || !(ctx->registered = PySet_New(NULL)) ||
        set_paths(paths) < 0) {
        return -1;
    }
    ctx->globals = Py_NewRef(PyModule_GetDict(main_module));
    if (pyerl_erlang_module_bind(ctx) < 0 ||
        !(guarded = PyObject_CallMethod(ctx->module, "_guard_extensions", NULL))) {
        return -1;
    }
    Py_DECREF(guarded);
    return 0;
}

/* A subinterpreter with its own GIL, made on this thread. */
static int
make_own(struct pyerl_context *h, ErlNifEnv *env, ERL_NIF_TERM *error)
{
    PyInterpreterConfig config = {
        .use_main_obmalloc = 0,
        .allow_fork = 0,
        .allow_exec = 0,
        .allow_threads = 1,
        .allow_daemon_threads = 0,
        .check_multi_interp_extensions = 1,
        .gil = PyInterpreterConfig_OWN_GIL,
    };
    struct pyerl_ctx *main_ctx = pyerl_main_ctx(), *ctx;
    struct paths paths;
    PyThreadState *tstate;
    PyStatus status;

    if (pyerl_ctx_enter(main_ctx) < 0) {
        *error = enif_make_tuple2(env, ATOM(error), enif_make_atom(env, "no_thread_state"));
        return 0;
    }
    if (copy_paths(&paths) < 0) {
        *error = pyerl_error_from_python(env);
        pyerl_ctx_leave(main_ctx);
        return 0;
    }
    status = Py_NewInterpreterFromConfig(&tstate, &config);
    if (PyStatus_Exception(status)) {
        /* The thread's main state is current again. */
        pyerl_ctx_leave(main_ctx);
        free_paths(&paths);
        *error = enif_make_tuple2(
            env, ATOM(error),
            enif_make_tuple2(
                env, enif_make_atom(env, "RuntimeError"),
                enif_make_string(env, status.err_msg ? status.err_msg : "?", ERL_NIF_LATIN1)));
        return 0;
    }
    /* In the new interpreter, with its GIL; the main one is released. */
    if (!(ctx = pyerl_ctx_new_own(PyThreadState_GetInterpreter(tstate)))) {
        Py_EndInterpreter(tstate);
        free_paths(&paths);
        *error = enif_make_tuple2(env, ATOM(error), ATOM(enomem));
        return 0;
    }
    if (set_up_own(ctx, &paths) < 0 || pyerl_ctx_keep_first_state(ctx) < 0) {
        *error = PyErr_Occurred() ? pyerl_error_from_python(env)
                                  : enif_make_tuple2(env, ATOM(error), ATOM(enomem));
        PyErr_Clear();
        end_own(ctx);
        pyerl_ctx_unref(ctx);
        free_paths(&paths);
        return 0;
    }
    free_paths(&paths);
    h->ctx = ctx;
    h->globals = ctx->globals;
    return 1;
}

#endif

/* context_new(Mode, Owner) -> {ok, Context} | {error, Reason} */
ERL_NIF_TERM
pyerl_nif_context_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_context *h;
    ERL_NIF_TERM term, error;
    ErlNifPid owner;
    int generation, made;

    (void)argc;
    if (argv[0] != ATOM(worker) && argv[0] != ATOM(owngil)) {
        return pyerl_badarg(env, "mode");
    }
    if (!enif_get_local_pid(env, argv[1], &owner)) {
        return pyerl_badarg(env, "owner");
    }
#if !OWNGIL_SUPPORTED
    if (argv[0] == ATOM(owngil)) {
        return enif_make_tuple2(env, ATOM(error),
                                enif_make_tuple2(env, ATOM(not_supported), ATOM(owngil)));
    }
#endif
    if (!(h = pyerl_generations_alloc(&generations, sizeof *h, &generation))) {
        return enif_make_tuple2(env, ATOM(error), ATOM(enomem));
    }
    memset(h, 0, sizeof *h);
    h->generation = generation;
    h->state = STOPPED; /* until made: the destructor then has nothing to stop */
    h->mode = argv[0] == ATOM(worker) ? WORKER : OWNGIL;
    h->owner = owner;
    pthread_mutex_init(&h->lock, NULL);
    if (pyerl_drain_init(&h->calls) < 0) {
        enif_release_resource(h);
        return enif_make_tuple2(env, ATOM(error), ATOM(enomem));
    }
    h->calls_ready = 1;
#if OWNGIL_SUPPORTED
    made = h->mode == WORKER ? make_worker(h, env, &error) : make_own(h, env, &error);
#else
    made = make_worker(h, env, &error);
#endif
    if (!made) {
        enif_release_resource(h);
        return error;
    }
    h->state = RUNNING;
    /* The running context's hold on itself, let go by its finaliser. */
    enif_keep_resource(h);
    term = enif_make_resource(env, h);
    if (enif_monitor_process(env, h, &owner, &h->monitor) != 0) {
        context_down(env, h, &owner, NULL);
    }
    enif_release_resource(h);
    return enif_make_tuple2(env, ATOM(ok), term);
}

/* ---- stopping --------------------------------------------------------- */

/* Lock held. Tells every stopper that the context has stopped. */
static void
tell_waiters(struct pyerl_context *h)
{
    ErlNifEnv *msg_env;

    for (size_t i = 0; i < h->n_waiters; i++) {
        if ((msg_env = enif_alloc_env())) {
            enif_send(NULL, &h->waiters[i].pid, msg_env,
                      enif_make_tuple2(msg_env, ATOM(py_context_stopped),
                                       enif_make_copy(msg_env, h->waiters[i].ref)));
            enif_free_env(msg_env);
        }
    }
    h->n_waiters = 0;
}

/* Waits until nobody is inside d (closed), interrupting again, every
 * WAIT_SLICE_NS, the calls tagged tag or running in ctx that have not
 * been yet (one may have entered just before the close and registered
 * with the watchdog just after the stop's interruption). */
static void
drain_interrupting(struct pyerl_drain *d, const void *tag, struct pyerl_ctx *ctx)
{
    while (!pyerl_drain_wait(d, WAIT_SLICE_NS)) {
        pyerl_inflight_interrupt_all(tag, ctx, PYERL_STOPPED);
    }
}

static void *
finaliser_main(void *arg)
{
    struct pyerl_context *h = arg;
    struct pyerl_ctx *ctx = h->ctx;

    drain_interrupting(&h->calls, &h->calls, NULL);
    if (h->mode == WORKER) {
        if (pyerl_ctx_enter(ctx) == 0) {
            PyDict_Clear(h->globals);
            Py_DECREF(h->namespace);
            pyerl_ctx_leave(ctx);
        }
    } else {
        drain_interrupting(&ctx->users, NULL, ctx);
        /* Nobody else is inside, and nobody can enter. */
        pyerl_ctx_hold(ctx);
        if (pyerl_ctx_enter_held(ctx) == 0) {
            end_own(ctx);
        }
    }
    /* The thread ends: a state of it left in the main interpreter would
     * share its ident with a later thread, and the watchdog could then
     * not tell which of the two to interrupt. */
    pyerl_ctx_forget_thread();
    pthread_mutex_lock(&h->lock);
    h->state = STOPPED;
    tell_waiters(h);
    pthread_mutex_unlock(&h->lock);
    enif_release_resource(h); /* the running context's hold */
    return NULL;
}

/* Lock held. Starts the finaliser, unless started; a failure is retried
 * at the next stop. */
static void
start_finaliser(struct pyerl_context *h)
{
    pthread_attr_t attr;
    pthread_t thread;

    if (h->finaliser_started || pthread_attr_init(&attr) != 0) {
        return;
    }
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    h->finaliser_started = pthread_create(&thread, &attr, finaliser_main, h) == 0;
    pthread_attr_destroy(&attr);
}

/* Lock held. Adds a stopper to tell; 0 or -1 if out of memory. */
static int
add_waiter(struct pyerl_context *h, const ErlNifPid *pid, ERL_NIF_TERM ref)
{
    size_t size = h->waiters_size ? 2 * h->waiters_size : 4;
    struct waiter *waiters;

    if (!h->waiters_env && !(h->waiters_env = enif_alloc_env())) {
        return -1;
    }
    if (h->n_waiters == h->waiters_size) {
        if (!(waiters = enif_realloc(h->waiters, size * sizeof *waiters))) {
            return -1;
        }
        h->waiters = waiters;
        h->waiters_size = size;
    }
    if (h->n_waiters == 0) {
        enif_clear_env(h->waiters_env);
    }
    h->waiters[h->n_waiters].pid = *pid;
    h->waiters[h->n_waiters].ref = enif_make_copy(h->waiters_env, ref);
    h->n_waiters++;
    return 0;
}

/* Stops the context, telling waiter (unless NULL) with ref when it has
 * stopped. Returns its state before. Any thread; never blocks. */
static int
stop(struct pyerl_context *h, const ErlNifPid *waiter, ERL_NIF_TERM ref)
{
    int was;

    pthread_mutex_lock(&h->lock);
    was = h->state;
    if (was != STOPPED && waiter && add_waiter(h, waiter, ref) < 0) {
        was = -1;
    }
    if (h->state == RUNNING) {
        h->state = STOPPING;
        pyerl_drain_close(&h->calls);
        if (h->mode == OWNGIL) {
            pyerl_ctx_close(h->ctx);
        }
    }
    if (h->state == STOPPING) {
        start_finaliser(h);
    }
    pthread_mutex_unlock(&h->lock);
    if (was == RUNNING) {
        interrupt_calls(h, PYERL_STOPPED);
    }
    return was;
}

static void
context_down(ErlNifEnv *env, void *arg, ErlNifPid *pid, ErlNifMonitor *monitor)
{
    (void)env;
    (void)pid;
    (void)monitor;
    stop(arg, NULL, 0);
}

static void
context_dtor(ErlNifEnv *env, void *arg)
{
    struct pyerl_context *h = arg;

    (void)env;
    if (h->ctx) {
        pyerl_ctx_unref(h->ctx);
    }
    if (h->waiters_env) {
        enif_free_env(h->waiters_env);
    }
    enif_free(h->waiters);
    if (h->calls_ready) {
        pyerl_drain_destroy(&h->calls);
    }
    pthread_mutex_destroy(&h->lock);
    pyerl_generations_destroyed(&generations, h->generation);
}

/* context_stop(Context, Ref) -> stopped | stopping (then
 * {py_context_stopped, Ref} comes when it has) | {error, enomem} */
ERL_NIF_TERM
pyerl_nif_context_stop(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_context *h = get_context(env, argv[0]);
    ErlNifPid self;

    (void)argc;
    if (!h) {
        return pyerl_badarg(env, "context");
    }
    enif_self(env, &self);
    switch (stop(h, &self, argv[1])) {
    case STOPPED:
        return ATOM(stopped);
    case -1:
        return enif_make_tuple2(env, ATOM(error), ATOM(enomem));
    default:
        return ATOM(stopping);
    }
}

/* ---- the rest --------------------------------------------------------- */

/* context_interrupt(Context) -> ok | {error, context_stopped} */
ERL_NIF_TERM
pyerl_nif_context_interrupt(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_context *h = get_context(env, argv[0]);

    (void)argc;
    if (!h) {
        return pyerl_badarg(env, "context");
    }
    if (state_of(h) != RUNNING) {
        return enif_make_tuple2(env, ATOM(error), ATOM(context_stopped));
    }
    interrupt_calls(h, PYERL_INTERRUPTED);
    return ATOM(ok);
}

/* context_info(Context) -> #{mode, state, owner, calls} */
ERL_NIF_TERM
pyerl_nif_context_info(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    static const ERL_NIF_TERM *const states[] = {&pyerl_atoms.running, &pyerl_atoms.stopping,
                                                 &pyerl_atoms.stopped};
    struct pyerl_context *h = get_context(env, argv[0]);
    ERL_NIF_TERM keys[4], values[4], map;

    (void)argc;
    if (!h) {
        return pyerl_badarg(env, "context");
    }
    keys[0] = ATOM(mode);
    values[0] = h->mode == WORKER ? ATOM(worker) : ATOM(owngil);
    keys[1] = ATOM(state);
    values[1] = *states[state_of(h)];
    keys[2] = ATOM(owner);
    values[2] = enif_make_pid(env, &h->owner);
    keys[3] = ATOM(calls);
    values[3] = enif_make_long(env, atomic_load(&h->calls.inside));
    enif_make_map_from_arrays(env, keys, values, 4, &map);
    return map;
}

ERL_NIF_TERM
pyerl_nif_is_context(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    return get_context(env, argv[0]) ? ATOM(true) : ATOM(false);
}

ERL_NIF_TERM
pyerl_nif_subinterp_supported(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)env;
    (void)argc;
    (void)argv;
    return OWNGIL_SUPPORTED ? ATOM(true) : ATOM(false);
}
