/*
 * channel_type.c: erlang.Channel, the Python side of a channel
 * (channel.c): receive, try_receive, iteration, close; async_receive and
 * async iteration are the module's Python half's (priv/erlang_async.py),
 * built on _take_or_wait here and the _ChannelWait it gives a coroutine
 * that must wait.
 *
 * A receive with nothing to take waits with the GIL released, polling the
 * channel's eventfd, and, when the thread runs a call from Erlang, an
 * eventfd of its own that the watchdog writes when the call is
 * interrupted (interrupt.h): a timeout or a dead caller ends the wait at
 * once with erlang.CallInterrupted. Messages are converted as py:call's
 * arguments are, in the context of the module that made the type.
 */
#include "channel_type.h"

#include "channel.h"
#include "clock.h"
#include "context.h"
#include "convert.h"
#include "interrupt.h"
#include "module_state.h"
#include "process.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static struct pyerl_channel *
channel_of(PyObject *self)
{
    return ((struct pyerl_channel_object *)self)->channel;
}

/* The state of the module whose type self is of. */
static struct pyerl_module_state *
state_of(PyObject *self)
{
    PyObject *module = PyType_GetModule(Py_TYPE(self));

    return module ? PyModule_GetState(module) : NULL;
}

/* The message, converted; its env is handed back either way. */
static PyObject *
convert_message(PyObject *self, struct pyerl_channel_message *msg)
{
    struct pyerl_conv cv = {.ctx = pyerl_module_ctx(PyType_GetModule(Py_TYPE(self)))};
    PyObject *value = cv.ctx ? pyerl_term_to_py(&cv, msg->env, msg->term, "message") : NULL;

    pyerl_channel_message_done(channel_of(self), msg);
    return value;
}

static PyObject *
raise_closed(PyObject *self)
{
    struct pyerl_module_state *st = state_of(self);

    PyErr_SetString(st && st->channel_closed ? st->channel_closed : PyExc_RuntimeError,
                    "the channel is closed and empty");
    return NULL;
}

/* Whether this is a forked child, where Erlang is out of reach: then with
 * the error set. */
static int
forked(void)
{
    if (pyerl_in_forked_child()) {
        pyerl_set_forked_child_error("erlang.Channel");
        return 1;
    }
    return 0;
}

/* Polls the channel's fd, and wake_fd if >= 0, until one is readable or
 * deadline_ns passes. Returns 0, or -1 with errno set if poll fails. The
 * GIL released by the caller. */
static int
poll_channel(struct pyerl_channel *channel, int wake_fd, int64_t deadline_ns)
{
    struct pollfd fds[2] = {{.fd = pyerl_channel_fd(channel), .events = POLLIN},
                            {.fd = wake_fd, .events = POLLIN}};
    int64_t left_ms;
    int rc;

    do {
        if (deadline_ns == INT64_MAX) {
            left_ms = -1;
        } else if ((left_ms = (deadline_ns - pyerl_now_ns() + 999999) / 1000000) <= 0) {
            return 0; /* rounded up: never wakes early */
        }
        rc = poll(fds, wake_fd >= 0 ? 2 : 1, left_ms > INT32_MAX ? INT32_MAX : (int)left_ms);
    } while (rc == 0 || (rc < 0 && errno == EINTR));
    return rc < 0 ? -1 : 0;
}

/* Waits for the next message until deadline_ns (INT64_MAX: no limit).
 * Returns it, or NULL with ChannelClosed, TimeoutError, CallInterrupted or
 * OSError set. GIL held, released while it waits. */
