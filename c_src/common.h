/*
 * common.h: what every file of the NIF includes first, and the rules that
 * hold across files.
 *
 * CPython requires Python.h before any system header, so it comes first and
 * erl_nif.h second. Each .c file then includes the headers of the files it
 * uses (one header per .c file), so the includes show the dependencies;
 * c_src/README.md draws the layers they form. Every non-static symbol
 * carries the pyerl_ prefix.
 *
 * Threads: Python runs on dirty I/O schedulers and on the pool's threads
 * (pool.c), never on a normal scheduler; Python code may start threads of
 * its own, which call Erlang through their thread workers (worker.c). The
 * watchdog (interrupt.c) is one more thread.
 *
 * Locks, outermost first. A thread holding a lock of a row may take locks
 * of the rows below it, never of a row above:
 *
 *   lock                       file          guards
 *   1 the GIL of a context     context.c     Python objects of that
 *                                            interpreter, the context's
 *                                            caches (names, compiled code)
 *   2 a job's lock             pool.c        the job's state
 *   3 the watchdog's lock      interrupt.c   the in-flight calls' list and
 *                                            their interruption fields
 *   4 a worker's lock          worker.c      its reply slot, async queue,
 *                                            handler and monitor
 *     the free-worker lock     worker.c      the pool of idle workers
 *     the pool's lock          pool.c        the job queue, thread counts
 *     a channel's lock         channel.c     its queue, waiters, eventfd
 *     a context's lock         contexts.c    its state and stoppers
 *     an own context's         context.c,    its references
 *       objrefs lock           objref.c
 *     an own context's         context.c     making and deleting its
 *       tstates lock                         thread states (a GIL is
 *                                            released under it, never
 *                                            taken)
 *     the own contexts' lock   context.c     the list of own contexts
 *   5 the flusher's lock       stream.c      the list of stream senders
 *   6 a stream sender's lock   stream.c      the group of items it makes
 *     a drain's lock           drain.c       a closer's wait
 *
 * The only nestings are the GIL over any other lock, a job's lock over
 * the watchdog's (a cancelled job interrupts its call), the flusher's
 * over a stream sender's (it sends groups that wait too long), and the
 * own contexts' lock over a drain's (the release thread counts itself
 * into a context it found listed, and may be the last to leave a closed
 * one); the other locks of row 4 are leaves. Nobody waits (a poll, a condition, Erlang's answer)
 * holding the GIL, and no lock is held while a GIL is taken (DESIGN.md,
 * invariant 2).
 *
 * ERTS calls made under a lock, all of which return without waiting on
 * anything that could need that lock: enif_send under a context's lock
 * (contexts.c: the stoppers are told); enif_monitor_process and
 * enif_demonitor_process under a worker's lock (the down callback takes the
 * same lock, but ERTS runs it later, never inside these calls);
 * enif_make_copy and enif_clear_env under a worker's lock (into the
 * worker's own env); enif_send under a job's lock (so that cancel and send
 * decide together); enif_send and enif_clear_env under a stream sender's
 * lock (stream.c: a group is sent whole, by whichever thread sends it).
 * enif_is_process_alive and enif_whereis_pid are made with no lock held.
 *
 * The locks are pthread mutexes, not enif_mutex: the waits beside them need
 * pthread_cond_timedwait on CLOCK_MONOTONIC (the watchdog, erlang.sleep,
 * idle pool threads), the fork handler must know the state of what it
 * inherits, and thread workers go back to their pool through a pthread key
 * destructor; ERTS's wrappers offer none of these.
 */
#ifndef PYERL_COMMON_H
#define PYERL_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <erl_nif.h>

#include <pthread.h>
#include <stdint.h>

#endif
