/*
 * drain.c: a count of the threads inside something (a context, a
 * context's calls) that a closer can wait to fall to zero.
 *
 * Entering is an atomic increment and a look at the closed flag, both
 * sequentially consistent, as is the closer's flag and then its look at
 * the count: either an entering thread sees the flag and backs out, or
 * the closer sees it inside and waits. Only the last to leave a closed
 * drain takes the lock, to signal; entering and leaving an open one take
 * none.
 */
#include "drain.h"

#include "clock.h"

int
pyerl_drain_init(struct pyerl_drain *d)
{
    atomic_init(&d->inside, 0);
    atomic_init(&d->closed, 0);
    if (pthread_mutex_init(&d->lock, NULL) != 0) {
        return -1;
    }
    if (!pyerl_monotonic_condattr() ||
        pthread_cond_init(&d->left, pyerl_monotonic_condattr()) != 0) {
        pthread_mutex_destroy(&d->lock);
        return -1;
    }
    return 0;
}

void
pyerl_drain_destroy(struct pyerl_drain *d)
{
    pthread_cond_destroy(&d->left);
    pthread_mutex_destroy(&d->lock);
}

int
pyerl_drain_enter(struct pyerl_drain *d)
{
    atomic_fetch_add(&d->inside, 1);
    if (atomic_load(&d->closed)) {
        pyerl_drain_leave(d);
        return -1;
    }
    return 0;
}

void
pyerl_drain_hold(struct pyerl_drain *d)
{
    atomic_fetch_add(&d->inside, 1);
}

void
pyerl_drain_leave(struct pyerl_drain *d)
{
    if (atomic_fetch_sub(&d->inside, 1) == 1 && atomic_load(&d->closed)) {
        pthread_mutex_lock(&d->lock);
        pthread_cond_broadcast(&d->left);
        pthread_mutex_unlock(&d->lock);
    }
}

int
pyerl_drain_close(struct pyerl_drain *d)
{
    return atomic_exchange(&d->closed, 1) == 0;
}

int
pyerl_drain_is_closed(struct pyerl_drain *d)
{
    return atomic_load(&d->closed);
}

int
pyerl_drain_wait(struct pyerl_drain *d, int64_t wait_ns)
{
    struct timespec until = pyerl_timespec_at(pyerl_now_ns() + wait_ns);
    int empty;

    pthread_mutex_lock(&d->lock);
    while (!(empty = atomic_load(&d->inside) == 0)) {
        if (pthread_cond_timedwait(&d->left, &d->lock, &until) != 0) {
            empty = atomic_load(&d->inside) == 0;
            break;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return empty;
}
