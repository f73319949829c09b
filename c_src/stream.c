/*
 * stream.c: the C half of streams (src/py_stream.erl and
 * priv/python/erlang_python/streams.py): the items of an iterable, sent to
 * the stream's process in batches that no item waits in for long.
 *
 * erlang._stream_pump(iterator, limit, to, ref) takes up to limit items of
 * a sync iterator in one C loop and sends them to the stream process `to`
 * as `{py_stream_items, Ref, Items}` (newest first), which hands each to
 * the owner. A batch is sent when it holds MAX_BATCH items, when the pump
 * ends, and by the flusher thread once its oldest item has waited
 * FLUSH_NS: an iterable that blocks after an item (a generator waiting for
 * a socket) does not hold the item back, yet a fast one costs one send per
 * batch, not one per item (enif_send from a dirty scheduler costs about a
 * microsecond, an Erlang send a tenth of that).
 *
 * erlang._stream_send(to, ref, item) sends one item as a batch of its own,
 * for async iterators, whose items come out of an event loop.
 *
 * The batches of all pumps running are listed for the flusher, a thread
 * started by the first pump, which looks at them every FLUSH_NS while any
 * is listed and sleeps otherwise.
 *
 * Locking: `lock` (the flusher's) guards the list; a batch's lock guards
 * its items. The flusher takes a batch's lock inside its own; a pump takes
 * either, never both, and converts each item outside both (conversion may
 * run Python code), then copies it into the batch under the batch's lock.
 * No GIL is taken by the flusher.
 */
#include "stream.h"

#include "atoms.h"
#include "clock.h"
#include "context.h"
#include "convert.h"
#include "module_state.h"
#include "process.h"
#include "worker.h"

#include <stdatomic.h>

#define MAX_BATCH 1024
#define FLUSH_NS (1000 * 1000LL)

struct batch {
    struct batch *prev, *next; /* in the flusher's list: guarded by `lock` */
    ErlNifPid to;              /* the stream process */
    ErlNifEnv *held;           /* holds ref; never cleared */
    ERL_NIF_TERM ref;
    pthread_mutex_t lock;
    /* batch-lock-guarded: */
    ErlNifEnv *env; /* holds items, cleared by each send */
    ERL_NIF_TERM items;
    unsigned count;
    atomic_llong since_ns; /* when the oldest item came; 0 when empty */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* lock-guarded: */
static pthread_cond_t flusher_wake;
static struct batch *batches;
static int flusher_started;

/* Sends the batch's items, if any. Under the batch's lock. */
static void
send_items(struct batch *b)
{
    ERL_NIF_TERM message;

    if (b->count == 0) {
        return;
    }
    message =
        enif_make_tuple3(b->env, ATOM(py_stream_items), enif_make_copy(b->env, b->ref), b->items);
    pyerl_send(NULL, &b->to, b->env, message);
    enif_clear_env(b->env);
    b->items = enif_make_list(b->env, 0);
    b->count = 0;
    atomic_store(&b->since_ns, 0);
}

static void *
flusher_main(void *unused)
{
    struct batch *b;
    int64_t now, since;
    struct timespec until;

    (void)unused;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!batches) {
            pthread_cond_wait(&flusher_wake, &lock);
        }
        now = pyerl_now_ns();
        for (b = batches; b; b = b->next) {
            since = atomic_load(&b->since_ns);
            if (since && now - since >= FLUSH_NS) {
                pthread_mutex_lock(&b->lock);
                send_items(b);
                pthread_mutex_unlock(&b->lock);
            }
        }
        until = pyerl_timespec_at(now + FLUSH_NS);
        pthread_cond_timedwait(&flusher_wake, &lock, &until);
    }
    return NULL;
}

/* Lists b for the flusher, starting it the first time. Returns 0, or -1
 * if the thread cannot be started (b is not listed). */
