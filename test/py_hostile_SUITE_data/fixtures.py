# What py_hostile_SUITE's cases call, run in __main__ by init_per_suite.
# `erlang' is imported there already.
import os

def hostile_ident(x):
    return x

def fork_then(child):
    '''Forks; the child runs child() (which may return or raise into the
    NIF, or call os._exit), the parent waits for it and returns its exit
    code.'''
    pid = os.fork()
    if pid == 0:
        return child()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

def hostile_deep(n):
    x = []
    for _ in range(n):
        x = [x]
    return x

class HostileKey:
    def __hash__(self): raise RuntimeError('no hash')
    def __eq__(self, other): raise RuntimeError('no eq')

class HostileIndex:
    def __index__(self): raise RuntimeError('no index')

class HostileRepr(str):
    def __repr__(self): raise RuntimeError('no repr')

def hostile_strings(n):
    return {'k%d' % i: 'v%d' % i for i in range(n)}

def hostile_raise_new_class(i):
    raise type('HostileGenerated%d' % i, (Exception,), {})(i)

async def hostile_async_double():
    return await erlang.async_call('hostile_double', 1)

def hostile_child_calls(which):
    '''What a forked child gets when it runs which(): the text of the
    RuntimeError raised, or 'reached Erlang'.'''
    r, w = os.pipe()
    def child():
        try:
            which()
            os.write(w, b'reached Erlang')
        except RuntimeError as e:
            os.write(w, str(e).encode())
        os._exit(0)
    fork_then(child)
    os.close(w)
    with os.fdopen(r, 'rb') as f:
        return f.read()

def hostile_pool_squares(xs):
    import multiprocessing, operator
    with multiprocessing.get_context('fork').Pool(2) as pool:
        return pool.starmap(operator.mul, [(x, x) for x in xs])
