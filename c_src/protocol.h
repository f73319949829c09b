/*
 * protocol.h: the messages between a Python thread's worker (worker.c) and
 * the Erlang processes that serve it. src/py_protocol.hrl is the same
 * table for the Erlang side; change both together.
 *
 * Requests, from a Python thread to its handler (py_handler), made and sent
 * by worker.c. Worker is the worker resource, through which the handler
 * answers; Frame is what the function is told of the call it runs in (see
 * struct pyerl_frame below).
 *
 *   {erlang_call, Worker, Serial, Name, Args, Frame}
 *       erlang.call(Name, *Args): the thread waits. Answered by
 *       py_nif:worker_reply(Worker, Serial, Reply).
 *   {erlang_async_call, Worker, Id, Name, Args, Frame}
 *       erlang.async_call(Name, *Args): the thread goes on. Answered by
 *       py_nif:worker_async_reply(Worker, Id, Reply).
 *   {erlang_async_cancel, Worker, Id}
 *       async call Id is no longer awaited (its future was cancelled).
 *
 * A worker with no handler yet sends the request to the coordinator
 * instead, wrapped as {unbound_request, Request}; the coordinator binds a
 * handler (py_nif:worker_bind/2) and forwards the request to it.
 *
 * Replies, the third argument of worker_reply and worker_async_reply,
 * decoded by callback.c:
 *
 *   {ok, Value}                              the function returned Value
 *   {error, Class, Reason, Text, Stack}      it raised; Text is the reason
 *                                            as Erlang prints it, Stack a
 *                                            list of binaries
 *   {unknown, Name}                          no function is registered
 *                                            under Name
 *   {error, handler_died}                    made by worker.c itself, when
 *                                            the handler died unanswered
 */
#ifndef PYERL_PROTOCOL_H
#define PYERL_PROTOCOL_H

#include "common.h"

/* A call's frame: the Python -> Erlang -> Python nesting it runs at (0 for
 * a call from plain Erlang) and, when its sys.stdout and sys.stderr write
 * to an Erlang group leader, the process whose group leader that is (a
 * local process, the one that made the outermost call, where the group
 * leader itself may be of another node). As a term, Depth or
 * {Depth, Pid}: the next-to-last argument of every call NIF (py.erl), and
 * the last element of a request, whose function's own calls inherit it
 * (py_handler). */
struct pyerl_frame {
    int depth;
    int has_output;
    ErlNifPid output; /* if has_output */
};

#define PYERL_REQUEST_ARITY 6 /* erlang_call and erlang_async_call */
#define PYERL_REPLY_ERROR_ARITY 5

/* Positions in {error, Class, Reason, Text, Stack}. */
enum pyerl_reply_error { PYERL_ERR_CLASS = 1, PYERL_ERR_REASON, PYERL_ERR_TEXT, PYERL_ERR_STACK };

#endif
