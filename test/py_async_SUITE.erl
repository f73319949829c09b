%% erlang.async_call() from asyncio code (issue "asyncio").
%%
%% The issue's examples as written; calls in flight at once (three 200 ms
%% functions gathered in about 200 ms, a thousand from one loop); loops in
%% threads, several loops on several threads at once, loops run one after
%% another on one thread, with the event loop policy left alone; results
%% that never cross between calls or loops; errors at the await; bad
%% arguments at the call; cancellation that reaches Erlang (the function's
%% process is killed) and leaves the loop usable; py:call and py:eval of
%% coroutines, with timeouts that stop them; a real FastAPI application
%% driven by its TestClient; and faults: a killed handler, an application
%% stop with calls in flight, calls after a restart.
-module(py_async_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [wait_until/2, settled/3, await_down/2, scaled/1, exec_file/2,
                      restart_app/0]).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2]).

-export([fetch_example_runs_under_asyncio_run/1,
         gather_of_three_functions_returns_each_result/1,
         three_200ms_functions_gathered_take_about_200ms/1,
         thousand_calls_in_flight_from_one_loop/1,
         result_of_every_type_comes_back/1]).
-export([loop_in_a_thread_calls_erlang/1,
         two_threads_each_gather_fifty_calls/1,
         eight_loops_on_eight_threads_never_mix_results/1,
         loops_run_one_after_another_on_one_thread/1,
         event_loop_policy_is_left_alone/1,
         sync_and_async_calls_mix_in_one_coroutine/1,
         async_function_reenters_python/1]).
-export([erlang_exception_raises_erlang_error_at_the_await/1,
         unknown_function_raises_at_the_await/1,
         bad_arguments_raise_at_the_call/1,
         async_call_without_a_running_loop_raises/1,
         async_call_nested_too_deep_raises_recursion_error/1]).
-export([wait_for_timeout_cancels_and_kills_the_erlang_process/1,
         cancel_mid_flight_then_reuse_the_loop/1,
         cancelled_gather_kills_every_process/1,
         killed_call_process_fails_only_its_call/1,
         killed_call_process_during_a_sync_call_fails_only_its_call/1,
         late_answer_for_a_closed_loop_is_dropped/1]).
-export([py_call_of_async_def_returns_its_result/1,
         py_eval_of_a_coroutine_returns_its_result/1,
         async_def_that_raises_gives_an_error/1,
         timeout_stops_a_coroutine_sleeping_in_asyncio/1,
         timeout_stops_a_coroutine_awaiting_erlang/1,
         timeout_in_a_loop_callback_is_not_swallowed_by_the_loop/1,
         dead_caller_stops_its_coroutine/1]).
-export([fastapi_app_serves_two_hundred_requests/1]).
-export([interrupted_coroutine_closes_its_loop_cleanly/1]).
-export([killed_handler_fails_the_pending_awaits/1,
         application_stop_fails_every_await_in_flight/1,
         async_calls_work_after_a_restart/1,
         first_calls_of_a_thread_bind_one_handler/1,
         cancel_before_the_handler_is_bound_reaches_erlang/1,
         many_loops_leave_no_residue/1]).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, examples}, {group, loops}, {group, errors}, {group, cancellation},
     {group, coroutines_from_erlang}, {group, framework}, {group, faults}].

