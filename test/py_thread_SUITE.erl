%% erlang.call() from any Python thread (issue "Threading support").
%%
%% The examples of the threading reference doc run as written (only adapted
%% to hand their values back to Erlang); threads of threads and threads
%% created by C code (pthread_create through ctypes); many calls in a row,
%% the GIL released while a thread waits, replies that never reach the wrong
%% thread, descriptors above 1024, no internal time limit; every waiting
%% thread wakes when the function raises, its handler dies, the application
%% stops or the Erlang caller dies; Python -> Erlang -> Python from threads;
%% and resources that stay bounded over ten thousand short-lived threads.
%%
%% Groups run one after the other: faults restarts the application and
%% resources measures counters that any concurrent call would change. Only
%% the cases of `examples' run in parallel with each other.
-module(py_thread_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [wait_for/2, scaled/1, await_down/2]).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2]).

-export([thread_calls_my_function_with_two_arguments/1,
         thread_pool_of_four_doubles_a_range_of_ten/1,
         one_thread_chains_add_one_three_times/1,
         ten_threads_each_double_their_number/1,
         thread_catches_runtime_error_from_maybe_fail/1]).
-export([thread_started_by_a_thread_calls_erlang/1,
         executor_inside_a_thread_calls_erlang/1,
         thread_created_by_c_code_calls_erlang/1,
         twenty_c_threads_in_turn_give_their_worker_back/1,
         twenty_c_threads_at_once_all_get_their_results/1]).
-export([one_thread_makes_a_thousand_calls_in_a_row/1,
         waiting_threads_let_each_other_run/1,
         replies_never_reach_the_wrong_thread/1,
         threads_call_erlang_with_more_than_1024_descriptors_open/1,
         function_taking_forty_seconds_still_answers/1]).
-export([thread_reenters_python_through_erlang/1,
         sixteen_threads_reenter_fifty_times_each/1,
         reentered_python_starts_a_thread_that_calls_erlang/1]).
-export([raising_function_raises_erlang_error_in_the_thread/1,
         killed_handler_wakes_the_waiting_thread/1,
         coordinator_dying_with_a_first_request_wakes_the_thread/1,
         handler_killing_itself_wakes_the_thread/1,
         application_stop_wakes_every_waiting_thread/1,
         dead_erlang_caller_leaves_its_threads_to_finish/1]).
-export([ten_thousand_short_lived_threads_leave_no_residue/1,
         thread_stats_show_the_pool_at_work/1]).

%% Per-case info functions (timetraps).
-export([function_taking_forty_seconds_still_answers/0,
         replies_never_reach_the_wrong_thread/0,
         ten_thousand_short_lived_threads_leave_no_residue/0]).

%% A hang fails the case instead of stalling the run.
suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, examples}, {group, thread_kinds}, {group, concurrency}, {group, reentry},
     {group, faults}, {group, resources}].

groups() ->
    [{examples, [parallel],
      [thread_calls_my_function_with_two_arguments,
       thread_pool_of_four_doubles_a_range_of_ten,
       one_thread_chains_add_one_three_times,
       ten_threads_each_double_their_number,
       thread_catches_runtime_error_from_maybe_fail]},
     %% Sequential: the C-thread cases count workers.
     {thread_kinds, [],
      [thread_started_by_a_thread_calls_erlang,
       executor_inside_a_thread_calls_erlang,
       thread_created_by_c_code_calls_erlang,
       twenty_c_threads_in_turn_give_their_worker_back,
       twenty_c_threads_at_once_all_get_their_results]},
     {concurrency, [],
      [one_thread_makes_a_thousand_calls_in_a_row,
       waiting_threads_let_each_other_run,
       replies_never_reach_the_wrong_thread,
       threads_call_erlang_with_more_than_1024_descriptors_open,
       function_taking_forty_seconds_still_answers]},
     {reentry, [],
      [thread_reenters_python_through_erlang,
       sixteen_threads_reenter_fifty_times_each,
       reentered_python_starts_a_thread_that_calls_erlang]},
     %% Sequential: one case stops and restarts the application.
     {faults, [],
      [raising_function_raises_erlang_error_in_the_thread,
       killed_handler_wakes_the_waiting_thread,
       coordinator_dying_with_a_first_request_wakes_the_thread,
       handler_killing_itself_wakes_the_thread,
       application_stop_wakes_every_waiting_thread,
       dead_erlang_caller_leaves_its_threads_to_finish]},
     %% Sequential and alone: counts descriptors, processes and workers.
     {resources, [],
      [ten_thousand_short_lived_threads_leave_no_residue,
       thread_stats_show_the_pool_at_work]}].

function_taking_forty_seconds_still_answers() ->
    [{timetrap, {minutes, 2}}].

replies_never_reach_the_wrong_thread() ->
    [{timetrap, {minutes, 12}}].

ten_thousand_short_lived_threads_leave_no_residue() ->
    [{timetrap, {minutes, 5}}].

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
    Fs = [%% The names of the reference doc.
          {my_function, fun([A, B]) -> {my_function, A, B} end},
          {double_it, fun([X]) -> X * 2 end},
          {add_one, fun([X]) -> X + 1 end},
          {maybe_fail, fun([X]) -> error({failed, X}) end},
          {sleep150, fun([X]) -> timer:sleep(150), X end},
          %% This suite's own.
          {th_identity, fun([X]) -> X end},
          {th_scramble, fun([X]) -> 3 * X + 1 end},
          {th_sleep_40s, fun([X]) -> timer:sleep(40000), {slept, X} end},
          {th_raise, fun([X]) -> error({th_bad, X}) end},
          {th_exit, fun([X]) -> exit({th_gone, X}) end},
          {th_throw, fun([X]) -> throw({th_ball, X}) end},
          {th_suicide, fun(_) -> exit(self(), kill) end},
          %% Tell the test which process runs the call, then wait to be killed.
          {th_block, fun([Pid, X]) -> Pid ! {th_blocked, self(), X}, timer:sleep(60000), X end},
          {th_sleep5000, fun([Pid, X]) -> Pid ! {th_waiting, X}, timer:sleep(5000), X end},
          {th_slow, fun([Pid, X]) -> Pid ! {th_slow_started, X}, timer:sleep(3000), 2 * X end},
          {th_via_python, fun([X]) -> {ok, R} = py:call('__main__', th_triple, [X]), R end},
          {th_via_python_thread,
           fun([X]) ->
                   {ok, [{<<"ok">>, R}]} =
                       py:call('__main__', th_in_threads, [<<"th_scramble">>, [[X]]]),
                   R
           end}],
    py_test_lib:register_functions(Fs).

%%% examples: the reference doc, as written

thread_calls_my_function_with_two_arguments(_Config) ->
    {ok, [{{my_function, 1, <<"two">>}, true}]} =
        py:call('__main__', th_doc_thread, [1, <<"two">>]),
    {ok, [{{my_function, [1.5, none], {3, 4}}, true}]} =
        py:call('__main__', th_doc_thread, [[1.5, none], {3, 4}]).

thread_pool_of_four_doubles_a_range_of_ten(_Config) ->
    {ok, {[0, 2, 4, 6, 8, 10, 12, 14, 16, 18], true, true}} = py:call('__main__', th_doc_pool, []).

one_thread_chains_add_one_three_times(_Config) ->
    {ok, [3]} = py:call('__main__', th_doc_chain, []).

ten_threads_each_double_their_number(_Config) ->
    {ok, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]} = py:call('__main__', th_doc_ten_threads, []).

thread_catches_runtime_error_from_maybe_fail(_Config) ->
    {ok, [{<<"ErlangError">>, true, error, {failed, 42}, <<"Erlang error: {failed,42}">>}]} =
        py:call('__main__', th_doc_error, []).

%%% thread_kinds

thread_started_by_a_thread_calls_erlang(_Config) ->
    %% A thread that starts a thread that calls Erlang.
    {ok, [{<<"ok">>, 12}, {<<"ok">>, 14}]} = py:call('__main__', th_nested_threads, [2, 5]),
    %% Five levels, each level waiting for the next one.
    {ok, Five} = py:call('__main__', th_nested_threads, [5, 100]),
    Five = [{<<"ok">>, 2 * (100 + D)} || D <- lists:seq(1, 5)].

executor_inside_a_thread_calls_erlang(_Config) ->
    {ok, [Results]} = py:call('__main__', th_executor_in_thread, [30]),
    Results = [3 * X + 1 || X <- lists:seq(0, 29)].

thread_created_by_c_code_calls_erlang(_Config) ->
    {ok, {[0], [0], [{<<"ok">>, 42, true}]}} = py:call('__main__', th_c_threads, [1, false]).

twenty_c_threads_in_turn_give_their_worker_back(_Config) ->
    Before = settled_thread_stats(),
    {ok, {Created, Joined, Got}} = py:call('__main__', th_c_threads, [20, false]),
    Created = lists:duplicate(20, 0),
    Joined = lists:duplicate(20, 0),
    Got = lists:duplicate(20, {<<"ok">>, 42, true}),
    %% pthread_join returned, so each thread had exited (and given its
    %% worker back) before the next one started: one worker served them all.
    After = py:thread_stats(),
    ct:log("before ~p~nafter ~p", [Before, After]),
    ?assert(workers(After) - workers(Before) =< 1, {Before, After}),
    ?assert(maps:get(workers_live, After) =< maps:get(workers_live, Before), {Before, After}),
    ?assert(maps:get(workers_pooled, After) > 0, After),
    20 = maps:get(erlang_calls, After) - maps:get(erlang_calls, Before).

twenty_c_threads_at_once_all_get_their_results(_Config) ->
    Before = settled_thread_stats(),
    {ok, {Created, Joined, Got}} = py:call('__main__', th_c_threads, [20, true]),
    Created = lists:duplicate(20, 0),
    Joined = lists:duplicate(20, 0),
    Got = lists:duplicate(20, {<<"ok">>, 42, true}),
    After = py:thread_stats(),
    ct:log("before ~p~nafter ~p", [Before, After]),
    %% All 20 held a worker at the same time (a barrier), and gave it back.
    ?assert(workers(After) >= 20, After),
    ?assert(workers(After) - workers(Before) =< 20, {Before, After}),
    ?assert(maps:get(workers_live, After) =< maps:get(workers_live, Before), {Before, After}),
    20 = maps:get(erlang_calls, After) - maps:get(erlang_calls, Before),
    %% And again: the same workers serve them.
    {ok, {Created, Joined, Got}} = py:call('__main__', th_c_threads, [20, true]),
    Again = py:thread_stats(),
    ct:log("again ~p", [Again]),
    ?assertEqual(workers(After), workers(Again)).

%%% concurrency

one_thread_makes_a_thousand_calls_in_a_row(_Config) ->
    {ok, Results} = py:call('__main__', th_in_a_row, [1000]),
    Results = [3 * I + 1 || I <- lists:seq(0, 999)].

waiting_threads_let_each_other_run(_Config) ->
    %% 8 threads wait 150 ms each in Erlang; one after the other would take
    %% 1.2 s.
    {ok, {Seconds, Results}} = py:call('__main__', th_sleepers, [8]),
    ct:log("8 x 150 ms took ~.3f s", [Seconds]),
    Results = lists:seq(0, 7),
    ?assert(Seconds < 0.6, {seconds, Seconds}).

replies_never_reach_the_wrong_thread(_Config) ->
    T0 = erlang:monotonic_time(millisecond),
    {ok, {Mismatches, Calls, Errors}} = py:call('__main__', th_check_calls,
                  [<<"th_identity">>, 1, 64, 5000, 1000000], #{}, 600000),
    Ms = erlang:monotonic_time(millisecond) - T0,
    ct:log("64 x 5000 calls: ~b ms, ~b mismatches, errors ~p", [Ms, Mismatches, Errors]),
    {0, 320000, []} = {Mismatches, Calls, Errors}.

threads_call_erlang_with_more_than_1024_descriptors_open(_Config) ->
    HighBefore = eventfds_above(1024),
    Files = [begin {ok, F} = file:open("/dev/null", [read]), F end || _ <- lists:seq(1, 1500)],
    try
        Fds = fd_count(),
        ?assert(Fds > 1500, {fds, Fds}),
        %% Pooled workers keep the eventfds they were made with: hold more
        %% threads at once than the pool has, so that at least 16 workers
        %% are new and get descriptors above 1500.
        #{workers_pooled := Pooled} = py:thread_stats(),
        N = max(8, Pooled + 16),
        {ok, Got} = py:call('__main__', th_held_together, [N, 20], #{}, 120000),
        Expected = [{3 * T + 1, [3 * (T * 100 + I) + 1 || I <- lists:seq(0, 19)]}
                    || T <- lists:seq(0, N - 1)],
        ?assertEqual(Expected, Got),
        HighAfter = eventfds_above(1024),
        ct:log("~b threads; ~b fds; eventfds above 1024: ~b before, ~b after",
               [N, Fds, HighBefore, HighAfter]),
        ?assert(HighAfter - HighBefore >= 8, {HighBefore, HighAfter}),
        %% Those workers keep working.
        {ok, Got8} = py:call('__main__', th_in_threads,
                             [<<"th_scramble">>, [[I] || I <- lists:seq(1, 8)]]),
        Got8 = [{<<"ok">>, 3 * I + 1} || I <- lists:seq(1, 8)]
    after
        [ok = file:close(F) || F <- Files]
    end.

function_taking_forty_seconds_still_answers(_Config) ->
    T0 = erlang:monotonic_time(millisecond),
    {ok, [{<<"ok">>, {slept, 7}}]} =
        py:call('__main__', th_in_threads, [<<"th_sleep_40s">>, [[7]]], #{}, infinity),
    Ms = erlang:monotonic_time(millisecond) - T0,
    ?assert(Ms >= 40000, {ms, Ms}).

%%% reentry

thread_reenters_python_through_erlang(_Config) ->
    {ok, [{<<"ok">>, 21}]} = py:call('__main__', th_in_threads, [<<"th_via_python">>, [[7]]]),
    {ok, Got} = py:call('__main__', th_in_threads,
                        [<<"th_via_python">>, [[I] || I <- lists:seq(1, 5)]]),
    Got = [{<<"ok">>, 3 * I} || I <- lists:seq(1, 5)].

sixteen_threads_reenter_fifty_times_each(_Config) ->
    {ok, {0, 800, []}} = py:call('__main__', th_check_calls,
                  [<<"th_via_python">>, 3, 16, 50, 1000], #{}, 120000).

reentered_python_starts_a_thread_that_calls_erlang(_Config) ->
    %% Thread -> Erlang -> Python, which starts a thread -> Erlang.
    {ok, Got} = py:call('__main__', th_in_threads,
                        [<<"th_via_python_thread">>, [[I] || I <- lists:seq(1, 6)]]),
    Got = [{<<"ok">>, 3 * I + 1} || I <- lists:seq(1, 6)].

%%% faults

raising_function_raises_erlang_error_in_the_thread(_Config) ->
    {ok, Raised} = py:call('__main__', th_fail_then_succeed, [<<"th_raise">>, 4]),
    Raised = [{{<<"raised">>, <<"ErlangError">>, <<"{th_bad,", (integer_to_binary(I))/binary, "}">>,
                error, {th_bad, I}},
               {<<"ok">>, 2 * I}} || I <- lists:seq(0, 3)],
    {ok, Exited} = py:call('__main__', th_fail_then_succeed, [<<"th_exit">>, 2]),
    Exited = [{{<<"raised">>, <<"ErlangError">>, <<"{th_gone,", (integer_to_binary(I))/binary, "}">>,
                exit, {th_gone, I}},
               {<<"ok">>, 2 * I}} || I <- lists:seq(0, 1)],
    {ok, Thrown} = py:call('__main__', th_fail_then_succeed, [<<"th_throw">>, 2]),
    Thrown = [{{<<"raised">>, <<"ErlangError">>, <<"{th_ball,", (integer_to_binary(I))/binary, "}">>,
                throw, {th_ball, I}},
               {<<"ok">>, 2 * I}} || I <- lists:seq(0, 1)],
    %% An unknown name, from a thread.
    {ok, [{<<"raised">>, <<"UnknownFunctionError">>, Message, none, none}]} =
        py:call('__main__', th_in_threads, [<<"th_never_registered">>, [[]]]),
    {match, _} = re:run(Message, "th_never_registered").

killed_handler_wakes_the_waiting_thread(_Config) ->
    Self = self(),
    N = 3,
    Caller = spawn_link(fun() ->
                 Self ! {th_result, py:call('__main__', th_in_threads,
                                            [<<"th_block">>, [[Self, I] || I <- lists:seq(1, N)]],
                                            #{}, 60000)}
             end),
    Handlers = [receive {th_blocked, H, I} -> H after scaled(10000) -> ct:fail({not_blocked, I}) end
                || I <- lists:seq(1, N)],
    N = length(lists:usort(Handlers)),
    T0 = erlang:monotonic_time(millisecond),
    [exit(H, kill) || H <- Handlers],
    Got = receive {th_result, R} -> R after scaled(10000) -> ct:fail(threads_still_waiting) end,
    Ms = erlang:monotonic_time(millisecond) - T0,
    unlink(Caller),
    ct:log("woke after ~b ms: ~p", [Ms, Got]),
    {ok, Outcomes} = Got,
    N = length(Outcomes),
    [{<<"raised">>, <<"ErlangError">>, _, none, none} = O || O <- Outcomes],
    [{match, _} = re:run(M, "th_block.*died") || {_, _, M, _, _} <- Outcomes],
    ?assert(Ms < 5000, {ms, Ms}),
    %% New threads (reusing those workers) call again.
    {ok, Again} = py:call('__main__', th_in_threads,
                          [<<"th_scramble">>, [[I] || I <- lists:seq(1, 2 * N)]]),
    Again = [{<<"ok">>, 3 * I + 1} || I <- lists:seq(1, 2 * N)].

%% A thread's first request waits in the coordinator's mailbox until the
%% coordinator spawns a handler; if the coordinator dies first, the thread
%% must still wake.
coordinator_dying_with_a_first_request_wakes_the_thread(_Config) ->
    Coordinator = whereis(py_coordinator),
    true = erlang:suspend_process(Coordinator),
    %% With every handler gone, the thread's worker must ask the coordinator.
    %% Each handler is seen gone before the thread starts, so that no
    %% worker still takes its dead handler for bound (its request would
    %% then fail on the handler's death, never reaching the coordinator).
    [await_down(Handler, 5000) || Handler <- [begin exit(H, kill), H end
                                              || H <- py_coordinator:handlers()]],
    Self = self(),
    Caller = spawn_link(fun() -> Self ! {th_first, py:call('__main__', th_first_call, [])} end),
    wait_for(fun() ->
                 {messages, Messages} = process_info(Coordinator, messages),
                 lists:any(fun(M) -> element(1, M) =:= unbound_request end,
                           [M || M <- Messages, is_tuple(M)])
             end, 5000),
    exit(Coordinator, kill),
    Got = receive {th_first, R} -> R after scaled(10000) -> ct:fail(thread_still_waiting) end,
    unlink(Caller),
    {ok, {<<"raised">>, <<"ErlangError">>}} = Got,
    wait_for(fun() -> is_pid(whereis(py_coordinator)) end, 5000),
    {ok, {<<"ok">>, 4}} = py:call('__main__', th_first_call, []).

handler_killing_itself_wakes_the_thread(_Config) ->
    {ok, Got} = py:call('__main__', th_fail_then_succeed, [<<"th_suicide">>, 4], #{}, 20000),
    4 = length(Got),
    [{{<<"raised">>, <<"ErlangError">>, _, none, none}, {<<"ok">>, _}} = G || G <- Got],
    [{match, _} = re:run(M, "th_suicide.*died") || {{_, _, M, _, _}, _} <- Got],
    [0, 2, 4, 6] = [D || {_, {_, D}} <- Got],
    {ok, Again} = py:call('__main__', th_in_threads,
                          [<<"th_scramble">>, [[I] || I <- lists:seq(1, 8)]]),
    Again = [{<<"ok">>, 3 * I + 1} || I <- lists:seq(1, 8)].

application_stop_wakes_every_waiting_thread(_Config) ->
    Self = self(),
    N = 4,
    Caller = spawn_link(fun() ->
                 Self ! {th_result, py:call('__main__', th_in_threads,
                                            [<<"th_sleep5000">>, [[Self, I] || I <- lists:seq(1, N)]],
                                            #{}, 60000)}
             end),
    [receive {th_waiting, I} -> ok after scaled(10000) -> ct:fail({not_waiting, I}) end
     || I <- lists:seq(1, N)],
    T0 = erlang:monotonic_time(millisecond),
    try
        ok = application:stop(erlang_python),
        Got = receive {th_result, R} -> R after scaled(20000) -> ct:fail(threads_still_waiting) end,
        Ms = erlang:monotonic_time(millisecond) - T0,
        unlink(Caller),
        ct:log("woke ~b ms after the stop: ~p", [Ms, Got]),
        {ok, Outcomes} = Got,
        N = length(Outcomes),
        [true = lists:member(Class, [<<"ErlangError">>, <<"RuntimeError">>])
         || {<<"raised">>, Class, _, _, _} <- Outcomes],
        N = length([O || {<<"raised">>, _, _, _, _} = O <- Outcomes]),
        ?assert(Ms < 2500, {ms, Ms}),
        %% While the application is stopped, a thread's call says so (the
        %% interpreter itself keeps working).
        {ok, [{<<"raised">>, <<"RuntimeError">>,
               <<"the erlang_python application is not running">>, none, none}]} =
            py:call('__main__', th_in_threads, [<<"double_it">>, [[1]]])
    after
        {ok, _} = application:ensure_all_started(erlang_python),
        ok = register_functions()
    end,
    {ok, Again} = py:call('__main__', th_in_threads,
                          [<<"th_scramble">>, [[I] || I <- lists:seq(1, 8)]]),
    Again = [{<<"ok">>, 3 * I + 1} || I <- lists:seq(1, 8)],
    {ok, [3]} = py:call('__main__', th_doc_chain, []).

dead_erlang_caller_leaves_its_threads_to_finish(_Config) ->
    Self = self(),
    N = 4,
    ok = py:exec(<<"th_orphans.clear()">>),
    Caller = spawn(fun() -> py:call('__main__', th_orphaned_threads, [Self, N], #{}, 60000) end),
    [receive {th_slow_started, I} -> ok after scaled(10000) -> ct:fail({not_started, I}) end
     || I <- lists:seq(0, N - 1)],
    T0 = erlang:monotonic_time(millisecond),
    exit(Caller, kill),
    %% The interpreter works, and so do new threads, at once.
    {ok, 2} = py:eval(<<"1 + 1">>, #{}, 2000),
    {ok, Got} = py:call('__main__', th_in_threads,
                        [<<"th_scramble">>, [[I] || I <- lists:seq(1, 4)]], #{}, 5000),
    Got = [{<<"ok">>, 3 * I + 1} || I <- lists:seq(1, 4)],
    %% The orphaned threads finish with their results once th_slow returns.
    Orphans = wait_for(fun() ->
                           {ok, Os} = py:eval(<<"sorted(th_orphans)">>),
                           length(Os) =:= N andalso Os
                       end, 10000),
    Ms = erlang:monotonic_time(millisecond) - T0,
    ct:log("orphans done within ~b ms: ~p", [Ms, Orphans]),
    Orphans = [{I, {<<"ok">>, 2 * I}} || I <- lists:seq(0, N - 1)],
    %% The thread that ran the killed caller's call is free again.
    {ok, [3]} = py:call('__main__', th_doc_chain, [], #{}, 5000).

%%% resources

ten_thousand_short_lived_threads_leave_no_residue(_Config) ->
    Stats0 = settled_thread_stats(),
    %% Warm-up: workers are kept for reuse (with their eventfd and handler
    %% process), so the pool first grows to the peak concurrency (100
    %% threads holding a worker at once); what is measured below is that
    %% 10 000 threads add nothing beyond that.
    {ok, {0, 200, []}} = py:call('__main__', th_short_lived, [2, 100], #{}, 60000),
    Warm = settled_thread_stats(),
    ?assert(workers(Warm) >= 100, Warm),
    Fds0 = fd_count(),
    Procs0 = erlang:system_info(process_count),
    T0 = erlang:monotonic_time(millisecond),
    {ok, {Bad, Made, Errors}} = py:call('__main__', th_short_lived, [100, 100], #{}, 240000),
    Ms = erlang:monotonic_time(millisecond) - T0,
    {0, 10000, []} = {Bad, Made, Errors},
    Stats = settled_thread_stats(),
    Fds = fd_count(),
    Procs = erlang:system_info(process_count),
    ct:log("10 000 threads in ~b ms~nstats before ~p~nafter warm-up ~p~nafter ~p~n"
           "fds ~b -> ~b, processes ~b -> ~b",
           [Ms, Stats0, Warm, Stats, Fds0, Fds, Procs0, Procs]),
    ?assert(Fds =< Fds0 + 50, {fds, Fds0, Fds}),
    ?assert(Procs =< Procs0 + 50, {processes, Procs0, Procs}),
    ?assert(maps:get(workers_live, Stats) =< maps:get(workers_live, Stats0), {Stats0, Stats}),
    ?assert(workers(Stats) =< max(workers(Stats0), maps:get(workers_live, Stats0) + 100) + 20,
            {Stats0, Stats}),
    ?assert(maps:get(handlers, Stats) =< maps:get(handlers, Stats0) + 120, {Stats0, Stats}),
    10200 = maps:get(erlang_calls, Stats) - maps:get(erlang_calls, Stats0).

thread_stats_show_the_pool_at_work(_Config) ->
    Before = settled_thread_stats(),
    {ok, {Got, []}} = py:call('__main__', th_calls_in_threads, [20, 5]),
    Got = [[3 * (T * 1000 + I) + 1 || I <- lists:seq(0, 4)] || T <- lists:seq(0, 19)],
    After = settled_thread_stats(),
    ct:log("before ~p~nafter ~p", [Before, After]),
    100 = maps:get(erlang_calls, After) - maps:get(erlang_calls, Before),
    ?assert(maps:get(workers_pooled, After) >= 20, After),
    ?assert(maps:get(workers_live, After) =< maps:get(workers_live, Before), {Before, After}),
    %% The same 20 threads again take their workers (and handlers) from the
    %% pool: nothing new.
    {ok, {Got, []}} = py:call('__main__', th_calls_in_threads, [20, 5]),
    Again = settled_thread_stats(),
    ct:log("again ~p", [Again]),
    100 = maps:get(erlang_calls, Again) - maps:get(erlang_calls, After),
    ?assertEqual(workers(After), workers(Again)),
    ?assertEqual(maps:get(handlers, After), maps:get(handlers, Again)),
    %% A single call from one new thread counts one.
    {ok, [{<<"ok">>, 4}]} = py:call('__main__', th_in_threads, [<<"th_scramble">>, [[1]]]),
    One = settled_thread_stats(),
    1 = maps:get(erlang_calls, One) - maps:get(erlang_calls, Again).

%%% helpers

workers(#{workers_live := Live, workers_pooled := Pooled}) ->
    Live + Pooled.

fd_count() ->
    {ok, Names} = file:list_dir("/proc/self/fd"),
    length(Names).

%% Eventfds (the workers' descriptors) numbered above Min.
eventfds_above(Min) ->
    {ok, Names} = file:list_dir("/proc/self/fd"),
    length([N || N <- Names, list_to_integer(N) > Min,
                 file:read_link("/proc/self/fd/" ++ N) =:= {ok, "anon_inode:[eventfd]"}]).

%% Threads that have been joined may still be exiting (giving their worker
%% back): the stats once they stop changing, within 5 s.
settled_thread_stats() ->
    py_test_lib:settled(thread_stats, fun py:thread_stats/0, 5000).
