/*
 * clock.c: the monotonic clock for deadlines, spins and idle timeouts.
 *
 * Deadlines of calls (interrupt.c), the spin before a thread sleeps
 * (worker.c) and the idle time of pool threads (pool.c) are all measured
 * on CLOCK_MONOTONIC, and their condition variables wait on it too, so a
 * change of the wall clock moves none of them.
 */
#include "clock.h"

static int64_t
clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t
pyerl_now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

#if !defined(CLOCK_MONOTONIC_COARSE)
#define CLOCK_MONOTONIC_COARSE CLOCK_MONOTONIC
#endif
int64_t
pyerl_coarse_now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC_COARSE);
}

int64_t
pyerl_deadline_after(int64_t timeout_ms)
{
    int64_t now = pyerl_now_ns();

    if (timeout_ms < 0 || timeout_ms > (INT64_MAX - now) / 1000000LL) {
        return INT64_MAX;
    }
    return now + timeout_ms * 1000000LL;
}

struct timespec
pyerl_timespec_at(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};

    return ts;
}

/* Made by the first caller, from load; load callbacks run one at a time. */
static pthread_condattr_t monotonic;
static int monotonic_ready;

const pthread_condattr_t *
pyerl_monotonic_condattr(void)
{
    if (!monotonic_ready) {
        if (pthread_condattr_init(&monotonic) != 0 ||
            pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC) != 0) {
            return NULL;
        }
        monotonic_ready = 1;
    }
    return &monotonic;
}
