/*
 * drain.h: counting who is inside something that can be closed, so that
 * whoever closes it can wait until the last one has left (drain.c).
 */
#ifndef PYERL_DRAIN_H
#define PYERL_DRAIN_H

#include "common.h"

#include <stdatomic.h>

/* Zeroed, then pyerl_drain_init. */
struct pyerl_drain {
    atomic_long inside;   /* entered and not yet left */
    atomic_int closed;    /* set once by pyerl_drain_close */
    pthread_mutex_t lock; /* with left: a closer's wait for the last to leave */
    pthread_cond_t left;
};

/* Returns 0, or -1 if the lock or condition cannot be made. */
int pyerl_drain_init(struct pyerl_drain *d);
void pyerl_drain_destroy(struct pyerl_drain *d);

/* One more inside, unless closed: returns 0, or -1 (nothing counted) if
 * closed. Any thread; never blocks. */
int pyerl_drain_enter(struct pyerl_drain *d);

/* One more inside even if closed, for a thread that knows somebody is
 * inside already, so that the closer is still waiting. */
void pyerl_drain_hold(struct pyerl_drain *d);

/* One fewer inside; wakes the closer when it was the last. Never blocks
 * but on the short lock of the wake-up. */
void pyerl_drain_leave(struct pyerl_drain *d);

/* From now on, enter fails. Returns 1 if this call closed it, 0 if it was
 * closed before. */
int pyerl_drain_close(struct pyerl_drain *d);
int pyerl_drain_is_closed(struct pyerl_drain *d);

/* After close: waits until nobody is inside, at most wait_ns; returns 1
 * once nobody is, 0 if the time ran out. The caller holds no lock and no
 * GIL. */
int pyerl_drain_wait(struct pyerl_drain *d, int64_t wait_ns);

#endif
