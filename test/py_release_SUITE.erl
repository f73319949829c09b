%% The example release (examples/release), as its user builds and runs
%% it: `rebar3 release' in a copy of the example whose _checkouts links
%% this repository, the release booted as a daemon, called with
%% `bin/greeter eval', and stopped. Its application's Python module is
%% found in the release's own priv/python, its preload ran at start, and
%% Python's logging reached the release's log.
-module(py_release_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([booted_release_calls_python_shipped_in_its_priv/1,
         python_logging_reaches_the_release_log/1,
         stopped_release_is_gone/1]).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [booted_release_calls_python_shipped_in_its_priv, python_logging_reaches_the_release_log,
     stopped_release_is_gone].

%% Builds the release in a copy of the example and boots it.
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Source = repository_dir(),
    Dir = filename:join(?config(priv_dir, Config), "release"),
    ok = py_test_lib:copy_dir(filename:join([Source, "examples", "release"]), Dir,
                              ["_build", "_checkouts"]),
    ok = filelib:ensure_dir(filename:join([Dir, "_checkouts", "x"])),
    ok = file:make_symlink(Source, filename:join([Dir, "_checkouts", "erlang_python"])),
    ok = py_test_lib:command_ok(os:find_executable("rebar3"), ["release"], Dir, []),
    Bin = filename:join([Dir, "_build", "default", "rel", "greeter", "bin", "greeter"]),
    Env = [{"GREETER_NODE", "greeter_ct_" ++ os:getpid()},
           {"GREETER_COOKIE", "ct_" ++ integer_to_list(erlang:unique_integer([positive]))},
           {"RELX_REPLACE_OS_VARS", "true"}],
    ok = py_test_lib:command_ok(Bin, ["daemon"], Dir, Env),
    py_test_lib:wait_until(fun() -> command(Dir, Bin, ["ping"], Env) =:= {0, <<"pong\n">>} end,
                           30000),
    [{release_dir, Dir}, {bin, Bin}, {env, Env} | Config].

end_per_suite(Config) ->
    _ = command(?config(release_dir, Config), ?config(bin, Config), ["stop"], ?config(env, Config)),
    ok.

booted_release_calls_python_shipped_in_its_priv(Config) ->
    %% The preload ran at start: the module is loaded before any call.
    <<"{ok, true}\n">> = eval(Config, "py:eval(<<\"'greeter_py' in __import__('sys').modules\">>)."),
    {ok, Version} = py:eval(<<"'%d.%d' % __import__('sys').version_info[:2]">>),
    Expected = iolist_to_binary(["\"Hello, CI, from Python ", Version, "\"\n"]),
    ?assertEqual(Expected, eval(Config, "greeter:greeting(\"CI\").")),
    %% Found in the release, not in the example's sources.
    File = eval(Config, "{ok, F} = greeter:python_file(), binary_to_list(F)."),
    Rel = filename:join([?config(release_dir, Config), "_build", "default", "rel", "greeter",
                         "lib", "greeter-0.1.0", "priv", "python", "greeter_py.py"]),
    ?assertEqual(iolist_to_binary(["\"", Rel, "\"\n"]), File).

python_logging_reaches_the_release_log(Config) ->
    _ = eval(Config, "greeter:greeting(\"the log\")."),
    Log = filename:join([?config(release_dir, Config), "_build", "default", "rel", "greeter",
                         "log", "erlang.log.1"]),
    py_test_lib:wait_until(fun() ->
                                   case file:read_file(Log) of
                                       {ok, Text} ->
                                           re:run(Text, "WARNING REPORT.*\ngreeting the log",
                                                  [{capture, none}]) =:= match;
                                       {error, _} ->
                                           false
                                   end
                           end, 10000).

stopped_release_is_gone(Config) ->
    Dir = ?config(release_dir, Config),
    Bin = ?config(bin, Config),
    Env = ?config(env, Config),
    {0, _} = command(Dir, Bin, ["stop"], Env),
    py_test_lib:wait_until(fun() -> element(1, command(Dir, Bin, ["ping"], Env)) =/= 0 end, 30000).

%%% Helpers

%% The repository: the suites' directory's parent (CT compiles the
%% suites where their sources are).
repository_dir() ->
    Dir = filename:dirname(filename:dirname(code:which(?MODULE))),
    case filelib:is_dir(filename:join([Dir, "examples", "release"])) of
        true -> Dir;
        false -> ct:fail({no_examples_in, Dir})
    end.

eval(Config, Expr) ->
    case command(?config(release_dir, Config), ?config(bin, Config), ["eval", Expr],
                 ?config(env, Config)) of
        {0, Output} -> Output;
        Failed -> ct:fail({eval_failed, Expr, Failed})
    end.

command(Dir, Exe, Args, Env) ->
    py_test_lib:command(Exe, Args, Dir, Env).
