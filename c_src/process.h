/*
 * process.h: what Python may do to the VM's OS process (process.c).
 */
#ifndef PYERL_PROCESS_H
#define PYERL_PROCESS_H

#include "common.h"

/* Puts SIGCHLD back to its default, tunes malloc for large values and
 * starts watching for forks. Before Python starts; returns 0 or -1. */
int pyerl_process_setup(void);

/* Replaces os._exit (and posix._exit) with the guarded one, in the
 * interpreter whose GIL is held. Returns 0 or -1 with an exception set. */
int pyerl_install_exit_guard(void);

/* Whether this is a child that Python code forked from the VM. */
int pyerl_in_forked_child(void);

/* Sets RuntimeError: what (a call's usage) cannot reach Erlang from a
 * forked child. */
void pyerl_set_forked_child_error(const char *what);

/* Ends a forked child whose Python code returned to the NIF: status 0, or
 * 1 after printing the exception set (failed). GIL held; does not return. */
_Noreturn void pyerl_end_forked_child(int failed);

#endif
