# The Python side of py_property_SUITE: identity functions, and random
# Python values built from a seed with what they should look like after a
# trip through Erlang. Run in __main__ by init_per_suite.
import math as _prop_math
import random as _prop_random
import struct as _prop_struct

def prop_ident(x):
    return x

def prop_kind(x):
    return type(x).__name__

# Atom names that Erlang gives a meaning of its own.
_PROP_SPECIAL = {'none': None, 'undefined': None, 'nil': None,
                 'true': True, 'false': False}
_PROP_NAMES = ['ok', 'error', 'foo', '', 'with space', 'h' + chr(0xe9) + 'llo',
               chr(0x65e5) + chr(0x672c), chr(0x1f40d), 'a' * 255, chr(0xe9) * 255,
               chr(0x1f40d) * 255]
_PROP_LETTERS = 'ab' + chr(0xe9) + chr(0x1f40d)

class _PropInt(int):
    pass

def _prop_char(rng):
    while True:
        c = rng.randrange(rng.choice((0x80, 0x800, 0x10000, 0x110000)))
        if not 0xD800 <= c <= 0xDFFF:
            return chr(c)

def _prop_str(rng, size):
    if rng.random() < 0.05:
        size = rng.randrange(64, 2000)
    return ''.join(_prop_char(rng) for _ in range(rng.randrange(size + 1)))

def _prop_int(rng):
    k = rng.randrange(5)
    if k == 0:
        return rng.randrange(-10, 11)
    if k == 1:
        return rng.randrange(-2 ** 31, 2 ** 31)
    if k == 2:
        bits = rng.choice((27, 28, 31, 32, 59, 60, 63, 64, 127, 128))
        return rng.choice((1, -1)) * (2 ** bits + rng.randrange(-2, 3))
    return rng.choice((1, -1)) * rng.getrandbits(rng.randrange(1, 400))

def _prop_float(rng):
    k = rng.randrange(3)
    if k == 0:
        return rng.choice((0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308,
                           1.7976931348623157e308, 0.1, 1e16, -1.0))
    if k == 1:
        return rng.uniform(-1e6, 1e6)
    while True:
        f = _prop_struct.unpack('<d', rng.getrandbits(64).to_bytes(8, 'little'))[0]
        if _prop_math.isfinite(f):
            return f

def _prop_bytes(rng, size):
    k = rng.randrange(3)
    if k == 0:
        # Valid UTF-8: comes back as str.
        b = bytearray(_prop_str(rng, size).encode('utf-8'))
    else:
        if rng.random() < 0.05:
            size = rng.randrange(64, 2000)
        b = bytearray(rng.getrandbits(8) for _ in range(rng.randrange(size + 1)))
        if k == 1:
            b.insert(rng.randrange(len(b) + 1), 0xff)
    return bytes(b) if rng.randrange(4) else b

def _prop_atom(rng, special):
    k = rng.randrange(4)
    if k == 0 and special:
        return erlang.Atom(rng.choice(sorted(_PROP_SPECIAL)))
    if k == 1:
        return erlang.Atom(''.join(rng.choice(_PROP_LETTERS) for _ in range(rng.randrange(4))))
    return erlang.Atom(rng.choice(_PROP_NAMES))

def _prop_key(rng, depth, size, pool):
    k = rng.randrange(9 if depth > 0 else 8)
    if k == 0:
        return _prop_int(rng)
    if k == 1:
        return _prop_str(rng, size)
    if k == 2:
        return _prop_atom(rng, False)
    if k == 3:
        return rng.random() < 0.5
    if k == 4:
        return None
    if k == 5:
        return _prop_float(rng)
    if k == 6:
        # bytes that are not UTF-8, so never the same term as a str key.
        b = bytearray(rng.getrandbits(8) for _ in range(rng.randrange(size + 1)))
        b.insert(rng.randrange(len(b) + 1), 0xff)
        return bytes(b)
    if k == 7:
        return rng.choice(pool)
    return tuple(_prop_key(rng, depth - 1, size, pool) for _ in range(rng.randrange(size + 1)))

def _prop_leaf(rng, size, pool):
    k = rng.randrange(10)
    if k == 0:
        return _prop_int(rng)
    if k == 1:
        return _PropInt(_prop_int(rng))
    if k == 2:
        return _prop_float(rng)
    if k == 3:
        return _prop_str(rng, size)
    if k == 4:
        return _prop_bytes(rng, size)
    if k == 5:
        return rng.random() < 0.5
    if k == 6:
        return None
    if k == 7:
        return _prop_atom(rng, True)
    if k == 8:
        return rng.choice(pool)
    return _prop_int(rng)

