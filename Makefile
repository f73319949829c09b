# The two commands of the README:
#   make demo   installs what is missing, builds, runs examples/demo.erl
#   make test   installs what is missing, builds, runs xref, dialyzer and
#               every test suite and ends with one line "N passed, M
#               failed" (a check that reports a warning is one failure)
# and for CI and developers:
#   make matrix  the core suites against every other Python >= 3.10 found
#   make bench   what calls cost, next to baselines measured in the same
#                run: one table (docs/performance.md). BENCH_OUT=csv, json
#                or csv,json also writes it to bench/results/bench-TIME.EXT
#   make asan    the suites in ASAN_SUITES (default: all) against the NIF
#                built with AddressSanitizer and UBSan
#   make tsan    the suites in TSAN_SUITES (default: threads and callbacks)
#                against the NIF built with ThreadSanitizer
#   make valgrind  the suites in VALGRIND_SUITES (default: calls, conversion,
#                callbacks) under valgrind's memcheck, leaks included
#   make soak    SOAK_SECONDS (default 60) of mixed load while processes are
#                killed at random; prints what it did and the resources
#                before and after, fails on a hang, a wrong or unclean
#                result, or a leak
#
# PYTHON selects the Python to embed. Not given, it is python3 on PATH if
# that can import the packages some suites use, else Debian's
# /usr/bin/python3 (scripts/choose-python.sh); build says which.

ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell scripts/choose-python.sh)
PYTHON_HOW := chosen
else
PYTHON_HOW := given
endif
export PYTHON

.PHONY: all deps build test demo matrix bench asan tsan valgrind soak format-check clean

all: build

deps:
	@scripts/ensure-deps.sh

build: deps
	@scripts/choose-python.sh --say "$(PYTHON)" $(PYTHON_HOW)
	rebar3 compile

test: build format-check
	ANALYZE=1 scripts/run-tests.sh

