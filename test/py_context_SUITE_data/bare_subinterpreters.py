# What CPython itself keeps of isolated subinterpreters (the kind an
# owngil context is) made and destroyed, without erlang_python: run by
# fifty_owngil_contexts_leave_no_threads_or_memory with the embedded
# Python's own executable, as
#     python bare_subinterpreters.py FIXTURES COUNT
# Each interpreter runs the suite's fixtures (with a stand-in for the
# erlang module) and one call, as the case's contexts do, after what the
# application sets up in each (a logging handler on the root logger, and
# sys.stdout and sys.stderr wrapped: py_logger, py_output). Prints the
# growth of this process's resident memory, in kB, over COUNT of them
# after a first round of ten.
import gc
import re
import sys

try:
    import _interpreters as interpreters  # 3.13 and later

    def make():
        return interpreters.create('isolated')

    def run(interp, code):
        failed = interpreters.exec(interp, code)
        if failed is not None:
            raise RuntimeError(failed)
except ImportError:
    import _xxsubinterpreters as interpreters  # 3.12

    def make():
        return interpreters.create(isolated=True)

    def run(interp, code):
        interpreters.run_string(interp, code)

STAND_IN = ("import sys, types, logging\n"
            "erlang = types.ModuleType('erlang')\n"
            "erlang.Atom = str\n"
            "sys.modules['erlang'] = erlang\n"
            "logging.getLogger().addHandler(logging.Handler(30))\n"
            "class Wrapped:\n"
            "    def __init__(self, original): self.original = original\n"
            "    def write(self, text): return self.original.write(text)\n"
            "sys.stdout, sys.stderr = Wrapped(sys.stdout), Wrapped(sys.stderr)\n")


def rss_kb():
    with open('/proc/self/status') as f:
        return int(re.search(r'VmRSS:\s+(\d+) kB', f.read()).group(1))


def churn(source, count):
    for _ in range(count):
        interp = make()
        run(interp, STAND_IN + source)
        run(interp, 'count_call(21)')
        interpreters.destroy(interp)
    gc.collect()


def main():
    with open(sys.argv[1]) as f:
        source = f.read()
    count = int(sys.argv[2])
    churn(source, 10)
    before = rss_kb()
    churn(source, count)
    print(rss_kb() - before)


main()
