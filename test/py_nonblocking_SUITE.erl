%% Calls that return at once, as a user sees them: py:spawn_call and
%% py:await (from a plain process and from a gen_server that keeps
%% serving, and traps exits, meanwhile), py:cancel (which really stops the
%% Python work, exactly one answer whatever the order), callers killed
%% mid-call, py:cast (whose failures are logged), and coroutines:
%% py:async_call and py:async_gather (concurrent on one event loop). The
%% suite is also the tiny gen_server its cases start, and the logger
%% handler that catches what py:cast logs.
-module(py_nonblocking_SUITE).
-behaviour(gen_server).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [wait_until/2, await_down/2, scaled/1]).

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1]).

-export([spawn_call_answers_with_what_call_gives/1, await_returns_the_result/1,
         bad_arguments_come_back_as_call_errors/1,
         python_exception_comes_back_as_a_call_error/1,
         gen_server_keeps_serving_during_a_long_call/1,
         await_of_an_unknown_ref_times_out/1,
         await_timeout_stops_the_call_and_leaves_no_message/1,
         await_waits_for_a_result_that_is_coming/1]).
-export([cancel_interrupts_the_python_work/1, cancel_twice_is_harmless/1,
         cancel_after_completion_changes_nothing/1,
         cancel_of_an_unknown_or_foreign_ref_changes_nothing/1,
         killed_caller_stops_its_python_work/1,
         racing_cancels_leave_exactly_one_answer_each/1,
         calls_never_awaited_leave_a_bounded_record/1]).
-export([cast_runs_the_call/1, cast_outlives_its_caller/1, cast_failure_is_logged/1,
         cast_timeout_is_logged/1]).
-export([async_call_runs_a_coroutine/1, async_gather_runs_coroutines_concurrently/1,
         async_gather_gives_plain_values_too/1, async_gather_fails_with_the_first_error/1,
         async_gather_rejects_bad_calls/1, coroutines_run_after_py_nif_is_loaded_again/1]).
%% The gen_server.
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).
%% The logger handler.
-export([log/2]).

all() ->
    [{group, spawn_call}, {group, cancel}, {group, cast}, {group, coroutines}].

groups() ->
    [{spawn_call, [],
      [spawn_call_answers_with_what_call_gives, await_returns_the_result,
       bad_arguments_come_back_as_call_errors, python_exception_comes_back_as_a_call_error,
       gen_server_keeps_serving_during_a_long_call, await_of_an_unknown_ref_times_out,
       await_timeout_stops_the_call_and_leaves_no_message,
       await_waits_for_a_result_that_is_coming]},
     %% Sequential: the last case counts what all of them left behind.
     {cancel, [],
      [cancel_interrupts_the_python_work, cancel_twice_is_harmless,
       cancel_after_completion_changes_nothing,
       cancel_of_an_unknown_or_foreign_ref_changes_nothing,
       killed_caller_stops_its_python_work, racing_cancels_leave_exactly_one_answer_each,
       calls_never_awaited_leave_a_bounded_record]},
     {cast, [],
      [cast_runs_the_call, cast_outlives_its_caller, cast_failure_is_logged,
       cast_timeout_is_logged]},
     {coroutines, [],
      [async_call_runs_a_coroutine, async_gather_runs_coroutines_concurrently,
       async_gather_gives_plain_values_too, async_gather_fails_with_the_first_error,
       async_gather_rejects_bad_calls, coroutines_run_after_py_nif_is_loaded_again]}].

init_per_suite(Config) ->
    ok = py_test_lib:start_with_fixtures(Config),
    Config.

end_per_suite(_Config) ->
    ok.

%%% spawn_call