def prop_random_value(seed, size, pool, depth=6):
    return _prop_value(_prop_random.Random(seed), depth, size, pool)

def _prop_value(rng, depth, size, pool):
    if depth <= 0 or rng.random() < 0.5:
        return _prop_leaf(rng, size, pool)
    n = rng.randrange(size + 1)
    if depth == 6 and rng.random() < 0.1:
        # Wide: a map of more than 32 keys is stored differently.
        n = rng.randrange(33, 100)
        depth = 1
    k = rng.randrange(3)
    if k == 0:
        return [_prop_value(rng, depth - 1, size, pool) for _ in range(n)]
    if k == 1:
        return tuple(_prop_value(rng, depth - 1, size, pool) for _ in range(n))
    return {_prop_key(rng, 2, size, pool): _prop_value(rng, depth - 1, size, pool)
            for _ in range(n)}

# What the value should look like after a trip through Erlang.
def _prop_expect(v):
    if v is None or type(v) is bool:
        return v
    if type(v) is erlang.Atom:
        return _PROP_SPECIAL.get(str.__str__(v), v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, (bytes, bytearray)):
        try:
            return bytes(v).decode('utf-8')
        except UnicodeDecodeError:
            return bytes(v)
    if type(v) is list:
        return [_prop_expect(x) for x in v]
    if type(v) is tuple:
        return tuple(_prop_expect(x) for x in v)
    if type(v) is dict:
        return {_prop_expect(k): _prop_expect(x) for k, x in v.items()}
    return v

# Equal, with the same types all the way down and floats bit for bit.
def _prop_same(a, b):
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return _prop_struct.pack('<d', a) == _prop_struct.pack('<d', b)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(_prop_same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        if len(a) != len(b):
            return False
        keys = {k: k for k in b}
        return all(k in keys and _prop_same(k, keys[k]) and _prop_same(x, b[k])
                   for k, x in a.items())
    return a == b

# True, or what went wrong: (kind, value, what came back).
def _prop_trip(value):
    try:
        back = erlang.call('prop_echo', value)
    except Exception as e:
        return ('raised', value, e)
    if _prop_same(_prop_expect(value), back):
        return True
    return ('received', value, back)

# The smallest part of a failing value that fails on its own.
def _prop_culprit(value):
    if type(value) in (list, tuple):
        parts = list(value)
    elif type(value) is dict:
        parts = [p for item in value.items() for p in item]
    else:
        parts = []
    for part in parts:
        if _prop_trip(part) is not True:
            return _prop_culprit(part)
    return value

# The value of the seed through Erlang and back: True, or what went
# wrong, in ascii() so that Erlang prints it as text.
def prop_roundtrip(seed, size, pool):
    value = prop_random_value(seed, size, pool)
    result = _prop_trip(value)
    if result is True:
        return True
    culprit = _prop_trip(_prop_culprit(value))
    return (result[0], ascii(value), ascii(result[2]),
            ascii(culprit if culprit is True else culprit[1:]))

# References: objects with no Erlang form, kept in a registry by key, that
# Erlang holds by reference (py:call with return => ref) and embeds in
# random terms.

class PropOpaque:
    __slots__ = ('key',)
    def __init__(self, key):
        self.key = key
    def __repr__(self):
        return 'PropOpaque(%r)' % (self.key,)

prop_opaque_registry = {}

def prop_opaque_new(key):
    o = prop_opaque_registry[key] = PropOpaque(key)
    return o

def prop_opaque_keys(x):
    '''x with every PropOpaque in it (map keys included) replaced by
    (opaque, key) when it is the registry's object of that key, by
    (impostor, key) when it is not.'''
    t = type(x)
    if t is PropOpaque:
        ok = prop_opaque_registry.get(x.key) is x
        return (erlang.Atom('opaque' if ok else 'impostor'), x.key)
    if t is list:
        return [prop_opaque_keys(v) for v in x]
    if t is tuple:
        return tuple(prop_opaque_keys(v) for v in x)
    if t is dict:
        return {prop_opaque_keys(k): prop_opaque_keys(v) for k, v in x.items()}
    return x
