/*
 * stream.c: the C half of streams (src/py_stream.erl and
 * priv/python/erlang_python/streams.py): the items of an iterable, sent to
 * the stream's process in groups that no item waits in for long.
 *
 * erlang._stream_pump(iterator, limit, to, ref, first) takes up to limit
 * items of a sync iterator in one C loop and sends them to the stream
 * process `to` as `{py_stream_items, Ref, First, Items}`: Items newest
 * first, First the number of the stream's items sent before them, so that
 * the stream process can put groups back in order (they come from more
 * than one thread). A group is sent when it holds MAX_GROUP items, when
 * the pump ends, at once if the iterator is slow (the item before came
 * more than FLUSH_NS earlier), and otherwise by the flusher thread once
 * its oldest item has waited FLUSH_NS: an iterator that blocks after an
 * item (a generator waiting for a socket) does not hold the item back, yet
 * a fast one costs one send per group, not one per item (enif_send from a
 * dirty scheduler costs about a microsecond, an Erlang send a tenth of
 * that).
 *
 * erlang._stream_send(to, ref, first, item) sends one item as a group of
 * its own, for async iterators, whose items come out of an event loop.
 *
 * An exception the iterator raises (or an item with no Erlang form) does
 * not end the pump with an error: it returns the exception with the count
 * of the items sent before it, which the stream must know to send the
 * error after them. Interruptions (BaseException) propagate.
 *
 * Each pump (and each _stream_send) has a sender: where its items go, and
 * the group being made. The senders of all pumps running are listed for
 * the flusher, a thread
 * started by the first pump, which sleeps until the oldest pending item is
 * due, or, with none pending, until a pump signals its first.
 *
 * Locking: `lock` (the flusher's) guards the list and the flusher's state;
 * a sender's lock guards its group. The flusher takes a sender's lock inside
 * its own; a pump takes either, never both, and converts each item outside
 * both (conversion may run Python code), then copies it into the group
 * under the sender's lock. No GIL is taken by the flusher.
 */
#include "stream.h"

#include "atoms.h"
#include "clock.h"
#include "context.h"
#include "convert.h"
#include "errors.h"
#include "module_state.h"
#include "process.h"
#include "worker.h"

#include <stdatomic.h>

#define MAX_GROUP 1024
#define FLUSH_NS (1000 * 1000LL)

