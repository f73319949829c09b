%% Fault injection (issue "Reliability"): the processes of the application
%% are killed, the application is stopped, and the NIF module is reloaded
%% or unloaded, while Python threads, event loops and Erlang callers are all
%% busy. Every call must end with its own result or a clean error, no
%% waiter may hang, the VM must not crash, and afterwards everything works.
-module(py_fault_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [wait_until/2, wait_calls_done/1, scaled/1, restart_with/2,
                      restart_without/1]).

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([handlers_killed_under_load/1, coordinator_killed_under_load/1,
         application_stopped_under_load/1, callers_killed_mid_call/1]).
-export([reload_of_py_nif_keeps_calls_working/1, reload_of_py_nif_keeps_the_configuration/1,
         unload_and_load_of_py_nif_keeps_the_interpreter/1]).

%% How long each load runs, and how much longer than that it may take to
%% wind down once the faults stop.
-define(LOAD_MS, 3000).
-define(WIND_DOWN_MS, 15000).

all() ->
    [{group, kills}, {group, module}].

%% Sequential: each case kills shared processes or reloads the module.
groups() ->
    [{kills, [],
      [handlers_killed_under_load, coordinator_killed_under_load,
       application_stopped_under_load, callers_killed_mid_call]},
     {module, [],
      [reload_of_py_nif_keeps_calls_working, reload_of_py_nif_keeps_the_configuration,
       unload_and_load_of_py_nif_keeps_the_interpreter]}].

%% These cases count the calls running in the whole VM, so they start once
%% the calls earlier suites left behind have ended: a background call
%% whose case ended before it (its process outlives the case) runs until
%% its own timeout, 30 s by default. (callers_killed_mid_call failed on
%% such a call, an asyncio.run left waiting by py_async_SUITE.)
init_per_suite(Config) ->
    ok = py_test_lib:start_with_fixtures(Config),
    py_test_lib:wait_calls_done(60000),
    Config.

end_per_suite(_Config) ->
    ok.

