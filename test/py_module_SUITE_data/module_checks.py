# The Python side of py_module_SUITE: the erlang module seen from Python,
# in the main interpreter and in subinterpreters.
import sys

import erlang


def run_in_subinterpreter(code):
    """Runs code in a new subinterpreter: one with its own GIL where Python
    has them (3.12 and later), else one that shares the main GIL. Returns
    None, or the text of the exception the code raised there."""
    if sys.version_info >= (3, 13):
        import _interpreters as interpreters

        iid = interpreters.create("isolated")
        try:
            failure = interpreters.run_string(iid, code)
            return None if failure is None else failure.formatted
        finally:
            interpreters.destroy(iid)
    import _xxsubinterpreters as interpreters

    iid = interpreters.create()  # isolated, with its own GIL, on 3.12
    try:
        interpreters.run_string(iid, code)
        return None
    except interpreters.RunFailedError as e:
        return str(e)
    finally:
        interpreters.destroy(iid)


IN_SUBINTERPRETER = """
import erlang
atom = erlang.Atom('x')
assert isinstance(atom, str) and atom == 'x', atom
assert repr(atom) == "Atom('x')", repr(atom)
assert issubclass(erlang.CallInterrupted, KeyboardInterrupt)
try:
    erlang.call('mod_double', 1)
except RuntimeError as e:
    assert 'out of reach' in str(e), str(e)
else:
    raise AssertionError('erlang.call reached Erlang from a foreign interpreter')
try:
    erlang.mod_double
except AttributeError:
    pass
else:
    raise AssertionError('a name registered in Erlang shows in a foreign interpreter')
"""


def import_in_subinterpreter():
    return run_in_subinterpreter(IN_SUBINTERPRETER)


def own_gil():
    return sys.version_info >= (3, 12)


def types_refuse_new_attributes():
    refused = []
    for cls in (erlang.Atom, erlang.Pid, erlang.Ref):
        try:
            cls.extra = 1
        except TypeError:
            refused.append(cls.__name__)
    return refused


def reimported_module(pid, ref):
    """Imports the erlang module again, as code that cleans sys.modules
    would, and uses the new module; the old one goes back in place."""
    old = sys.modules.pop("erlang")
    try:
        import erlang as fresh
    finally:
        sys.modules["erlang"] = old
    assert fresh is not old and fresh.Atom is not old.Atom
    fresh.send(pid, ("from_fresh", fresh.Atom("hello"), old.Atom("old"), pid, ref))
    return (
        fresh.call("mod_double", 21),
        fresh.mod_double(2),
        fresh.Atom("fresh"),
        isinstance(fresh.Atom("a"), old.Atom),
    )
