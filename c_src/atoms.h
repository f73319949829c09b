/*
 * atoms.h: every atom the NIF uses, made once at load (atoms.c).
 *
 * ATOM(ok) is the atom `ok`. The tags of the messages between the C worker
 * and the Erlang handlers are among them (protocol.h).
 */
#ifndef PYERL_ATOMS_H
#define PYERL_ATOMS_H

#include "common.h"

#define PYERL_ATOM_NAMES(X)                                                                        \
    X(badarg)                                                                                      \
    X(busy)                                                                                        \
    X(bytes)                                                                                       \
    X(calls)                                                                                       \
    X(cancelled)                                                                                   \
    X(closed)                                                                                      \
    X(context_stopped)                                                                             \
    X(dirty_calls)                                                                                 \
    X(dirty_limit)                                                                                 \
    X(dirty_running)                                                                               \
    X(enomem)                                                                                      \
    X(erlang_async_call)                                                                           \
    X(erlang_async_cancel)                                                                         \
    X(erlang_call)                                                                                 \
    X(erlang_calls)                                                                                \
    X(error)                                                                                       \
    X(exit)                                                                                        \
    X(false)                                                                                       \
    X(handler_died)                                                                                \
    X(infinity)                                                                                    \
    X(interrupted)                                                                                 \
    X(max_size)                                                                                    \
    X(nan)                                                                                         \
    X(mode)                                                                                        \
    X(neg_infinity)                                                                                \
    X(nil)                                                                                         \
    X(none)                                                                                        \
    X(not_supported)                                                                               \
    X(ok)                                                                                          \
    X(overloaded)                                                                                  \
    X(owner)                                                                                       \
    X(owngil)                                                                                      \
    X(pool_calls)                                                                                  \
    X(pool_idle)                                                                                   \
    X(pool_limit)                                                                                  \
    X(pool_queued)                                                                                 \
    X(pool_threads)                                                                                \
    X(py_context_stopped)                                                                          \
    X(py_coordinator)                                                                              \
    X(py_stream_items)                                                                             \
    X(python_version)                                                                              \
    X(queued)                                                                                      \
    X(ref)                                                                                         \
    X(running)                                                                                     \
    X(sent)                                                                                        \
    X(size)                                                                                        \
    X(stale)                                                                                       \
    X(state)                                                                                       \
    X(stopped)                                                                                     \
    X(stopping)                                                                                    \
    X(timeout)                                                                                     \
    X(true)                                                                                        \
    X(unbound_request)                                                                             \
    X(undefined)                                                                                   \
    X(unknown)                                                                                     \
    X(value)                                                                                       \
    X(waiting)                                                                                     \
    X(worker)                                                                                      \
    X(workers_live)                                                                                \
    X(workers_pooled)

struct pyerl_atoms {
#define PYERL_ATOM_FIELD(name) ERL_NIF_TERM name;
    PYERL_ATOM_NAMES(PYERL_ATOM_FIELD)
#undef PYERL_ATOM_FIELD
};

/* Written by the first load, read-only afterwards. */
extern struct pyerl_atoms pyerl_atoms;
#define ATOM(name) (pyerl_atoms.name)

/* Makes the atoms; from load and upgrade (a reload keeps the table). */
void pyerl_atoms_init(ErlNifEnv *env);

#endif
