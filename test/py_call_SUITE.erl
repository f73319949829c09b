%% Calling Python from Erlang: py:call / py:eval / py:exec as a user sees
%% them. The documented examples, every error path, timeouts that really
%% stop the Python code, killed callers, concurrency (including with a single
%% dirty I/O scheduler, in a peer VM), the NIF-owned thread path, and
%% application stop/start. Conversion details live in py_convert_SUITE.
-module(py_call_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [wait_until/2, wait_calls_done/1, scaled/1, exec_file/2, restart_with/2,
                      restart_without/1, in_peer/2, fan_out/2, fan_out_start/2, fan_out_results/1]).

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2]).

-export([sqrt_returns_a_float/1, kwargs_reach_the_function/1,
         dotted_module_is_imported/1, names_may_be_binaries/1,
         dotted_function_is_an_attribute_path/1, names_are_looked_up_afresh/1,
         eval_sums_a_range/1,
         eval_sees_locals/1, eval_accepts_iolists_and_strings/1,
         eval_runs_statements/1, exec_definitions_are_shared_by_processes/1,
         c_extension_numpy_imports/1, python_output_reaches_the_terminal/1,
         subprocess_exit_status_reaches_python/1, python_cannot_take_over_signals/1]).
-export([exception_becomes_error_tuple/1, traceback_is_kept_for_the_caller/1,
         missing_module_is_an_error/1, missing_function_is_an_error/1,
         wrong_arity_is_an_error/1, syntax_error_is_an_error/1,
         user_exception_type_is_a_binary/1, fake_builtin_exception_is_not_an_atom/1,
         many_exception_classes_create_no_atoms/1, sys_exit_does_not_stop_the_vm/1,
         deep_recursion_through_c_is_a_recursion_error/1,
         unprintable_exception_still_reported/1, null_byte_in_code_is_an_error/1,
         bad_arguments_are_rejected/1]).
-export([timeout_stops_a_busy_loop/1, timeout_cuts_a_sleep_short/1,
         except_exception_cannot_swallow_the_interrupt/1, infinity_timeout_is_accepted/1,
         killed_caller_stops_its_python_work/1, interpreter_usable_after_timeouts/1,         timeout_never_lands_in_a_thread_being_started/1,
         interruption_swallowed_by_a_callback_is_raised_again/1]).
-export([long_call_does_not_block_other_callers/1, hundred_processes_call_at_once/1,
         blocked_calls_do_not_starve_a_quick_call/1,
         single_dirty_scheduler_still_makes_progress/1]).
-export([pool_runs_calls/1, pool_grows_for_blocked_calls/1,
         quick_call_answers_while_three_thousand_calls_wait/1,
         pool_at_its_limit_refuses_at_once/1]).
-export([application_restart_keeps_the_interpreter/1, stats_count_calls/1,
         dirty_call_limit_out_of_range_is_clamped/1, bad_max_pool_threads_is_the_default/1]).
-export([repeated_source_reuses_its_compiled_code/1, cached_code_sees_each_calls_locals/1,
         eval_and_exec_of_one_source_stay_apart/1, syntax_error_is_reported_every_time/1,
         many_distinct_sources_each_give_their_own_value/1, kept_code_stays_bounded/1,
         long_source_runs_every_time/1]).
-export([large_binary_handed_back_is_not_copied/1]).
-export([starvation_check/2]).

all() ->
    [{group, api}, {group, errors}, {group, code_cache}, {group, timeouts},
     {group, concurrency}, {group, pool}, {group, lifecycle}].

groups() ->
    [{api, [parallel],
      [sqrt_returns_a_float, kwargs_reach_the_function, dotted_module_is_imported,
       names_may_be_binaries, dotted_function_is_an_attribute_path,
       names_are_looked_up_afresh, eval_sums_a_range,
       eval_sees_locals, eval_accepts_iolists_and_strings, eval_runs_statements,
       exec_definitions_are_shared_by_processes, c_extension_numpy_imports,
       python_output_reaches_the_terminal, subprocess_exit_status_reaches_python,
       python_cannot_take_over_signals, large_binary_handed_back_is_not_copied]},
     {errors, [parallel],
      [exception_becomes_error_tuple, traceback_is_kept_for_the_caller,
       missing_module_is_an_error, missing_function_is_an_error, wrong_arity_is_an_error,
       syntax_error_is_an_error, user_exception_type_is_a_binary,
       fake_builtin_exception_is_not_an_atom, many_exception_classes_create_no_atoms,
       sys_exit_does_not_stop_the_vm, deep_recursion_through_c_is_a_recursion_error,
       unprintable_exception_still_reported,
       null_byte_in_code_is_an_error, bad_arguments_are_rejected]},
     %% Sequential: the cache of compiled sources is one for the VM.
     {code_cache, [],
      [repeated_source_reuses_its_compiled_code, cached_code_sees_each_calls_locals,
       eval_and_exec_of_one_source_stay_apart, syntax_error_is_reported_every_time,
       many_distinct_sources_each_give_their_own_value, kept_code_stays_bounded,
       long_source_runs_every_time]},
     {timeouts, [],
      [timeout_stops_a_busy_loop, timeout_cuts_a_sleep_short,
       except_exception_cannot_swallow_the_interrupt, infinity_timeout_is_accepted,
       killed_caller_stops_its_python_work, interpreter_usable_after_timeouts,       timeout_never_lands_in_a_thread_being_started,
       interruption_swallowed_by_a_callback_is_raised_again]},
     {concurrency, [],
      [long_call_does_not_block_other_callers, hundred_processes_call_at_once,
       blocked_calls_do_not_starve_a_quick_call,
       single_dirty_scheduler_still_makes_progress]},
     %% The timeouts group again, with every call on a pool thread.
     {pool, [],
      [pool_runs_calls, pool_grows_for_blocked_calls, large_binary_handed_back_is_not_copied,
       quick_call_answers_while_three_thousand_calls_wait, pool_at_its_limit_refuses_at_once,
       {group, timeouts}]},
     {lifecycle, [],
      [application_restart_keeps_the_interpreter, stats_count_calls,
       dirty_call_limit_out_of_range_is_clamped, bad_max_pool_threads_is_the_default]}].

