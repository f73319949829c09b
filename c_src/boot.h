/*
 * boot.h: starting CPython and making the main interpreter's context
 * (boot.c).
 */
#ifndef PYERL_BOOT_H
#define PYERL_BOOT_H

#include "common.h"

/* Starts CPython once per OS process and makes the main context.
 * Returns 0, or -1 with a message in err. Called from load/upgrade on a
 * normal scheduler; a second call after a reload finds the interpreter
 * running and returns 0. */
int pyerl_boot(char *err, size_t err_size);

#endif
