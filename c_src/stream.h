/*
 * stream.h: the C half of streams: items sent to the stream's process in
 * batches that no item waits in for long (stream.c).
 */
#ifndef PYERL_STREAM_H
#define PYERL_STREAM_H

#include "common.h"

/* erlang._stream_pump(iterator, limit, to, ref) -> (sent, ended): sends
 * up to limit items of iterator to the stream process to, in batches
 * {py_stream_items, Ref, Items} (newest first). GIL held. */
PyObject *pyerl_stream_pump(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* erlang._stream_send(to, ref, item): sends one item, as a batch. GIL
 * held. */
PyObject *pyerl_stream_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

#endif