/* Where one pump's items go, and the group it is making. */
struct sender {
    struct sender *prev, *next; /* in the flusher's list: guarded by `lock` */
    ErlNifPid to;               /* the stream process */
    ErlNifEnv *held;            /* holds ref; never cleared */
    ERL_NIF_TERM ref;
    int64_t last_ns; /* when the pump took its last item; the pump's own */
    pthread_mutex_t lock;
    /* sender-lock-guarded: */
    ErlNifEnv *env; /* holds items, cleared by each send */
    ERL_NIF_TERM items;
    unsigned count;
    uint64_t first;        /* the stream's number of the group's first item */
    atomic_llong since_ns; /* when the oldest item came; 0 when empty */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* lock-guarded: */
static pthread_cond_t flusher_wake;
static struct sender *senders;
static int flusher_started, flusher_cond_made;
static int flusher_idle; /* waiting for a signal, with nothing pending */

/* Sends the group of items, if any. Under the sender's lock. */
static void
send_items(struct sender *b)
{
    ERL_NIF_TERM message;

    if (b->count == 0) {
        return;
    }
    message = enif_make_tuple4(b->env, ATOM(py_stream_items), enif_make_copy(b->env, b->ref),
                               enif_make_uint64(b->env, b->first), b->items);
    pyerl_send(NULL, &b->to, b->env, message);
    enif_clear_env(b->env);
    b->items = enif_make_list(b->env, 0);
    b->first += b->count;
    b->count = 0;
    atomic_store(&b->since_ns, 0);
}

static void *
flusher_main(void *unused)
{
    struct sender *b;
    int64_t now, since, earliest;
    struct timespec until;

    (void)unused;
    pthread_mutex_lock(&lock);
    for (;;) {
        now = pyerl_now_ns();
        earliest = INT64_MAX;
        for (b = senders; b; b = b->next) {
            if (!(since = atomic_load(&b->since_ns))) {
                continue;
            }
            if (now - since >= FLUSH_NS) {
                pthread_mutex_lock(&b->lock);
                send_items(b);
                pthread_mutex_unlock(&b->lock);
            } else if (since < earliest) {
                earliest = since;
            }
        }
        if (earliest == INT64_MAX) {
            flusher_idle = 1;
            pthread_cond_wait(&flusher_wake, &lock);
            flusher_idle = 0;
        } else {
            until = pyerl_timespec_at(earliest + FLUSH_NS);
            pthread_cond_timedwait(&flusher_wake, &lock, &until);
        }
    }
    return NULL;
}

/* A group's first item came: the flusher, if it waits with nothing
 * pending, must now wait for it. No lock held. */
static void
wake_flusher(void)
{
    pthread_mutex_lock(&lock);
    if (flusher_idle) {
        pthread_cond_signal(&flusher_wake);
    }
    pthread_mutex_unlock(&lock);
}

/* Lists b for the flusher, starting it the first time. Returns 0, or -1
 * if the thread cannot be started (b is not listed). */
static int
list_sender(struct sender *b)
{
    pthread_attr_t attr;
    pthread_t thread;
    int rc = 0;

    pthread_mutex_lock(&lock);
    if (!flusher_cond_made) {
        flusher_cond_made = pyerl_monotonic_condattr() &&
                            pthread_cond_init(&flusher_wake, pyerl_monotonic_condattr()) == 0;
    }
    if (!flusher_started) {
        if (!flusher_cond_made || pthread_attr_init(&attr) != 0) {
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
        b->next = senders;
        if (senders) {
            senders->prev = b;
        }
        senders = b;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static void
unlist_sender(struct sender *b)
{
    pthread_mutex_lock(&lock);
    if (b->prev) {
        b->prev->next = b->next;
    } else {
        senders = b->next;
    }
    if (b->next) {
        b->next->prev = b->prev;
    }
    pthread_mutex_unlock(&lock);
}

/* Readies b for items of to's stream ref from item number first (Python
 * objects). Returns 1, or 0 with an exception set. */
static int
sender_open(struct sender *b, PyObject *to, PyObject *ref, PyObject *first)
{
    ERL_NIF_TERM to_term;

    *b = (struct sender){.items = 0};
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
    b->first = PyLong_AsUnsignedLongLong(first);
    if (PyErr_Occurred()) {
        return 0;
    }
    b->items = enif_make_list(b->env, 0);
    return 1;
}

/* Sends what is left and frees b, opened or not. No longer listed. */
static void
sender_close(struct sender *b)
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
 * 0 with an exception set (item has no Erlang form, or this is a forked
 * child). GIL held. */
static int
sender_add(struct sender *b, const struct pyerl_conv *cv, ErlNifEnv *scratch, PyObject *item)
{
    int64_t now = pyerl_now_ns();
    int first_of_group, slow = now - b->last_ns > FLUSH_NS;
    ERL_NIF_TERM term;

    b->last_ns = now;
    if (pyerl_in_forked_child()) {
        pyerl_set_forked_child_error("a stream");
        return 0;
    }
    if (!pyerl_py_to_term(cv, scratch, item, &term, "item")) {
        enif_clear_env(scratch);
        return 0;
    }
    pthread_mutex_lock(&b->lock);
    b->items = enif_make_list_cell(b->env, enif_make_copy(b->env, term), b->items);
    if ((first_of_group = b->count++ == 0)) {
        atomic_store(&b->since_ns, now);
    }
    if (b->count == MAX_GROUP || slow) {
        send_items(b);
        first_of_group = 0;
    }
    pthread_mutex_unlock(&b->lock);
    enif_clear_env(scratch);
    if (first_of_group) {
        wake_flusher();
    }
    return 1;
}

PyObject *
pyerl_stream_pump(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyerl_conv cv = {.ctx = pyerl_module_ctx(module)};
    struct sender b;
    ErlNifEnv *scratch = NULL;
    Py_ssize_t limit, sent = 0;
    PyObject *item, *failure = NULL;
    int ok, listed = 0;

    if (!cv.ctx) {
        return NULL;
    }
    if (nargs != 5 || !PyIter_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_stream_pump(iterator, limit, to, ref, first)");
        return NULL;
    }
    if ((limit = PyLong_AsSsize_t(args[1])) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "_stream_pump: limit must be >= 0");
        }
        return NULL;
    }
    ok = sender_open(&b, args[2], args[3], args[4]) && (scratch = enif_alloc_env());
    if (ok && !(listed = list_sender(&b) == 0)) {
        PyErr_SetString(PyExc_RuntimeError, "cannot start the stream flusher thread");
        ok = 0;
    }
    b.last_ns = pyerl_now_ns();
    while (ok && sent < limit && (item = PyIter_Next(args[0]))) {
        ok = sender_add(&b, &cv, scratch, item);
        Py_DECREF(item);
        sent += ok;
    }
    if (listed) {
        unlist_sender(&b);
    }
    sender_close(&b);
    if (scratch) {
        enif_free_env(scratch);
    }
    /* An Exception is the iterator's failure; an interruption propagates. */
    if (listed && PyErr_Occurred() &&
        !(PyErr_ExceptionMatches(PyExc_Exception) && (failure = pyerl_take_exception()))) {
        return NULL;
    }
    if (!ok && !failure) {
        return NULL;
    }
    /* Ended when the iterator ran out before the limit. */
    return failure ? Py_BuildValue("(nN)", sent, failure)
                   : Py_BuildValue("(nO)", sent, sent < limit ? Py_True : Py_False);
}

PyObject *
pyerl_stream_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    struct pyerl_conv cv = {.ctx = pyerl_module_ctx(module)};
    struct sender b;
    ErlNifEnv *scratch = NULL;
    int ok;

    if (!cv.ctx) {
        return NULL;
    }
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "_stream_send(to, ref, first, item)");
        return NULL;
    }
    ok = sender_open(&b, args[0], args[1], args[2]) && (scratch = enif_alloc_env()) &&
         sender_add(&b, &cv, scratch, args[3]);
    sender_close(&b);
    if (scratch) {
        enif_free_env(scratch);
    }
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}
