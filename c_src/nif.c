/*
 * nif.c: the py_nif module's function table and its load callbacks.
 *
 * Loading starts what lives for the rest of the VM: the interpreter and
 * its main context (boot.c), the watchdog thread (interrupt.c), the thread
 * that releases dropped objects (context.c), the pool (pool.c) and the
 * resource types of jobs (pool.c), thread workers (worker.c), binaries over
 * Python buffers (buffers.c), notices of collected terms (gc_notice.c),
 * references to Python objects (objref.c), channels (channel.c) and
 * contexts (contexts.c).
 * Nothing is torn down on unload: Python cannot be restarted in a process,
 * so a reload (upgrade) picks up what is already running.
 *
 * The load info, from py_nif's on_load, is {DirtyIoSchedulers, AsyncSource}:
 * the number of dirty I/O schedulers, which ERTS does not tell NIFs, and
 * the path of priv/erlang_async.py (see async.c).
 */
#include "atoms.h"
#include "boot.h"
#include "buffers.h"
#include "callback.h"
#include "channel.h"
#include "context.h"
#include "contexts.h"
#include "convert.h"
#include "erlang_module.h"
#include "erts_access.h"
#include "executor.h"
#include "gc_notice.h"
#include "interrupt.h"
#include "objref.h"
#include "pool.h"
#include "worker.h"

#include <stdio.h>

static int
setup(ErlNifEnv *env, ERL_NIF_TERM load_info)
{
    char err[256];
    const ERL_NIF_TERM *info;
    ErlNifBinary path;
    int arity, dirty_io;

    pyerl_atoms_init(env);
    pyerl_convert_init(env);
    if (!pyerl_get_tuple(env, load_info, &arity, &info) || arity != 2 ||
        !enif_get_int(env, info[0], &dirty_io) || dirty_io < 1 ||
        !pyerl_inspect_binary(env, info[1], &path) ||
        pyerl_erlang_module_set_python_half((const char *)path.data, path.size) < 0) {
        enif_fprintf(stderr, "py_nif: load info must be {DirtyIoSchedulers, AsyncSource}\r\n");
        return 1;
    }
    if (pyerl_worker_init(env) < 0) {
        enif_fprintf(stderr, "py_nif: cannot set up thread workers\r\n");
        return 2;
    }
    if (pyerl_buffers_init(env) < 0) {
        enif_fprintf(stderr, "py_nif: cannot set up binaries over Python buffers\r\n");
        return 2;
    }
    if (pyerl_gc_notice_init(env) < 0) {
        enif_fprintf(stderr, "py_nif: cannot set up notices of collected terms\r\n");
        return 2;
    }
    if (pyerl_pool_init(env) < 0) {
        enif_fprintf(stderr, "py_nif: cannot set up the call pool\r\n");
        return 2;
    }
    if (pyerl_boot(err, sizeof err) < 0) {
        enif_fprintf(stderr, "py_nif: %s\r\n", err);
        return 3;
    }
    if (pyerl_watchdog_start() < 0) {
        enif_fprintf(stderr, "py_nif: cannot start the watchdog thread\r\n");
        return 4;
    }
    if (pyerl_ctx_start_releaser() < 0) {
        enif_fprintf(stderr, "py_nif: cannot start the release thread\r\n");
        return 4;
    }
    pyerl_executor_init(dirty_io);
    /* Opened, then made current only once nothing can fail: ERTS drops the
     * types a failed load opened (generations.h). */
    if (pyerl_objref_init(env) < 0 || pyerl_channel_init(env) < 0 || pyerl_contexts_init(env) < 0) {
        enif_fprintf(
            stderr, "py_nif: cannot set up references to Python objects, channels or contexts\r\n");
        return 2;
    }
    pyerl_objref_commit();
    pyerl_channel_commit();
    pyerl_contexts_commit();
    return 0;
}

static int
load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info)
{
    (void)priv_data;
    return setup(env, load_info);
}

static int
upgrade(ErlNifEnv *env, void **priv_data, void **old_priv_data, ERL_NIF_TERM load_info)
{
    (void)priv_data;
    (void)old_priv_data;
    return setup(env, load_info);
}

static ErlNifFunc nif_funcs[] = {
    {"call", 7, pyerl_nif_call, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"eval", 5, pyerl_nif_eval, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"exec", 3, pyerl_nif_exec, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"call_method", 7, pyerl_nif_call_method, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"getattr", 5, pyerl_nif_getattr, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"to_term", 3, pyerl_nif_to_term, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"release", 3, pyerl_nif_release, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"is_ref", 1, pyerl_nif_is_ref, 0},
    {"context_call", 8, pyerl_nif_context_call, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"context_eval", 6, pyerl_nif_context_eval, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"context_exec", 4, pyerl_nif_context_exec, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"context_new", 2, pyerl_nif_context_new, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"context_stop", 2, pyerl_nif_context_stop, 0},
    {"context_interrupt", 1, pyerl_nif_context_interrupt, 0},
    {"context_info", 1, pyerl_nif_context_info, 0},
    {"is_context", 1, pyerl_nif_is_context, 0},
    {"subinterp_supported", 0, pyerl_nif_subinterp_supported, 0},
    {"channel_new", 2, pyerl_nif_channel_new, 0},
    {"channel_send", 2, pyerl_nif_channel_send, 0},
    {"channel_close", 1, pyerl_nif_channel_close, 0},
    {"channel_info", 1, pyerl_nif_channel_info, 0},
    {"is_channel", 1, pyerl_nif_is_channel, 0},
    {"cancel", 1, pyerl_nif_cancel, 0},
    {"gc_notice", 2, pyerl_nif_gc_notice, 0},
    {"worker_bind", 2, pyerl_nif_worker_bind, 0},
    {"worker_handler", 1, pyerl_nif_worker_handler, 0},
    {"worker_reply", 3, pyerl_nif_worker_reply, 0},
    {"worker_async_reply", 3, pyerl_nif_worker_async_reply, 0},
    {"set_dirty_limit", 1, pyerl_nif_set_dirty_limit, 0},
    {"set_pool_limit", 1, pyerl_nif_set_pool_limit, 0},
    {"set_max_depth", 1, pyerl_nif_set_max_depth, 0},
    {"set_none_atom", 1, pyerl_nif_set_none_atom, 0},
    {"set_bytes_tuples", 1, pyerl_nif_set_bytes_tuples, 0},
    {"stats", 0, pyerl_nif_stats, 0},
};

ERL_NIF_INIT(py_nif, nif_funcs, load, NULL, upgrade, NULL)
