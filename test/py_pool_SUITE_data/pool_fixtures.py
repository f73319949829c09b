# Fixtures of py_pool_SUITE, imported on the members of the suite's pools
# (the suite puts this directory at the front of their sys.path with the
# pool option python_path). Nothing here runs on the test node itself.
#
# Module globals live on one member: a call routed to the same member
# (a pool of one peer, or the same `key') reads what an earlier call left
# there. That is how the cases see, after the fact, how a long call on a
# member ended: `outcome(tag)' says 'started' while it runs, then
# 'finished', or the name of the exception that ended it
# ('CallInterrupted' for a timeout, a cancel or the caller's death).
import os
import time

outcomes = {}


class PoolError(Exception):
    pass


def whoami():
    return os.getpid()


def add(a, b=0, *, c=0):
    return a + b + c


def fail(message):
    raise PoolError(message)


def outcome(tag):
    return outcomes.get(tag, 'none')


def sleep_noting(tag, seconds):
    outcomes[tag] = 'started'
    ended = 'finished'
    try:
        time.sleep(seconds)
    except BaseException as e:
        ended = type(e).__name__
        raise
    finally:
        outcomes[tag] = ended
    return os.getpid()


def spin_noting(tag):
    outcomes[tag] = 'started'
    ended = 'finished'
    try:
        while True:
            pass
    except BaseException as e:
        ended = type(e).__name__
        raise
    finally:
        outcomes[tag] = ended


class Box:
    '''An object with no Erlang form, made on a member: where its methods
    run shows in the pid they give.'''

    def __init__(self, value):
        self.value = value
        self.pid = os.getpid()

    def add(self, n=0):
        self.value += n
        return self.value

    def where(self):
        return os.getpid()

    def items(self):
        return [self.value, self.pid]

    def sleep(self, seconds):
        time.sleep(seconds)
        return self.value
