/*
 * contexts.h: py_context's contexts, namespaces of the main interpreter
 * or subinterpreters with their own GIL, and their NIFs (contexts.c).
 */
#ifndef PYERL_CONTEXTS_H
#define PYERL_CONTEXTS_H

#include "common.h"

struct pyerl_request;

/* Opens the handle type, then makes it current once the load cannot fail
 * (generations.h); from load and upgrade. Init returns 0 or -1. */
int pyerl_contexts_init(ErlNifEnv *env);
void pyerl_contexts_commit(void);

/* Points req (a call, eval or exec) at the context term names: its
 * interpreter, its namespace, its count of calls (run.h); module_is_main
 * says whether a call's Module is '__main__'. Returns 0 if term is no
 * context. Any thread, no GIL. */
int pyerl_context_request(ErlNifEnv *env, ERL_NIF_TERM term, struct pyerl_request *req,
                          int module_is_main);

ERL_NIF_TERM pyerl_nif_context_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_context_stop(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_context_interrupt(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_context_info(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_is_context(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM pyerl_nif_subinterp_supported(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