static PyObject *
receive_until(PyObject *self, int64_t deadline_ns)
{
    struct pyerl_channel *channel = channel_of(self);
    struct pyerl_inflight *call = pyerl_inflight_current();
    struct pyerl_channel_message msg;
    int wake_fd = -1, old_fd = -1, interrupted = 0, waiting, rc = 0, poll_errno = 0;
    PyObject *value = NULL;

    if (forked()) {
        return NULL;
    }
    for (;;) {
        waiting = pyerl_now_ns() < deadline_ns;
        switch (pyerl_channel_take(channel, waiting, &msg)) {
        case PYERL_CHANNEL_MESSAGE:
            value = convert_message(self, &msg);
            goto out;
        case PYERL_CHANNEL_CLOSED:
            raise_closed(self);
            goto out;
        case PYERL_CHANNEL_NO_FD:
            PyErr_SetFromErrno(PyExc_OSError);
            goto out;
        case PYERL_CHANNEL_EMPTY:
            break;
        }
        if (!waiting) {
            PyErr_SetString(PyExc_TimeoutError, "no message came in time");
            goto out;
        }
        if (call && wake_fd < 0) {
            /* The first wait of this receive: from now on an interruption
             * of the call writes wake_fd, and one that came before is seen
             * below. */
            if ((wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
                pyerl_channel_wait_end(channel);
                PyErr_SetFromErrno(PyExc_OSError);
                goto out;
            }
            old_fd = pyerl_inflight_exchange_wake_fd(call, wake_fd);
        }
        if (call && pyerl_inflight_interrupted(call)) {
            interrupted = 1;
        } else {
            Py_BEGIN_ALLOW_THREADS
            rc = poll_channel(channel, wake_fd, deadline_ns);
            poll_errno = errno;
            Py_END_ALLOW_THREADS
            interrupted = call && pyerl_inflight_interrupted(call);
        }
        pyerl_channel_wait_end(channel);
        if (interrupted) {
            pyerl_inflight_disarm(call);
            PyErr_SetNone(call->ctx->state->call_interrupted);
            goto out;
        }
        if (rc < 0) {
            errno = poll_errno;
            PyErr_SetFromErrno(PyExc_OSError);
            goto out;
        }
    }
out:
    if (wake_fd >= 0) {
        pyerl_inflight_exchange_wake_fd(call, old_fd);
        close(wake_fd);
    }
    return value;
}

/* Channel.receive(timeout=None). */
static PyObject *
channel_receive(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    int64_t deadline_ns = INT64_MAX;
    double seconds;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:receive", keywords, &timeout)) {
        return NULL;
    }
    if (timeout != Py_None) {
        seconds = PyFloat_AsDouble(timeout);
        if (seconds == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        if (isnan(seconds) || seconds < 0) {
            PyErr_SetString(PyExc_ValueError, "timeout must be a non-negative number or None");
            return NULL;
        }
        if (seconds < 1e9) {
            deadline_ns = pyerl_now_ns() + (int64_t)(seconds * 1e9);
        }
    }
    return receive_until(self, deadline_ns);
}

/* Channel.try_receive(): the next message, or None. */
static PyObject *
channel_try_receive(PyObject *self, PyObject *unused)
{
    struct pyerl_channel_message msg;

    (void)unused;
    if (forked()) {
        return NULL;
    }
    switch (pyerl_channel_take(channel_of(self), 0, &msg)) {
    case PYERL_CHANNEL_MESSAGE:
        return convert_message(self, &msg);
    case PYERL_CHANNEL_CLOSED:
        return raise_closed(self);
    default:
        Py_RETURN_NONE;
    }
}

/* ---- a coroutine's wait ----------------------------------------------- */

/* What Channel._take_or_wait gives a coroutine that must wait: it holds the
 * channel's waiter count up until closed (or dropped), once, whatever the
 * coroutine does. */
struct channel_wait {
    PyObject_HEAD PyObject *channel; /* the erlang.Channel; strong */
    int waiting;
};

static void
wait_end(struct channel_wait *w)
{
    if (w->waiting) {
        w->waiting = 0;
        pyerl_channel_wait_end(channel_of(w->channel));
    }
}

static void
channel_wait_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    struct channel_wait *w = (struct channel_wait *)self;

    wait_end(w);
    Py_CLEAR(w->channel);
    PyObject_Free(self);
    Py_DECREF(type);
}

static PyObject *
channel_wait_fileno(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(pyerl_channel_fd(channel_of(((struct channel_wait *)self)->channel)));
}

static PyObject *
channel_wait_close(PyObject *self, PyObject *unused)
{
    (void)unused;
    wait_end((struct channel_wait *)self);
    Py_RETURN_NONE;
}

