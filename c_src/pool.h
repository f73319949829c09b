/*
 * pool.h: NIF-owned threads for the calls that do not fit on dirty
 * schedulers (pool.c).
 */
#ifndef PYERL_POOL_H
#define PYERL_POOL_H

#include "common.h"

struct pyerl_request;

/* Opens the job resource type; from load and upgrade. Returns 0 or -1. */
int pyerl_pool_init(ErlNifEnv *env);

/* Queues a copy of req for the pool and returns {queued, Ref, Job}; the
 * caller gets {Ref, Result} later unless it cancels. {error, overloaded}
 * when no thread is free and none can be started. */
ERL_NIF_TERM pyerl_pool_submit(ErlNifEnv *env, const struct pyerl_request *req);

/* cancel(Job) -> sent | cancelled. */
ERL_NIF_TERM pyerl_nif_cancel(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* set_pool_limit(N): at most N pool threads. */
ERL_NIF_TERM pyerl_nif_set_pool_limit(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* Pool figures for stats(): threads, idle threads, queued jobs, jobs run,
 * the thread limit. */
void pyerl_pool_counts(long *threads, long *idle, long *queued, long *served, long *limit);

#endif