%% Registered anew each time: a case may have restarted the application,
%% which empties the registry.
init_per_testcase(_Case, Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = register_functions(),
    Config.

end_per_testcase(_Case, _Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok.

register_functions() ->
    ok = py:register_function(fault_ident, fun([X]) -> X end).

%%% kills

handlers_killed_under_load(_Config) ->
    Load = start_load(),
    Kills = kill_repeatedly(fun() -> [exit(H, kill) || H <- py_coordinator:handlers()] end, 100),
    Outcomes = wait_load(Load),
    ct:log("handlers killed ~b times: ~p", [Kills, Outcomes]),
    check_outcomes(Outcomes, [<<"ErlangError">>]),
    works_afterwards().

coordinator_killed_under_load(_Config) ->
    Load = start_load(),
    %% Fewer than the supervisor's 5 restarts in 10 s, or it gives up and
    %% the application stops (as it should).
    Kills = kill_repeatedly(fun() ->
                                    case whereis(py_coordinator) of
                                        undefined -> ok;
                                        Pid -> exit(Pid, kill)
                                    end
                            end, 800),
    Outcomes = wait_load(Load),
    ct:log("coordinator killed ~b times: ~p", [Kills, Outcomes]),
    %% While no coordinator is registered a first request cannot be sent:
    %% RuntimeError, as when the application is not running.
    check_outcomes(Outcomes, [<<"ErlangError">>, <<"RuntimeError">>]),
    works_afterwards().

application_stopped_under_load(_Config) ->
    Load = start_load(),
    Failures = python_failures(),
    ok = application:stop(erlang_python),
    %% Started again only once the load has met the stopped application.
    wait_until(fun() -> python_failures() > Failures end, 5000),
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = register_functions(),
    Outcomes = wait_load(Load),
    ct:log("application stopped and started: ~p", [Outcomes]),
    %% Until the functions are registered again, calls find none.
    check_outcomes(Outcomes, [<<"ErlangError">>, <<"RuntimeError">>, <<"UnknownFunctionError">>]),
    works_afterwards().

%% Callers of py:call killed while their Python code sleeps (20 of them)
%% or waits in erlang.call (20 more): the Python work is stopped, and
%% nothing stays running.
callers_killed_mid_call(_Config) ->
    Self = self(),
    %% Says which process runs it, then waits until the test lets it go.
    ok = py:register_function(fault_ident, fun([X]) ->
                                                   Self ! {in_erlang, self(), X},
                                                   receive release -> X end
                                           end),
    Sleeping = lists:seq(1, 20),
    InErlang = lists:seq(21, 40),
    Callers = [spawn(fun() -> py:call('__main__', fault_sleep_then_call, [Self, Ms, X], #{},
                                      infinity)
                     end)
               || {Ms, Xs} <- [{60000, Sleeping}, {0, InErlang}], X <- Xs],
    [receive {sleeping, X} -> ok after scaled(10000) -> ct:fail({never_started, X}) end
     || X <- Sleeping ++ InErlang],
    Functions = [receive {in_erlang, Pid, X} -> Pid after scaled(10000) -> ct:fail({never_called, X}) end
                 || X <- InErlang],
    [exit(Pid, kill) || Pid <- Callers],
    wait_calls_done(5000),
    [Pid ! release || Pid <- Functions],
    ok = register_functions(),
    works_afterwards().

%%% module

%% A new version of py_nif loaded while calls of every kind are in flight
%% (the upgrade callback), then the old one purged once they have drained.
reload_of_py_nif_keeps_calls_working(_Config) ->
    ok = py:exec(<<"fault_kept = 'defined before the reload'">>),
    Load = start_load(),
    {module, py_nif} = code:load_file(py_nif),
    Outcomes = wait_load(Load),
    true = code:soft_purge(py_nif),
    ct:log("reloaded under load: ~p", [Outcomes]),
    check_outcomes(Outcomes, []),
    {ok, <<"defined before the reload">>} = py:eval(<<"fault_kept">>),
    works_afterwards().

%% A reload of py_nif leaves the application's settings as they were.
reload_of_py_nif_keeps_the_configuration(_Config) ->
    try
        restart_with(dirty_call_limit, 2),
        #{dirty_limit := 2} = py:stats(),
        ok = py_test_lib:reload_py_nif(),
        #{dirty_limit := 2} = py:stats()
    after
        restart_without(dirty_call_limit),
        ok = register_functions()
    end.

%% py_nif deleted and purged (the library's unload), then loaded again (its
%% load callback, not upgrade): the interpreter and its state are the same.
unload_and_load_of_py_nif_keeps_the_interpreter(_Config) ->
    ok = py:exec(<<"fault_kept = 'defined before the unload'">>),
    {ok, _} = py:eval(<<"fault_load(2, 1, 0.2)">>, #{}, 10000),
    ok = py_test_lib:unload_and_load_py_nif(),
    ok = register_functions(),
    {ok, <<"defined before the unload">>} = py:eval(<<"fault_kept">>),
    works_afterwards().

%%% helpers

%% The Python load (4 threads calling, 2 event loops) in a process of its
%% own, and 4 Erlang processes calling Python (which calls back) meanwhile;
%% returns once calls of both Python kinds have succeeded.
start_load() ->
    ok = py:exec(<<"fault_seen.clear()">>),
    Self = self(),
    Python = spawn_link(fun() ->
                                Self ! {python_load, py:call('__main__', fault_load,
                                                             [4, 2, ?LOAD_MS / 1000], #{},
                                                             ?LOAD_MS + ?WIND_DOWN_MS)}
                        end),
    Until = erlang:monotonic_time(millisecond) + ?LOAD_MS,
    Erlang = [spawn_link(fun() -> Self ! {erlang_load, erlang_load(K, 0, Until, #{})} end)
              || K <- lists:seq(1, 4)],
    wait_until(fun() -> python_succeeded(<<"call">>) andalso python_succeeded(<<"async_call">>) end,
               5000),
    {Python, Erlang}.

%% A call of Kind ("call" or "async_call") from the Python load has
%% succeeded.
python_succeeded(Kind) ->
    {ok, N} = py:eval(<<"fault_seen[(kind, 'ok')]">>, #{kind => Kind}),
    N > 0.

%% How many calls of the Python load have failed so far.
python_failures() ->
    {ok, N} = py:eval(<<"fault_failures()">>),
    N.

erlang_load(K, I, Until, Counts) ->
    case erlang:monotonic_time(millisecond) < Until of
        false ->
            Counts;
        true ->
            Outcome = case py:call('__main__', fault_reenter, [{K, I}]) of
                          {ok, {K, I}} -> ok;
                          {ok, _} -> wrong;
                          {error, {Type, _}} when is_atom(Type) -> atom_to_binary(Type);
                          {error, {<<"erlang.", Type/binary>>, _}} -> Type;
                          {error, Other} -> Other
                      end,
            erlang_load(K, I + 1, Until, maps:update_with(Outcome, fun(N) -> N + 1 end, 1, Counts))
    end.

%% Every outcome of both loads, counted together.
wait_load({_Python, Erlang}) ->
    Deadline = scaled(?LOAD_MS + ?WIND_DOWN_MS),
    Python = receive
                 {python_load, {ok, PythonCounts}} -> PythonCounts;
                 {python_load, Error} -> ct:fail({python_load_failed, Error})
             after Deadline -> ct:fail(python_load_hung)
             end,
    lists:foldl(fun(_, Acc) ->
                        receive
                            {erlang_load, Counts} -> merge(Counts, Acc)
                        after Deadline -> ct:fail(erlang_load_hung)
                        end
                end, normalise(Python), Erlang).

normalise(Counts) ->
    maps:fold(fun(<<"ok">>, N, Acc) -> Acc#{ok => N};
                 (<<"wrong">>, N, Acc) -> Acc#{wrong => N};
                 (K, N, Acc) -> Acc#{K => N}
              end, #{}, Counts).

merge(A, B) ->
    maps:fold(fun(K, N, Acc) -> maps:update_with(K, fun(M) -> M + N end, N, Acc) end, B, A).

%% Calls succeeded, none got another's result, and every failure was one of
%% the clean errors Allowed.
check_outcomes(Outcomes, Allowed) ->
    ?assert(maps:get(ok, Outcomes, 0) > 0, Outcomes),
    0 = maps:get(wrong, Outcomes, 0),
    Unexpected = maps:without([ok, wrong | Allowed], Outcomes),
    ?assertEqual(#{}, Unexpected).

%% Runs Kill every Ms while the load runs; how many times it ran.
kill_repeatedly(Kill, Ms) ->
    kill_repeatedly(Kill, Ms, erlang:monotonic_time(millisecond) + ?LOAD_MS - 500, 0).

kill_repeatedly(Kill, Ms, Until, N) ->
    timer:sleep(Ms),
    case erlang:monotonic_time(millisecond) < Until of
        true -> Kill(), kill_repeatedly(Kill, Ms, Until, N + 1);
        false -> N
    end.

works_afterwards() ->
    {ok, 4.0} = py:call(math, sqrt, [16]),
    {ok, {1, 2}} = py:call('__main__', fault_reenter, [{1, 2}]),
    {ok, Counts} = py:call('__main__', fault_load, [2, 1, 0.2], #{}, 10000),
    ?assertEqual([<<"ok">>], maps:keys(Counts)).