static int
list_batch(struct batch *b)
{
    pthread_attr_t attr;
    pthread_t thread;
    int rc = 0;

    pthread_mutex_lock(&lock);
    if (!flusher_started) {
        if (!pyerl_monotonic_condattr() ||
            pthread_cond_init(&flusher_wake, pyerl_monotonic_condattr()) != 0 ||
            pthread_attr_init(&attr) != 0) {
            rc = -1;
        } else {
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            rc = pthread_create(&thread, &attr, flusher_main, NULL) == 0 ? 0 : -1;
            pthread_attr_destroy(&attr);
        }
        flusher_started = rc == 0;
    }
    if (rc == 0) {
        b->prev = NULL;
        b->next = batches;
        if (batches) {
            batches->prev = b;
        }
        batches = b;
        pthread_cond_signal(&flusher_wake);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static void
unlist_batch(struct batch *b)
{
    pthread_mutex_lock(&lock);
    if (b->prev) {
        b->prev->next = b->next;
    } else {
        batches = b->next;
    }
    if (b->next) {
        b->next->prev = b->prev;
    }
    pthread_mutex_unlock(&lock);
}

/* Readies b for items of to's stream ref (Python objects). Returns 1, or 0
 * with an exception set. */
static int
batch_open(struct batch *b, PyObject *to, PyObject *ref)
{
    ERL_NIF_TERM to_term;

    *b = (struct batch){.items = 0};
    pthread_mutex_init(&b->lock, NULL); /* default attributes: cannot fail */
    if (!pyerl_is_pid(to) || !pyerl_is_opaque(ref) || pyerl_is_pid(ref)) {
        PyErr_SetString(PyExc_TypeError, "the stream must be an erlang.Pid, the ref an erlang.Ref");
        return 0;
    }
    if (pyerl_in_forked_child()) {
        pyerl_set_forked_child_error("a stream");
        return 0;
    }
    if (!(b->held = enif_alloc_env()) || !(b->env = enif_alloc_env())) {
        PyErr_NoMemory();
        return 0;
    }
    if (!pyerl_opaque_to_term(b->held, to, &to_term) ||
        !pyerl_opaque_to_term(b->held, ref, &b->ref)) {
        return 0;
    }
    if (!enif_get_local_pid(b->held, to_term, &b->to)) {
        PyErr_SetString(PyExc_ValueError, "the stream is not a process of this node");
        return 0;
    }
    b->items = enif_make_list(b->env, 0);
    return 1;
}

/* Sends what is left and frees b, opened or not. No longer listed. */
static void
batch_close(struct batch *b)
{
    if (b->env) {
        pthread_mutex_lock(&b->lock);
        send_items(b);
        pthread_mutex_unlock(&b->lock);
        enif_free_env(b->env);
    }
    if (b->held) {
        enif_free_env(b->held);
    }
    pthread_mutex_destroy(&b->lock);
}

/* Adds item to b, converted in scratch (cleared afterwards). Returns 1, or
 * 0 with an exception set (item has no Erlang form). GIL held. */
static int
batch_add(struct batch *b, const struct pyerl_conv *cv, ErlNifEnv *scratch, PyObject *item)
{
    ERL_NIF_TERM term;

    if (!pyerl_py_to_term(cv, scratch, item, &term, "item")) {
        enif_clear_env(scratch);
        return 0;
    }
    pthread_mutex_lock(&b->lock);
    b->items = enif_make_list_cell(b->env, enif_make_copy(b->env, term), b->items);
    if (b->count++ == 0) {
        atomic_store(&b->since_ns, pyerl_now_ns());
    }
    if (b->count == MAX_BATCH) {
        send_items(b);
    }
    pthread_mutex_unlock(&b->lock);
    enif_clear_env(scratch);
    return 1;
}

PyObject *
pyerl_stream_pump(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyerl_conv cv = {.ctx = pyerl_module_ctx(module)};
    struct batch b;
    ErlNifEnv *scratch = NULL;
    Py_ssize_t limit, sent = 0;
    PyObject *item;
    int ok, listed = 0;

    if (!cv.ctx) {
        return NULL;
    }
    if (nargs != 4 || !PyIter_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_stream_pump(iterator, limit, to, ref)");
        return NULL;
    }
    if ((limit = PyLong_AsSsize_t(args[1])) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "_stream_pump: limit must be >= 0");
        }
        return NULL;
    }
    ok = batch_open(&b, args[2], args[3]) && (scratch = enif_alloc_env());
    if (ok && !(listed = list_batch(&b) == 0)) {
        PyErr_SetString(PyExc_RuntimeError, "cannot start the stream flusher thread");
        ok = 0;
    }
    while (ok && sent < limit && (item = PyIter_Next(args[0]))) {
        ok = batch_add(&b, &cv, scratch, item);
        Py_DECREF(item);
        sent += ok;
    }
    if (listed) {
        unlist_batch(&b);
    }
    batch_close(&b);
    if (scratch) {
        enif_free_env(scratch);
    }
    if (!ok || PyErr_Occurred()) {
        return NULL;
    }
    /* Ended when the iterator ran out before the limit. */
    return Py_BuildValue("(nO)", sent, sent < limit ? Py_True : Py_False);
}

PyObject *
pyerl_stream_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyerl_conv cv = {.ctx = pyerl_module_ctx(module)};
    struct batch b;
    ErlNifEnv *scratch = NULL;
    int ok;

    if (!cv.ctx) {
        return NULL;
    }
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_stream_send(to, ref, item)");
        return NULL;
    }
    ok = batch_open(&b, args[0], args[1]) && (scratch = enif_alloc_env()) &&
         batch_add(&b, &cv, scratch, args[2]);
    batch_close(&b);
    if (scratch) {
        enif_free_env(scratch);
    }
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}
