/*
 * gc_notice.h: terms that send a message when the garbage collector frees
 * them (gc_notice.c): how Erlang learns that the last copy of a term is
 * gone, which plain Erlang cannot tell.
 */
#ifndef PYERL_GC_NOTICE_H
#define PYERL_GC_NOTICE_H

#include "common.h"

/* Opens the resource type (load) or takes it over (upgrade). Returns 0,
 * or -1 if it cannot be made. */
int pyerl_gc_notice_init(ErlNifEnv *env);

/* py_nif:gc_notice(Pid, Message): a new resource term which, once no term
 * refers to it any more, sends Message to Pid. */
ERL_NIF_TERM pyerl_nif_gc_notice(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
