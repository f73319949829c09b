/*
 * clock.h: the monotonic clock, as every file that times something reads
 * it (clock.c).
 */
#ifndef PYERL_CLOCK_H
#define PYERL_CLOCK_H

#include "common.h"

#include <time.h>

/* Monotonic time in nanoseconds; any thread. */
int64_t pyerl_now_ns(void);

/* The same clock to the last kernel tick (a few ms), read without the
 * time stamp counter: cheaper, for times that need no precision. */
int64_t pyerl_coarse_now_ns(void);

/* The monotonic time timeout_ms from now; INT64_MAX for timeout_ms < 0 or
 * a time too far to represent. */
int64_t pyerl_deadline_after(int64_t timeout_ms);

/* A monotonic time in ns as the timespec pthread_cond_timedwait takes
 * (for conditions made with pyerl_monotonic_condattr). */
struct timespec pyerl_timespec_at(int64_t ns);

/* Condition attributes for timed waits on the monotonic clock; made once,
 * by the first call (from load). NULL if they cannot be made. */
const pthread_condattr_t *pyerl_monotonic_condattr(void);

#endif
