/*
 * channel.h: channels, queues of Erlang terms that Python receives
 * (channel.c); erlang.Channel's methods are channel_type.c's.
 */
#ifndef PYERL_CHANNEL_H
#define PYERL_CHANNEL_H

#include "common.h"

/* A channel: a resource, shared by the Erlang terms that name it and the
 * erlang.Channel objects that hold it. */
struct pyerl_channel;

/* One message taken from a channel: term lives in env, which the taker
 * owns until pyerl_channel_message_done. */
struct pyerl_channel_message {
    ErlNifEnv *env;
    ERL_NIF_TERM term;
    void *node; /* the queue's, for pyerl_channel_message_done */
};

/* erlang.Channel's instances: a Python object holding one channel. */
struct pyerl_channel_object {
    PyObject_HEAD struct pyerl_channel *channel; /* a resource reference, kept */
};

/* Opens the resource type, then makes it the one new channels get, once
 * the load cannot fail any more (generations.h); from load and upgrade.
 * Init returns 0 or -1. */
int pyerl_channel_init(ErlNifEnv *env);
void pyerl_channel_commit(void);

/* The channel term is, or NULL. Any thread, no GIL. */
struct pyerl_channel *pyerl_channel_get(ErlNifEnv *env, ERL_NIF_TERM term);

/* The term naming the channel, made in env. Any thread. */
ERL_NIF_TERM pyerl_channel_term(ErlNifEnv *env, struct pyerl_channel *channel);

/* What pyerl_channel_take found. */
enum pyerl_channel_taken {
    PYERL_CHANNEL_MESSAGE, /* *out holds the next message */
    PYERL_CHANNEL_EMPTY,   /* nothing yet; with wait set, the caller now waits */
    PYERL_CHANNEL_CLOSED,  /* closed, and every message received */
    PYERL_CHANNEL_NO_FD,   /* nothing yet, and no eventfd to wait on (errno) */
};

/* Takes the next message. When there is none and wait is set, the caller
 * becomes a waiter: it polls pyerl_channel_fd (readable once a message
 * comes or the channel closes), then calls pyerl_channel_wait_end, and
 * takes again. Any thread, no lock held; never blocks. */
enum pyerl_channel_taken pyerl_channel_take(struct pyerl_channel *channel, int wait,
                                            struct pyerl_channel_message *out);
void pyerl_channel_wait_end(struct pyerl_channel *channel);

/* Hands a taken message's env back. Any thread. */
void pyerl_channel_message_done(struct pyerl_channel *channel, struct pyerl_channel_message *msg);

/* The eventfd waiters poll: readable while a waiter could take something
 * (a message, or the end). Valid while the channel lives. */
int pyerl_channel_fd(const struct pyerl_channel *channel);

/* Closes the channel: no message is queued after this; those queued are
 * still taken. Returns 1 if this closed it, 0 if it was closed. Any thread. */
int pyerl_channel_close(struct pyerl_channel *channel);

/* How many messages wait, and whether it is closed. Any thread. */
void pyerl_channel_state(struct pyerl_channel *channel, size_t *size, int *closed);

/* A new erlang.Channel of type holding channel, or NULL with an exception
 * set. GIL held. */
PyObject *pyerl_channel_object_new(PyTypeObject *type, struct pyerl_channel *channel);

/* erlang.Channel's tp_dealloc, which also tells its instances (of any
 * module instance) apart. */
void pyerl_channel_object_dealloc(PyObject *self);

/* The channel obj holds if it is an erlang.Channel, else NULL. GIL held. */
struct pyerl_channel *pyerl_channel_of_object(PyObject *obj);

/* py_nif:channel_new(MaxSize, Owner): MaxSize 0 is no bound. */
ERL_NIF_TERM pyerl_nif_channel_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
/* py_nif:channel_send(Channel, Term) -> ok | busy | {error, closed}. */
ERL_NIF_TERM pyerl_nif_channel_send(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
/* py_nif:channel_close(Channel) -> ok. */
ERL_NIF_TERM pyerl_nif_channel_close(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
/* py_nif:channel_info(Channel) -> #{size, max_size, closed, waiting}. */
ERL_NIF_TERM pyerl_nif_channel_info(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
/* py_nif:is_channel(Term) -> boolean(). */
ERL_NIF_TERM pyerl_nif_is_channel(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
