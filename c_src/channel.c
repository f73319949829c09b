/*
 * channel.c: channels, queues of Erlang terms that Python receives.
 *
 * A channel is a NIF resource (one of generations.c's types), so its term
 * is an Erlang reference that any process may hold and send with; Python
 * holds it through erlang.Channel objects (their methods are
 * channel_type.c's). py_nif:channel_send copies the term into an env of
 * its own and queues it, on a normal scheduler: it never waits, and a
 * channel over its bound answers `busy` instead of queueing. Python takes
 * the messages in order, each once, and converts them under its GIL.
 *
 * Waiting: a Python thread or event loop with nothing to take registers as
 * a waiter and polls the channel's eventfd, which is kept readable while a
 * waiter could take something (a message, or the end). Only waiters cost
 * the eventfd's system calls: a message queued while nobody waits writes
 * nothing, and the fd itself is made by the first wait, so that a channel
 * nobody waits on holds no descriptor. The fd is level-triggered, so any
 * number of threads and event loops may poll it; those that find the
 * message gone wait again.
 *
 * The process that owns the channel (its creator, unless told otherwise) is
 * monitored: its death closes the channel, as it would close a port. Those
 * messages already queued are still received.
 *
 * Locking: `lock` is a leaf (common.h) guarding the queue and the wait
 * state. No Python object is touched here but erlang.Channel's own struct,
 * under the GIL.
 */
#include "channel.h"

#include "atoms.h"
#include "errors.h"
#include "generations.h"
#include "process.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Cleared envs kept for the next messages, per channel. */
#define SPARE_ENVS 16

struct node {
    struct node *next;
    ErlNifEnv *env;
    ERL_NIF_TERM term;
};

struct pyerl_channel {
    size_t max_size; /* 0: no bound; set when made */
    int generation;  /* set when made */
    pthread_mutex_t lock;
    /* lock-guarded: */
    struct node *head, *tail; /* the queue, oldest first */
    struct node *spare;       /* nodes with a cleared env, for reuse */
    size_t size, spares;
    int closed;
    int waiters;           /* takers polling fd */
    int signalled;         /* fd is readable: set only while there is a message or the end */
    int fd;                /* eventfd, or -1 until the first wait */
    ErlNifMonitor monitor; /* on the owner */
};

static void channel_dtor(ErlNifEnv *env, void *arg);
static void channel_down(ErlNifEnv *env, void *arg, ErlNifPid *pid, ErlNifMonitor *monitor);

static struct pyerl_generations generations = {
    .name = "pyerl_channel",
    .init = {.dtor = channel_dtor, .down = channel_down},
};

static void
free_nodes(struct node *node)
{
    struct node *next;

    for (; node; node = next) {
        next = node->next;
        enif_free_env(node->env);
        enif_free(node);
    }
}

static void
channel_dtor(ErlNifEnv *env, void *arg)
{
    struct pyerl_channel *channel = arg;

    (void)env;
    free_nodes(channel->head);
    free_nodes(channel->spare);
    if (channel->fd >= 0) {
        close(channel->fd);
    }
    pthread_mutex_destroy(&channel->lock);
    pyerl_generations_destroyed(&generations, channel->generation);
}

/* Makes fd readable, if it exists and is not. Under lock. */
static void
signal_fd(struct pyerl_channel *channel)
{
    uint64_t one = 1;

    if (channel->fd >= 0 && !channel->signalled) {
        (void)!write(channel->fd, &one, sizeof one);
        channel->signalled = 1;
    }
}

/* Makes fd unreadable again once nothing is left to take. Under lock. */
static void
unsignal_fd(struct pyerl_channel *channel)
{
    uint64_t count;

    if (channel->signalled && !channel->head && !channel->closed) {
        (void)!read(channel->fd, &count, sizeof count);
        channel->signalled = 0;
    }
}

static int
close_locked(struct pyerl_channel *channel)
{
    if (channel->closed) {
        return 0;
    }
    channel->closed = 1;
    signal_fd(channel);
    return 1;
}

static void
channel_down(ErlNifEnv *env, void *arg, ErlNifPid *pid, ErlNifMonitor *monitor)
{
    struct pyerl_channel *channel = arg;

    (void)env;
    (void)pid;
    (void)monitor;
    pthread_mutex_lock(&channel->lock);
    close_locked(channel);
    pthread_mutex_unlock(&channel->lock);
}

