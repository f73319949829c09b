# What py_call_SUITE's cases call, run in __main__ by init_per_suite (and
# by starvation_check in a peer VM). `erlang' is imported there already.
import io, sys, threading, time, types, weakref

# api

def fresh_module(value):
    '''A new module 'fresh_probe' in sys.modules, whose f() gives value.'''
    m = types.ModuleType('fresh_probe')
    m.f = lambda: value
    sys.modules['fresh_probe'] = m
    return m

def handed_back(x):
    return x

def handed_back_inside(x):
    return {'v': x, 'w': [x, (x,)]}

def remade(x):
    return x[:-1] + x[-1:]

# errors

def failing_inner():
    raise ValueError('deep')

def failing_outer():
    failing_inner()

class AppError(Exception):
    pass

def raise_app_error():
    raise AppError('boom')

class Sneaky(Exception):
    pass
Sneaky.__module__ = 'builtins'

def raise_sneaky():
    raise Sneaky('x')

def raise_numbered(i):
    raise type('Generated%d' % i, (Exception,), {})('n')

def deep_sort(n):
    '''Recurses through C: a sort key that sorts.'''
    return sorted([n], key=lambda x: deep_sort(n - 1) if n else 0)

class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError('no')

def raise_unprintable():
    raise Unprintable()

# timeouts

def spin(pid):
    '''Counts in spin_count for ever; tells pid once it has stopped.'''
    global spin_count
    try:
        while True:
            spin_count += 1
    finally:
        erlang.send(pid, erlang.Atom('spin_stopped'))

def sleeper(seconds):
    global sleep_state
    sleep_state = 'sleeping'
    try:
        time.sleep(seconds)
        sleep_state = 'finished'
    except BaseException as e:
        sleep_state = type(e).__name__
        raise

def stubborn():
    while True:
        try:
            time.sleep(30)
        except Exception:
            pass

def orphan(pid):
    '''Tells pid it has started, counts in orphan_count for ever, and tells
    pid once it has stopped.'''
    global orphan_count
    try:
        erlang.send(pid, erlang.Atom('orphan_started'))
        while True:
            orphan_count += 1
    finally:
        erlang.send(pid, erlang.Atom('orphan_stopped'))

started_died = []

def record_unraisable(u):
    '''Keeps what a started thread raised at its start, where nobody could
    catch it, and where. (An interruption that lands in one of threading's
    weakref callbacks is reported here too, and raised again: see
    interruption_swallowed_by_a_callback_is_raised_again.)'''
    if u.err_msg and "thread started by" in u.err_msg:
        started_died.append((type(u.exc_value).__name__, u.err_msg, repr(u.object)))

def record_unraisables():
    '''Puts record_unraisable in the place of sys.unraisablehook.'''
    global saved_unraisablehook
    saved_unraisablehook = sys.unraisablehook
    sys.unraisablehook = record_unraisable

def stop_recording_unraisables():
    sys.unraisablehook = saved_unraisablehook

def start_threads_forever():
    while True:
        threading.Thread(target=int).start()

class CallbackTarget:
    pass

def callbacks_forever():
    '''Spends most of its time in weakref callbacks, where an exception
    cannot get out.'''
    while True:
        target = CallbackTarget()
        ref = weakref.ref(target, lambda r: sum(range(50)))
        del target

captured_stderr = []

def capture_stderr():
    '''From now on, what is written to sys.stderr is kept.'''
    captured_stderr.append(sys.stderr)
    sys.stderr = io.StringIO()

def release_stderr():
    '''Puts sys.stderr back; returns what was written meanwhile.'''
    printed = sys.stderr.getvalue()
    sys.stderr = captured_stderr.pop()
    return printed

# concurrency

held_released = set()

def hold_until_released(pid, key, i):
    '''Tells pid (holding, key, i), then sleeps until release_held(key).'''
    erlang.send(pid, (erlang.Atom('holding'), key, i))
    while key not in held_released:
        time.sleep(0.05)

def release_held(key):
    held_released.add(key)
