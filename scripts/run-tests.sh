#!/usr/bin/env bash
# Runs the Common Test suites under test/ (all, or those named in SUITES,
# space separated) and ends with one line "N passed, M failed".
# Cases skipped automatically (a failed init_per_suite) count as failed;
# cases that skip themselves (a Python without numpy) count as skipped.
# The counts are also appended to $SUMMARY_FILE when it is set.
set -uo pipefail
cd "$(dirname "$0")/.."

logdir=$(realpath -m "${CT_LOGDIR:-_build/test/logs}")
mkdir -p "$logdir"
suites=${SUITES:-}

CT_SUITES="$suites" CT_LOGDIR="$logdir" erl -noshell -pa "$PWD/_build/default/lib/erlang_python/ebin" -eval '
    Suites = string:lexemes(os:getenv("CT_SUITES", ""), " "),
    Which = case Suites of
        [] -> [{dir, "test"}];
        _ -> [{dir, "test"}, {suite, [list_to_atom(S) || S <- Suites]}]
    end,
    Opts = Which ++ [{logdir, os:getenv("CT_LOGDIR")}, {auto_compile, true},
                     {verbosity, 0}],
    {Passed, Failed, Skipped} = case ct:run_test(Opts) of
        {P, F, {UserSkipped, AutoSkipped}} -> {P, F + AutoSkipped, UserSkipped};
        Error -> io:format("ct:run_test failed: ~p~n", [Error]), {0, 1, 0}
    end,
    case os:getenv("SUMMARY_FILE") of
        false -> ok;
        File -> file:write_file(File, io_lib:format("~b ~b~n", [Passed, Failed]), [append])
    end,
    case Skipped of
        0 -> io:format("~n~b passed, ~b failed~n", [Passed, Failed]);
        _ -> io:format("~n~b passed, ~b failed, ~b skipped~n", [Passed, Failed, Skipped])
    end,
    halt(case Failed of 0 -> 0; _ -> 1 end).'