groups() ->
    %% Sequential: one case times a gather.
    [{examples, [],
      [fetch_example_runs_under_asyncio_run,
       gather_of_three_functions_returns_each_result,
       three_200ms_functions_gathered_take_about_200ms,
       thousand_calls_in_flight_from_one_loop,
       result_of_every_type_comes_back]},
     {loops, [parallel],
      [loop_in_a_thread_calls_erlang,
       two_threads_each_gather_fifty_calls,
       eight_loops_on_eight_threads_never_mix_results,
       loops_run_one_after_another_on_one_thread,
       event_loop_policy_is_left_alone,
       sync_and_async_calls_mix_in_one_coroutine,
       async_function_reenters_python]},
     {errors, [parallel],
      [erlang_exception_raises_erlang_error_at_the_await,
       unknown_function_raises_at_the_await,
       bad_arguments_raise_at_the_call,
       async_call_without_a_running_loop_raises,
       async_call_nested_too_deep_raises_recursion_error]},
     {cancellation, [],
      [wait_for_timeout_cancels_and_kills_the_erlang_process,
       cancel_mid_flight_then_reuse_the_loop,
       cancelled_gather_kills_every_process,
       killed_call_process_fails_only_its_call,
       killed_call_process_during_a_sync_call_fails_only_its_call,
       late_answer_for_a_closed_loop_is_dropped]},
     {coroutines_from_erlang, [],
      [py_call_of_async_def_returns_its_result,
       py_eval_of_a_coroutine_returns_its_result,
       async_def_that_raises_gives_an_error,
       timeout_stops_a_coroutine_sleeping_in_asyncio,
       timeout_stops_a_coroutine_awaiting_erlang,
       timeout_in_a_loop_callback_is_not_swallowed_by_the_loop,
       dead_caller_stops_its_coroutine,
       interrupted_coroutine_closes_its_loop_cleanly]},
     {framework, [], [fastapi_app_serves_two_hundred_requests]},
     %% Sequential: kills handlers, stops and restarts the application,
     %% counts workers.
     {faults, [],
      [killed_handler_fails_the_pending_awaits,
       application_stop_fails_every_await_in_flight,
       async_calls_work_after_a_restart,
       first_calls_of_a_thread_bind_one_handler,
       cancel_before_the_handler_is_bound_reaches_erlang,
       many_loops_leave_no_residue]}].

init_per_suite(Config) ->
    ok = py_test_lib:start_with_fixtures(Config),
    ok = register_functions(),
    Config.

end_per_suite(_Config) ->
    ok.

%% An application restart (here or in another suite) empties the registry.
init_per_group(_Group, Config) ->
    ok = register_functions(),
    Config.

end_per_group(_Group, _Config) ->
    ok.

