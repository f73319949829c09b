%% The Elixir example (examples/elixir), as its user runs it: `mix test'
%% in a copy of the Mix project, whose path dependency is this repository,
%% built with Debian's rebar3 and nothing fetched from Hex. Its ExUnit
%% tests use erlang_python from Elixir: calls, None as nil, strings,
%% charlists and structs, an fn registered for Python, errors both ways,
%% and print() captured with capture_io. `mix format --check-formatted'
%% keeps the example tidy.
%%
%% make test installs Debian's elixir (scripts/ensure-deps.sh); without it
%% the suite fails, saying so.
-module(py_elixir_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([exunit_tests_of_the_example_pass/1, example_is_formatted/1]).

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [exunit_tests_of_the_example_pass, example_is_formatted].

init_per_suite(Config) ->
    Mix = case os:find_executable("mix") of
              false -> ct:fail("mix not found: Debian's elixir is not installed (make deps installs it)");
              Path -> Path
          end,
    Repository = filename:dirname(filename:dirname(code:which(?MODULE))),
    Dir = filename:join(?config(priv_dir, Config), "elixir"),
    ok = py_test_lib:copy_dir(filename:join([Repository, "examples", "elixir"]), Dir,
                              ["_build", "deps", ".mix"]),
    Env = [{"MIX_HOME", filename:join(Dir, ".mix")},
           {"HEX_OFFLINE", "1"},
           {"MIX_REBAR3", os:find_executable("rebar3")},
           {"ERLANG_PYTHON_PATH", Repository}],
    [{mix, Mix}, {dir, Dir}, {env, Env} | Config].

end_per_suite(_Config) ->
    ok.

exunit_tests_of_the_example_pass(Config) ->
    {Status, Output} = command(Config, ["test"], [{"MIX_ENV", "test"}]),
    case {Status, re:run(Output, "(\\d+) tests?, 0 failures", [{capture, all_but_first, binary}])} of
        {0, {match, [Count]}} when Count =/= <<"0">> ->
            ct:log("~ts", [Output]);
        _ ->
            ct:fail({mix_test_failed, Status, Output})
    end.

example_is_formatted(Config) ->
    case command(Config, ["format", "--check-formatted"], []) of
        {0, _} -> ok;
        {Status, Output} -> ct:fail({not_formatted, Status, Output})
    end.

%%% Helpers

%% {ExitStatus, Output} of mix with Args in the copy.
command(Config, Args, Env) ->
    py_test_lib:command(?config(mix, Config), Args, ?config(dir, Config), ?config(env, Config) ++ Env).