# The C sources follow .clang-format (skipped where clang-format is absent).
format-check:
	@if command -v clang-format >/dev/null; then \
		clang-format --dry-run --Werror c_src/*.c c_src/*.h bench/*.c; \
	else \
		echo "format-check: clang-format not installed, skipped"; \
	fi

demo: build
	@mkdir -p _build/demo
	erlc -o _build/demo examples/demo.erl
	erl -noshell -pa _build/default/lib/erlang_python/ebin -pa _build/demo -eval 'demo:main(), halt().'

BENCH_OUT ?=
# The baselines' C is held to the NIF's warnings (c_src/Makefile).
BENCH_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -fPIC -shared -pthread -fvisibility=hidden \
                -Wall -Wextra -Werror
bench: build
	@mkdir -p _build/bench
	$(CC) $(BENCH_CFLAGS) -I$$(erl -noshell -eval 'io:format("~ts/erts-~ts/include", [code:root_dir(), erlang:system_info(version)]), halt().') \
		-o _build/bench/baseline_nif.so bench/baseline_nif.c
	erlc -o _build/bench bench/*.erl
	cp bench/pybench.py _build/bench/
	erl -noshell -pa _build/default/lib/erlang_python/ebin -pa _build/bench -eval 'py_bench:main("$(BENCH_OUT)").'

# The VM loads the sanitizer runtimes first (LD_PRELOAD) and the sanitized
# library through ERLANG_PYTHON_NIF. Leak checking is off: the interpreter
# and the VM keep their memory until exit by design (leaks are valgrind's
# job). Any report stops the VM, which counts as a failure.
ASAN_SUITES ?=
ASAN_OUT := $(CURDIR)/_build/asan/py_nif.so
asan: build
	$(MAKE) -C c_src OUT=$(ASAN_OUT) SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer"
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so):$$($(CC) -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ERLANG_PYTHON_NIF=$(ASAN_OUT) CT_LOGDIR=_build/asan/logs SUITES="$(ASAN_SUITES)" \
		scripts/run-tests.sh

# Data races in the NIF (ThreadSanitizer, gcc's libtsan). Only beam.smp
# loads the runtime: erlexec's -env gives it LD_PRELOAD (sh and bash crash
# with libtsan preloaded: their first setjmp comes before TSan starts), and
# the VM drops it at once so that what it starts runs plain. A peer VM gets
# it again from ERL_AFLAGS, which it inherits. +Mea min sends ERTS's
# allocations to malloc, so TSan sees memory recycled. Reports from
# uninstrumented code (ERTS, libpython) are ignored; lock-order checking is
# off, since ERTS holds more mutexes at once than it can track. The races
# ERTS's own synchronisation hides are in test/tsan.supp. Any report stops
# the VM, which counts as a failure. ASLR is off for the run: some kernels'
# mmap layout makes TSan abort. The objects get their own OBJDIR, one per
# PYTHON: asan's, or another Python's, would otherwise be taken for up to
# date.
TSAN_SUITES ?= py_thread_SUITE py_callback_SUITE
TSAN_OUT := $(CURDIR)/_build/tsan/py_nif.so
tsan: build
	$(MAKE) -C c_src OUT=$(TSAN_OUT) OBJDIR=$(CURDIR)/_build/tsan/obj$(subst /,_,$(PYTHON)) \
		SANITIZE="-fsanitize=thread"
	ERL_AFLAGS="-env LD_PRELOAD $$($(CC) -print-file-name=libtsan.so) +Mea min -eval 'os:unsetenv(\"LD_PRELOAD\")'" \
	TSAN_OPTIONS="halt_on_error=1 ignore_noninstrumented_modules=1 detect_deadlocks=0 suppressions=$(CURDIR)/test/tsan.supp" \
	ERLANG_PYTHON_NIF=$(TSAN_OUT) CT_LOGDIR=_build/tsan/logs SUITES="$(TSAN_SUITES)" \
		setarch $$(uname -m) -R scripts/run-tests.sh

# Memory errors and definite leaks (valgrind's memcheck), each suite in a VM
# of its own: its leaks are checked when it exits, and three suites in one
# VM crash valgrind while Common Test starts. Only the VM runs under
# valgrind (not the erl script's helpers, ERTS's port programs, or what
# Python starts). +Mea min and PYTHONMALLOC=malloc send ERTS's and Python's
# allocations to malloc, where memcheck sees them; +JPperf map makes the JIT
# map its code once (memcheck cannot follow code written through a second
# mapping), and each VM deletes the perf map that comes with it. The JIT's
# Erlang stacks live in process heaps, so definedness is not checked (it
# would be wrong everywhere), and a stack pointer move of more than 128 KB
# is taken for a switch of stacks, not a frame: see test/valgrind.supp.
# Memcheck's errors fail the run (--error-exitcode); cases are given ten
# times their time limits. Some suites start hundreds of threads at once
# (500 waiting streams fill the pool), past valgrind's default of 500. The suites are compiled before, outside
# valgrind: the VM under memcheck crashed in its garbage collector while
# Common Test compiled them (at the commit before this line too).
VALGRIND_SUITES ?= py_call_SUITE py_convert_SUITE py_callback_SUITE
VALGRIND_OUT := $(CURDIR)/_build/valgrind/py_nif.so
VALGRIND_FLAGS ?= -q --error-exitcode=99 --suppressions=$(CURDIR)/test/valgrind.supp \
	--leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
	--undef-value-errors=no --max-stackframe=131072 --num-callers=30 --max-threads=4096 \
	--trace-children=yes --child-silent-after-fork=yes \
	--trace-children-skip=/usr/bin/*,/bin/*,*/erl_child_setup,*/inet_gethost,*/epmd,*/dyn_erl
valgrind: build
	@scripts/ensure-deps.sh valgrind
	$(MAKE) -C c_src OUT=$(VALGRIND_OUT) OBJDIR=$(CURDIR)/_build/valgrind/obj$(subst /,_,$(PYTHON)) \
		SANITIZE=-DPYERL_VALGRIND
	erlc +debug_info -o test test/*.erl
	@rm -f _build/valgrind/counts; status=0; \
	for suite in $(VALGRIND_SUITES); do \
		ERL_WRAPPER=valgrind VALGRIND_OPTS="$(VALGRIND_FLAGS)" PYTHONMALLOC=malloc \
		ERL_AFLAGS="+Mea min +JPperf map -eval 'file:delete(\"/tmp/perf-\" ++ os:getpid() ++ \".map\")'" \
		ERLANG_PYTHON_NIF=$(VALGRIND_OUT) CT_LOGDIR=_build/valgrind/logs CT_MULTIPLY_TIMETRAPS=10 \
		SUITES=$$suite SUMMARY_FILE=_build/valgrind/counts scripts/run-tests.sh || status=1; \
	done; \
	awk '{ passed += $$1; failed += $$2 } END { printf "\n%d passed, %d failed\n", passed, failed }' \
		_build/valgrind/counts; \
	exit $$status

SOAK_SECONDS ?= 60
soak: build
	@mkdir -p _build/soak
	erlc -o _build/soak test/soak/py_soak.erl
	erl -noshell -pa _build/default/lib/erlang_python/ebin -pa _build/soak -eval 'py_soak:main($(SOAK_SECONDS)).'

matrix: build
	scripts/python-matrix.sh

clean:
	rebar3 clean
	rm -rf _build