int
pyerl_channel_init(ErlNifEnv *env)
{
    return pyerl_generations_open(&generations, env);
}

void
pyerl_channel_commit(void)
{
    pyerl_generations_commit(&generations);
}

struct pyerl_channel *
pyerl_channel_get(ErlNifEnv *env, ERL_NIF_TERM term)
{
    return pyerl_generations_get(&generations, env, term);
}

ERL_NIF_TERM
pyerl_channel_term(ErlNifEnv *env, struct pyerl_channel *channel)
{
    return enif_make_resource(env, channel);
}

/* ---- taking ----------------------------------------------------------- */

enum pyerl_channel_taken
pyerl_channel_take(struct pyerl_channel *channel, int wait, struct pyerl_channel_message *out)
{
    enum pyerl_channel_taken taken = PYERL_CHANNEL_EMPTY;
    struct node *node = NULL;

    pthread_mutex_lock(&channel->lock);
    if ((node = channel->head)) {
        if (!(channel->head = node->next)) {
            channel->tail = NULL;
        }
        channel->size--;
        unsignal_fd(channel);
        taken = PYERL_CHANNEL_MESSAGE;
    } else if (channel->closed) {
        taken = PYERL_CHANNEL_CLOSED;
    } else if (wait) {
        if (channel->fd < 0) {
            channel->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        }
        if (channel->fd >= 0) {
            channel->waiters++;
        } else {
            taken = PYERL_CHANNEL_NO_FD;
        }
    }
    if (node) {
        out->node = node;
        out->env = node->env;
        out->term = node->term;
    }
    pthread_mutex_unlock(&channel->lock);
    return taken;
}

void
pyerl_channel_wait_end(struct pyerl_channel *channel)
{
    pthread_mutex_lock(&channel->lock);
    channel->waiters--;
    pthread_mutex_unlock(&channel->lock);
}

int
pyerl_channel_fd(const struct pyerl_channel *channel)
{
    return channel->fd;
}

void
pyerl_channel_message_done(struct pyerl_channel *channel, struct pyerl_channel_message *msg)
{
    struct node *node = msg->node;

    enif_clear_env(node->env);
    pthread_mutex_lock(&channel->lock);
    if (channel->spares < SPARE_ENVS) {
        node->next = channel->spare;
        channel->spare = node;
        channel->spares++;
        node = NULL;
    }
    pthread_mutex_unlock(&channel->lock);
    if (node) {
        enif_free_env(node->env);
        enif_free(node);
    }
    msg->node = NULL;
}

/* ---- state ------------------------------------------------------------ */

int
pyerl_channel_close(struct pyerl_channel *channel)
{
    int closed;

    pthread_mutex_lock(&channel->lock);
    closed = close_locked(channel);
    pthread_mutex_unlock(&channel->lock);
    return closed;
}

void
pyerl_channel_state(struct pyerl_channel *channel, size_t *size, int *closed)
{
    pthread_mutex_lock(&channel->lock);
    *size = channel->size;
    *closed = channel->closed;
    pthread_mutex_unlock(&channel->lock);
}

/* ---- erlang.Channel's instances --------------------------------------- */

PyObject *
pyerl_channel_object_new(PyTypeObject *type, struct pyerl_channel *channel)
{
    struct pyerl_channel_object *self = PyObject_New(struct pyerl_channel_object, type);

    if (self) {
        enif_keep_resource(channel);
        self->channel = channel;
    }
    return (PyObject *)self;
}

void
pyerl_channel_object_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);

    /* The last reference may end the channel here: its destructor takes
     * no GIL and does not block. Not in a forked child, which must not
     * touch ERTS: there the channel stays. */
    if (!pyerl_in_forked_child()) {
        enif_release_resource(((struct pyerl_channel_object *)self)->channel);
    }
    PyObject_Free(self);
    Py_DECREF(type);
}

struct pyerl_channel *
pyerl_channel_of_object(PyObject *obj)
{
    return Py_TYPE(obj)->tp_dealloc == pyerl_channel_object_dealloc
               ? ((struct pyerl_channel_object *)obj)->channel
               : NULL;
}

/* ---- the NIFs --------------------------------------------------------- */