register_functions() ->
    Fs = [%% The issue's names.
          {get_user, fun([Id]) -> #{<<"id">> => Id, <<"name">> => <<"user", (integer_to_binary(Id))/binary>>} end},
          {a, fun([X]) -> {a, X} end},
          {b, fun([X]) -> {b, X} end},
          {c, fun([X]) -> {c, X} end},
          %% This suite's own.
          {as_identity, fun([X]) -> X end},
          {as_triple, fun([X]) -> 3 * X end},
          {as_sleep, fun([Ms, X]) -> timer:sleep(Ms), X end},
          {as_raise, fun([X]) -> error({as_bad, X}) end},
          {as_throw, fun([X]) -> throw({as_ball, X}) end},
          {as_via_python, fun([X]) -> {ok, R} = py:call('__main__', as_add_ten, [X]), R end},
          %% Tells the test which process runs it, then waits to be killed.
          {as_hold, fun([Pid, X]) -> Pid ! {as_held, self(), X}, timer:sleep(60000), X end},
          %% Tells the test which process runs it, then waits for go.
          {as_block, fun([Pid]) -> Pid ! {as_blocked, self()}, receive go -> unblocked end end},
          %% Tells the test it ran: a marker sent after everything before it.
          {as_mark, fun([Pid]) -> Pid ! as_marker, ok end}],
    py_test_lib:register_functions(Fs).

%% Runs Fun in a linked process; done/1 waits for what it returns.
in_background(Fun) ->
    Self = self(),
    spawn_link(fun() -> Self ! {done, Fun()} end).

done(Ms) ->
    receive {done, Result} -> Result after scaled(Ms) -> ct:fail(no_answer) end.

held() ->
    receive {as_held, Pid, X} -> {Pid, X} after scaled(5000) -> ct:fail(not_held) end.

%% Waits up to a second for Pid to end.
wait_dead(Pid) ->
    await_down(Pid, 1000).

%%% examples

fetch_example_runs_under_asyncio_run(_Config) ->
    {ok, #{<<"id">> := 7, <<"name">> := <<"user7">>}} = py:eval(<<"asyncio.run(fetch(7))">>).

gather_of_three_functions_returns_each_result(_Config) ->
    {ok, [{a, 1}, {b, 2}, {c, 3}]} = py:eval(<<"asyncio.run(as_gather_abc())">>).

three_200ms_functions_gathered_take_about_200ms(_Config) ->
    {ok, {[1, 2, 3], Seconds}} =
        py:eval(<<"as_timed(as_gather('as_sleep', [(200, 1), (200, 2), (200, 3)]))">>),
    ct:log("three 200 ms calls gathered: ~.3f s", [Seconds]),
    %% One after another they would take 0.6 s.
    ?assert(Seconds >= 0.195 andalso Seconds < 0.5, Seconds).

thousand_calls_in_flight_from_one_loop(_Config) ->
    {ok, {Results, Seconds}} =
        py:eval(<<"as_timed(as_gather('as_triple', [(i,) for i in range(1000)]))">>),
    Results = [3 * I || I <- lists:seq(0, 999)],
    ct:log("1000 async calls gathered in ~.3f s", [Seconds]).

result_of_every_type_comes_back(_Config) ->
    Values = [none, 1, -(1 bsl 100), 2.5, <<"text">>, <<"é"/utf8>>, [1, [2]], {1, 2},
              #{<<"k">> => [1]}, true, an_atom, self(), make_ref(),
              binary:copy(<<"x">>, 100000), lists:seq(1, 5000)],
    {ok, Values} = py:call('__main__', as_gather_values, [Values]).

%%% loops

loop_in_a_thread_calls_erlang(_Config) ->
    {ok, [{<<"ok">>, #{<<"id">> := 0}}]} =
        py:eval(<<"as_in_threads(1, lambda i: fetch(i))">>).

two_threads_each_gather_fifty_calls(_Config) ->
    {ok, Results} =
        py:eval(<<"as_in_threads(2, lambda i: as_gather('as_identity', "
                  "[((i, j),) for j in range(50)]))">>),
    Results = [{<<"ok">>, [{I, J} || J <- lists:seq(0, 49)]} || I <- [0, 1]].

eight_loops_on_eight_threads_never_mix_results(_Config) ->
    %% Each loop gathers 200 calls of varying length, tagged by thread.
    {ok, Results} =
        py:eval(<<"as_in_threads(8, lambda i: as_gather('as_sleep', "
                  "[((j * 7 + i) % 5, (i, j)) for j in range(200)]))">>),
    Results = [{<<"ok">>, [{I, J} || J <- lists:seq(0, 199)]} || I <- lists:seq(0, 7)].

loops_run_one_after_another_on_one_thread(_Config) ->
    {ok, [{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {0, 0}]} = py:eval(<<"as_three_loops()">>),
    {ok, {0, 0}} = py:eval(<<"as_pending()">>).

event_loop_policy_is_left_alone(_Config) ->
    {ok, {true, true, true}} = py:eval(<<"as_policy_check()">>).

sync_and_async_calls_mix_in_one_coroutine(_Config) ->
    %% A blocking erlang.call while async calls are in flight must not eat
    %% the wake-up meant for the loop.
    {ok, {[{1, a}, {2, b}], 30}} = py:eval(<<"asyncio.run(as_mixed())">>).

async_function_reenters_python(_Config) ->
    {ok, [11, 12, 13]} = py:eval(<<"asyncio.run(as_gather('as_via_python', [(1,), (2,), (3,)]))">>).

%%% errors

erlang_exception_raises_erlang_error_at_the_await(_Config) ->
    {ok, {<<"raised">>, <<"ErlangError">>, <<"{as_bad,1}">>, error, {as_bad, 1}}} =
        py:eval(<<"asyncio.run(as_try('as_raise', 1))">>),
    {ok, {<<"raised">>, <<"ErlangError">>, _, throw, {as_ball, 2}}} =
        py:eval(<<"asyncio.run(as_try('as_throw', 2))">>),
    %% The others in the same gather are unaffected.
    {ok, [{<<"ok">>, 1}, {<<"raised">>, <<"ErlangError">>, _, error, {as_bad, 2}}, {<<"ok">>, 3}]} =
        py:eval(<<"asyncio.run(as_mixed_outcomes())">>).

unknown_function_raises_at_the_await(_Config) ->
    {ok, {<<"raised">>, <<"UnknownFunctionError">>,
          <<"no Erlang function is registered as 'as_nothing'">>, none, none}} =
        py:eval(<<"asyncio.run(as_try('as_nothing', 1))">>).

bad_arguments_raise_at_the_call(_Config) ->
    {ok, [{<<"TypeError">>, NoName},
          {<<"TypeError">>, <<"erlang.async_call(name, *args): name must be a str">>},
          {<<"TypeError">>, Unconvertible},
          {0, 0}]} =
        py:eval(<<"asyncio.run(as_bad_calls())">>),
    ct:log("no name: ~ts~nunconvertible argument: ~ts", [NoName, Unconvertible]).

async_call_without_a_running_loop_raises(_Config) ->
    {ok, {<<"RuntimeError">>, <<"no running event loop">>}} = py:eval(<<"as_no_loop()">>).

async_call_nested_too_deep_raises_recursion_error(_Config) ->
    %% py:call at depth 64 (the limit) cannot send one more level.
    Self = self(),
    spawn_link(fun() ->
                   put('$py_frame', 64),
                   Self ! {deep, py:eval(<<"asyncio.run(as_try('as_identity', 1))">>)}
               end),
    receive
        {deep, {ok, {<<"raised">>, <<"RecursionError">>, _, none, none}}} -> ok;
        {deep, Other} -> ct:fail(Other)
    after scaled(10000) -> ct:fail(no_answer)
    end.

%%% cancellation

wait_for_timeout_cancels_and_kills_the_erlang_process(_Config) ->
    Self = self(),
    Caller = in_background(fun() -> py:call('__main__', as_wait_for, [Self]) end),
    {Held, 1} = held(),
    {ok, {<<"timed out">>, {0, 0}}} = done(5000),
    %% Erlang was told: the function's process is gone.
    wait_dead(Held),
    unlink(Caller).

cancel_mid_flight_then_reuse_the_loop(_Config) ->
    Self = self(),
    in_background(fun() -> py:call('__main__', as_cancel_and_reuse, [Self]) end),
    %% Cancelled only once its process runs.
    {Held, 2} = held(),
    ok = py:exec(<<"as_told.add(2)">>),
    {ok, {<<"cancelled">>, Tripled, {0, 0}}} = done(5000),
    Tripled = [3 * I || I <- lists:seq(0, 9)],
    wait_dead(Held).

cancelled_gather_kills_every_process(_Config) ->
    Self = self(),
    in_background(fun() -> py:eval(<<"asyncio.run(as_gather_cancelled(pid))">>, #{pid => Self}) end),
    Held = [element(1, held()) || _ <- lists:seq(1, 20)],
    {ok, {0, 0}} = done(5000),
    lists:foreach(fun wait_dead/1, Held).

killed_call_process_fails_only_its_call(_Config) ->
    Self = self(),
    in_background(fun() -> py:eval(<<"asyncio.run(as_one_killed(pid))">>, #{pid => Self}) end),
    {Held, 8} = held(),
    exit(Held, kill),
    {ok, [{<<"raised">>, <<"ErlangError">>, <<"killed">>, exit, killed},
          {<<"ok">>, 0}, {<<"ok">>, 1}, {<<"ok">>, 2}]} = done(5000).

killed_call_process_during_a_sync_call_fails_only_its_call(_Config) ->
    %% The thread blocks in erlang.call while its async call's process is
    %% killed: the handler running the sync call carries on.
    Self = self(),
    in_background(fun() ->
                          py:eval(<<"asyncio.run(as_killed_while_blocked(pid))">>, #{pid => Self})
                  end),
    {Held, 9} = held(),
    Handler = receive {as_blocked, H} -> H after scaled(5000) -> ct:fail(not_blocked) end,
    exit(Held, kill),
    wait_dead(Held),
    %% The handler has the news of the death before it may return.
    wait_until(fun() ->
                       {messages, Messages} = process_info(Handler, messages),
                       lists:any(fun({_, _, process, Pid, killed}) -> Pid =:= Held;
                                    (_) -> false
                                 end, Messages)
               end, 5000),
    Handler ! go,
    {ok, {unblocked, {<<"raised">>, <<"ErlangError">>, <<"killed">>, exit, killed}}} = done(5000),
    true = is_process_alive(Handler).

late_answer_for_a_closed_loop_is_dropped(_Config) ->
    %% A loop closed with calls in flight; one answer arrives later, while
    %% another loop on the same thread waits for its own calls, the other
    %% only after that loop is gone. The thread's channel is left idle.
    {ok, {<<"second">>, [1, 2, 3], {0, 0}}} = py:eval(<<"as_closed_loop()">>).

%%% coroutines from Erlang

py_call_of_async_def_returns_its_result(_Config) ->
    {ok, #{<<"id">> := 5}} = py:call('__main__', fetch, [5]),
    {ok, 42} = py:call('__main__', as_double_later, [21]),
    {ok, [{a, 1}, {b, 2}, {c, 3}]} = py:call('__main__', as_gather_abc, []).

py_eval_of_a_coroutine_returns_its_result(_Config) ->
    {ok, 8} = py:eval(<<"as_double_later(4)">>),
    %% A coroutine function passed as a value is not called.
    {error, {'TypeError', _}} = py:eval(<<"as_double_later">>).

async_def_that_raises_gives_an_error(_Config) ->
    {error, {'ValueError', <<"later">>}} = py:call('__main__', as_fail_later, [<<"later">>]),
    Traceback = py:last_traceback(),
    ?assertMatch({match, _}, re:run(Traceback, <<"as_fail_later">>)).

timeout_stops_a_coroutine_sleeping_in_asyncio(_Config) ->
    ok = py:exec(<<"as_log.clear()">>),
    T0 = erlang:monotonic_time(millisecond),
    {error, timeout} = py:call('__main__', as_sleep_forever, [], #{}, 300),
    Ms = erlang:monotonic_time(millisecond) - T0,
    ct:log("timed out after ~b ms", [Ms]),
    ?assert(Ms < 2000, Ms),
    {ok, [<<"sleep_forever cleaned up">>]} = py:eval(<<"as_log">>).

timeout_stops_a_coroutine_awaiting_erlang(_Config) ->
    ok = py:exec(<<"as_log.clear()">>),
    Self = self(),
    in_background(fun() -> py:call('__main__', as_await_erlang, [Self, 3], #{}, 300) end),
    {Held, 3} = held(),
    {error, timeout} = done(3000),
    wait_dead(Held),
    {ok, [{<<"await_erlang cleaned up">>, 3}]} = py:eval(<<"as_log">>).

%% The loop runs plain callbacks (call_soon) nearly all the time, each
%% sleeping a little, so the interruption is raised inside one (by the
%% sleep). asyncio logs and drops exceptions from callbacks, all but
%% KeyboardInterrupt and SystemExit: the interruption must end the run all
%% the same, not be reported to the loop's exception handler.
timeout_in_a_loop_callback_is_not_swallowed_by_the_loop(_Config) ->
    [begin
         ok = py:exec(<<"as_log.clear()">>),
         {error, timeout} = py:call('__main__', as_busy_callbacks, [], #{}, 100 + 10 * I),
         wait_until(fun() -> py:eval(<<"as_log">>) =:= {ok, [<<"busy_callbacks cleaned up">>]} end,
                    5000),
         {ok, []} = py:eval(<<"as_handled">>)
     end || I <- lists:seq(1, 5)].

dead_caller_stops_its_coroutine(_Config) ->
    ok = py:exec(<<"as_log.clear()">>),
    Self = self(),
    {Caller, Ref} = spawn_monitor(fun() -> py:call('__main__', as_await_erlang, [Self, 4]) end),
    {Held, 4} = held(),
    exit(Caller, kill),
    receive {'DOWN', Ref, process, Caller, killed} -> ok end,
    %% The watchdog notices the dead caller within its tick.
    wait_until(fun() -> not is_process_alive(Held) end, 3000),
    wait_until(fun() -> py:eval(<<"as_log">>) =:= {ok, [{<<"await_erlang cleaned up">>, 4}]} end,
               3000).

%%% framework

fastapi_app_serves_two_hundred_requests(Config) ->
    case py:eval(<<"__import__('importlib.util').util.find_spec('fastapi') is not None and "
                   "__import__('importlib.util').util.find_spec('httpx') is not None">>) of
        {ok, false} -> {skip, "fastapi or httpx not installed for this Python"};
        {ok, true} -> fastapi_app(Config)
    end.

fastapi_app(Config) ->
    ok = exec_file(Config, "fastapi_app.py"),
    {ok, {200, [], Warnings, Logged}} = py:eval(<<"as_serve(200)">>, #{}, 120000),
    ct:log("warnings: ~p~nasyncio log: ~p", [Warnings, Logged]),
    [] = [W || W <- Warnings, binary:match(W, <<"never retrieved">>) =/= nomatch orelse
                              binary:match(W, <<"was never awaited">>) =/= nomatch],
    [] = Logged.

%%% faults

killed_handler_fails_the_pending_awaits(_Config) ->
    Self = self(),
    in_background(fun() -> py:call('__main__', as_handler_dies_main, [Self]) end),
    Held = [element(1, held()) || _ <- lists:seq(1, 3)],
    %% The handler is whoever spawned the holders: the process that
    %% monitors them.
    [Handler] = lists:usort([Pid || H <- Held,
                                    {monitored_by, By} <- [process_info(H, monitored_by)],
                                    Pid <- By, Pid =/= self()]),
    exit(Handler, kill),
    {ok, {Outcomes, 15, {0, 0}}} = done(5000),
    3 = length(Outcomes),
    [{<<"raised">>, <<"ErlangError">>, <<"the Erlang process running the call died", _/binary>>,
      none, none} = O || O <- Outcomes],
    %% The calls' processes ended with their handler.
    lists:foreach(fun wait_dead/1, Held).

application_stop_fails_every_await_in_flight(_Config) ->
    Self = self(),
    in_background(fun() -> py:call('__main__', as_stop_in_threads, [Self], #{}, 20000) end),
    Held = [element(1, held()) || _ <- lists:seq(1, 10)],
    T0 = erlang:monotonic_time(millisecond),
    try
        ok = application:stop(erlang_python),
        {ok, PerThread} = done(5000),
        ct:log("woke ~b ms after the stop", [erlang:monotonic_time(millisecond) - T0]),
        [{<<"ok">>, Outcomes}, {<<"ok">>, Outcomes}] = PerThread,
        5 = length(Outcomes),
        [{<<"raised">>, <<"ErlangError">>, _, none, none} = O || O <- Outcomes],
        %% While stopped, an async call says so at once.
        {ok, {<<"RuntimeError">>, <<"the erlang_python application is not running">>}} =
            py:eval(<<"asyncio.run(as_stopped())">>),
        lists:foreach(fun wait_dead/1, Held)
    after
        {ok, _} = application:ensure_all_started(erlang_python),
        ok = register_functions()
    end.

async_calls_work_after_a_restart(_Config) ->
    ok = application:stop(erlang_python),
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = register_functions(),
    {ok, [{a, 1}, {b, 2}, {c, 3}]} = py:eval(<<"asyncio.run(as_gather_abc())">>),
    {ok, [{<<"ok">>, [0, 3]}, {<<"ok">>, [0, 3]}]} =
        py:eval(<<"as_in_threads(2, lambda i: as_gather('as_triple', [(0,), (1,)]))">>).

many_loops_leave_no_residue(_Config) ->
    %% 200 threads at once, each running a loop that gathers 20 calls; a
    %% second round leaves the counts of workers, descriptors and processes
    %% where the first did.
    Run = fun() ->
              {ok, Results} = py:eval(<<"as_in_threads(200, lambda i: as_gather('as_identity', "
                                        "[(j,) for j in range(20)]))">>, #{}, 60000),
              200 = length([ok || {<<"ok">>, L} <- Results, L =:= lists:seq(0, 19)])
          end,
    Run(),
    Before = residue(),
    Run(),
    After = residue(),
    ct:log("workers, handlers, fds before ~p~nafter ~p", [Before, After]),
    Before = After.

%% After a restart no worker has a handler: the next thread's first
%% requests go through the coordinator.
restart() ->
    ok = restart_app(),
    ok = register_functions().

first_calls_of_a_thread_bind_one_handler(_Config) ->
    %% A thread whose first act is 50 async calls at once: they reach the
    %% coordinator before it has bound a handler, and all go to one.
    restart(),
    #{handlers := 0} = py:thread_stats(),
    {ok, [{<<"ok">>, Results}]} =
        py:eval(<<"as_in_threads(1, lambda i: as_gather('as_identity', [(j,) for j in range(50)]))">>),
    Results = lists:seq(0, 49),
    #{handlers := 1} = py:thread_stats().

cancel_before_the_handler_is_bound_reaches_erlang(_Config) ->
    %% The call and its cancel both go through the coordinator.
    restart(),
    Self = self(),
    in_background(fun() -> py:call('__main__', as_cancel_first_main, [Self]) end),
    receive as_cancelled -> ok after scaled(5000) -> ct:fail(not_cancelled) end,
    %% The thread sent the call and the cancel to the coordinator before it
    %% told us, so a request made now waits behind them in its mailbox:
    %% once the coordinator answers it, both have gone on to the handler,
    %% and the thread's next request, the marker, comes after them.
    _ = sys:get_state(py_coordinator),
    [_] = py_coordinator:handlers(),
    ok = py:exec(<<"as_told.add(7)">>),
    receive as_marker -> ok after scaled(5000) -> ct:fail(no_marker) end,
    {ok, [{<<"ok">>, <<"cancelled">>}]} = done(5000),
    %% The call may have started before its cancel came, or never: if it
    %% did, its message came before the marker's, and its process is gone.
    receive
        {as_held, Held, 7} -> wait_dead(Held)
    after 0 -> ok
    end,
    #{handlers := 1} = py:thread_stats().

%% Workers, handlers and descriptors, once exiting threads and processes
%% have finished exiting (the counts stop changing).
residue() ->
    settled(residue, fun() ->
                             Stats = py:thread_stats(),
                             {ok, Fds} = file:list_dir("/proc/self/fd"),
                             {maps:get(workers_live, Stats) + maps:get(workers_pooled, Stats),
                              maps:get(handlers, Stats), length(Fds)}
                     end, 5000).

%%% teardown

%% An interruption may land while py:call's event loop is shut down: in
%% the coroutine's own cleanup, when it outlasts the interruption's refire
%% (the first interruption cancels the coroutine, the next one comes a
%% second later), or in the middle of loop.close() (made slow here just
%% after it has closed the loop's self-pipe socket). Or while the loop is
%% made (socketpair() made slow). Each way the loop ends closed and Python
%% prints nothing to stderr: no "Task was destroyed but it is pending!",
%% no "Invalid file descriptor: -1" from a second close of a half-closed
%% loop, no "coroutine ... was never awaited", no AttributeError from the
%% __del__ of a half-made loop.
interrupted_coroutine_closes_its_loop_cleanly(_Config) ->
    [begin
         {ok, none} = py:call('__main__', as_capture_stderr, [F =:= as_loop_made_slowly]),
         try
             {error, timeout} = py:call('__main__', F, [], #{}, 100)
         after
             %% A call on a pool thread may still be shutting its loop down.
             py_test_lib:wait_calls_done(10000)
         end,
         {ok, Printed} = py:call('__main__', as_release_stderr, []),
         ct:log("~s printed:~n~ts", [F, Printed]),
         {F, <<>>} = {F, Printed},
         {ok, true} = py:eval(<<"as_loops_closed()">>)
     end || F <- [as_cleanup_outlasts_interruption, as_close_outlasts_interruption,
                  as_loop_made_slowly]].
