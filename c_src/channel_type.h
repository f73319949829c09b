/*
 * channel_type.h: erlang.Channel, the Python side of a channel
 * (channel_type.c).
 */
#ifndef PYERL_CHANNEL_TYPE_H
#define PYERL_CHANNEL_TYPE_H

#include "common.h"

struct pyerl_module_state;

/* Makes a new erlang module's Channel type, into st->channel_type and the
 * module. Returns 0, or -1 with an exception set. */
int pyerl_channel_type_add(PyObject *module, struct pyerl_module_state *st);

#endif
