/*
 * baseline_nif.c: no-op NIFs that the benchmark measures as baselines, so
 * that every figure can be given as a ratio to what a NIF call costs on the
 * same machine in the same run. Not part of the application.
 */
#include <erl_nif.h>

static ERL_NIF_TERM
noop(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    return enif_make_atom(env, "ok");
}

static ErlNifFunc funcs[] = {
    {"noop", 0, noop, 0},
    {"dirty_noop", 0, noop, ERL_NIF_DIRTY_JOB_IO_BOUND},
};

ERL_NIF_INIT(baseline_nif, funcs, NULL, NULL, NULL, NULL)
