/*
 * executor.h: the NIFs that run Python for Erlang, and where their work
 * runs (executor.c).
 */
#ifndef PYERL_EXECUTOR_H
#define PYERL_EXECUTOR_H

#include "common.h"

/* How many calls may run on dirty schedulers at once: the default, set by
 * the first load; a later load keeps the limit in force. */
void pyerl_executor_init(int dirty_io_schedulers);

ERL_NIF_TERM pyerl_nif_call(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_eval(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_exec(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_context_call(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_context_eval(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_context_exec(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_call_method(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_getattr(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_to_term(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_release(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_is_ref(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_set_dirty_limit(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_stats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
