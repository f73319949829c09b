# What py_callback_SUITE's cases call, run in __main__ by init_per_suite
# (and by peer_reentry_check in a peer VM). `erlang' is imported there.
import copy, inspect, json, time

def cb_catch(name, *args):
    try:
        erlang.call(name, *args)
    except erlang.ErlangError as e:
        return (e.erlang_class, type(e.erlang_class) is erlang.Atom, e.reason,
                str(e), isinstance(e, RuntimeError))
    return 'no exception'

def cb_stack_of(name, *args):
    try:
        erlang.call(name, *args)
    except erlang.ErlangError as e:
        st = e.stacktrace
        return (type(st).__name__, [type(s).__name__ for s in st], st)
    return 'no exception'

def cb_reason_of(name):
    try:
        erlang.call(name)
    except erlang.ErlangError as e:
        return (type(e.reason).__name__, e.reason == str(e), e.reason)
    return 'no exception'

def cb_catch_runtime_error(name):
    try:
        erlang.call(name)
    except RuntimeError as e:
        return (type(e).__name__, isinstance(e, erlang.UnknownFunctionError),
                isinstance(e, erlang.ErlangError), str(e))
    return 'no exception'

def cb_catch_type_error(name, *args):
    try:
        erlang.call(name, *args)
    except TypeError as e:
        return ('TypeError', str(e))
    return 'no exception'

def cb_deep(n, target):
    return erlang.call('cb_deeper', n, target)

def cb_outer(i):
    return erlang.call('cb_via_python', i) + 1

def cb_inner(i):
    return i * 3

def cb_send_hello(pid):
    return erlang.send(pid, ('hello', 42))

def cb_send(pid, message):
    return erlang.send(pid, message)

def cb_big(b):
    n, back = erlang.call('cb_size_and_echo', b)
    return (type(b).__name__, n, type(back).__name__, back)

def cb_list_through(xs):
    ys = erlang.call('cb_reverse_list', xs)
    return (type(ys).__name__, sum(ys), ys)

def cb_calls_slow():
    return erlang.call('cb_slow')

def cb_double_and_hold(x):
    r = erlang.call('double_it', x)
    time.sleep(0.2)
    return r

def cb_call_in_use(pid):
    return erlang.call('cb_in_use', 5, pid)

def cb_copy_outcome(module):
    try:
        return ('copied', copy.copy(module) is module)
    except Exception as e:
        return (type(e).__name__, str(e))
