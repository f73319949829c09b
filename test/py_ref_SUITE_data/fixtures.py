import erlang
# What py_ref_SUITE's cases call, run in __main__ by init_per_suite.
# `erlang' is imported there already.
import asyncio, collections, fractions, threading, time, weakref

# examples

class Model:
    '''Stands for something costly to load that callers keep by reference.'''
    def __init__(self, name):
        self.name = name
    def embed(self, text):
        return [float(len(text)), float(sum(map(ord, text)) % 97)]

def ref_load_model(name):
    return Model(name)

def ref_fraction(n, d):
    return fractions.Fraction(n, d)

# identity: objects with no Erlang form, kept in a registry by key, so
# that a case can ask whether what arrived is the very object.

class Opaque:
    def __init__(self, key):
        self.key = key
    def get_key(self):
        return self.key
    def fail(self, message):
        raise ValueError(message)
    def fail_key(self):
        raise KeyError(self.key)
    def slow(self, seconds):
        time.sleep(seconds)
        return self.key
    def signal_then_sleep(self, pid, seconds):
        erlang.send(pid, erlang.Atom('running'))
        time.sleep(seconds)
        return self.key
    def __repr__(self):
        return 'Opaque(%r)' % (self.key,)

ref_registry = {}

def ref_new(key):
    o = ref_registry[key] = Opaque(key)
    return o

def ref_is(key, x):
    return ref_registry[key] is x

def ref_ident(x):
    return x

def ref_same(a, b):
    return a is b

def ref_kw_is(key, **kwargs):
    return {k: v is ref_registry[key] for k, v in kwargs.items()}

def ref_slow(seconds):
    time.sleep(seconds)
    return Opaque('slow')

# lifetime: an object whose death sets a flag (weakref.finalize), kept by
# nothing in Python.

ref_flags = {}

def ref_watched(key):
    o = Opaque(key)
    ref_flags[key] = False
    weakref.finalize(o, ref_flags.__setitem__, key, True)
    return o

def ref_watched_kept(key):
    '''As ref_watched, and the registry keeps it too.'''
    o = ref_registry[key] = ref_watched(key)
    return o

def ref_finalized(key):
    return ref_flags[key]

def ref_watched_telling(key, pid):
    '''As ref_watched, and its death is told to pid as {finalized, Key}, so
    that the test sees it without calling into Python.'''
    o = Opaque(key)
    weakref.finalize(o, erlang.send, pid, (erlang.Atom('finalized'), key))
    return o

# churn: live instances counted by a WeakSet.

ref_live = weakref.WeakSet()

class Counted:
    __slots__ = ('__weakref__', 'n')
    def __init__(self, n):
        self.n = n
        ref_live.add(self)
    def get(self):
        return self.n

def ref_counted(n):
    return Counted(n)

def ref_counted_batch(n):
    return [erlang.ref(Counted(i)) for i in range(n)]

def ref_live_count():
    return len(ref_live)

# concurrency

class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.total = 0
        self.items = []
    def add(self, k):
        with self.lock:
            self.total += k
            self.items.append(k)
            return self.total
    def summary(self):
        with self.lock:
            return (self.total, len(self.items), sorted(self.items))

def ref_tally():
    return Tally()

# erlang.ref from Python

def ref_wrapped(key):
    return erlang.ref(ref_new(key))

def ref_wrapper_facts(key):
    o = ref_new(key)
    w = erlang.ref(o)
    return (repr(w), w.obj is o, erlang.ref(w) is w, isinstance(w, erlang.ObjectRef))

def ref_wrapped_inside(key):
    w = erlang.ref(ref_new(key))
    return {'one': w, 'list': [w, (w,)]}

def ref_through_erlang(key):
    '''Hands the object to the Erlang function ref_cb, which gives it back.'''
    o = ref_new(key)
    back = erlang.call('ref_cb', erlang.ref(o))
    return (back[0], back[1], back[2] is o)

def ref_send(pid, key):
    erlang.send(pid, (erlang.Atom('ref_sent'), erlang.ref(ref_new(key))))
    return True

def ref_from_thread(pid, key):
    '''A Python thread sends the object, then hands it to ref_cb.'''
    o = ref_new(key)
    out = {}
    def run():
        try:
            erlang.send(pid, (erlang.Atom('ref_sent'), erlang.ref(o)))
            back = erlang.call('ref_cb', erlang.ref(o))
            out['result'] = (back[0], back[1], back[2] is o)
        except BaseException as e:
            out['result'] = ('raised', repr(e))
    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out['result']

def ref_from_asyncio(key):
    o = ref_new(key)
    async def main():
        return await erlang.async_call('ref_cb', erlang.ref(o))
    back = asyncio.run(main())
    return (back[0], back[1], back[2] is o)

# every embedded Opaque, checked against the registry

def ref_count_opaque(x):
    if isinstance(x, Opaque):
        return 1 if ref_registry.get(x.key) is x else -10 ** 6
    if isinstance(x, (list, tuple)):
        return sum(ref_count_opaque(y) for y in x)
    if isinstance(x, dict):
        return sum(ref_count_opaque(k) + ref_count_opaque(v) for k, v in x.items())
    return 0