spawn_call_answers_with_what_call_gives(_Config) ->
    Ref = py:spawn_call(math, sqrt, [16]),
    true = is_reference(Ref),
    receive {py_response, Ref, {ok, 4.0}} -> ok after scaled(5000) -> ct:fail(no_answer) end,
    Kwargs = py:spawn_call(builtins, int, [<<"ff">>], #{base => 16}),
    {ok, 255} = py:await(Kwargs),
    AsRef = py:spawn_call(builtins, list, [[1, 2]], #{}, #{return => ref}),
    {ok, Object} = py:await(AsRef),
    true = py:is_ref(Object),
    {ok, [1, 2]} = py:to_term(Object).

await_returns_the_result(_Config) ->
    Ref = py:spawn_call('__main__', slow_answer, [0.05, 7], #{}, 5000),
    {ok, 7} = py:await(Ref, scaled(5000)).

bad_arguments_come_back_as_call_errors(_Config) ->
    Cases = [{1, sqrt, [16], #{}, 5000},
             {math, 2, [16], #{}, 5000},
             {math, sqrt, not_a_list, #{}, 5000},
             {math, sqrt, [16], not_a_map, 5000},
             {math, sqrt, [16], #{}, not_a_timeout},
             {math, sqrt, [16], #{}, #{unknown => 1}},
             {no_such_module, f, [], #{}, 5000},
             {math, no_such_function, [], #{}, 5000}],
    [begin
         Expected = py:call(M, F, A, K, O),
         {error, _} = Expected,
         Expected = py:await(py:spawn_call(M, F, A, K, O), scaled(5000))
     end || {M, F, A, K, O} <- Cases].

python_exception_comes_back_as_a_call_error(_Config) ->
    {error, {'ValueError', <<"boom">>}} = py:await(py:spawn_call('__main__', fail, [<<"boom">>])).

%% The story of the issue: a gen_server starts a two-second call, answers
%% calls meanwhile, and gets the result in handle_info; it traps exits
%% and gets no 'EXIT' message.
gen_server_keeps_serving_during_a_long_call(_Config) ->
    {ok, Server} = gen_server:start(?MODULE, {'__main__', slow_answer, [2, 42]}, []),
    try
        {links, [Worker]} = process_info(Server, links),
        Pings = serve_while_busy(Server, 0),
        ct:log("~b calls answered during the Python call", [Pings]),
        true = Pings >= 5,
        wait_until(fun() -> result(Server) =:= {ok, 42} end, 10000),
        %% The worker unlinked before it answered, and has ended: no exit
        %% signal can become a message any more.
        {links, []} = process_info(Server, links),
        await_down(Worker, 5000),
        #{others := []} = sys:get_state(Server)
    after
        gen_server:stop(Server)
    end.

%% Answers while the result has not come: each call must be answered at
%% once, not after the Python call.
serve_while_busy(Server, Pings) ->
    case result(Server) of
        undefined ->
            pong = gen_server:call(Server, ping, scaled(500)),
            timer:sleep(50),
            serve_while_busy(Server, Pings + 1);
        _ ->
            Pings
    end.

result(Server) ->
    gen_server:call(Server, result, scaled(500)).

await_of_an_unknown_ref_times_out(_Config) ->
    {error, timeout} = py:await(make_ref(), 50),
    {error, timeout} = py:await(make_ref(), 0).

await_timeout_stops_the_call_and_leaves_no_message(_Config) ->
    Name = <<"await_timeout">>,
    {Ref, Worker} = spawned(fun() -> py:spawn_call('__main__', count_forever, [Name, self()],
                                                   #{}, infinity) end),
    receive {counting, Name} -> ok after scaled(10000) -> ct:fail(never_started) end,
    {error, timeout} = py:await(Ref, 100),
    assert_stopped(Name),
    no_answer_from(Worker, Ref).

%% A result that is in the mailbox when the time is up is returned.
await_waits_for_a_result_that_is_coming(_Config) ->
    {Ref, Worker} = spawned(fun() -> py:spawn_call(math, sqrt, [16]) end),
    await_down(Worker, 5000),
    {ok, 4.0} = py:await(Ref, 0),
    no_answer_from(Worker, Ref).

%%% cancel

cancel_interrupts_the_python_work(_Config) ->
    process_flag(trap_exit, true),
    Name = <<"cancelled">>,
    {Ref, Worker} = spawned(fun() -> py:spawn_call('__main__', count_forever, [Name, self()],
                                                   #{}, infinity) end),
    receive {counting, Name} -> ok after scaled(10000) -> ct:fail(never_started) end,
    ok = py:cancel(Ref),
    assert_stopped(Name),
    {error, cancelled} = py:await(Ref, scaled(1000)),
    await_down(Worker, 10000),
    no_answer_from(Worker, Ref),
    receive {'EXIT', Worker, _} = Exit -> ct:fail({exit_message, Exit}) after 0 -> ok end,
    process_flag(trap_exit, false).

cancel_twice_is_harmless(_Config) ->
    {Ref, Worker} = spawned(fun() -> py:spawn_call(time, sleep, [30]) end),
    ok = py:cancel(Ref),
    {error, not_found} = py:cancel(Ref),
    {error, cancelled} = py:await(Ref, scaled(1000)),
    {error, not_found} = py:cancel(Ref),
    await_down(Worker, 10000),
    no_answer_from(Worker, Ref).

cancel_after_completion_changes_nothing(_Config) ->
    {Ref, Worker} = spawned(fun() -> py:spawn_call(math, sqrt, [16]) end),
    await_down(Worker, 5000),
    {error, not_found} = py:cancel(Ref),
    {ok, 4.0} = py:await(Ref, 0),
    {error, not_found} = py:cancel(Ref),
    no_answer_from(Worker, Ref).

cancel_of_an_unknown_or_foreign_ref_changes_nothing(_Config) ->
    {error, not_found} = py:cancel(make_ref()),
    Self = self(),
    Owner = spawn_link(fun() ->
                               Own = py:spawn_call('__main__', slow_answer, [0.2, 1]),
                               Self ! {ref, Own},
                               receive go -> ok end,
                               Self ! {owner_got, py:await(Own)}
                       end),
    Ref = receive {ref, R} -> R after scaled(5000) -> ct:fail(no_ref) end,
    {error, not_found} = py:cancel(Ref),
    Owner ! go,
    receive {owner_got, Result} -> {ok, 1} = Result after scaled(5000) -> ct:fail(no_result) end.

%% As py_call_SUITE's killed_caller_stops_its_python_work, through a
%% spawned call.
killed_caller_stops_its_python_work(_Config) ->
    Name = <<"orphaned">>,
    Self = self(),
    Caller = spawn(fun() ->
                           _ = py:spawn_call('__main__', count_forever, [Name, Self], #{}, infinity),
                           receive never -> ok end
                   end),
    receive {counting, Name} -> ok after scaled(10000) -> ct:fail(never_started) end,
    exit(Caller, kill),
    assert_stopped(Name).

%% Quick calls (some failing at once, before the caller has entered them
%% in the table) cancelled as soon as they start: whichever wins, each
%% call answers once, as its cancel said.
racing_cancels_leave_exactly_one_answer_each(_Config) ->
    Calls = [case I rem 2 of
                 0 -> {math, sqrt, [16]};
                 1 -> {math, sqrt, not_a_list}
             end || I <- lists:seq(1, 400)],
    %% Some cancels a little later, to let some calls finish first.
    Started = [begin
                   {Ref, Worker} = spawned(fun() -> py:spawn_call(M, F, A) end),
                   [erlang:yield() || _ <- lists:seq(1, I rem 7)],
                   {Ref, Worker, py:cancel(Ref)}
               end || {I, {M, F, A}} <- lists:enumerate(Calls)],
    Outcomes = [begin
                    Result = py:await(Ref, scaled(5000)),
                    no_answer_from(Worker, Ref),
                    case {Cancel, Result} of
                        {ok, {error, cancelled}} -> cancelled;
                        {{error, not_found}, {ok, 4.0}} -> answered;
                        {{error, not_found}, {error, {badarg, args}}} -> answered
                    end
                end || {Ref, Worker, Cancel} <- Started],
    ct:log("~p", [maps:from_list([{O, length([X || X <- Outcomes, X =:= O])}
                                   || O <- lists:usort(Outcomes)])]).

%% A gen_server that takes its answers in handle_info never awaits: the
%% record of its calls (in its process dictionary, docs/calls.md) is
%% pruned as it makes more, and stays within twice the calls running.
calls_never_awaited_leave_a_bounded_record(_Config) ->
    Running = [py:spawn_call(time, sleep, [30]) || _ <- lists:seq(1, 10)],
    [begin
         Ref = py:spawn_call(math, sqrt, [16]),
         receive {py_response, Ref, {ok, 4.0}} -> ok after scaled(5000) -> ct:fail(no_answer) end
     end || _ <- lists:seq(1, 1000)],
    {_, Kept} = get('$py_calls'),
    ct:log("~b calls kept in the record", [map_size(Kept)]),
    true = map_size(Kept) =< 64 + 1,
    %% The running calls were kept through the prunings, and cancel.
    [ok = py:cancel(Ref) || Ref <- Running],
    [{error, cancelled} = py:await(Ref, scaled(1000)) || Ref <- Running],
    {_, Left} = get('$py_calls'),
    [] = [Ref || Ref <- Running, is_map_key(Ref, Left)].

%%% cast

cast_runs_the_call(_Config) ->
    ok = py:cast('__main__', tell, [self(), cast_ran]),
    receive cast_ran -> ok after scaled(5000) -> ct:fail(cast_never_ran) end,
    ok = py:cast('__main__', tell, [self(), cast_with_kwargs], #{}),
    receive cast_with_kwargs -> ok after scaled(5000) -> ct:fail(cast_never_ran) end.

%% Not linked: the caller's death does not stop the call.
cast_outlives_its_caller(_Config) ->
    Self = self(),
    Name = <<"cast">>,
    Caller = spawn(fun() ->
                           ok = py:cast('__main__', count_until_told, [Name, Self]),
                           receive never -> ok end
                   end),
    receive {counting, Name} -> ok after scaled(10000) -> ct:fail(cast_never_started) end,
    exit(Caller, kill),
    await_down(Caller, 5000),
    %% Still counting after its caller's death.
    Read = fun() -> {ok, N} = py:eval(<<"counters[n]">>, #{n => Name}), N end,
    Before = Read(),
    wait_until(fun() -> Read() > Before end, 5000),
    {ok, none} = py:eval(<<"told.add(n)">>, #{n => Name}),
    receive {stopped, Name} -> ok after scaled(10000) -> ct:fail(cast_never_stopped) end.

cast_failure_is_logged(_Config) ->
    with_log_handler(fun() ->
        ok = py:cast('__main__', fail, [<<"cast went wrong">>]),
        Event = logged(),
        #{meta := #{py_cast := {'__main__', fail},
                    py_error := {'ValueError', <<"cast went wrong">>}}} = Event,
        Text = unicode:characters_to_binary(format(Event)),
        true = binary:match(Text, <<"cast went wrong">>) =/= nomatch,
        %% The traceback is in the report.
        true = binary:match(Text, <<"Traceback">>) =/= nomatch
    end).

%% The default timeout is made short until the failure is logged: the
%% cast reads it when its call starts.
cast_timeout_is_logged(_Config) ->
    with_log_handler(fun() ->
        ok = application:set_env(erlang_python, default_timeout, 50),
        py:configure(),
        try
            ok = py:cast(time, sleep, [30]),
            #{meta := #{py_error := timeout}} = logged()
        after
            ok = application:unset_env(erlang_python, default_timeout),
            py:configure()
        end
    end).

%%% coroutines

async_call_runs_a_coroutine(_Config) ->
    Ref = py:async_call('__main__', nap, [0.01, 5]),
    {ok, 5} = py:async_await(Ref),
    Kwargs = py:async_call('__main__', nap, [], #{seconds => 0.01, value => 6}),
    {ok, 6} = py:async_await(Kwargs, scaled(5000)),
    {error, timeout} = py:async_await(py:async_call('__main__', nap, [30, 0]), 50).

async_gather_runs_coroutines_concurrently(_Config) ->
    %% asyncio imported and a loop made once before the clock starts.
    {ok, [0]} = py:async_gather([{'__main__', nap, [0, 0]}]),
    Start = erlang:monotonic_time(millisecond),
    {ok, [1, 2, 3]} = py:async_gather([{'__main__', nap, [0.3, I]} || I <- [1, 2, 3]]),
    Elapsed = erlang:monotonic_time(millisecond) - Start,
    ct:log("three 300 ms naps gathered in ~b ms", [Elapsed]),
    %% One after the other would be 900 ms.
    true = Elapsed < scaled(650).

async_gather_gives_plain_values_too(_Config) ->
    {ok, []} = py:async_gather([]),
    {ok, [4.0, 7]} = py:async_gather([{math, sqrt, [16]}, {'__main__', nap, [0.01, 7]}], 5000),
    {ok, [8]} = py:async_gather([{<<"__main__">>, <<"nap">>, [], #{seconds => 0, value => 8}}]).

async_gather_fails_with_the_first_error(_Config) ->
    {error, {'KeyError', <<"'lost'">>}} =
        py:async_gather([{'__main__', nap, [0.2, 1]}, {'__main__', nap_then_fail, [0.01, <<"lost">>]}]),
    {error, {'ModuleNotFoundError', _}} =
        py:async_gather([{'__main__', nap, [0.2, 1]}, {no_such_module, f, []}]),
    {error, {'AttributeError', _}} = py:async_gather([{math, no_such_function, []}]),
    {error, {'TypeError', _}} = py:async_gather([{'__main__', nap, [1, 2, 3, 4]}]),
    {error, timeout} = py:async_gather([{'__main__', nap, [30, 1]}], 100),
    %% The interpreter is fine afterwards.
    {ok, [1]} = py:async_gather([{'__main__', nap, [0, 1]}]).

async_gather_rejects_bad_calls(_Config) ->
    [{error, {badarg, calls}} = py:async_gather(Calls)
     || Calls <- [not_a_list, [not_a_tuple], [{math, sqrt}], [{math, sqrt, not_a_list}],
                  [{1, sqrt, []}], [{math, 2, []}], [{math, sqrt, [], not_a_map}],
                  [{math, sqrt, [16]} | improper]]].

%% A load of a new py_nif gives every thread a new worker, whose fd is
%% another: the Python half once kept the old, closed one for the thread's
%% coroutines, and every coroutine run on such a thread failed with
%% OSError EBADF. Coroutines are run from many processes at once before
%% and after, to reach many threads.
coroutines_run_after_py_nif_is_loaded_again(_Config) ->
    Naps = fun() -> py_test_lib:fan_out(fun(I) -> py:call('__main__', nap, [0.01, I]) end,
                                        lists:seq(1, 40))
           end,
    Expected = [{ok, I} || I <- lists:seq(1, 40)],
    Expected = Naps(),
    %% Loaded again as py_fault_SUITE does it: unloaded first, and loaded
    %% again; then again with the old code still loaded (an upgrade).
    ok = py_test_lib:unload_and_load_py_nif(),
    Expected = Naps(),
    ok = py_test_lib:reload_py_nif(),
    Expected = Naps(),
    {ok, [1, 2]} = py:async_gather([{'__main__', nap, [0.01, I]} || I <- [1, 2]]).

%%% Helpers

%% Runs Spawn (a spawn_call) and returns its ref and the worker it linked
%% to this process.
spawned(Spawn) ->
    {links, Before} = process_info(self(), links),
    Ref = Spawn(),
    {links, After} = process_info(self(), links),
    [Worker] = After -- Before,
    {Ref, Worker}.

%% Worker has ended: a message it sent would be here before its 'DOWN'.
no_answer_from(Worker, Ref) ->
    await_down(Worker, 10000),
    receive {py_response, Ref, _} = Message -> ct:fail({second_answer, Message}) after 0 -> ok end.

%% count_forever(Name, ...) has stopped, and its counter moves no more.
assert_stopped(Name) ->
    receive {stopped, Name} -> ok after scaled(30000) -> ct:fail({not_stopped, Name}) end,
    Read = fun() -> py:eval(<<"counters[n]">>, #{n => Name}) end,
    {ok, Count} = Read(),
    {ok, _} = py:call(math, sqrt, [16]),
    {ok, Count} = Read(),
    ok.

%%% The gen_server: starts one call and keeps its result; counts calls;
%%% keeps every other message.

init({Module, Function, Args}) ->
    process_flag(trap_exit, true),
    Ref = py:spawn_call(Module, Function, Args),
    {ok, #{pending => Ref, result => undefined, others => []}}.

handle_call(ping, _From, State) ->
    {reply, pong, State};
handle_call(result, _From, State = #{result := Result}) ->
    {reply, Result, State}.

handle_cast(_Request, State) ->
    {noreply, State}.

handle_info({py_response, Ref, Result}, State = #{pending := Ref}) ->
    {noreply, State#{pending := undefined, result := Result}};
handle_info(Other, State = #{others := Others}) ->
    {noreply, State#{others := [Other | Others]}}.

%%% The logger handler: sends this suite's case every event of the
%%% erlang_python domain.

log(Event = #{meta := #{domain := [erlang_python]}}, #{config := #{pid := Pid}}) ->
    Pid ! {logged, Event};
log(_Event, _Config) ->
    ok.

with_log_handler(Fun) ->
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => #{pid => self()}}),
    try Fun() after logger:remove_handler(?MODULE) end.

logged() ->
    receive {logged, Event} -> Event after scaled(10000) -> ct:fail(nothing_logged) end.

format(#{msg := {Format, Args}}) when is_list(Format) ->
    io_lib:format(Format, Args);
format(#{msg := {string, String}}) ->
    String.
