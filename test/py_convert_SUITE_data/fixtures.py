# What py_convert_SUITE's cases call and look at, run in __main__ by
# init_per_suite. `erlang' is imported there already.

def ident(x):
    return x

def convert_kwargs_of(**kw):
    return kw

def convert_list_depth(x):
    d = 0
    while isinstance(x, list) and x:
        x = x[0]
        d += 1
    return d

class ConvertBadIndex:
    def __index__(self):
        raise RuntimeError('boom from __index__')

class ConvertGoodIndex:
    def __index__(self):
        return 2 ** 70

# text

def big_bytes(n, seed):
    return bytes((seed + i) % 251 for i in range(n))

def big_str(n):
    return ('\u00e9\u65e5' * n)[:n]

kept_bytearray = bytearray(200000)

def big_bytearray():
    return kept_bytearray

released = []

class Tracked(bytes):
    def __del__(self):
        released.append(len(self))

def tracked(n):
    return Tracked(n)

# nesting: lists 500 and 600 levels deep, a dict 600 levels deep, and
# containers that hold themselves

convert_deep500 = []
for _ in range(500):
    convert_deep500 = [convert_deep500]

convert_deep600 = []
for _ in range(600):
    convert_deep600 = [convert_deep600]

convert_deepdict600 = {}
for _ in range(600):
    convert_deepdict600 = {'k': convert_deepdict600}

convert_selfref = []
convert_selfref.append(convert_selfref)
convert_selfdict = {}
convert_selfdict['me'] = convert_selfdict
