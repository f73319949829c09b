/*
 * worker.h: thread workers, the channel through which a Python thread
 * sends requests to Erlang and waits for their answers (worker.c). The
 * messages are in protocol.h.
 */
#ifndef PYERL_WORKER_H
#define PYERL_WORKER_H

#include "common.h"
#include "protocol.h"

struct pyerl_inflight;
struct pyerl_worker;

#define PYERL_WORKER_NOT_RUNNING (-1)
#define PYERL_WORKER_INTERRUPTED (-2)
#define PYERL_WORKER_FAILED (-3)

/* Opens the resource type and the thread key; from load and upgrade.
 * Returns 0 or -1. */
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

/* A request of the thread's uses the worker's envs from the first term of
 * its arguments to the last of its reply. Python code that runs meanwhile
 * on the same thread (a __del__ during a conversion, a print in it) must
 * not make another, which would clear them: begin_use returns 0 then, and
 * 1 once it has marked the worker in use until end_use. Bound thread
 * only. */
int pyerl_worker_begin_use(struct pyerl_worker *w);
void pyerl_worker_end_use(struct pyerl_worker *w);

/* Sends an erlang_call request (Name and Args made in the worker's env) to
 * the worker's handler and waits for the reply with the GIL released (GIL
 * held on entry and on return). Returns 0 with the reply in *reply (in
 * *reply_env, valid until the thread's next request),
 * PYERL_WORKER_NOT_RUNNING if the application is not running,
 * PYERL_WORKER_INTERRUPTED if call (the thread's in-flight call, or NULL)
 * was interrupted meanwhile, or PYERL_WORKER_FAILED if waiting failed
 * (errno set). caller_env is the calling process's env on a dirty
 * scheduler, else NULL. */
int pyerl_worker_call(struct pyerl_worker *w, ErlNifEnv *caller_env, ERL_NIF_TERM name,
                      ERL_NIF_TERM args, const struct pyerl_frame *frame,
                      struct pyerl_inflight *call, ERL_NIF_TERM *reply, ErlNifEnv **reply_env);

/* The worker's eventfd: readable when a reply or an async answer waits. */
int pyerl_worker_fd(struct pyerl_worker *w);

/* Sends an erlang_async_call request to the handler without waiting; *id
 * is the call's id, unique for the worker's life. Returns 0 or
 * PYERL_WORKER_NOT_RUNNING. Bound thread only. */
int pyerl_worker_async_send(struct pyerl_worker *w, ErlNifEnv *caller_env, ERL_NIF_TERM name,
                            ERL_NIF_TERM args, const struct pyerl_frame *frame, uint64_t *id);

/* Sends erlang_async_cancel to the handler (or through the coordinator):
 * async call id is no longer awaited. */
void pyerl_worker_async_cancel(struct pyerl_worker *w, ErlNifEnv *caller_env, uint64_t id);

/* Takes every queued async answer: [{Id, Reply}] newest first, made in
 * *env (valid until the next take), and in *lost_upto the highest id whose
 * handler died unanswered since the last take (0: none). Clears the
 * eventfd. Bound thread only. */
ERL_NIF_TERM pyerl_worker_async_take(struct pyerl_worker *w, ErlNifEnv **env, uint64_t *lost_upto);

/* Workers bound to live threads, workers pooled for reuse, and erlang.call
 * requests answered since load. */
void pyerl_worker_counts(long *bound, long *pooled, long *served);

/* The NIFs of the coordinator and the handlers (py_nif.erl). */
ERL_NIF_TERM pyerl_nif_worker_bind(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_worker_handler(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_worker_reply(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_worker_async_reply(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
