/*
 * stack.h: a large stack for Python on small-stack threads (stack.c).
 */
#ifndef PYERL_STACK_H
#define PYERL_STACK_H

#include "common.h"

/* Every thread that runs Python has at least this much stack. */
#define PYERL_STACK_SIZE (8 * 1024 * 1024)

/* Runs fn(arg) on the calling thread, on a stack of PYERL_STACK_SIZE (its
 * own if large enough). Returns 0, or -1 if no such stack could be had (fn
 * has not run). */
int pyerl_run_on_large_stack(void (*fn)(void *), void *arg);

#endif