ERL_NIF_TERM
pyerl_nif_channel_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_channel *channel;
    ErlNifUInt64 max_size;
    ErlNifPid owner;
    ERL_NIF_TERM term;
    int generation;

    (void)argc;
    if (!enif_get_uint64(env, argv[0], &max_size) || max_size > SIZE_MAX) {
        return pyerl_badarg(env, "max_size");
    }
    if (!enif_get_local_pid(env, argv[1], &owner)) {
        return pyerl_badarg(env, "owner");
    }
    if (!(channel = pyerl_generations_alloc(&generations, sizeof *channel, &generation))) {
        return enif_raise_exception(env, ATOM(enomem));
    }
    *channel = (struct pyerl_channel){.max_size = max_size, .generation = generation, .fd = -1};
    /* Default attributes: glibc's pthread_mutex_init does not fail. */
    pthread_mutex_init(&channel->lock, NULL);
    /* An owner already dead leaves the channel closed from the start. */
    channel->closed = enif_monitor_process(env, channel, &owner, &channel->monitor) != 0;
    term = enif_make_resource(env, channel);
    enif_release_resource(channel);
    return term;
}

ERL_NIF_TERM
pyerl_nif_channel_send(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_channel *channel = pyerl_channel_get(env, argv[0]);
    struct node *node = NULL;
    ERL_NIF_TERM answer = ATOM(ok);

    (void)argc;
    if (!channel) {
        return pyerl_badarg(env, "channel");
    }
    /* Checked before the copy, so that a full or closed channel costs no
     * copy, and again after it, since other senders may have come. */
    pthread_mutex_lock(&channel->lock);
    if (channel->closed) {
        answer = enif_make_tuple2(env, ATOM(error), ATOM(closed));
    } else if (channel->max_size && channel->size >= channel->max_size) {
        answer = ATOM(busy);
    } else if ((node = channel->spare)) {
        channel->spare = node->next;
        channel->spares--;
    }
    pthread_mutex_unlock(&channel->lock);
    if (answer != ATOM(ok)) {
        return answer;
    }
    if (!node) {
        if (!(node = enif_alloc(sizeof *node)) || !(node->env = enif_alloc_env())) {
            enif_free(node);
            return enif_raise_exception(env, ATOM(enomem));
        }
    }
    node->term = enif_make_copy(node->env, argv[1]);
    node->next = NULL;

    pthread_mutex_lock(&channel->lock);
    if (channel->closed) {
        answer = enif_make_tuple2(env, ATOM(error), ATOM(closed));
    } else if (channel->max_size && channel->size >= channel->max_size) {
        answer = ATOM(busy);
    } else {
        if (channel->tail) {
            channel->tail->next = node;
        } else {
            channel->head = node;
        }
        channel->tail = node;
        channel->size++;
        if (channel->waiters) {
            signal_fd(channel);
        }
        node = NULL;
    }
    pthread_mutex_unlock(&channel->lock);
    if (node) {
        struct pyerl_channel_message unsent = {.node = node};

        pyerl_channel_message_done(channel, &unsent);
    }
    return answer;
}

ERL_NIF_TERM
pyerl_nif_channel_close(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_channel *channel = pyerl_channel_get(env, argv[0]);

    (void)argc;
    if (!channel) {
        return pyerl_badarg(env, "channel");
    }
    pyerl_channel_close(channel);
    return ATOM(ok);
}

ERL_NIF_TERM
pyerl_nif_channel_info(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct pyerl_channel *channel = pyerl_channel_get(env, argv[0]);
    ERL_NIF_TERM keys[4] = {ATOM(size), ATOM(max_size), ATOM(closed), ATOM(waiting)};
    ERL_NIF_TERM values[4], map;
    size_t size;
    int closed, waiting;

    (void)argc;
    if (!channel) {
        return pyerl_badarg(env, "channel");
    }
    pthread_mutex_lock(&channel->lock);
    size = channel->size;
    closed = channel->closed;
    waiting = channel->waiters;
    pthread_mutex_unlock(&channel->lock);
    values[0] = enif_make_uint64(env, size);
    values[1] = channel->max_size ? enif_make_uint64(env, channel->max_size) : ATOM(infinity);
    values[2] = closed ? ATOM(true) : ATOM(false);
    values[3] = enif_make_int(env, waiting);
    enif_make_map_from_arrays(env, keys, values, 4, &map);
    return map;
}

ERL_NIF_TERM
pyerl_nif_is_channel(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    return pyerl_channel_get(env, argv[0]) ? ATOM(true) : ATOM(false);
}