init_per_suite(Config) ->
    ok = py_test_lib:start_with_fixtures(Config),
    Config.

end_per_suite(_Config) ->
    ok.

%% The pool group sends every call to NIF-owned threads, as a VM with one
%% dirty I/O scheduler does.
init_per_group(pool, Config) ->
    restart_with(dirty_call_limit, 0),
    #{dirty_limit := 0} = py:stats(),
    Config;
init_per_group(_Group, Config) ->
    Config.

end_per_group(pool, _Config) ->
    restart_without(dirty_call_limit);
end_per_group(_Group, _Config) ->
    ok.

%%% api

sqrt_returns_a_float(_Config) ->
    {ok, 4.0} = py:call(math, sqrt, [16]).

kwargs_reach_the_function(_Config) ->
    {ok, <<"{\n  \"a\": 1\n}">>} = py:call(json, dumps, [#{<<"a">> => 1}], #{indent => 2}),
    {ok, <<"[1,2]">>} = py:call(json, dumps, [[1, 2]],
                                #{<<"indent">> => undefined, separators => {<<",">>, <<":">>}}).

dotted_module_is_imported(_Config) ->
    {ok, <<"/a/b">>} = py:call('os.path', join, [<<"/a">>, <<"b">>]).

names_may_be_binaries(_Config) ->
    {ok, 4.0} = py:call(<<"math">>, <<"sqrt">>, [16]),
    {ok, 3} = py:call(builtins, len, [[a, b, c]]).

%% What a module and function name mean is looked up on every call: a
%% rebound function, a module replaced in sys.modules and a module removed
%% from it are all seen by the next call.
names_are_looked_up_afresh(_Config) ->
    ok = py:exec(<<"probe = fresh_module(1)">>),
    {ok, 1} = py:call(fresh_probe, f, []),
    ok = py:exec(<<"probe.f = lambda: 2">>),
    {ok, 2} = py:call(fresh_probe, f, []),
    ok = py:exec(<<"probe = fresh_module(3)">>),
    {ok, 3} = py:call(fresh_probe, f, []),
    {ok, 3} = py:call(<<"fresh_probe">>, <<"f">>, []),
    ok = py:exec(<<"del sys.modules['fresh_probe']">>),
    {error, {'ModuleNotFoundError', _}} = py:call(fresh_probe, f, []),
    ok = py:exec(<<"probe = fresh_module(4)">>),
    {ok, 4} = py:call(fresh_probe, f, []),
    %% None in sys.modules blocks an import, as in Python.
    ok = py:exec(<<"sys.modules['fresh_probe'] = None">>),
    {error, {'ModuleNotFoundError', _}} = py:call(fresh_probe, f, []),
    {error, {'ModuleNotFoundError', _}} = py:call(<<"fresh_probe">>, f, []),
    ok = py:exec(<<"del sys.modules['fresh_probe']">>).

dotted_function_is_an_attribute_path(_Config) ->
    {ok, <<"/x/y">>} = py:call(os, 'path.join', [<<"/x">>, <<"y">>]),
    {error, {'AttributeError', _}} = py:call(os, 'path.nope', []).

eval_sums_a_range(_Config) ->
    {ok, 45} = py:eval(<<"sum(range(10))">>).

eval_sees_locals(_Config) ->
    {ok, 25} = py:eval(<<"x * y">>, #{x => 5, y => 5}),
    {ok, 7} = py:eval(<<"a + b">>, #{<<"a">> => 3, b => 4}),
    %% Locals are for that evaluation only.
    {error, {'NameError', _}} = py:eval(<<"x">>).

eval_accepts_iolists_and_strings(_Config) ->
    {ok, 2} = py:eval("1 + 1"),
    {ok, 6} = py:eval([<<"1">>, " + ", [<<"2">>, $+, $3]]),
    {ok, <<"é"/utf8>>} = py:eval([$', 233, $']).

eval_runs_statements(_Config) ->
    {ok, none} = py:eval(<<"eval_statement_ran = 42">>),
    {ok, 42} = py:eval(<<"eval_statement_ran">>).

exec_definitions_are_shared_by_processes(_Config) ->
    ok = py:exec(<<"def f(a): return a + 1">>),
    {ok, 2} = py:call('__main__', f, [1]),
    [{ok, 42}] = fan_out(fun(_) -> py:call('__main__', f, [41]) end, [another_process]).

%% A large binary that Python hands back (as the result, inside one, or
%% from eval's locals) comes back as the very binary that went in, not a
%% copy; an equal one that Python made is a binary of its own.
large_binary_handed_back_is_not_copied(_Config) ->
    Bytes = <<255, (crypto:strong_rand_bytes(1 bsl 20))/binary>>,
    Ascii = binary:copy(<<"a">>, 1 bsl 20),
    Text = binary:copy(<<"é"/utf8>>, 1 bsl 19),
    lists:foreach(
      fun(Binary) ->
              {ok, Binary} = py:call('__main__', handed_back, [Binary]),
              [_] = Ids = binary_ids(Binary),
              {ok, Back} = py:call('__main__', handed_back, [Binary]),
              Ids = binary_ids(Back),
              {ok, #{<<"v">> := V, <<"w">> := [W, {T}]}} =
                  py:call('__main__', handed_back_inside, [Binary]),
              Binary = V = W = T,
              Ids = binary_ids({V, W, T}),
              {ok, Local} = py:eval(<<"x">>, #{x => Binary}),
              Ids = binary_ids(Local),
              {ok, Binary} = py:call('__main__', remade, [Binary]),
              {ok, Remade} = py:call('__main__', remade, [Binary]),
              ?assertNotEqual(Ids, binary_ids(Remade))
      end,
      [Bytes, Ascii, Text]).

c_extension_numpy_imports(_Config) ->
    case python_has(<<"numpy">>) of
        false ->
            {skip, "numpy is not installed for this Python"};
        true ->
            {ok, 4.0} = py:call(numpy, sqrt, [16.0]),
            {ok, 6} = py:eval(<<"int(__import__('numpy').arange(4).sum())">>)
    end.

%% A separate VM, whose standard output and error we capture.
python_output_reaches_the_terminal(_Config) ->
    Code = "{ok, _} = application:ensure_all_started(erlang_python), "
           "ok = py:exec(<<\"print('to-stdout'); import sys; "
           "sys.stderr.write('to-stderr')\">>), halt().",
    Output = run_erl(Code),
    ?assertNotEqual(nomatch, string:find(Output, "to-stdout"), Output),
    ?assertNotEqual(nomatch, string:find(Output, "to-stderr"), Output).

%% The BEAM ignores SIGCHLD, which would make every child's exit status 0.
subprocess_exit_status_reaches_python(_Config) ->
    {ok, 3} = py:eval(<<"__import__('subprocess').run(['sh', '-c', 'exit 3']).returncode">>),
    {ok, 0} = py:eval(<<"__import__('subprocess').run(['true']).returncode">>),
    {ok, <<"hi\n">>} = py:eval(<<"__import__('subprocess').check_output(['echo', 'hi'])">>),
    %% Erlang's own ports still see their exit statuses.
    "erlang\n" = os:cmd("echo erlang"),
    Port = open_port({spawn, "sh -c 'exit 5'"}, [exit_status]),
    receive {Port, {exit_status, 5}} -> ok after scaled(5000) -> ct:fail(no_exit_status) end.

%% Python code runs off Python's main thread, so it cannot install signal
%% handlers into the VM.
python_cannot_take_over_signals(_Config) ->
    {error, {'ValueError', _}} =
        py:exec(<<"import signal\nsignal.signal(signal.SIGINT, lambda *a: None)">>).

%%% errors

exception_becomes_error_tuple(_Config) ->
    {error, {'ZeroDivisionError', <<"division by zero">>}} = py:eval(<<"1/0">>),
    {error, {'KeyError', <<"'k'">>}} = py:eval(<<"{}['k']">>).

traceback_is_kept_for_the_caller(_Config) ->
    undefined = py:last_traceback(),
    {error, {'ValueError', <<"deep">>}} = py:call('__main__', failing_outer, []),
    Traceback = py:last_traceback(),
    true = is_binary(Traceback),
    [_ | _] = binary:matches(Traceback, [<<"failing_outer">>, <<"failing_inner">>]),
    {match, _} = re:run(Traceback, "ValueError: deep"),
    %% Another process has its own.
    [undefined] = fan_out(fun(_) -> py:last_traceback() end, [another_process]).

missing_module_is_an_error(_Config) ->
    {error, {'ModuleNotFoundError', Message}} = py:call(no_such_module_here, f, []),
    {match, _} = re:run(Message, "no_such_module_here").

missing_function_is_an_error(_Config) ->
    {error, {'AttributeError', Message}} = py:call(math, no_such_function, []),
    {match, _} = re:run(Message, "no_such_function").

wrong_arity_is_an_error(_Config) ->
    {error, {'TypeError', _}} = py:call(math, sqrt, [1, 2, 3]),
    {error, {'TypeError', _}} = py:call(math, sqrt, []),
    {error, {'TypeError', _}} = py:call(math, sqrt, [16], #{bogus => 1}).

syntax_error_is_an_error(_Config) ->
    {error, {'SyntaxError', _}} = py:exec(<<"def (:">>),
    {error, {'SyntaxError', _}} = py:eval(<<"1 +">>),
    {error, {'IndentationError', _}} = py:exec(<<"if True:\nx = 1">>).

user_exception_type_is_a_binary(_Config) ->
    {error, {<<"__main__.AppError">>, <<"boom">>}} = py:call('__main__', raise_app_error, []),
    {error, {<<"json.decoder.JSONDecodeError">>, _}} = py:call(json, loads, [<<"{">>]).

fake_builtin_exception_is_not_an_atom(_Config) ->
    {error, {<<"builtins.Sneaky">>, <<"x">>}} = py:call('__main__', raise_sneaky, []).

many_exception_classes_create_no_atoms(_Config) ->
    {error, _} = py:call('__main__', raise_numbered, [0]),
    Before = erlang:system_info(atom_count),
    [{error, {_, <<"n">>}} = py:call('__main__', raise_numbered, [I]) || I <- lists:seq(1, 2000)],
    After = erlang:system_info(atom_count),
    ?assert(After - Before < 10, {atoms_grew, After - Before}).

sys_exit_does_not_stop_the_vm(_Config) ->
    {error, {'SystemExit', <<"3">>}} = py:eval(<<"__import__('sys').exit(3)">>),
    {error, {'SystemExit', _}} = py:exec(<<"raise SystemExit">>),
    {ok, 2} = py:eval(<<"1 + 1">>).

%% Python recursing through C (a sort key that sorts) uses far more C stack
%% per level than a dirty scheduler's own stack holds before Python's
%% recursion limit: calls run on a stack large enough for the limit.
deep_recursion_through_c_is_a_recursion_error(_Config) ->
    %% 200 levels overflow a dirty scheduler's own stack, and stay within
    %% the recursion limit on every Python we support.
    {ok, [200]} = py:call('__main__', deep_sort, [200]),
    {error, {'RecursionError', _}} = py:call('__main__', deep_sort, [100000]),
    {ok, [10]} = py:call('__main__', deep_sort, [10]).

unprintable_exception_still_reported(_Config) ->
    {error, {<<"__main__.Unprintable">>, Message}} = py:call('__main__', raise_unprintable, []),
    true = is_binary(Message).

null_byte_in_code_is_an_error(_Config) ->
    {error, {'SyntaxError', _}} = py:eval(<<"1", 0, "+1">>),
    {error, {badarg, module}} = py:call(<<"ma", 0, "th">>, sqrt, [4]).

bad_arguments_are_rejected(_Config) ->
    {error, {badarg, module}} = py:call(123, sqrt, [16]),
    {error, {badarg, module}} = py:call(<<>>, sqrt, [16]),
    {error, {badarg, function}} = py:call(math, "sqrt", [16]),
    {error, {badarg, module}} = py:call(list_to_atom("math\0os"), sqrt, [16]),
    {error, {badarg, function}} = py:call(math, list_to_atom("sqrt\0x"), [16]),
    {error, {badarg, function}} = py:call(math, '', [16]),
    {error, {badarg, args}} = py:call(math, sqrt, 16),
    {error, {badarg, args}} = py:call(math, sqrt, [16 | 2]),
    {error, {badarg, kwargs}} = py:call(math, sqrt, [16], [{a, 1}]),
    {error, {badarg, timeout}} = py:call(math, sqrt, [16], #{}, -1),
    {error, {badarg, timeout}} = py:call(math, sqrt, [16], #{}, soon),
    {error, {badarg, code}} = py:eval(123),
    {error, {badarg, code}} = py:eval([<<"1">>, foo]),
    {error, {badarg, locals}} = py:eval(<<"1">>, [{a, 1}]),
    {error, {badarg, timeout}} = py:eval(<<"1">>, #{}, 1.5),
    {error, {badarg, code}} = py:exec(an_atom),
    {error, {badarg, timeout}} = py:exec(<<"pass">>, -5),
    {error, {'TypeError', _}} = py:eval(<<"1">>, #{1 => 2}).

%%% timeouts

timeout_stops_a_busy_loop(_Config) ->
    {error, timeout} = py:eval(<<"while True: pass">>, #{}, 100),
    ok = py:exec(<<"spin_count = 0">>),
    {error, timeout} = py:call('__main__', spin, [self()], #{}, 100),
    assert_stopped(spin_stopped, <<"spin_count">>).

timeout_cuts_a_sleep_short(_Config) ->
    ok = py:exec(<<"sleep_state = 'idle'">>),
    {error, timeout} = py:call('__main__', sleeper, [30], #{}, 100),
    %% Interrupted, not left to sleep for 30 s.
    wait_until(fun() -> py:eval(<<"sleep_state">>) =:= {ok, <<"CallInterrupted">>} end, 5000),
    %% `from time import sleep' gets the same interruptible sleep.
    {error, timeout} = py:eval(<<"__import__('time').sleep(30)">>, #{}, 100),
    {ok, none} = py:call(time, sleep, [0.01]),
    %% No late reply lands in the caller's mailbox, even once every call
    %% has ended.
    wait_calls_done(5000),
    {messages, []} = process_info(self(), messages).

except_exception_cannot_swallow_the_interrupt(_Config) ->
    {error, timeout} = py:call('__main__', stubborn, [], #{}, 100),
    {ok, 2} = py:eval(<<"1 + 1">>).

infinity_timeout_is_accepted(_Config) ->
    {ok, 4.0} = py:call(math, sqrt, [16], #{}, infinity),
    {ok, 3} = py:eval(<<"1 + 2">>, #{}, infinity),
    ok = py:exec(<<"pass">>, infinity).

killed_caller_stops_its_python_work(_Config) ->
    ok = py:exec(<<"orphan_count = 0">>),
    Self = self(),
    Pid = spawn(fun() -> py:call('__main__', orphan, [Self], #{}, infinity) end),
    %% Generous: under valgrind the first call to start a thread is slow.
    receive orphan_started -> ok after scaled(30000) -> ct:fail(orphan_never_started) end,
    exit(Pid, kill),
    assert_stopped(orphan_stopped, <<"orphan_count">>),
    {ok, 2} = py:eval(<<"1 + 1">>).

interpreter_usable_after_timeouts(_Config) ->
    [{error, timeout} = py:eval(<<"while True: pass">>, #{}, 20) || _ <- lists:seq(1, 5)],
    %% No interruption left pending for the next call on the same thread.
    [{ok, 4.0} = py:call(math, sqrt, [16]) || _ <- lists:seq(1, 200)].

%% A call interrupted while it starts threads: the interruption is the
%% call's, never the new thread's (before Python 3.12 a thread being
%% started briefly carries its creator's thread ident).
timeout_never_lands_in_a_thread_being_started(_Config) ->
    ok = py:exec(<<"started_died.clear()">>),    {ok, none} = py:call('__main__', record_unraisables, []),
    Before = os_threads(),
    try
        [{error, timeout} = py:call('__main__', start_threads_forever, [], #{}, 5 + I rem 7)
         || I <- lists:seq(1, 150)],
        %% Every thread those calls started has ended (and reported how, if
        %% it died).
        wait_until(fun() -> threads_added_since(Before) =:= 0 end, 10000),
        {ok, []} = py:eval(<<"started_died">>)
    after        py:call('__main__', stop_recording_unraisables, [])
    end.

%% An interruption that lands in a weakref callback (or a __del__) cannot
%% get out: Python reports it as "Exception ignored" and goes on. The
%% erlang module's sys.unraisablehook raises it again at once instead, so
%% a call that spends its time in such callbacks still ends, and nothing is
%% printed. Without it, such calls printed a report each time and ran on
%% for seconds, or for good.
interruption_swallowed_by_a_callback_is_raised_again(_Config) ->
    {ok, none} = py:call('__main__', capture_stderr, []),
    Outcomes = try
                   [py:call('__main__', callbacks_forever, [], #{}, 10) || _ <- lists:seq(1, 50)]
               after
                   {ok, Printed} = py:call('__main__', release_stderr, []),
                   ct:log("printed:~n~ts", [Printed]),
                   <<>> = Printed
               end,
    [] = [O || O <- Outcomes, O =/= {error, timeout}].

%%% concurrency
long_call_does_not_block_other_callers(_Config) ->
    Self = self(),
    Key = make_ref(),
    Holder = fan_out_start(fun(I) -> py:call('__main__', hold_until_released, [Self, Key, I],
                                             #{}, infinity)
                           end, [1]),
    receive {holding, Key, 1} -> ok after scaled(10000) -> ct:fail(long_call_never_started) end,
    %% All 100 answer while the long call runs: it cannot end before it
    %% is released.
    try
        Roots = fan_out(fun(I) -> py:call(math, sqrt, [I * I]) end, lists:seq(1, 100)),
        Roots = [{ok, float(I)} || I <- lists:seq(1, 100)]
    after
        {ok, none} = py:call('__main__', release_held, [Key])
    end,
    [{ok, none}] = fan_out_results(Holder).

hundred_processes_call_at_once(_Config) ->
    Results = fan_out(fun(P) -> [py:eval(<<"a * 1000 + b">>, #{a => P, b => N})
                                 || N <- lists:seq(1, 50)]
                      end, lists:seq(1, 100)),
    Results = [[{ok, P * 1000 + N} || N <- lists:seq(1, 50)] || P <- lists:seq(1, 100)].

blocked_calls_do_not_starve_a_quick_call(Config) ->
    ok = starvation_check(Config, 20).

%% Invariant 1 with a single dirty scheduler of each kind, in a peer VM.
single_dirty_scheduler_still_makes_progress(Config) ->
    DataDir = ?config(data_dir, Config),
    in_peer(["+SDio", "1", "+SDcpu", "1"], fun(Peer) ->
        {ok, _} = peer:call(Peer, application, ensure_all_started, [erlang_python]),
        1 = peer:call(Peer, erlang, system_info, [dirty_io_schedulers]),
        ok = peer:call(Peer, ?MODULE, starvation_check, [[{data_dir, DataDir}], 20], scaled(30000))
    end).
%%% pool

pool_runs_calls(_Config) ->
    #{pool_calls := Before} = py:stats(),
    {ok, 4.0} = py:call(math, sqrt, [16]),
    {ok, 45} = py:eval(<<"sum(range(10))">>),
    ok = py:exec(<<"pool_defined = 1">>),
    {error, {'ZeroDivisionError', _}} = py:eval(<<"1/0">>),
    {match, _} = re:run(py:last_traceback(), "ZeroDivisionError"),
    #{pool_calls := After} = py:stats(),
    ?assert(After - Before >= 4),
    [{ok, N} = py:eval(<<"n">>, #{n => N}) || N <- lists:seq(1, 200)],
    {messages, []} = process_info(self(), messages).

pool_grows_for_blocked_calls(Config) ->
    ok = starvation_check(Config, 20),
    #{pool_threads := Threads} = py:stats(),
    ?assert(Threads >= 20, {pool_threads, Threads}).

%% 3 000 calls wait on an event that is set only once the quick call has
%% answered: a quick call queued behind them would never answer.
quick_call_answers_while_three_thousand_calls_wait(_Config) ->
    N = 3000,
    ok = py:exec(<<"import threading\nthree_thousand = threading.Event()">>),
    Waiters = fan_out_start(fun(_) -> py:eval(<<"three_thousand.wait(120)">>, #{}, 180000) end,
                            lists:seq(1, N)),
    try
        wait_until(fun() ->
                           #{pool_threads := T, pool_queued := Q, pool_idle := I} = py:stats(),
                           T >= N andalso Q =:= 0 andalso I =:= 0
                   end, 60000),
        {ok, 4.0} = py:call(math, sqrt, [16]),
        {ok, false} = py:eval(<<"three_thousand.is_set()">>)
    after
        {ok, none} = py:eval(<<"three_thousand.set()">>)
    end,
    Results = fan_out_results(Waiters),
    N = length([R || {ok, true} = R <- Results]).

%% With every pool thread blocked and the limit reached, a call is refused
%% at once rather than queued behind calls that may never end; the pool
%% serves again once they do. What ends them is a thread of Python's own
%% (it needs no pool thread), let go by the case through an Erlang
%% function it waits in.
pool_at_its_limit_refuses_at_once(_Config) ->
    Self = self(),
    restart_with(max_pool_threads, 4),
    try
        #{pool_limit := 4} = py:stats(),
        ok = py:register_function(pool_limit_gate,
                                  fun([]) -> Self ! {gate, self()}, receive go -> ok end end),
        ok = py:exec(<<"import threading\nfour_blocked = threading.Event()\n"
                       "threading.Thread(target=lambda: (erlang.call('pool_limit_gate'),"
                       " four_blocked.set())).start()">>),
        Gate = receive {gate, G} -> G after scaled(10000) -> ct:fail(no_gate) end,
        %% The threads of earlier cases over the limit go, and are gone
        %% from the OS process too (a thread that has left the pool still
        %% drops its Python thread state, and may hold memory a new
        %% thread needs).
        wait_until(fun() -> #{pool_threads := T} = py:stats(), T =< 4 end, 10000),
        _ = py_test_lib:settled(os_threads, fun py_test_lib:os_thread_count/0, 30000),
        Waiters = fan_out_start(fun(_) -> py:eval(<<"four_blocked.wait(60)">>, #{}, 90000) end,
                                lists:seq(1, 4)),
        wait_until(fun() ->
                           #{pool_threads := T, pool_idle := I} = py:stats(),
                           T =:= 4 andalso I =:= 0
                   end, 10000),
        {error, overloaded} = py:call(math, sqrt, [16]),
        {error, overloaded} = py:eval(<<"1">>),
        Gate ! go,
        [{ok, true} = R || R <- fan_out_results(Waiters)],
        {ok, 4.0} = py:call(math, sqrt, [16])
    after
        restart_without(max_pool_threads),
        py:unregister_function(pool_limit_gate)
    end.

%%% lifecycle

application_restart_keeps_the_interpreter(_Config) ->
    ok = py:exec(<<"survives_restart = 'yes'">>),
    ok = application:stop(erlang_python),
    {ok, 4.0} = py:call(math, sqrt, [16]),
    {ok, _} = application:ensure_all_started(erlang_python),
    {ok, <<"yes">>} = py:eval(<<"survives_restart">>),
    ok = application:stop(erlang_python),
    {ok, _} = application:ensure_all_started(erlang_python),
    {ok, 4.0} = py:call(math, sqrt, [16]).

stats_count_calls(_Config) ->
    {ok, Version} = py:eval(<<"'%d.%d.%d' % __import__('sys').version_info[:3]">>),
    #{dirty_calls := D0, pool_calls := P0, python_version := Version} = py:stats(),
    [{ok, _} = py:call(math, sqrt, [4]) || _ <- lists:seq(1, 10)],
    #{dirty_calls := D1, pool_calls := P1} = py:stats(),
    10 = (D1 - D0) + (P1 - P0).

dirty_call_limit_out_of_range_is_clamped(_Config) ->
    Max = erlang:system_info(dirty_io_schedulers) - 1,
    try
        restart_with(dirty_call_limit, 1000),
        #{dirty_limit := Max} = py:stats(),
        restart_with(dirty_call_limit, 2),
        #{dirty_limit := 2} = py:stats(),
        restart_with(dirty_call_limit, many),
        #{dirty_limit := Max} = py:stats()
    after
        restart_without(dirty_call_limit)
    end.

bad_max_pool_threads_is_the_default(_Config) ->
    try
        restart_with(max_pool_threads, 0),
        #{pool_limit := 4096} = py:stats(),
        restart_with(max_pool_threads, lots),
        #{pool_limit := 4096} = py:stats(),
        restart_with(max_pool_threads, 10000),
        #{pool_limit := 10000} = py:stats()
    after
        restart_without(max_pool_threads)
    end,
    #{pool_limit := 4096} = py:stats().

%%% code_cache

%% Each run of a source appends the code object it ran as to a list, which
%% keeps them all alive: the same object each time means it was compiled once.
repeated_source_reuses_its_compiled_code(_Config) ->
    ok = py:exec(<<"code_seen = []">>),
    Record = <<"code_seen.append(__import__('sys')._getframe().f_code)">>,
    [{ok, none} = py:eval(Record) || _ <- [1, 2]],
    {ok, none} = py:eval(binary_to_list(Record)),
    {ok, true} = py:eval(<<"code_seen[0] is code_seen[1] is code_seen[2]">>),
    [ok = py:exec(Record) || _ <- [1, 2]],
    {ok, true} = py:eval(<<"code_seen[3] is code_seen[4]">>),
    {ok, false} = py:eval(<<"code_seen[0] is code_seen[3]">>),
    {ok, none} = py:eval(<<Record/binary, " ">>),
    {ok, false} = py:eval(<<"code_seen[0] is code_seen[5]">>),
    ok = py:exec(<<"del code_seen">>).

cached_code_sees_each_calls_locals(_Config) ->
    Xs = lists:seq(1, 100),
    Doubled = [X * 2 || X <- Xs],
    Doubled = [V || X <- Xs, {ok, V} <- [py:eval(<<"x * 2">>, #{x => X})]],
    {error, {'NameError', _}} = py:eval(<<"x * 2">>),
    ok = py:exec(<<"counter_for_cache = 0">>),
    [ok = py:exec(<<"counter_for_cache += 1">>) || _ <- lists:seq(1, 10)],
    {ok, 10} = py:eval(<<"counter_for_cache">>).

%% One text, compiled once as eval's and once as exec's: each keeps its own.
eval_and_exec_of_one_source_stay_apart(_Config) ->
    Source = <<"compiled_as = __import__('sys')._getframe().f_code.co_filename">>,
    Run = fun(Op) ->
              case Op of
                  exec -> ok = py:exec(Source);
                  eval -> {ok, none} = py:eval(Source)
              end,
              {ok, Name} = py:eval(<<"compiled_as">>),
              Name
          end,
    [<<"<py:exec>">>, <<"<py:eval>">>, <<"<py:exec>">>, <<"<py:eval>">>] =
        [Run(Op) || Op <- [exec, eval, exec, eval]],
    {ok, 2} = py:eval(<<"1 + 1">>),
    ok = py:exec(<<"1 + 1">>),
    {ok, 2} = py:eval(<<"1 + 1">>).

syntax_error_is_reported_every_time(_Config) ->
    [{error, {'SyntaxError', _}} = py:eval(<<"1 +">>) || _ <- lists:seq(1, 3)],
    [{error, {'SyntaxError', _}} = py:exec(<<"def">>) || _ <- lists:seq(1, 3)].

%% More sources than the cache holds, each run twice in turn: every one
%% gives its own value, whatever was evicted or shares a set.
many_distinct_sources_each_give_their_own_value(_Config) ->
    Ns = lists:seq(1, 2000),
    Source = fun(N) -> <<(integer_to_binary(N))/binary, " * 3">> end,
    Eval = fun(N) -> {ok, V} = py:eval(Source(N)), V end,
    Tripled = [N * 3 || N <- Ns],
    Tripled = [Eval(N) || N <- Ns],
    Tripled = [Eval(N) || N <- Ns],
    Tripled = lists:reverse([Eval(N) || N <- lists:reverse(Ns)]).

%% Every distinct source leaves a weak reference to its code object; after
%% thousands of them only a bounded number are still alive (held by the
%% cache), and the newest is among them.
kept_code_stays_bounded(_Config) ->
    ok = py:exec(<<"import weakref, sys\ncode_refs = []">>),
    Source = fun(N) ->
                 <<"code_refs.append(weakref.ref(sys._getframe().f_code)) # ",
                   (integer_to_binary(N))/binary>>
             end,
    [ok = py:exec(Source(N)) || N <- lists:seq(1, 3000)],
    {ok, 3000} = py:eval(<<"len(code_refs)">>),
    {ok, Alive} = py:eval(<<"sum(1 for r in code_refs if r() is not None)">>),
    ct:log("code objects alive after 3000 sources: ~b", [Alive]),
    ?assert(Alive > 0),
    ?assert(Alive =< 512),
    {ok, true} = py:eval(<<"code_refs[-1]() is not None">>),
    ok = py:exec(Source(3000)),
    {ok, true} = py:eval(<<"code_refs[-1]() is code_refs[-2]()">>),
    ok = py:exec(<<"del code_refs">>).

long_source_runs_every_time(_Config) ->
    Terms = lists:join(<<" + ">>, [integer_to_binary(N) || N <- lists:seq(1, 3000)]),
    Source = iolist_to_binary(Terms),
    ?assert(byte_size(Source) > 10000),
    Sum = lists:sum(lists:seq(1, 3000)),
    [{ok, Sum} = py:eval(Source) || _ <- [1, 2, 3]].

%%% helpers

%% The ids of the Erlang-allocated binaries of 64 KB or more that Term
%% refers to, as a fresh process holding nothing else sees them (a refc
%% binary sent in a message is shared, not copied, and keeps its id; a
%% binary over Python's memory is not listed).
binary_ids(Term) ->
    Self = self(),
    Pid = spawn_link(fun() ->
                             receive {term, Held} ->
                                     garbage_collect(),
                                     {binary, Binaries} = process_info(self(), binary),
                                     Ids = [Id || {Id, Size, _} <- Binaries, Size >= 65536],
                                     Self ! {ids, lists:usort(Ids), Held}
                             end
                     end),
    Pid ! {term, Term},
    receive {ids, Ids, _} -> Ids end.

%% N calls block in Python (each says so before it blocks); a quick call
%% made while they all are blocked answers, within 10 s, before any of
%% them is let go. Run in a peer VM as well: fails by raising, and loads
%% the fixtures from Config's data_dir where they are missing.
starvation_check(Config, N) ->
    ok = exec_file(Config, "fixtures.py"),
    Self = self(),
    Key = make_ref(),
    Holders = fan_out_start(fun(I) -> py:call('__main__', hold_until_released, [Self, Key, I],
                                              #{}, infinity)
                            end, lists:seq(1, N)),
    try
        [receive {holding, Key, I} -> ok after scaled(30000) -> ct:fail({never_blocked, I}) end
         || I <- lists:seq(1, N)],
        case py:eval(<<"1 + 1">>, #{}, scaled(10000)) of
            {ok, 2} -> ok;
            Other -> ct:fail({quick_call_starved, Other})
        end
    after
        {ok, none} = py:call('__main__', release_held, [Key])
    end,
    Slept = fan_out_results(Holders),
    Slept = lists:duplicate(N, {ok, none}),
    ok.

%% The value of the Python global Name no longer changes: the code that was
%% changing it has told (Stopped) that it has stopped.
assert_stopped(Stopped, Name) ->
    receive Stopped -> ok after scaled(30000) -> ct:fail({not_stopped, Name}) end,
    {ok, Value} = py:eval(Name),
    {ok, 2} = py:eval(<<"1 + 1">>),
    {ok, Value} = py:eval(Name),
    ok.

%% The threads of this OS process (the VM's, Python's), and how many of
%% them the call pool has.
os_threads() ->
    {ok, Tasks} = file:list_dir("/proc/self/task"),
    #{pool_threads := Pool} = py:stats(),
    {Tasks, Pool}.

%% How many more threads are running than at Before, other than those the
%% call pool has added (which outlive the calls that made them). Counted,
%% not named: a pool thread that idled out and one started since are two
%% names for one pool thread.
threads_added_since({Tasks, Pool}) ->
    {Now, PoolNow} = os_threads(),
    max(0, length(Now) - length(Tasks) - max(0, PoolNow - Pool)).

%% A big extension's first import can outlast the default timeout where
%% everything runs slowly (under valgrind, numpy took over 30 s).
python_has(Module) ->
    case py:exec(<<"import ", Module/binary>>, 300000) of
        {error, {'ModuleNotFoundError', _}} ->
            {ok, Exe} = py:eval(<<"__import__('sys').executable">>),
            Cmd = binary_to_list(Exe) ++ " -c 'import " ++ binary_to_list(Module) ++ "' 2>/dev/null && echo yes",
            case os:cmd(Cmd) of
                "yes\n" -> ct:fail({embedded_import_fails, Module});
                _ -> false
            end;
        {error, Other} ->
            ct:fail({import_failed, Module, Other});
        ok ->
            true
    end.

%% Runs Code in a new VM and returns what it wrote to stdout and stderr.
run_erl(Code) ->
    Port = open_port({spawn_executable, os:find_executable("erl")},
                     [{args, ["-noshell", "-pa", filename:dirname(code:which(py)), "-eval", Code]},
                      stderr_to_stdout, exit_status, binary]),
    collect_output(Port, <<>>).

collect_output(Port, Acc) ->
    receive
        {Port, {data, Data}} -> collect_output(Port, <<Acc/binary, Data/binary>>);
        {Port, {exit_status, 0}} -> Acc;
        {Port, {exit_status, Status}} -> ct:fail({vm_exited, Status, Acc})
    after scaled(60000) -> ct:fail({vm_hung, Acc})
    end.
