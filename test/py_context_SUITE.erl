%% Contexts (py_context, and py:call/eval/exec given a context), from the
%% user's side. A context is a namespace of its own: what a case defines in
%% one is seen neither in the main interpreter's __main__ nor in another
%% context, and `__main__' in a call is the context's own. A worker
%% context shares the main interpreter (its modules, its objects: its
%% references outlive it, numpy works there); an owngil context, from
%% Python 3.12, is a subinterpreter with its own GIL and its own modules,
%% whose references are refused elsewhere and end with it, and where numpy
%% refuses to load without harm. In both, calls, references, the erlang
%% module (from the calling thread and from a Python thread), reentry ten
%% deep (also with one dirty scheduler of each kind, in a peer VM), timeouts
%% and py:interrupt work as for plain calls; stopping a context, or its
%% owner's death (a kill too, twenty at once mid-call), ends the calls in
%% flight with context_stopped; a killed caller's Python work is
%% interrupted and the context goes on; many processes may call one or two
%% contexts at once; a
%% supervised context is found by its name and restarted by its
%% supervisor; the pool (py:context/0,1 and the rest) is made once, on
%% demand too; fifty contexts made and stopped leave no threads behind, and
%% no memory beyond what CPython itself keeps of as many subinterpreters;
%% and every bad input is a clear error.
-module(py_context_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [wait_until/2, wait_for/2, await_down/2, scaled/1, fan_out/2, in_peer/2]).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2]).
%% api
-export([new_context_is_a_running_worker_owned_by_its_maker/1,
         bad_options_are_rejected/1,
         owngil_is_supported_from_python_3_12/1,
         non_contexts_are_badarg/1,
         bad_call_options_are_rejected/1,
         context_is_usable_from_any_process/1,
         plain_forms_still_run_in_the_main_interpreter/1]).
%% common: in both modes
-export([code_runs_in_the_context/1,
         names_defined_in_a_context_stay_in_it/1,
         python_errors_come_back_as_from_plain_calls/1,
         timeout_interrupts_the_call_and_the_context_goes_on/1,
         interrupt_ends_the_running_call_and_the_context_goes_on/1,
         stop_ends_calls_in_flight_with_context_stopped/1,
         stopped_context_refuses_every_call/1,
         owner_death_stops_the_context/1,
         owner_killed_mid_call_stops_the_context/1,
         owners_killed_mid_call_at_once_stop_their_contexts/1,
         killed_caller_interrupts_its_python_work/1,
         references_are_used_in_their_context_from_any_process/1,
         erlang_module_works_inside/1,
         async_calls_work_inside/1,
         reentry_into_the_same_context_nests_ten_deep/1,
         reentry_with_a_single_dirty_scheduler/1,
         many_processes_call_one_context_at_once/1,
         two_contexts_called_from_many_processes_at_once/1,
         cpu_bound_work_in_two_contexts_at_once_gives_right_answers/1,
         named_context_is_found_by_name/1,
         supervisor_restarts_a_named_context/1]).
%% worker only
-export([worker_context_shares_modules_with_main/1,
         worker_references_outlive_their_context/1,
         numpy_works_in_a_worker_context/1]).
%% owngil only
-export([owngil_context_has_its_own_modules/1,
         owngil_references_are_refused_elsewhere/1,
         owngil_references_end_with_their_context/1,
         numpy_import_fails_cleanly_in_an_owngil_context/1,
         single_phase_extension_is_refused_and_harms_nothing/1,
         stop_waits_for_threads_the_context_started/1]).
%% pool
-export([pool_starts_on_demand_and_gives_a_process_the_same_context/1,
         start_contexts_makes_the_pool_once/1,
         owngil_pool_needs_python_3_12/1]).
%% resources
-export([fifty_worker_contexts_leave_no_threads_or_memory/1,
         fifty_owngil_contexts_leave_no_threads_or_memory/1]).
%% Run in the peer VM; the supervisor of supervisor_restarts_a_named_context.
-export([peer_reentry_check/2, init/1]).

%% A hang fails the case instead of stalling the run.
suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, api}, {group, worker}, {group, owngil}, {group, pool}, {group, resources}].

groups() ->
    [{api, [parallel],
      [new_context_is_a_running_worker_owned_by_its_maker, bad_options_are_rejected,
       owngil_is_supported_from_python_3_12, non_contexts_are_badarg,
       bad_call_options_are_rejected, context_is_usable_from_any_process,
       plain_forms_still_run_in_the_main_interpreter]},
     %% Each mode runs the common cases, with the mode in the config
     %% (init_per_group), then its own.
     {worker, [],
      [{group, common},
       {group, worker_only}]},
     {owngil, [],
      [{group, common},
       {group, owngil_only}]},
     %% Parallel: every case makes contexts of its own, owned by the case's
     %% process, and names in the shared registry are the case's own.
     {common, [parallel],
      [code_runs_in_the_context, names_defined_in_a_context_stay_in_it,
       python_errors_come_back_as_from_plain_calls,
       timeout_interrupts_the_call_and_the_context_goes_on,
       interrupt_ends_the_running_call_and_the_context_goes_on,
       stop_ends_calls_in_flight_with_context_stopped, stopped_context_refuses_every_call,
       owner_death_stops_the_context, owner_killed_mid_call_stops_the_context,
       owners_killed_mid_call_at_once_stop_their_contexts,
       killed_caller_interrupts_its_python_work,
       references_are_used_in_their_context_from_any_process, erlang_module_works_inside,
       async_calls_work_inside,
       reentry_into_the_same_context_nests_ten_deep, reentry_with_a_single_dirty_scheduler,
       many_processes_call_one_context_at_once, two_contexts_called_from_many_processes_at_once,
       cpu_bound_work_in_two_contexts_at_once_gives_right_answers,
       named_context_is_found_by_name, supervisor_restarts_a_named_context]},
     {worker_only, [parallel],
      [worker_context_shares_modules_with_main, worker_references_outlive_their_context,
       numpy_works_in_a_worker_context]},
     {owngil_only, [parallel],
      [owngil_context_has_its_own_modules, owngil_references_are_refused_elsewhere,
       owngil_references_end_with_their_context,
       numpy_import_fails_cleanly_in_an_owngil_context,
       single_phase_extension_is_refused_and_harms_nothing,
       stop_waits_for_threads_the_context_started]},
     %% Sequential: the pool is one for the VM.
     {pool, [],
      [pool_starts_on_demand_and_gives_a_process_the_same_context,
       start_contexts_makes_the_pool_once, owngil_pool_needs_python_3_12]},
     %% Alone: they count the VM's threads and memory.
     {resources, [],
      [fifty_worker_contexts_leave_no_threads_or_memory,
       fifty_owngil_contexts_leave_no_threads_or_memory]}].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = py:register_function(ctx_suite_double, fun([X]) -> 2 * X end),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_group(worker, Config) ->
    [{mode, worker} | Config];
init_per_group(owngil, Config) ->
    case py:subinterp_supported() of
        true ->
            [{mode, owngil} | Config];
        false ->
            {skip, "owngil contexts need Python 3.12 or later; the embedded Python is "
                   ++ python_version()}
    end;
init_per_group(_Group, Config) ->
    Config.

end_per_group(pool, _Config) ->
    ok = py:stop_contexts();
end_per_group(_Group, _Config) ->
    ok.

%%% api

new_context_is_a_running_worker_owned_by_its_maker(_Config) ->
    Self = self(),
    {ok, Ctx} = py_context:new(),
    true = py_context:is_context(Ctx),
    #{mode := worker, state := running, owner := Self} = py_context:info(Ctx),
    {ok, Empty} = py_context:new(#{}),
    #{mode := worker, state := running, owner := Self} = py_context:info(Empty),
    {ok, Worker} = py_context:new(#{mode => worker}),
    #{mode := worker, state := running} = py_context:info(Worker),
    3 = length(lists:usort([Ctx, Empty, Worker])),
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
    [ok = py_context:stop(C) || C <- [Ctx, Empty, Worker]],
    #{mode := worker, state := stopped} = py_context:info(Ctx),
    %% Still a context, a stopped one.
    true = py_context:is_context(Ctx).

bad_options_are_rejected(_Config) ->
    [{error, {badarg, opts}} = py_context:new(Opts)
     || Opts <- [#{mode => bogus}, #{mode => <<"worker">>}, #{mode => "owngil"},
                 #{mode => undefined}, #{colour => blue}, #{mode => worker, colour => blue},
                 #{"mode" => worker}, [], [{mode, worker}], worker, 42]].

%% py:subinterp_supported/0 says what the embedded Python's version says,
%% and py_context:new(#{mode => owngil}) agrees with it.
owngil_is_supported_from_python_3_12(_Config) ->
    {ok, [Major, Minor]} = py:eval(<<"list(__import__('sys').version_info[:2])">>),
    Supported = {Major, Minor} >= {3, 12},
    ?assertEqual(Supported, py:subinterp_supported()),
    case {Supported, py_context:new(#{mode => owngil})} of
        {true, {ok, Ctx}} ->
            #{mode := owngil, state := running} = py_context:info(Ctx),
            {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
            ok = py_context:stop(Ctx),
            #{mode := owngil, state := stopped} = py_context:info(Ctx);
        {false, {error, {not_supported, owngil}}} ->
            ok
    end.

%% References, channels, Python objects and pids are no contexts: every
%% function taking a context says so instead of raising.
non_contexts_are_badarg(_Config) ->
    {ok, PyObject} = py:call(builtins, object, [], #{}, #{return => ref}),
    {ok, Ch} = py_channel:new(),
    [begin
         {error, {badarg, context}} = py:call(NotCtx, math, sqrt, [16]),
         {error, {badarg, context}} = py:call(NotCtx, math, sqrt, [16], #{}),
         {error, {badarg, context}} = py:eval(NotCtx, <<"1">>, #{}, #{}),
         {error, {badarg, context}} = py:exec(NotCtx, <<"pass">>, #{}),
         {error, {badarg, context}} = py:interrupt(NotCtx),
         {error, {badarg, context}} = py_context:stop(NotCtx),
         {error, {badarg, context}} = py_context:info(NotCtx),
         false = py_context:is_context(NotCtx)
     end || NotCtx <- [make_ref(), PyObject, Ch, self()]],
    %% Where the plain forms take code first, a reference still says
    %% context (a pid is taken for code, and is no code).
    [begin
         {error, {badarg, context}} = py:eval(NotCtx, <<"1">>),
         {error, {badarg, context}} = py:eval(NotCtx, <<"1">>, #{}),
         {error, {badarg, context}} = py:exec(NotCtx, <<"pass">>)
     end || NotCtx <- [make_ref(), PyObject, Ch]],
    {error, {badarg, _}} = py:eval(self(), <<"1">>),
    [begin
         {error, {badarg, context}} = py:call(NotCtx, math, sqrt, [16]),
         {error, {badarg, context}} = py_context:stop(NotCtx),
         false = py_context:is_context(NotCtx)
     end || NotCtx <- [{context}, 42, 1.5]],
    [false = py_context:is_context(T) || T <- [an_atom, <<"ctx">>, [], #{}]],
    %% Nothing of that harmed the main interpreter or a context.
    {ok, 4.0} = py:call(math, sqrt, [16]),
    {ok, Ctx} = py_context:new(),
    {ok, 4.0} = py:call(Ctx, math, sqrt, [16]).

bad_call_options_are_rejected(_Config) ->
    {ok, Ctx} = py_context:new(),
    [begin
         {error, {badarg, opts}} = py:call(Ctx, math, sqrt, [16], Opts),
         {error, {badarg, opts}} = py:eval(Ctx, <<"1">>, #{}, Opts),
         {error, {badarg, opts}} = py:exec(Ctx, <<"ctx_bad_opts_ran = True">>, Opts)
     end || Opts <- [#{colour => blue}, #{timeout => 1000, extra => 1}, #{"timeout" => 1000},
                     #{<<"kwargs">> => #{}}, [{timeout, 1000}]]],
    %% Options that do not apply to eval (kwargs) or exec (kwargs, return).
    {error, {badarg, opts}} = py:eval(Ctx, <<"1">>, #{}, #{kwargs => #{}}),
    [{error, {badarg, opts}} = py:exec(Ctx, <<"ctx_bad_opts_ran = True">>, Opts)
     || Opts <- [#{return => ref}, #{return => value}, #{kwargs => #{}}]],
    %% None of them ran.
    'NameError' = error_type(py:eval(Ctx, <<"ctx_bad_opts_ran">>)),
    {ok, 4.0} = py:call(Ctx, math, sqrt, [16], #{timeout => 5000}).

%% A context is a term like any other: another process may call with it,
%% many at once, and it stays its maker's.
context_is_usable_from_any_process(_Config) ->
    Self = self(),
    {ok, Ctx} = py_context:new(),
    ok = py:exec(Ctx, <<"shared_here = 7">>),
    Pid = spawn_link(fun() ->
                             receive {ctx, C} -> Self ! {used, py:eval(C, <<"shared_here * 6">>)} end
                     end),
    Pid ! {ctx, Ctx},
    receive {used, Used} -> {ok, 42} = Used after scaled(10000) -> ct:fail(not_used) end,
    Results = fan_out(fun(N) -> py:eval(Ctx, <<"shared_here * n">>, #{n => N}) end,
                      lists:seq(1, 20)),
    ?assertEqual([{ok, 7 * N} || N <- lists:seq(1, 20)], Results),
    #{owner := Self, state := running} = py_context:info(Ctx).

%% The forms without a context run in the main interpreter's __main__, as
%% they always did, and what they define is not in a context.
plain_forms_still_run_in_the_main_interpreter(_Config) ->
    {ok, Ctx} = py_context:new(),
    ok = py:exec(<<"ctx_suite_in_main = 'main'">>),
    ok = py:exec(<<"ctx_suite_in_main_too = 2">>, 5000),
    {ok, <<"main">>} = py:eval(<<"ctx_suite_in_main">>),
    {ok, 3} = py:eval(<<"ctx_suite_in_main_too + x">>, #{x => 1}),
    {ok, 3} = py:eval(<<"ctx_suite_in_main_too + x">>, #{x => 1}, #{timeout => 5000}),
    {ok, 3} = py:eval(<<"ctx_suite_in_main_too + x">>, #{x => 1}, 5000),
    {ok, 4.0} = py:call(math, sqrt, [16]),
    {ok, 255} = py:call(builtins, int, [<<"ff">>], #{base => 16}),
    {ok, 255} = py:call(builtins, int, [<<"ff">>], #{base => 16}, 5000),
    {ok, 255} = py:call(builtins, int, [<<"ff">>], #{base => 16}, #{timeout => 5000}),
    ok = py:exec(<<"def ctx_suite_main_fn():\n    return ctx_suite_in_main\n">>),
    {ok, <<"main">>} = py:call('__main__', ctx_suite_main_fn, []),
    'NameError' = error_type(py:eval(Ctx, <<"ctx_suite_in_main">>)),
    'NameError' = error_type(py:eval(Ctx, <<"ctx_suite_in_main_too">>)),
    {error, _} = py:call(Ctx, '__main__', ctx_suite_main_fn, []).

%%% common

code_runs_in_the_context(Config) ->
    Ctx = new_context(Config),
    ok = py:exec(Ctx, <<"def scaled_sum(xs, factor=1):\n    return sum(xs) * factor\n">>),
    {ok, 6} = py:call(Ctx, '__main__', scaled_sum, [[1, 2, 3]]),
    {ok, 60} = py:call(Ctx, '__main__', scaled_sum, [[1, 2, 3]], #{kwargs => #{factor => 10}}),
    {ok, 60} = py:call(Ctx, '__main__', scaled_sum, [[1, 2, 3]],
                       #{kwargs => #{<<"factor">> => 10}, timeout => 5000}),
    {ok, 12} = py:call(Ctx, <<"__main__">>, <<"scaled_sum">>, [[1, 2, 3], 2],
                       #{timeout => infinity, return => value}),
    {ok, 9} = py:call(Ctx, '__main__', add, [2, 3], #{kwargs => #{c => 4}}),
    {ok, 4.0} = py:call(Ctx, math, sqrt, [16]),
    {ok, <<"a/b">>} = py:call(Ctx, 'os.path', join, [<<"a">>, <<"b">>]),
    {ok, 7} = py:eval(Ctx, <<"scaled_sum([3, 4])">>),
    {ok, 7} = py:eval(Ctx, "scaled_sum([3, 4])"),
    {ok, 14} = py:eval(Ctx, <<"scaled_sum(xs, f)">>, #{xs => [3, 4], f => 2}),
    {ok, 14} = py:eval(Ctx, <<"scaled_sum(xs, f)">>, #{xs => [3, 4], f => 2}, #{timeout => 5000}),
    ok = py:exec(Ctx, <<"later = scaled_sum([5])">>, #{timeout => 5000}),
    {ok, 5} = py:eval(Ctx, <<"later">>),
    %% Locals of an eval are its own: they define nothing in the context.
    'NameError' = error_type(py:eval(Ctx, <<"xs">>)),
    %% A spawned call in the context answers by message.
    Spawned = py:spawn_call(Ctx, '__main__', scaled_sum, [[1, 2]], #{kwargs => #{factor => 3}}),
    {ok, 9} = py:await(Spawned),
    {ok, 5} = py:await(py:spawn_call(Ctx, builtins, len, [[1, 2, 3, 4, 5]])),
    Mode = ?config(mode, Config),
    #{mode := Mode, state := running} = py_context:info(Ctx).

names_defined_in_a_context_stay_in_it(Config) ->
    A = new_context(Config),
    B = new_context(Config),
    ok = py:exec(A, <<"ctx_only_x = 'a'">>),
    {ok, <<"a">>} = py:eval(A, <<"ctx_only_x">>),
    'NameError' = error_type(py:eval(<<"ctx_only_x">>)),
    'NameError' = error_type(py:eval(B, <<"ctx_only_x">>)),
    ok = py:exec(B, <<"ctx_only_x = 'b'">>),
    {ok, <<"a">>} = py:eval(A, <<"ctx_only_x">>),
    {ok, <<"b">>} = py:eval(B, <<"ctx_only_x">>),
    %% Nor does a context see the main interpreter's __main__.
    ok = py:exec(<<"ctx_main_only_y = 'main'">>),
    'NameError' = error_type(py:eval(A, <<"ctx_main_only_y">>)),
    %% '__main__' in a call is the context's namespace.
    ok = py:exec(A, <<"def ctx_which():\n    return ctx_only_x\n">>),
    {ok, <<"a">>} = py:call(A, '__main__', ctx_which, []),
    {error, _} = py:call('__main__', ctx_which, []),
    {error, _} = py:call(B, '__main__', ctx_which, []),
    %% One context stopped leaves the other's names.
    ok = py_context:stop(B),
    {ok, <<"a">>} = py:call(A, '__main__', ctx_which, []).

%% Errors have the form, the type and the message the same code gives in
%% the main interpreter; the context goes on.
python_errors_come_back_as_from_plain_calls(Config) ->
    Ctx = new_context(Config),
    [begin
         {Type, Message} = py_error(py:eval(Code)),
         {Type, Message} = py_error(py:eval(Ctx, Code)),
         ct:log("~s: ~p ~p", [Code, Type, Message])
     end || Code <- [<<"1 / 0">>, <<"{}['k']">>, <<"undefined_name_here">>, <<"int('x')">>]],
    'SyntaxError' = error_type(py:exec(Ctx, <<"def (:">>)),
    {'ValueError', <<"boom">>} = py_error(py:call(Ctx, '__main__', fail, [<<"boom">>])),
    'ModuleNotFoundError' = error_type(py:call(Ctx, ctx_suite_no_such_module, f, [])),
    'AttributeError' = error_type(py:call(Ctx, math, no_such_function, [])),
    %% A result with no Erlang form, as for plain calls.
    'TypeError' = error_type(py:eval(Ctx, <<"object()">>)),
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>).

%% A call's timeout interrupts its Python code (a sleep, a busy loop) as a
%% plain call's does; the context answers the next call.
timeout_interrupts_the_call_and_the_context_goes_on(Config) ->
    Ctx = new_context(Config),
    Self = self(),
    {error, timeout} = py:call(Ctx, '__main__', sleep_noting, [Self, timed_sleep, 30],
                               #{timeout => 200}),
    <<"CallInterrupted">> = await_ended(timed_sleep),
    {error, timeout} = py:call(Ctx, '__main__', spin_noting, [Self, timed_spin],
                               #{timeout => 200}),
    <<"CallInterrupted">> = await_ended(timed_spin),
    {error, timeout} = py:eval(Ctx, <<"__import__('time').sleep(30)">>, #{}, #{timeout => 200}),
    {error, timeout} = py:exec(Ctx, <<"while True: pass">>, #{timeout => 200}),
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
    #{state := running} = py_context:info(Ctx).

interrupt_ends_the_running_call_and_the_context_goes_on(Config) ->
    Ctx = new_context(Config),
    Self = self(),
    %% Nothing running: nothing to do.
    ok = py:interrupt(Ctx),
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
    [begin
         Call = call_in_process(Ctx, Function, Args),
         await_started(Tag),
         ok = py:interrupt(Ctx),
         {error, interrupted} = await_result(Call),
         Ended = await_ended(Tag),
         ct:log("~p ended in Python with ~s", [Tag, Ended]),
         ?assertNotEqual(<<"finished">>, Ended)
     end || {Tag, Function, Args} <- [{interrupted_sleep, sleep_noting,
                                       [Self, interrupted_sleep, 30]},
                                      {interrupted_spin, spin_noting, [Self, interrupted_spin]}]],
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
    #{state := running} = py_context:info(Ctx).

%% A sleeping call, a spinning call and a call made while they run all
%% end with context_stopped once the context is stopped; stop returns ok,
%% and ok again.
stop_ends_calls_in_flight_with_context_stopped(Config) ->
    Sleeping = new_context(Config),
    Spinning = new_context(Config),
    Self = self(),
    Sleep = call_in_process(Sleeping, sleep_noting, [Self, stopped_sleep, 30]),
    Spin = call_in_process(Spinning, spin_noting, [Self, stopped_spin]),
    await_started(stopped_sleep),
    await_started(stopped_spin),
    %% Running too, or waiting for its turn, or not made yet: stopped.
    Later = call_in_process(Sleeping, sleep_noting, [Self, stopped_later, 30]),
    T0 = erlang:monotonic_time(millisecond),
    ok = py_context:stop(Sleeping),
    ok = py_context:stop(Spinning),
    ct:log("two contexts with calls in flight stopped in ~b ms",
           [erlang:monotonic_time(millisecond) - T0]),
    {error, context_stopped} = await_result(Sleep),
    {error, context_stopped} = await_result(Spin),
    {error, context_stopped} = await_result(Later),
    [#{state := stopped} = py_context:info(C) || C <- [Sleeping, Spinning]],
    ok = py_context:stop(Sleeping),
    {error, context_stopped} = py:eval(Sleeping, <<"1 + 1">>),
    {ok, 4.0} = py:call(math, sqrt, [16]),
    Other = new_context(Config),
    {ok, 2} = py:eval(Other, <<"1 + 1">>).

stopped_context_refuses_every_call(Config) ->
    Mode = ?config(mode, Config),
    Ctx = new_context(Config),
    ok = py_context:stop(Ctx),
    ok = py_context:stop(Ctx),
    true = py_context:is_context(Ctx),
    #{mode := Mode, state := stopped} = py_context:info(Ctx),
    Stopped = {error, context_stopped},
    Stopped = py:call(Ctx, math, sqrt, [16]),
    Stopped = py:call(Ctx, math, sqrt, [16], #{timeout => 1000}),
    Stopped = py:call(Ctx, '__main__', add, [1, 2], #{return => ref}),
    Stopped = py:eval(Ctx, <<"1">>),
    Stopped = py:eval(Ctx, <<"x">>, #{x => 1}),
    Stopped = py:eval(Ctx, <<"x">>, #{x => 1}, #{timeout => 1000}),
    Stopped = py:exec(Ctx, <<"pass">>),
    Stopped = py:exec(Ctx, <<"pass">>, #{timeout => 1000}).

%% The owner's normal end, a crash and a kill each stop its context.
owner_death_stops_the_context(Config) ->
    Mode = ?config(mode, Config),
    [begin
         {Owner, Ctx} = context_of_new_process(Mode),
         #{owner := Owner, state := running} = py_context:info(Ctx),
         {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
         case How of
             kill -> exit(Owner, kill);
             _ -> Owner ! {exit, How}
         end,
         await_down(Owner, 5000),
         wait_until(fun() -> is_stopped(Ctx) end, 10000),
         {error, context_stopped} = py:eval(Ctx, <<"1 + 1">>),
         ok = py_context:stop(Ctx)
     end || How <- [normal, crashed, kill]],
    ok.

%% An owner killed while its own call sleeps in the context.
owner_killed_mid_call_stops_the_context(Config) ->
    stopped = kill_owner_mid_call(?config(mode, Config), fixtures(Config), owner_sleep),
    {ok, 4.0} = py:call(math, sqrt, [16]).

%% Twenty owners at once, each killed while its own call sleeps in its
%% context (more calls than dirty schedulers: some run on the pool's
%% threads), three times over: every context is stopped.
owners_killed_mid_call_at_once_stop_their_contexts(Config) ->
    Mode = ?config(mode, Config),
    Source = fixtures(Config),
    [begin
         Outcomes = fan_out(fun(I) -> kill_owner_mid_call(Mode, Source, {Round, I}) end,
                            lists:seq(1, 20)),
         ?assertEqual(lists:duplicate(20, stopped), Outcomes)
     end || Round <- [1, 2, 3]],
    {ok, 4.0} = py:call(math, sqrt, [16]).

%% A new process makes a context and sleeps in it; once the sleep has
%% begun the process is killed. stopped once its context is, or what the
%% context still is after 10 s.
kill_owner_mid_call(Mode, Source, Tag) ->
    Self = self(),
    Owner = spawn(fun() ->
                          {ok, Ctx} = py_context:new(#{mode => Mode}),
                          ok = py:exec(Ctx, Source),
                          Self ! {made, Tag, Ctx},
                          py:call(Ctx, '__main__', sleep_noting, [Self, Tag, 30],
                                  #{timeout => infinity})
                  end),
    Ctx = receive {made, Tag, C} -> C after scaled(10000) -> ct:fail({not_made, Tag}) end,
    await_started(Tag),
    exit(Owner, kill),
    Deadline = erlang:monotonic_time(millisecond) + scaled(10000),
    case stopped_by(Ctx, Deadline) of
        stopped ->
            {error, context_stopped} = py:eval(Ctx, <<"1 + 1">>),
            stopped;
        Still ->
            {not_stopped, Tag, Still}
    end.

stopped_by(Ctx, Deadline) ->
    case py_context:info(Ctx) of
        #{state := stopped} ->
            stopped;
        Info ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true ->
                    maps:without([owner], Info);
                false ->
                    timer:sleep(20),
                    stopped_by(Ctx, Deadline)
            end
    end.

%% A caller killed while its call sleeps or spins: the Python code is
%% interrupted (its finally block says so), and the context goes on.
killed_caller_interrupts_its_python_work(Config) ->
    Ctx = new_context(Config),
    Self = self(),
    [begin
         Caller = spawn(fun() ->
                                py:call(Ctx, '__main__', Function, Args, #{timeout => infinity})
                        end),
         await_started(Tag),
         exit(Caller, kill),
         <<"CallInterrupted">> = await_ended(Tag)
     end || {Tag, Function, Args} <- [{killed_sleep, sleep_noting, [Self, killed_sleep, 30]},
                                      {killed_spin, spin_noting, [Self, killed_spin]}]],
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
    #{state := running} = py_context:info(Ctx).

references_are_used_in_their_context_from_any_process(Config) ->
    Ctx = new_context(Config),
    {ok, none} = py:call(Ctx, '__main__', set_marker, [<<"home">>]),
    {ok, T} = py:call(Ctx, '__main__', 'Tally', [], #{return => ref}),
    true = py:is_ref(T),
    {ok, 5} = py:call_method(T, add, [5]),
    {ok, 5} = py:getattr(T, total),
    {ok, <<"home">>} = py:call_method(T, marker, []),
    %% From other processes, many at once.
    Totals = fan_out(fun(_) ->
                             [{ok, _} = py:call_method(T, add, [1]) || _ <- lists:seq(1, 20)],
                             py:getattr(T, total)
                     end, lists:seq(1, 10)),
    10 = length([N || {ok, N} <- Totals, is_integer(N), N =< 205]),
    {ok, 205} = py:getattr(T, total),
    %% Given back to its context: the very object.
    {ok, true} = py:call(Ctx, '__main__', is_tally, [T]),
    {ok, 205} = py:eval(Ctx, <<"t.total">>, #{t => T}),
    {ok, 205} = py:call(Ctx, builtins, getattr, [T, <<"total">>]),
    %% return => ref on eval and call_method; to_term.
    {ok, L} = py:eval(Ctx, <<"[1, 2, 3]">>, #{}, #{return => ref}),
    {ok, [1, 2, 3]} = py:to_term(L),
    {ok, M} = py:call_method(T, marker, [], #{}, #{return => ref}),
    {ok, <<"home">>} = py:to_term(M),
    %% One made by erlang.ref inside the context.
    {ok, W} = py:call(Ctx, '__main__', wrapped_tally, []),
    true = py:is_ref(W),
    {ok, 3} = py:call_method(W, add, [3]),
    {ok, true} = py:call(Ctx, '__main__', is_tally, [W]).

%% erlang.call (to functions registered before the context was made and
%% after), erlang.send and erlang.ref, from the calling thread and from a
%% threading.Thread started in the context.
erlang_module_works_inside(Config) ->
    Mode = ?config(mode, Config),
    Ctx = new_context(Config),
    Self = self(),
    {ok, 42} = py:eval(Ctx, <<"erlang.call('ctx_suite_double', 21)">>),
    {ok, 42} = py:call(Ctx, '__main__', call_from_thread, [ctx_suite_double, 21]),
    Late = list_to_atom("ctx_suite_late_" ++ atom_to_list(Mode)),
    ok = py:register_function(Late, fun([X]) -> {late, X} end),
    try
        {ok, {late, 1}} = py:eval(Ctx, <<"erlang.call(name, 1)">>, #{name => Late}),
        {ok, {late, 2}} = py:call(Ctx, '__main__', call_from_thread, [Late, 2])
    after
        py:unregister_function(Late)
    end,
    %% An Erlang function that fails raises in Python, in the context.
    {error, _} = py:eval(Ctx, <<"erlang.call('ctx_suite_double', 'not a number')">>),
    {ok, none} = py:call(Ctx, '__main__', note, [Self, {hello, [1, <<"x">>]}]),
    receive {hello, [1, <<"x">>]} -> ok after scaled(5000) -> ct:fail(not_sent) end,
    {ok, none} = py:call(Ctx, '__main__', send_from_thread, [Self, from_thread]),
    receive from_thread -> ok after scaled(5000) -> ct:fail(not_sent_from_thread) end,
    {ok, R} = py:call(Ctx, '__main__', ref_from_thread, []),
    true = py:is_ref(R),
    {ok, 4} = py:call_method(R, add, [4]),
    {ok, 2} = py:eval(Ctx, <<"1 + 1">>).

%% erlang.async_call from a coroutine, and a coroutine function called
%% from Erlang (run to its end in an event loop of the context's).
async_calls_work_inside(Config) ->
    Ctx = new_context(Config),
    ok = py:exec(Ctx, <<"import asyncio\n"
                        "async def doubled_both(a, b):\n"
                        "    return await asyncio.gather(erlang.async_call('ctx_suite_double', a),\n"
                        "                                erlang.async_call('ctx_suite_double', b))\n">>),
    {ok, [2, 4]} = py:call(Ctx, '__main__', doubled_both, [1, 2]),
    {ok, [6, 8]} = py:eval(Ctx, <<"asyncio.run(doubled_both(3, 4))">>),
    {error, timeout} = py:eval(Ctx, <<"asyncio.run(asyncio.sleep(30))">>, #{}, #{timeout => 100}),
    {ok, [10, 12]} = py:call(Ctx, '__main__', doubled_both, [5, 6]).

reentry_into_the_same_context_nests_ten_deep(Config) ->
    Ctx = new_context(Config),
    Name = list_to_atom("ctx_suite_deeper_" ++ atom_to_list(?config(mode, Config))),
    try
        {ok, 10} = reentry(Ctx, Name, 10),
        %% Several processes at once, each going three deep.
        Results = fan_out(fun(_) -> reentry_call(Ctx, Name, 3) end, lists:seq(1, 10)),
        ?assertEqual(lists:duplicate(10, {ok, 3}), Results)
    after
        py:unregister_function(Name)
    end.

%% The same with one dirty scheduler of each kind, in a peer VM.
reentry_with_a_single_dirty_scheduler(Config) ->
    Mode = ?config(mode, Config),
    Source = fixtures(Config),
    in_peer(["+SDio", "1", "+SDcpu", "1"], fun(Peer) ->
        {ok, _} = peer:call(Peer, application, ensure_all_started, [erlang_python]),
        1 = peer:call(Peer, erlang, system_info, [dirty_io_schedulers]),
        1 = peer:call(Peer, erlang, system_info, [dirty_cpu_schedulers]),
        ok = peer:call(Peer, ?MODULE, peer_reentry_check, [Mode, Source], scaled(120000))
    end).

%% In the peer VM.
peer_reentry_check(Mode, Source) ->
    {ok, Ctx} = py_context:new(#{mode => Mode}),
    ok = py:exec(Ctx, Source),
    case reentry(Ctx, ctx_suite_peer_deeper, 10) of
        {ok, 10} ->
            Results = fan_out(fun(_) -> reentry_call(Ctx, ctx_suite_peer_deeper, 3) end,
                              lists:seq(1, 5)),
            case lists:duplicate(5, {ok, 3}) of
                Results -> ok;
                _ -> {five_at_once, Results}
            end;
        Other ->
            {depth_10, Other}
    end.

many_processes_call_one_context_at_once(Config) ->
    Ctx = new_context(Config),
    Results = fan_out(fun(P) ->
                              [py:eval(Ctx, <<"a * 1000 + b">>, #{a => P, b => N})
                               || N <- lists:seq(1, 20)]
                      end, lists:seq(1, 50)),
    ?assertEqual([[{ok, P * 1000 + N} || N <- lists:seq(1, 20)] || P <- lists:seq(1, 50)],
                 Results),
    Doubled = fan_out(fun(P) -> [py:call(Ctx, '__main__', count_call, [P]) || _ <- lists:seq(1, 20)]
                      end, lists:seq(1, 50)),
    ?assertEqual([lists:duplicate(20, {ok, 2 * P}) || P <- lists:seq(1, 50)], Doubled),
    {ok, 1000} = py:eval(Ctx, <<"calls">>).

%% Twenty processes call two contexts by turns: each context counts its
%% own calls, and each keeps its own marker.
two_contexts_called_from_many_processes_at_once(Config) ->
    A = new_context(Config),
    B = new_context(Config),
    {ok, none} = py:call(A, '__main__', set_marker, [a]),
    {ok, none} = py:call(B, '__main__', set_marker, [b]),
    Results = fan_out(fun(P) ->
                              [{py:call(A, '__main__', count_call, [P]),
                                py:call(B, '__main__', count_call, [P + 1]),
                                py:eval(A, <<"ctx_marker">>),
                                py:eval(B, <<"ctx_marker">>)}
                               || _ <- lists:seq(1, 25)]
                      end, lists:seq(1, 20)),
    ?assertEqual([lists:duplicate(25, {{ok, 2 * P}, {ok, 2 * (P + 1)}, {ok, a}, {ok, b}})
                  || P <- lists:seq(1, 20)], Results),
    {ok, 500} = py:eval(A, <<"calls">>),
    {ok, 500} = py:eval(B, <<"calls">>).

%% Pure-Python work in two contexts from two processes at once gives the
%% right answers. How long it takes is logged only: the benchmark judges
%% speed (in owngil mode the two run in parallel).
cpu_bound_work_in_two_contexts_at_once_gives_right_answers(Config) ->
    A = new_context(Config),
    B = new_context(Config),
    N = 1000000,
    {ok, Expected} = py:eval(<<"sum(i * i % 7 for i in range(n))">>, #{n => N}),
    T0 = erlang:monotonic_time(millisecond),
    {ok, Expected} = py:call(A, '__main__', burn, [N], #{timeout => infinity}),
    T1 = erlang:monotonic_time(millisecond),
    Both = fan_out(fun(C) -> py:call(C, '__main__', burn, [N], #{timeout => infinity}) end, [A, B]),
    T2 = erlang:monotonic_time(millisecond),
    ?assertEqual([{ok, Expected}, {ok, Expected}], Both),
    ct:log("~p: burn(~b) alone ~b ms; in two contexts at once ~b ms",
           [?config(mode, Config), N, T1 - T0, T2 - T1]).

%% A context started by py_context:start_link/1 under a name: found by
%% py_context:whereis/1, called by its name, owned by the process
%% start_link returned, and stopped (its name gone) when that ends.
named_context_is_found_by_name(Config) ->
    Mode = ?config(mode, Config),
    Name = list_to_atom("ctx_suite_named_" ++ atom_to_list(Mode)),
    undefined = py_context:whereis(Name),
    {ok, Pid} = py_context:start_link(#{name => Name, mode => Mode}),
    Ctx = py_context:whereis(Name),
    true = py_context:is_context(Ctx),
    #{owner := Pid, state := running, mode := Mode} = py_context:info(Ctx),
    {ok, 4.0} = py:call(Name, math, sqrt, [16]),
    {ok, 4.0} = py:call(Name, math, sqrt, [16], #{timeout => 5000}),
    ok = py:exec(Ctx, <<"named_x = 5\ndef get_named_x():\n    return named_x\n">>),
    {ok, 5} = py:call(Name, '__main__', get_named_x, []),
    %% Another process finds it too.
    [Ctx] = fan_out(fun(_) -> py_context:whereis(Name) end, [1]),
    unlink(Pid),
    exit(Pid, kill),
    await_down(Pid, 5000),
    wait_until(fun() -> is_stopped(Ctx) end, 10000),
    wait_until(fun() -> py_context:whereis(Name) =:= undefined end, 10000).

%% Under a supervisor (child_spec/1): a killed context's process is
%% restarted with a new, empty context under the same name.
supervisor_restarts_a_named_context(Config) ->
    Mode = ?config(mode, Config),
    Name = list_to_atom("ctx_suite_supervised_" ++ atom_to_list(Mode)),
    Spec = py_context:child_spec(#{name => Name, mode => Mode}),
    {ok, Sup} = supervisor:start_link(?MODULE, [Spec]),
    try
        First = wait_for(fun() -> found(Name, none) end, 10000),
        #{mode := Mode, state := running} = py_context:info(First),
        ok = py:exec(First, <<"generation = 1">>),
        {ok, 1} = py:eval(First, <<"generation">>),
        [{_Id, Child, _Type, _}] = supervisor:which_children(Sup),
        #{owner := Child} = py_context:info(First),
        exit(Child, kill),
        wait_until(fun() -> is_stopped(First) end, 10000),
        Second = wait_for(fun() -> found(Name, First) end, 10000),
        #{mode := Mode, state := running} = py_context:info(Second),
        'NameError' = error_type(py:eval(Second, <<"generation">>)),
        {ok, 4.0} = py:call(Name, math, sqrt, [16]),
        unlink(Sup),
        exit(Sup, shutdown),
        await_down(Sup, 10000),
        wait_until(fun() -> is_stopped(Second) end, 10000),
        wait_until(fun() -> py_context:whereis(Name) =:= undefined end, 10000)
    after
        unlink(Sup),
        exit(Sup, kill)
    end.

%% The supervisor of supervisor_restarts_a_named_context.
init(Specs) ->
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, Specs}}.

%%% worker only

worker_context_shares_modules_with_main(Config) ->
    Ctx = new_context(Config),
    ok = py:exec(<<"import json\njson.ctx_suite_probe = 'set by main'">>),
    {ok, <<"set by main">>} = py:eval(Ctx, <<"__import__('json').ctx_suite_probe">>),
    ok = py:exec(Ctx, <<"import json\njson.ctx_suite_back = 'set by the context'">>),
    {ok, <<"set by the context">>} = py:eval(<<"__import__('json').ctx_suite_back">>),
    {ok, SysId} = py:eval(<<"id(__import__('sys'))">>),
    {ok, SysId} = py:call(Ctx, '__main__', sys_id, []),
    ok = py:exec(<<"import json\ndel json.ctx_suite_probe, json.ctx_suite_back">>).

%% A worker context's objects live in the main interpreter: their
%% references work there, and go on working once the context is stopped.
worker_references_outlive_their_context(Config) ->
    Ctx = new_context(Config),
    {ok, T} = py:call(Ctx, '__main__', 'Tally', [], #{return => ref}),
    {ok, 1} = py:call_method(T, add, [1]),
    {ok, L} = py:call(Ctx, builtins, list, [[1, 2]], #{return => ref}),
    {ok, 2} = py:call(builtins, len, [L]),
    {ok, 1} = py:eval(<<"t.total">>, #{t => T}),
    ok = py_context:stop(Ctx),
    {ok, 3} = py:call_method(T, add, [2]),
    {ok, 3} = py:getattr(T, total),
    {ok, [1, 2]} = py:to_term(L),
    {ok, 2} = py:call(builtins, len, [L]),
    {ok, 3} = py:eval(<<"t.total">>, #{t => T}),
    Other = new_context(Config),
    {ok, 3} = py:eval(Other, <<"t.total">>, #{t => T}).

numpy_works_in_a_worker_context(Config) ->
    case has_numpy() of
        {skip, _} = Skip ->
            Skip;
        true ->
            Ctx = new_context(Config),
            {ok, 6} = py:eval(Ctx, <<"int(__import__('numpy').arange(4).sum())">>),
            {ok, [0, 1, 2]} = py:eval(Ctx, <<"__import__('numpy').arange(3)">>),
            {ok, 4.0} = py:call(Ctx, numpy, sqrt, [16.0])
    end.

%%% owngil only

owngil_context_has_its_own_modules(Config) ->
    A = new_context(Config),
    B = new_context(Config),
    ok = py:exec(<<"import json\njson.ctx_suite_owngil_probe = 'main'">>),
    {ok, false} = py:eval(A, <<"hasattr(__import__('json'), 'ctx_suite_owngil_probe')">>),
    ok = py:exec(A, <<"import json\njson.ctx_suite_owngil_probe = 'a'">>),
    {ok, false} = py:eval(B, <<"hasattr(__import__('json'), 'ctx_suite_owngil_probe')">>),
    {ok, <<"main">>} = py:eval(<<"__import__('json').ctx_suite_owngil_probe">>),
    {ok, <<"a">>} = py:eval(A, <<"__import__('json').ctx_suite_owngil_probe">>),
    {ok, MainSys} = py:eval(<<"id(__import__('sys'))">>),
    {ok, ASys} = py:call(A, '__main__', sys_id, []),
    {ok, BSys} = py:call(B, '__main__', sys_id, []),
    3 = length(lists:usort([MainSys, ASys, BSys])),
    ok = py:exec(<<"import json\ndel json.ctx_suite_owngil_probe">>).

%% An owngil context's object cannot go into another interpreter: as an
%% argument, nested, or an eval local, it is an error there, not a crash;
%% and a main-interpreter object cannot go into the context. Each side
%% goes on.
owngil_references_are_refused_elsewhere(Config) ->
    A = new_context(Config),
    B = new_context(Config),
    {ok, T} = py:call(A, '__main__', 'Tally', [], #{return => ref}),
    {ok, 1} = py:call_method(T, add, [1]),
    Refused = [py:call(builtins, repr, [T]),
               py:call(builtins, len, [[T, T]]),
               py:eval(<<"t.total">>, #{t => T}),
               py:call(B, builtins, repr, [T]),
               py:eval(B, <<"t.total">>, #{t => T}),
               py:call(B, '__main__', add, [1], #{kwargs => #{c => T}})],
    ct:log("an owngil context's reference elsewhere: ~p", [Refused]),
    [{error, _} = R || R <- Refused],
    {ok, MainObject} = py:call(builtins, object, [], #{}, #{return => ref}),
    {error, _} = py:call(A, builtins, repr, [MainObject]),
    %% At home, it is the object.
    {ok, 1} = py:getattr(T, total),
    {ok, 1} = py:eval(A, <<"t.total">>, #{t => T}),
    {ok, 2} = py:call(A, builtins, len, [[T, T]]),
    {ok, 2} = py:eval(<<"1 + 1">>),
    {ok, 2} = py:eval(B, <<"1 + 1">>).

%% Once an owngil context is stopped its references give context_stopped;
%% dropped afterwards (their holder ends), they harm nothing.
owngil_references_end_with_their_context(Config) ->
    Ctx = new_context(Config),
    Self = self(),
    Holder = spawn_link(fun() ->
                                {ok, T} = py:call(Ctx, '__main__', 'Tally', [], #{return => ref}),
                                {ok, L} = py:eval(Ctx, <<"[1, 2]">>, #{}, #{return => ref}),
                                {ok, 1} = py:call_method(T, add, [1]),
                                Self ! {made, self()},
                                receive use -> ok end,
                                Self ! {used, [py:call_method(T, add, [1]),
                                               py:getattr(T, total),
                                               py:to_term(L),
                                               py:call_method(L, '__len__', [])]}
                        end),
    receive {made, Holder} -> ok after scaled(10000) -> ct:fail(not_made) end,
    ok = py_context:stop(Ctx),
    Holder ! use,
    Used = receive {used, U} -> U after scaled(10000) -> ct:fail(not_used) end,
    ?assertEqual(lists:duplicate(4, {error, context_stopped}), Used),
    await_down(Holder, 5000),
    true = erlang:garbage_collect(),
    {ok, 4.0} = py:call(math, sqrt, [16]),
    Other = new_context(Config),
    {ok, 2} = py:eval(Other, <<"1 + 1">>).

numpy_import_fails_cleanly_in_an_owngil_context(Config) ->
    case has_numpy() of
        {skip, _} = Skip ->
            Skip;
        true ->
            Ctx = new_context(Config),
            Other = new_context(Config),
            {'ImportError', Message} = py_error(py:exec(Ctx, <<"import numpy">>)),
            ct:log("import numpy in an owngil context: ~s", [Message]),
            true = is_binary(Message),
            {ok, 2} = py:eval(Ctx, <<"1 + 1">>),
            {ok, 2} = py:eval(Other, <<"1 + 1">>),
            {ok, 6} = py:eval(<<"int(__import__('numpy').arange(4).sum())">>)
    end.

%% _testsinglephase, CPython's own single-phase extension (in Pythons built
%% with their test modules, as pyenv's are), stands in for numpy where
%% numpy is missing: refused in an owngil context, then imported in the
%% main interpreter. Under 3.12 that import aborted the VM ("double free or
%% corruption") until an own context's extension imports ran the init
%% function in the main interpreter first (c_src/extensions.c).
single_phase_extension_is_refused_and_harms_nothing(Config) ->
    Find = <<"__import__('importlib.util').util.find_spec('_testsinglephase') is not None">>,
    case py:eval(Find) of
        {ok, false} ->
            {skip, "this Python has no _testsinglephase"};
        {ok, true} ->
            Ctx = new_context(Config),
            {'ImportError', Message} = py_error(py:exec(Ctx, <<"import _testsinglephase">>)),
            true = binary:match(Message, <<"_testsinglephase">>) =/= nomatch,
            {ok, <<"_testsinglephase">>} = py:eval(<<"__import__('_testsinglephase').__name__">>),
            ok = py_context:stop(Ctx),
            Again = new_context(Config),
            {'ImportError', _} = py_error(py:exec(Again, <<"import _testsinglephase">>)),
            {ok, 2} = py:eval(Again, <<"1 + 1">>),
            {ok, 2} = py:eval(<<"1 + 1">>)
    end.

%% Threads the context's code started, with threading or with
%% _thread.start_new_thread (which Py_EndInterpreter does not wait for, and
%% aborts the process if it finds one left): stop waits for them to end
%% before the interpreter ends; a stop that times out meanwhile says so,
%% leaves no late message behind, and the context still ends when they do.
stop_waits_for_threads_the_context_started(Config) ->
    Self = self(),
    Starts = <<"import _thread, threading, time\n"
               "def start(pid, seconds):\n"
               "    def run(tag):\n"
               "        time.sleep(seconds)\n"
               "        erlang.send(pid, (erlang.Atom('thread_ended'), tag))\n"
               "    _thread.start_new_thread(run, ('raw',))\n"
               "    threading.Thread(target=run, args=('threading',)).start()\n">>,
    Ctx = new_context(Config),
    ok = py:exec(Ctx, Starts),
    {ok, none} = py:call(Ctx, '__main__', start, [Self, 0.5]),
    ok = py_context:stop(Ctx, scaled(10000)),
    [receive {thread_ended, Tag} -> ok after 0 -> ct:fail({stopped_before, Tag}) end
     || Tag <- [<<"raw">>, <<"threading">>]],
    %% Threads that outlast stop's timeout.
    Late = new_context(Config),
    ok = py:exec(Late, Starts),
    {ok, none} = py:call(Late, '__main__', start, [Self, 2]),
    {error, timeout} = py_context:stop(Late, 100),
    #{state := stopping} = py_context:info(Late),
    {error, context_stopped} = py:eval(Late, <<"1">>),
    wait_until(fun() -> maps:get(state, py_context:info(Late)) =:= stopped end, scaled(20000)),
    {messages, Messages} = process_info(self(), messages),
    [] = [M || M <- Messages, element(1, M) =:= py_context_stopped],
    {ok, 2} = py:eval(<<"1 + 1">>).

%%% pool

pool_starts_on_demand_and_gives_a_process_the_same_context(_Config) ->
    ok = py:stop_contexts(),
    false = py:contexts_started(),
    Ctx = py:context(),
    true = py:contexts_started(),
    true = py_context:is_context(Ctx),
    Ctx = py:context(),
    {ok, 4.0} = py:call(Ctx, math, sqrt, [16]),
    {ok, Pool} = py:start_contexts(),
    true = lists:member(Ctx, Pool),
    Pool = [py:context(I) || I <- lists:seq(1, length(Pool))],
    [{error, {badarg, index}} = py:context(I) || I <- [0, -1, length(Pool) + 1, first]],
    %% Each process: one of the pool's, the same every time.
    Pairs = fan_out(fun(_) -> {py:context(), py:context()} end, lists:seq(1, 20)),
    [true = A =:= B andalso lists:member(A, Pool) || {A, B} <- Pairs],
    %% Not the caller's: it outlives the process that asked for it.
    [Asked] = fan_out(fun(_) -> py:context() end, [1]),
    #{state := running} = py_context:info(Asked),
    {ok, 2} = py:eval(Asked, <<"1 + 1">>).

start_contexts_makes_the_pool_once(_Config) ->
    ok = py:stop_contexts(),
    false = py:contexts_started(),
    [{error, {badarg, opts}} = py:start_contexts(Opts)
     || Opts <- [#{count => 0}, #{count => -1}, #{count => many}, #{mode => bogus},
                 #{colour => blue}, [{count, 2}]]],
    false = py:contexts_started(),
    {ok, Pool} = py:start_contexts(#{count => 3, mode => worker}),
    3 = length(lists:usort(Pool)),
    true = py:contexts_started(),
    {ok, Pool} = py:start_contexts(),
    {ok, Pool} = py:start_contexts(#{count => 5, mode => worker}),
    [#{mode := worker, state := running} = py_context:info(C) || C <- Pool],
    Pool = [py:context(I) || I <- [1, 2, 3]],
    true = lists:member(py:context(), Pool),
    [{ok, 4.0} = py:call(C, math, sqrt, [16]) || C <- Pool],
    %% Each has its own namespace.
    ok = py:exec(py:context(1), <<"pool_x = 1">>),
    {ok, 1} = py:eval(py:context(1), <<"pool_x">>),
    'NameError' = error_type(py:eval(py:context(2), <<"pool_x">>)),
    ok = py:stop_contexts(),
    false = py:contexts_started(),
    [#{state := stopped} = py_context:info(C) || C <- Pool],
    {error, context_stopped} = py:eval(hd(Pool), <<"1">>),
    ok = py:stop_contexts(),
    %% Made again on demand: new contexts.
    New = py:context(),
    true = py:contexts_started(),
    false = lists:member(New, Pool),
    {ok, 2} = py:eval(New, <<"1 + 1">>).

owngil_pool_needs_python_3_12(_Config) ->
    ok = py:stop_contexts(),
    case py:subinterp_supported() of
        true ->
            {ok, Pool} = py:start_contexts(#{count => 2, mode => owngil}),
            [#{mode := owngil, state := running} = py_context:info(C) || C <- Pool],
            {ok, MainSys} = py:eval(<<"id(__import__('sys'))">>),
            Sys = [element(2, py:eval(C, <<"id(__import__('sys'))">>)) || C <- Pool],
            3 = length(lists:usort([MainSys | Sys])),
            ok = py:stop_contexts(),
            [#{state := stopped} = py_context:info(C) || C <- Pool];
        false ->
            {error, {not_supported, owngil}} = py:start_contexts(#{count => 2, mode => owngil}),
            false = py:contexts_started()
    end.

%%% resources

fifty_worker_contexts_leave_no_threads_or_memory(Config) ->
    contexts_leave_nothing(worker, Config).

fifty_owngil_contexts_leave_no_threads_or_memory(Config) ->
    case py:subinterp_supported() of
        true ->
            contexts_leave_nothing(owngil, Config);
        false ->
            {skip, "owngil contexts need Python 3.12 or later; the embedded Python is "
                   ++ python_version()}
    end.

%% Fifty contexts, ten at a time, each used (a call, a reference) and
%% stopped, half by py_context:stop, half by their owner's end: the OS
%% thread count comes back within 4 of where it was, and the VM's resident
%% memory within 60 MB of it plus what CPython itself keeps of as many
%% subinterpreters (owngil), measured apart in a bare process of the same
%% Python: CPython 3.12 and 3.13 keep about 2 MB of each isolated
%% subinterpreter destroyed, which no embedding can give back.
contexts_leave_nothing(Mode, Config) ->
    Source = fixtures(Config),
    %% A first round, so that what is made once is in the starting figures.
    ok = churn(Mode, Source, 10),
    Threads0 = py_test_lib:settled(threads, fun py_test_lib:os_thread_count/0, 20000),
    Rss0 = rss_kb(),
    T0 = erlang:monotonic_time(millisecond),
    ok = churn(Mode, Source, 50),
    T1 = erlang:monotonic_time(millisecond),
    Figures = #{mode => Mode, ms => T1 - T0, threads_before => Threads0,
                threads_just_after => py_test_lib:os_thread_count(), rss_kb_before => Rss0,
                rss_kb_just_after => rss_kb()},
    Threads = back_within(threads, fun py_test_lib:os_thread_count/0, Threads0 + 4, Figures),
    case py_test_lib:memory_tool() of
        none ->
            CPythonKb = cpython_keeps_kb(Mode, Config, 50),
            SlackKb = 60 * 1024,
            Rss = back_within(rss_kb, fun rss_kb/0, Rss0 + CPythonKb + SlackKb,
                              Figures#{cpython_keeps_kb => CPythonKb}),
            ct:pal("~p: 50 contexts in ~b ms; threads ~b -> ~b; VmRSS ~b kB -> ~b kB "
                   "(growth ~b kB; CPython alone keeps ~b kB of 50 subinterpreters)",
                   [Mode, T1 - T0, Threads0, Threads, Rss0, Rss, Rss - Rss0, CPythonKb]);
        Tool ->
            ct:pal("~p: resident memory not judged under ~p; threads ~b -> ~b",
                   [Mode, Tool, Threads0, Threads])
    end,
    {ok, 4.0} = py:call(math, sqrt, [16]).

%% Read() once it is at most Limit, waiting up to 30 s (scaled); fails the
%% case with Figures and the last reading otherwise.
back_within(What, Read, Limit, Figures) ->
    back_within(What, Read, Limit, Figures,
                erlang:monotonic_time(millisecond) + scaled(30000)).

back_within(What, Read, Limit, Figures, Deadline) ->
    Now = Read(),
    case Now =< Limit of
        true ->
            Now;
        false ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true ->
                    ct:fail({not_back_within, What, Limit, {last, Now}, Figures});
                false ->
                    timer:sleep(100),
                    back_within(What, Read, Limit, Figures, Deadline)
            end
    end.

%% How much resident memory (kB) CPython itself keeps of Count isolated
%% subinterpreters made and destroyed (bare_subinterpreters.py, run with
%% the embedded Python's executable); none for worker contexts.
cpython_keeps_kb(worker, _Config, _Count) ->
    0;
cpython_keeps_kb(owngil, Config, Count) ->
    {ok, Exe} = py:eval(<<"__import__('sys').executable">>),
    DataDir = ?config(data_dir, Config),
    Cmd = lists:join(" ", [binary_to_list(Exe),
                           filename:join(DataDir, "bare_subinterpreters.py"),
                           filename:join(DataDir, "fixtures.py"),
                           integer_to_list(Count), "2>&1"]),
    Output = os:cmd(lists:flatten(Cmd)),
    case string:to_integer(string:trim(Output)) of
        {Kb, ""} when is_integer(Kb) -> max(Kb, 0);
        _ -> ct:fail({bare_subinterpreters_failed, Exe, Output})
    end.

%% Count contexts of Mode, ten at a time, in processes that then end
%% (those not stopped are stopped by their owner's end); returns once
%% every one is stopped and the processes that held them have ended.
churn(Mode, Source, Count) ->
    [ok] = fan_out(fun(_) ->
                           lists:foreach(fun(_Batch) -> churn_batch(Mode, Source) end,
                                         lists:seq(1, Count div 10))
                   end, [churner]),
    ok.

churn_batch(Mode, Source) ->
    Ctxs = fan_out(fun(I) ->
                           {ok, Ctx} = py_context:new(#{mode => Mode}),
                           ok = py:exec(Ctx, Source),
                           {ok, 42} = py:call(Ctx, '__main__', count_call, [21]),
                           {ok, T} = py:call(Ctx, '__main__', 'Tally', [], #{return => ref}),
                           {ok, 1} = py:call_method(T, add, [1]),
                           case I rem 2 of
                               0 -> ok = py_context:stop(Ctx);
                               1 -> ok
                           end,
                           Ctx
                   end, lists:seq(1, 10)),
    wait_until(fun() -> lists:all(fun is_stopped/1, Ctxs) end, 30000).

%%% helpers

%% The text of the fixtures, which new_context/1 runs in each context.
fixtures(Config) ->
    {ok, Source} = file:read_file(filename:join(?config(data_dir, Config), "fixtures.py")),
    Source.

%% A new context of the group's mode, owned by the case's process, with
%% the fixtures run in it.
new_context(Config) ->
    Mode = ?config(mode, Config),
    {ok, Ctx} = py_context:new(#{mode => Mode}),
    case py:exec(Ctx, fixtures(Config)) of
        ok -> Ctx;
        Error -> ct:fail({fixtures_failed_in_context, Mode, Error})
    end.

%% A context made by a new process, which waits until told {exit, Reason}.
context_of_new_process(Mode) ->
    Self = self(),
    Owner = spawn(fun() ->
                          Self ! {made, self(), py_context:new(#{mode => Mode})},
                          receive {exit, Reason} -> exit(Reason) end
                  end),
    receive
        {made, Owner, {ok, Ctx}} -> {Owner, Ctx};
        {made, Owner, Other} -> ct:fail({not_made, Other})
    after scaled(10000) -> ct:fail(not_made)
    end.

%% py:call(Ctx, '__main__', Function, Args) in a new linked process, with no
%% timeout; await_result/1 takes what it returned.
call_in_process(Ctx, Function, Args) ->
    Self = self(),
    Ref = make_ref(),
    spawn_link(fun() ->
                       Self ! {Ref, py:call(Ctx, '__main__', Function, Args,
                                            #{timeout => infinity})}
               end),
    Ref.

await_result(Ref) ->
    receive {Ref, Result} -> Result after scaled(10000) -> ct:fail({no_result, Ref}) end.

await_started(Tag) ->
    receive {started, Tag} -> ok after scaled(10000) -> ct:fail({not_started, Tag}) end.

%% How the Python code of Tag ended: the name of the exception, or
%% <<"finished">>.
await_ended(Tag) ->
    receive {ended, Tag, How} -> How after scaled(10000) -> ct:fail({not_ended, Tag}) end.

is_stopped(Ctx) ->
    maps:get(state, py_context:info(Ctx)) =:= stopped.

%% The context registered as Name, once it is not Old.
found(Name, Old) ->
    case py_context:whereis(Name) of
        undefined -> false;
        Old -> false;
        Ctx -> Ctx
    end.

%% Python -> Erlang -> Python in Ctx until Depth levels deep: Name is
%% registered as a function that calls deeper/3 in Ctx again.
reentry(Ctx, Name, Depth) ->
    ok = py:register_function(Name, fun([N, Target]) ->
                                            case py:call(Ctx, '__main__', deeper,
                                                         [Name, N + 1, Target]) of
                                                {ok, R} -> R;
                                                {error, _} = Error -> Error
                                            end
                                    end),
    reentry_call(Ctx, Name, Depth).

reentry_call(Ctx, Name, Depth) ->
    py:call(Ctx, '__main__', deeper, [Name, 1, Depth], #{timeout => scaled(60000)}).

%% {Type, Message} of a Python error, with or without a traceback.
py_error({error, {Type, Message}}) when is_binary(Message) -> {Type, Message};
py_error({error, {Type, Message, _Traceback}}) when is_binary(Message) -> {Type, Message};
py_error(Other) -> ct:fail({not_a_python_error, Other}).

error_type(Result) ->
    element(1, py_error(Result)).

%% true if numpy imports in the main interpreter; a skip if this Python,
%% run on its own, cannot import it either; a failure if only the embedded
%% import fails.
has_numpy() ->
    case py:exec(<<"import numpy">>, scaled(300000)) of
        ok ->
            true;
        {error, ImportError} ->
            {ok, Exe} = py:eval(<<"__import__('sys').executable">>),
            Cmd = binary_to_list(Exe) ++ " -c 'import numpy' >/dev/null 2>&1; echo \"exit=$?\"",
            case os:cmd(Cmd) of
                "exit=0\n" ->
                    ct:fail({numpy_imports_in_python_but_not_embedded, Exe, ImportError});
                _ ->
                    {skip, "numpy is not installed for " ++ binary_to_list(Exe)
                           ++ " (Python " ++ python_version() ++ ")"}
            end
    end.

python_version() ->
    {ok, Version} = py:eval(<<"__import__('sys').version.split()[0]">>),
    binary_to_list(Version).

rss_kb() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    {match, [Kb]} = re:run(Status, "VmRSS:\\s+(\\d+) kB", [{capture, all_but_first, binary}]),
    binary_to_integer(Kb).
