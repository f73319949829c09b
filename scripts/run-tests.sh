#!/usr/bin/env bash
# Runs the Common Test suites under test/ (all, or those named in SUITES,
# space separated) and ends with one line "N passed, M failed".
# Cases skipped automatically (a failed init_per_suite) count as failed;
# cases that skip themselves (a Python without numpy) count as skipped,
# and their reasons are listed, with the Python the test VM embedded.
# The counts are also appended to $SUMMARY_FILE when it is set, and the
# lines naming failures to $FAILURES_FILE when it is set, each marked with
# $RUN_LABEL (by default the name of the log directory's parent). A VM that
# dies before it can count (a crash, a sanitizer report), or exits non-zero
# after all its cases passed (valgrind's --error-exitcode), counts as one
# failure. Each failed case is named, with the start of its reason, before
# the counts.
#
# ERL_WRAPPER, when set, is a command that runs the test VM's erl (make
# valgrind sets it to valgrind), and CT_MULTIPLY_TIMETRAPS multiplies every
# case's time limit for such slow runs.
#
# ANALYZE=1 (make test sets it) first runs rebar3 xref and rebar3 dialyzer
# on src/; each that reports a warning counts as one failure, and the
# suites run all the same. Dialyzer's first run on a machine builds its
# PLT from the local OTP (a few minutes, no network).
set -uo pipefail
cd "$(dirname "$0")/.."

named=$(mktemp)
trap 'rm -f "$named"' EXIT
analysis_failed=0
if [ -n "${ANALYZE:-}" ]; then
    for check in xref dialyzer; do
        if ! rebar3 "$check"; then
            echo "run-tests: rebar3 $check reported warnings" >> "$named"
            analysis_failed=$((analysis_failed + 1))
        fi
    done
fi

logdir=$(realpath -m "${CT_LOGDIR:-_build/test/logs}")
mkdir -p "$logdir"
suites=${SUITES:-}

counts=$(mktemp)
trap 'rm -f "$named" "$counts"' EXIT

CT_COUNTS="$counts" CT_SUITES="$suites" CT_LOGDIR="$logdir" CT_MULTIPLY_TIMETRAPS="${CT_MULTIPLY_TIMETRAPS:-1}" \
    ${ERL_WRAPPER:-} erl -noshell -pa "$PWD/_build/default/lib/erlang_python/ebin" -eval '
    Suites = string:lexemes(os:getenv("CT_SUITES", ""), " "),
    Which = case Suites of
        [] -> [{dir, "test"}];
        _ -> [{dir, "test"}, {suite, [list_to_atom(S) || S <- Suites]}]
    end,
    Multiply = list_to_integer(os:getenv("CT_MULTIPLY_TIMETRAPS")),
    Opts = Which ++ [{logdir, os:getenv("CT_LOGDIR")}, {auto_compile, true},
                     {verbosity, 0}, {multiply_timetraps, Multiply}],
    {Passed, Failed, Skipped} = case ct:run_test(Opts) of
        {P, F, {UserSkipped, AutoSkipped}} -> {P, F + AutoSkipped, UserSkipped};
        Error -> io:format("ct:run_test failed: ~p~n", [Error]), {0, 1, 0}
    end,
    Embedded = try py:version() catch _:_ -> <<"none (the NIF did not load)">> end,
    io:format("~nrun-tests: the test VM embedded Python ~ts~n", [Embedded]),
    ok = file:write_file(os:getenv("CT_COUNTS"),
                         io_lib:format("~b ~b ~b~n", [Passed, Failed, Skipped])),
    halt(case Failed of 0 -> 0; _ -> 1 end).'
status=$?

# Name every case that failed, so that a log with only the summary still
# says where to look. The run's logs are the newest ct_run.* directory.
run_dir=$(ls -td "$logdir"/ct_run.* 2>/dev/null | head -1)
if [ -n "$run_dir" ]; then
    find "$run_dir" -name suite.log -exec awk '
        /^=case / { test = $2 }
        /^=result +(failed|auto_skipped)/ {
            sub(/^=result +/, "")
            print "run-tests: " test ": " substr($0, 1, 400)
        }' {} + >> "$named"
fi

read -r passed failed skipped < "$counts" || {
    echo "run-tests: the test VM died (exit status $status) before it could count" >> "$named"
    passed=0 failed=1 skipped=0
}
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "run-tests: the test VM exited with status $status after its cases passed" >> "$named"
    failed=1
fi
failed=$((failed + analysis_failed))
# Why cases skipped themselves, so that "N skipped" is never a mystery.
if [ -n "$run_dir" ]; then
    find "$run_dir" -name suite.log -exec awk '
        /^=case / { test = $2 }
        /^=result +skipped:/ && test !~ /(init|end)_per_(group|suite)$/ {
            sub(/^=result +skipped: */, ""); gsub(/"/, ""); print }' {} + |
        sort | uniq -c | sort -rn |
        awk '{ n = $1; sub(/^ *[0-9]+ /, ""); print "run-tests: " n " skipped: " $0 }'
fi
cat "$named"
[ -n "${FAILURES_FILE:-}" ] && sed "s|^run-tests: |run-tests: ${RUN_LABEL:-$(basename "$(dirname "$logdir")")}: |" "$named" >> "$FAILURES_FILE"
[ -n "${SUMMARY_FILE:-}" ] && echo "$passed $failed" >> "$SUMMARY_FILE"
if [ "$skipped" -gt 0 ]; then
    printf '\n%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
else
    printf '\n%d passed, %d failed\n' "$passed" "$failed"
fi
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]