static PyMethodDef channel_wait_methods[] = {
    {"fileno", channel_wait_fileno, METH_NOARGS,
     "The eventfd to watch: readable once something may be taken."},
    {"close", channel_wait_close, METH_NOARGS, "Ends the wait (once; later calls do nothing)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot channel_wait_slots[] = {
    {Py_tp_dealloc, channel_wait_dealloc},
    {Py_tp_methods, channel_wait_methods},
    {Py_tp_doc, "A coroutine's wait on an erlang.Channel; used by async_receive."},
    {0, NULL},
};

static PyType_Spec channel_wait_spec = {
    .name = "erlang._ChannelWait",
    .basicsize = sizeof(struct channel_wait),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = channel_wait_slots,
};

/* Channel._take_or_wait(): (True, message), or (False, wait) after making
 * the caller a waiter: wait.fileno() becomes readable once something may be
 * taken, and wait.close() ends the wait. For async_receive. */
static PyObject *
channel_take_or_wait(PyObject *self, PyObject *unused)
{
    struct pyerl_module_state *st = state_of(self);
    struct pyerl_channel_message msg;
    struct channel_wait *w;
    PyObject *value;

    (void)unused;
    if (forked()) {
        return NULL;
    }
    if (!st || !st->channel_wait_type) {
        PyErr_SetString(PyExc_RuntimeError, "the erlang module is gone");
        return NULL;
    }
    /* Made first, so that nothing can fail once the caller waits. */
    if (!(w = PyObject_New(struct channel_wait, st->channel_wait_type))) {
        return NULL;
    }
    w->channel = Py_NewRef(self);
    w->waiting = 0;
    switch (pyerl_channel_take(channel_of(self), 1, &msg)) {
    case PYERL_CHANNEL_MESSAGE:
        Py_DECREF(w);
        value = convert_message(self, &msg);
        return value ? Py_BuildValue("(ON)", Py_True, value) : NULL;
    case PYERL_CHANNEL_CLOSED:
        Py_DECREF(w);
        return raise_closed(self);
    case PYERL_CHANNEL_NO_FD:
        Py_DECREF(w);
        return PyErr_SetFromErrno(PyExc_OSError);
    default:
        w->waiting = 1;
        return Py_BuildValue("(ON)", Py_False, (PyObject *)w);
    }
}

static PyObject *
channel_close(PyObject *self, PyObject *unused)
{
    (void)unused;
    if (forked()) {
        return NULL;
    }
    pyerl_channel_close(channel_of(self));
    Py_RETURN_NONE;
}

/* The module's Python half's function name, called with self. */
static PyObject *
call_python_half(PyObject *self, const char *name)
{
    PyObject *module = PyType_GetModule(Py_TYPE(self));
    PyObject *function = module ? PyObject_GetAttrString(module, name) : NULL;
    PyObject *result = function ? PyObject_CallOneArg(function, self) : NULL;

    Py_XDECREF(function);
    return result;
}

static PyObject *
channel_async_receive(PyObject *self, PyObject *unused)
{
    (void)unused;
    return call_python_half(self, "_channel_receive");
}

static PyObject *
channel_anext(PyObject *self)
{
    return call_python_half(self, "_channel_anext");
}

static PyObject *
channel_iternext(PyObject *self)
{
    struct pyerl_module_state *st = state_of(self);
    PyObject *value = receive_until(self, INT64_MAX);

    if (!value && st && PyErr_ExceptionMatches(st->channel_closed)) {
        PyErr_Clear(); /* the end of the iteration */
    }
    return value;
}

static PyObject *
channel_get_closed(PyObject *self, void *closure)
{
    size_t size;
    int closed;

    (void)closure;
    pyerl_channel_state(channel_of(self), &size, &closed);
    return PyBool_FromLong(closed);
}

/* A channel is true, empty or not (len() alone would make an empty one
 * false). */
static int
channel_bool(PyObject *self)
{
    (void)self;
    return 1;
}

static Py_ssize_t
channel_length(PyObject *self)
{
    size_t size;
    int closed;

    pyerl_channel_state(channel_of(self), &size, &closed);
    return (Py_ssize_t)size;
}

static PyObject *
channel_repr(PyObject *self)
{
    size_t size;
    int closed;

    pyerl_channel_state(channel_of(self), &size, &closed);
    return PyUnicode_FromFormat("<erlang.Channel %s, %zu queued>", closed ? "closed" : "open",
                                size);
}

static PyMethodDef channel_methods[] = {
    {"receive", (PyCFunction)(void (*)(void))channel_receive, METH_VARARGS | METH_KEYWORDS,
     "receive(timeout=None)\n--\n\nThe next message. Waits, with the GIL released, until one "
     "comes; raises TimeoutError if timeout seconds pass first, and erlang.ChannelClosed once "
     "the channel is closed and every message received."},
    {"try_receive", channel_try_receive, METH_NOARGS,
     "try_receive()\n--\n\nThe next message, or None if none is waiting. Raises "
     "erlang.ChannelClosed once the channel is closed and every message received."},
    {"async_receive", channel_async_receive, METH_NOARGS,
     "async_receive()\n--\n\nAwaitable: receive() for asyncio, which lets the event loop run "
     "while it waits."},
    {"close", channel_close, METH_NOARGS,
     "close()\n--\n\nCloses the channel: Erlang's sends fail from now on; the messages already "
     "queued are still received."},
    {"_take_or_wait", channel_take_or_wait, METH_NOARGS, "Used by async_receive."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef channel_getset[] = {
    {"closed", channel_get_closed, NULL, "Whether the channel is closed.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot channel_slots[] = {
    {Py_tp_dealloc, pyerl_channel_object_dealloc},
    {Py_tp_repr, channel_repr},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, channel_iternext},
    {Py_am_aiter, PyObject_SelfIter},
    {Py_am_anext, channel_anext},
    {Py_sq_length, channel_length},
    {Py_nb_bool, channel_bool},
    {Py_tp_methods, channel_methods},
    {Py_tp_getset, channel_getset},
    {Py_tp_doc, "A channel from Erlang (py_channel:new/0,1), received as an argument.\n\n"
                "Erlang sends with py_channel:send/2; Python receives, in order, each message "
                "once: receive(), try_receive(), await async_receive(), `for` and `async for` "
                "(which end once the channel is closed and empty)."},
    {0, NULL},
};

static PyType_Spec channel_spec = {
    .name = "erlang.Channel",
    .basicsize = sizeof(struct pyerl_channel_object),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = channel_slots,
};

int
pyerl_channel_type_add(PyObject *module, struct pyerl_module_state *st)
{
    st->channel_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &channel_spec, NULL);
    st->channel_wait_type =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &channel_wait_spec, NULL);
    if (!st->channel_type || !st->channel_wait_type) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "Channel", (PyObject *)st->channel_type);
}
