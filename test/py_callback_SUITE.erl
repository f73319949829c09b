%% Calling Erlang from Python: py:register_function and the Python `erlang'
%% module as a user sees them. The three calling styles, every error that
%% reaches Python, the registry changing under running calls, messages,
%% Python -> Erlang -> Python reentry and its depth limit (also with a
%% single dirty scheduler of each kind, in a peer VM), large values, many
%% processes at once, and callbacks that outlive a timeout or die.
-module(py_callback_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [scaled/1, exec_file/2, restart_with/2, restart_without/1, in_peer/2,
                      fan_out/2]).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([call_by_name_returns_the_result/1, registered_name_is_a_module_attribute/1,
         registered_name_can_be_imported/1, module_and_function_get_the_argument_list/1,
         names_may_be_binaries/1, name_may_be_an_erlang_atom_from_python/1,
         bad_names_and_functions_are_rejected/1, erlang_module_looks_like_an_ordinary_module/1]).
-export([error_raises_erlang_error_with_class_and_reason/1,
         exit_raises_erlang_error_with_class_and_reason/1,
         throw_raises_erlang_error_with_class_and_reason/1,
         reason_with_a_fun_is_given_as_its_text/1, stacktrace_is_a_list_of_str/1,
         uncaught_erlang_error_reaches_the_erlang_caller/1,
         unknown_name_raises_unknown_function_error/1,
         result_python_cannot_take_raises_type_error/1,
         argument_erlang_cannot_take_raises_type_error/1]).
-export([unregistering_while_in_use_lets_the_call_finish/1,
         registering_again_replaces_the_function/1,
         unregistered_name_leaves_the_module/1,
         many_processes_register_at_once/1]).
-export([send_reaches_the_erlang_process/1, send_to_a_dead_process_is_no_error/1]).
-export([readme_reentrant_example_works/1, nesting_sixty_deep_works/1,
         nesting_limit_is_sixty_four_levels/1, nesting_too_deep_raises_recursion_error/1,
         nesting_limit_comes_from_the_application_env/1,
         nesting_with_a_single_dirty_scheduler_does_not_deadlock/1]).
-export([ten_megabyte_binary_goes_through_and_back/1,
         hundred_thousand_element_list_goes_through_and_back/1,
         two_hundred_processes_reenter_at_once/1]).
-export([callback_outliving_the_timeout_does_not_block_the_thread/1,
         killed_handler_raises_erlang_error_and_calls_go_on/1]).
%% Run in the peer VM, and as an Erlang function registered for Python.
-export([peer_reentry_check/1, raise_from_helper/1]).

%% A hang fails the case instead of stalling the run.
suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, styles}, {group, errors}, {group, registry}, {group, messages},
     {group, reentry}, {group, load}, {group, timeouts}].

groups() ->
    [{styles, [parallel],
      [call_by_name_returns_the_result, registered_name_is_a_module_attribute,
       registered_name_can_be_imported, module_and_function_get_the_argument_list,
       names_may_be_binaries, name_may_be_an_erlang_atom_from_python,
       bad_names_and_functions_are_rejected, erlang_module_looks_like_an_ordinary_module]},
     {errors, [parallel],
      [error_raises_erlang_error_with_class_and_reason,
       exit_raises_erlang_error_with_class_and_reason,
       throw_raises_erlang_error_with_class_and_reason,
       reason_with_a_fun_is_given_as_its_text, stacktrace_is_a_list_of_str,
       uncaught_erlang_error_reaches_the_erlang_caller,
       unknown_name_raises_unknown_function_error,
       result_python_cannot_take_raises_type_error,
       argument_erlang_cannot_take_raises_type_error]},
     {registry, [],
      [unregistering_while_in_use_lets_the_call_finish,
       registering_again_replaces_the_function, unregistered_name_leaves_the_module,
       many_processes_register_at_once]},
     {messages, [parallel],
      [send_reaches_the_erlang_process, send_to_a_dead_process_is_no_error]},
     %% Sequential: one case restarts the application.
     {reentry, [],
      [readme_reentrant_example_works, nesting_sixty_deep_works,
       nesting_limit_is_sixty_four_levels, nesting_too_deep_raises_recursion_error,
       nesting_limit_comes_from_the_application_env,
       nesting_with_a_single_dirty_scheduler_does_not_deadlock]},
     {load, [],
      [ten_megabyte_binary_goes_through_and_back,
       hundred_thousand_element_list_goes_through_and_back,
       two_hundred_processes_reenter_at_once]},
     {timeouts, [],
      [callback_outliving_the_timeout_does_not_block_the_thread,
       killed_handler_raises_erlang_error_and_calls_go_on]}].

init_per_suite(Config) ->
    ok = py_test_lib:start_with_fixtures(Config),
    Config.

end_per_suite(_Config) ->
    ok.

%% An application restart empties the registry, so every case registers
%% the functions it shares with others.
init_per_testcase(_Case, Config) ->
    ok = register_common(),
    Config.

end_per_testcase(_Case, _Config) ->
    ok.

register_common() ->
    ok = py:register_function(double_it, fun([X]) -> X * 2 end),
    %% Python -> Erlang -> Python until Target levels deep; a failed nested
    %% call is handed back up as the value.
    ok = py:register_function(cb_deeper,
                              fun([N, Target]) when N >= Target ->
                                      N;
                                 ([N, Target]) ->
                                      case py:call('__main__', cb_deep, [N + 1, Target]) of
                                          {ok, R} -> R;
                                          {error, _} = Error -> Error
                                      end
                              end),
    ok = py:register_function(cb_via_python,
                              fun([I]) ->
                                      {ok, R} = py:call('__main__', cb_inner, [I]),
                                      R
                              end).

%%% styles

call_by_name_returns_the_result(_Config) ->
    {ok, 42} = py:eval(<<"erlang.call('double_it', 21)">>),
    {ok, 5.0} = py:eval(<<"erlang.call('double_it', 2.5)">>),
    %% The function gets the arguments as a list.
    ok = py:register_function(cb_args_list, fun(Args) -> Args end),
    {ok, [1, <<"a">>, [2.5, none]]} = py:eval(<<"erlang.call('cb_args_list', 1, 'a', [2.5, None])">>),
    {ok, []} = py:eval(<<"erlang.call('cb_args_list')">>).

registered_name_is_a_module_attribute(_Config) ->
    {ok, 42} = py:eval(<<"erlang.double_it(21)">>),
    {ok, 10} = py:eval(<<"getattr(erlang, 'double_it')(5)">>).

registered_name_can_be_imported(_Config) ->
    ok = py:exec(<<"from erlang import double_it as cb_imported_double\n"
                   "cb_imported_result = cb_imported_double(21)\n">>),
    {ok, 42} = py:eval(<<"cb_imported_result">>),
    {ok, 8} = py:call('__main__', cb_imported_double, [4]).

module_and_function_get_the_argument_list(_Config) ->
    ok = py:register_function(rev, lists, reverse),
    {ok, [3, 2, 1]} = py:eval(<<"erlang.call('rev', 1, 2, 3)">>),
    {ok, [<<"b">>, <<"a">>]} = py:eval(<<"erlang.rev('a', 'b')">>),
    ok = py:register_function(cb_sum, lists, sum),
    {ok, 6} = py:eval(<<"erlang.call('cb_sum', 1, 2, 3)">>).

names_may_be_binaries(_Config) ->
    ok = py:register_function(<<"cb_binary_name">>, fun([X]) -> X + 1 end),
    {ok, 2} = py:eval(<<"erlang.call('cb_binary_name', 1)">>),
    {ok, 3} = py:eval(<<"erlang.cb_binary_name(2)">>),
    ok = py:register_function(<<"cb_bin_mf">>, lists, reverse),
    {ok, [2, 1]} = py:eval(<<"erlang.call('cb_bin_mf', 1, 2)">>),
    %% A non-ASCII name is the same str in Python.
    ok = py:register_function(<<"cb_ünïcode"/utf8>>, fun([]) -> unicode_ok end),
    {ok, unicode_ok} = py:eval(<<"erlang.call('cb_ünïcode')"/utf8>>),
    {ok, unicode_ok} = py:eval(<<"erlang.cb_ünïcode()"/utf8>>),
    %% An atom name and its binary are the same name.
    ok = py:register_function(cb_atom_then_binary, fun([]) -> 1 end),
    ok = py:unregister_function(<<"cb_atom_then_binary">>),
    {error, {<<"erlang.UnknownFunctionError">>, _}} = py:eval(<<"erlang.call('cb_atom_then_binary')">>),
    ok = py:unregister_function(<<"cb_binary_name">>),
    {error, {<<"erlang.UnknownFunctionError">>, _}} = py:eval(<<"erlang.call('cb_binary_name', 1)">>).

name_may_be_an_erlang_atom_from_python(_Config) ->
    {ok, 14} = py:eval(<<"erlang.call(erlang.Atom('double_it'), 7)">>),
    {ok, 14} = py:call(erlang, call, [double_it, 7]).

bad_names_and_functions_are_rejected(_Config) ->
    Fun = fun(_) -> ok end,
    {error, {badarg, name}} = py:register_function(123, Fun),
    {error, {badarg, name}} = py:register_function("list", Fun),
    {error, {badarg, name}} = py:register_function(<<>>, Fun),
    {error, {badarg, name}} = py:register_function(<<255, 0>>, Fun),
    {error, {badarg, name}} = py:register_function(123, lists, reverse),
    {error, {badarg, function}} = py:register_function(cb_rejected, not_a_fun),
    {error, {badarg, function}} = py:register_function(cb_rejected, fun(A, B) -> {A, B} end),
    {error, {badarg, function}} = py:register_function(cb_rejected, fun() -> ok end),
    {error, {badarg, function}} = py:register_function(cb_rejected, "lists", reverse),
    {error, {badarg, function}} = py:register_function(cb_rejected, lists, "reverse"),
    {error, {badarg, name}} = py:unregister_function(123),
    {error, {badarg, name}} = py:unregister_function("list"),
    %% Nothing was registered.
    {error, {<<"erlang.UnknownFunctionError">>, _}} = py:eval(<<"erlang.call('cb_rejected')">>),
    {ok, false} = py:eval(<<"hasattr(erlang, 'cb_rejected')">>).

erlang_module_looks_like_an_ordinary_module(_Config) ->
    {ok, false} = py:eval(<<"hasattr(erlang, '__path__')">>),
    {ok, false} = py:eval(<<"hasattr(erlang, 'not_registered')">>),
    {ok, true} = py:eval(<<"hasattr(erlang, 'double_it')">>),
    ok = py:exec(<<"cb_members = dict(inspect.getmembers(erlang))">>),
    {ok, true} = py:eval(<<"callable(cb_members['call']) and callable(cb_members['send'])">>),
    {ok, false} = py:eval(<<"'__path__' in cb_members">>),
    %% copy.copy treats erlang exactly as it treats any other module: the
    %% lookups of __copy__, __reduce_ex__... are not answered by registered
    %% names.
    {ok, Plain} = py:eval(<<"cb_copy_outcome(json)">>),
    {ok, Plain} = py:eval(<<"cb_copy_outcome(erlang)">>).

%%% errors

error_raises_erlang_error_with_class_and_reason(_Config) ->
    ok = py:register_function(cb_raises_error, fun(_) -> error({bad, 1}) end),
    {ok, {error, true, {bad, 1}, <<"{bad,1}">>, true}} =
        py:call('__main__', cb_catch, [<<"cb_raises_error">>]).

exit_raises_erlang_error_with_class_and_reason(_Config) ->
    ok = py:register_function(cb_raises_exit, fun(_) -> exit({gone, <<"away">>}) end),
    {ok, {exit, true, {gone, <<"away">>}, <<"{gone,<<\"away\">>}">>, true}} =
        py:call('__main__', cb_catch, [<<"cb_raises_exit">>]).

throw_raises_erlang_error_with_class_and_reason(_Config) ->
    ok = py:register_function(cb_raises_throw, fun([X]) -> throw({not_found, X}) end),
    {ok, {throw, true, {not_found, 7}, <<"{not_found,7}">>, true}} =
        py:call('__main__', cb_catch, [<<"cb_raises_throw">>, 7]).

reason_with_a_fun_is_given_as_its_text(_Config) ->
    ok = py:register_function(cb_raises_fun, fun(_) -> error({bad_fun, fun() -> ok end}) end),
    {ok, {<<"str">>, true, Text}} = py:call('__main__', cb_reason_of, [<<"cb_raises_fun">>]),
    {match, _} = re:run(Text, "^\\{bad_fun,#Fun<.*>\\}$"),
    {error, {<<"erlang.ErlangError">>, Text}} = py:eval(<<"erlang.call('cb_raises_fun')">>).

stacktrace_is_a_list_of_str(_Config) ->
    ok = py:register_function(cb_raiser, ?MODULE, raise_from_helper),
    {ok, {<<"list">>, Types, Stack}} = py:call('__main__', cb_stack_of, [<<"cb_raiser">>, oops]),
    ?assertMatch([_ | _], Stack),
    Types = [<<"str">> || _ <- Stack],
    [Top | _] = Stack,
    {match, _} = re:run(Top, "^py_callback_SUITE:raise_here/1 \\(.*py_callback_SUITE\\.erl:[0-9]+\\)$"),
    [_] = [Frame || Frame <- Stack,
                    re:run(Frame, "^py_callback_SUITE:raise_from_helper/1 \\(") =/= nomatch],
    %% The class and reason of that error too.
    {ok, {error, true, {oops, [oops]}, <<"{oops,[oops]}">>, true}} =
        py:call('__main__', cb_catch, [<<"cb_raiser">>, oops]).

uncaught_erlang_error_reaches_the_erlang_caller(_Config) ->
    ok = py:register_function(cb_raises_bad, fun(_) -> error({bad, 1}) end),
    {error, {<<"erlang.ErlangError">>, <<"{bad,1}">>}} = py:eval(<<"erlang.call('cb_raises_bad')">>),
    {match, _} = re:run(py:last_traceback(), "ErlangError"),
    ok = py:register_function(cb_exits_uncaught, fun(_) -> exit(normal) end),
    {error, {<<"erlang.ErlangError">>, <<"normal">>}} = py:eval(<<"erlang.cb_exits_uncaught()">>),
    ok = py:register_function(cb_throws_uncaught, fun(_) -> throw(ball) end),
    {error, {<<"erlang.ErlangError">>, <<"ball">>}} = py:eval(<<"erlang.cb_throws_uncaught()">>).

unknown_name_raises_unknown_function_error(_Config) ->
    {error, {<<"erlang.UnknownFunctionError">>, Message}} =
        py:eval(<<"erlang.call('cb_never_registered', 1)">>, #{}, 10000),
    {match, _} = re:run(Message, "cb_never_registered"),
    {ok, {<<"UnknownFunctionError">>, true, false, _}} =
        py:call('__main__', cb_catch_runtime_error, [<<"cb_never_registered">>], #{}, 10000),
    %% Only registered names are attributes.
    {error, {'AttributeError', _}} = py:eval(<<"erlang.cb_never_registered">>),
    {error, {'ImportError', _}} = py:exec(<<"from erlang import cb_never_registered">>).

result_python_cannot_take_raises_type_error(_Config) ->
    ok = py:register_function(cb_gives_fun, fun(_) -> fun() -> ok end end),
    {error, {'TypeError', _}} = py:eval(<<"erlang.call('cb_gives_fun')">>),
    {ok, {<<"TypeError">>, _}} = py:call('__main__', cb_catch_type_error, [<<"cb_gives_fun">>]),
    {ok, 4} = py:eval(<<"erlang.call('double_it', 2)">>).

argument_erlang_cannot_take_raises_type_error(_Config) ->
    Self = self(),
    ok = py:register_function(cb_spy, fun(Args) -> Self ! {spy_called, Args}, ok end),
    {error, {'TypeError', Message}} = py:eval(<<"erlang.call('double_it', object())">>),
    {match, _} = re:run(Message, "object"),
    {error, {'TypeError', _}} = py:eval(<<"erlang.call('cb_spy', 1, object())">>),
    {ok, {<<"TypeError">>, _}} = py:eval(<<"cb_catch_type_error('cb_spy', [lambda: 0])">>),
    %% The name must be a str.
    {error, {'TypeError', _}} = py:eval(<<"erlang.call(123)">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.call()">>),
    %% The spy never ran for the calls above: the first message is this one.
    {ok, ok} = py:eval(<<"erlang.call('cb_spy', 1)">>),
    receive {spy_called, Args} -> [1] = Args end,
    {ok, 6} = py:eval(<<"erlang.call('double_it', 3)">>).

%%% registry

unregistering_while_in_use_lets_the_call_finish(_Config) ->
    %% Says it has started, then finishes once the test has unregistered it.
    ok = py:register_function(cb_in_use, fun([X, Pid]) ->
                                                 Pid ! {in_use_started, self()},
                                                 receive unregistered -> X * 2 end
                                         end),
    Self = self(),
    Caller = spawn_link(fun() -> Self ! {in_use_done, py:call('__main__', cb_call_in_use, [Self])} end),
    InUse = receive {in_use_started, P} -> P after scaled(10000) -> ct:fail(never_started) end,
    ok = py:unregister_function(cb_in_use),
    InUse ! unregistered,
    receive {in_use_done, Result} -> {ok, 10} = Result end,
    unlink(Caller),
    {error, {<<"erlang.UnknownFunctionError">>, _}} = py:call('__main__', cb_call_in_use, [Self]),
    {ok, false} = py:eval(<<"hasattr(erlang, 'cb_in_use')">>),
    {messages, []} = process_info(self(), messages).

registering_again_replaces_the_function(_Config) ->
    ok = py:register_function(cb_versioned, fun(_) -> first end),
    {ok, first} = py:eval(<<"erlang.call('cb_versioned')">>),
    ok = py:register_function(cb_versioned, fun(_) -> second end),
    {ok, second} = py:eval(<<"erlang.call('cb_versioned')">>),
    {ok, second} = py:eval(<<"erlang.cb_versioned()">>),
    ok = py:register_function(cb_versioned, lists, reverse),
    {ok, [2, 1]} = py:eval(<<"erlang.call('cb_versioned', 1, 2)">>),
    ok = py:register_function(<<"cb_versioned">>, fun(_) -> fourth end),
    {ok, fourth} = py:eval(<<"erlang.call('cb_versioned')">>),
    %% An imported name calls what is registered at the time of the call.
    ok = py:exec(<<"from erlang import cb_versioned as cb_imported_versioned">>),
    ok = py:register_function(cb_versioned, fun(_) -> fifth end),
    {ok, fifth} = py:eval(<<"cb_imported_versioned()">>).

unregistered_name_leaves_the_module(_Config) ->
    {ok, false} = py:eval(<<"hasattr(erlang, 'cb_comes_and_goes')">>),
    ok = py:register_function(cb_comes_and_goes, fun(_) -> here end),
    {ok, true} = py:eval(<<"hasattr(erlang, 'cb_comes_and_goes')">>),
    {ok, here} = py:eval(<<"erlang.cb_comes_and_goes()">>),
    ok = py:unregister_function(cb_comes_and_goes),
    {ok, false} = py:eval(<<"hasattr(erlang, 'cb_comes_and_goes')">>),
    {error, {'AttributeError', _}} = py:eval(<<"erlang.cb_comes_and_goes()">>),
    {error, {<<"erlang.UnknownFunctionError">>, _}} = py:eval(<<"erlang.call('cb_comes_and_goes')">>).

many_processes_register_at_once(_Config) ->
    N = 100,
    Registered = fan_out(fun(I) ->
                                 Own = py:register_function(proc_name(I), fun([X]) -> {I, X} end),
                                 Shared = py:register_function(<<"cb_shared">>, fun([]) -> I end),
                                 {Own, Shared}
                         end, lists:seq(1, N)),
    Registered = lists:duplicate(N, {ok, ok}),
    [{ok, {I, 7}} = py:eval(<<"erlang.call(n, 7)">>, #{n => proc_name(I)}) || I <- lists:seq(1, N)],
    [{ok, {I, 8}} = py:eval(<<"getattr(erlang, n)(8)">>, #{n => proc_name(I)}) || I <- lists:seq(1, N)],
    {ok, Winner} = py:eval(<<"erlang.call('cb_shared')">>),
    true = lists:member(Winner, lists:seq(1, N)),
    [ok = py:unregister_function(proc_name(I)) || I <- lists:seq(1, N)],
    {ok, false} = py:eval(<<"any(hasattr(erlang, 'cb_proc_%d' % i) for i in range(1, 101))">>).

proc_name(I) ->
    <<"cb_proc_", (integer_to_binary(I))/binary>>.

%%% messages

send_reaches_the_erlang_process(_Config) ->
    {ok, none} = py:call('__main__', cb_send_hello, [self()]),
    receive Hello -> {<<"hello">>, 42} = Hello end,
    Self = self(),
    {ok, none} = py:call('__main__', cb_send, [self(), {from_python, self(), [1.5, none]}]),
    receive Message -> {from_python, Self, [1.5, none]} = Message end,
    %% From a process other than the caller, through a callback.
    ok = py:register_function(cb_send_via_erlang,
                              fun([Pid]) -> {ok, none} = py:call('__main__', cb_send_hello, [Pid]), sent end),
    {ok, sent} = py:eval(<<"erlang.call('cb_send_via_erlang', p)">>, #{p => self()}),
    receive Again -> {<<"hello">>, 42} = Again end,
    {error, {'TypeError', _}} = py:eval(<<"erlang.send(p, object())">>, #{p => self()}),
    {error, {'TypeError', _}} = py:eval(<<"erlang.send('not a pid', 1)">>),
    {messages, []} = process_info(self(), messages).

send_to_a_dead_process_is_no_error(_Config) ->
    {Dead, Monitor} = spawn_monitor(fun() -> ok end),
    receive {'DOWN', Monitor, process, Dead, normal} -> ok end,
    {ok, none} = py:call('__main__', cb_send_hello, [Dead]),
    {ok, none} = py:eval(<<"erlang.send(p, ('hello', 42))">>, #{p => Dead}),
    {ok, 4} = py:eval(<<"erlang.call('double_it', 2)">>).

%%% reentry

readme_reentrant_example_works(_Config) ->
    %% The example of docs/callbacks.md, word for word.
    ok = py:register_function(double_via_python,
                              fun([X]) -> {ok, R} = py:call('__main__', double, [X]), R end),
    ok = py:exec(<<"def double(x): return x * 2\n"
                   "def process(x): return erlang.call('double_via_python', x) + 1">>),
    {ok, 21} = py:call('__main__', process, [10]).

nesting_sixty_deep_works(_Config) ->
    {ok, 60} = py:call('__main__', cb_deep, [1, 60]).

nesting_limit_is_sixty_four_levels(_Config) ->
    {ok, 64} = py:call('__main__', cb_deep, [1, 64]),
    {ok, {error, {'RecursionError', Message}}} = py:call('__main__', cb_deep, [1, 65]),
    {match, _} = re:run(Message, "nesting deeper than 64").

nesting_too_deep_raises_recursion_error(_Config) ->
    {ok, {error, {'RecursionError', Message}}} = py:call('__main__', cb_deep, [1, 100]),
    {match, _} = re:run(Message, "nesting deeper than"),
    %% Everything unwound: the next call works.
    {ok, 5} = py:call('__main__', cb_deep, [1, 5]).

nesting_limit_comes_from_the_application_env(_Config) ->
    try
        restart_with(max_callback_depth, 10),
        ok = register_common(),
        {ok, 10} = py:call('__main__', cb_deep, [1, 10]),
        {ok, {error, {'RecursionError', Message}}} = py:call('__main__', cb_deep, [1, 12]),
        {match, _} = re:run(Message, "nesting deeper than 10")
    after
        restart_without(max_callback_depth)
    end,
    ok = register_common(),
    {ok, 60} = py:call('__main__', cb_deep, [1, 60]).

nesting_with_a_single_dirty_scheduler_does_not_deadlock(Config) ->
    DataDir = ?config(data_dir, Config),
    in_peer(["+SDio", "1", "+SDcpu", "1"], fun(Peer) ->
        {ok, _} = peer:call(Peer, application, ensure_all_started, [erlang_python]),
        1 = peer:call(Peer, erlang, system_info, [dirty_io_schedulers]),
        1 = peer:call(Peer, erlang, system_info, [dirty_cpu_schedulers]),
        ok = peer:call(Peer, ?MODULE, peer_reentry_check, [[{data_dir, DataDir}]], scaled(120000))
    end).

%% In the peer VM: depth-20 nesting, then 50 processes each going
%% Python -> Erlang -> Python at once.
peer_reentry_check(Config) ->
    ok = exec_file(Config, "fixtures.py"),
    ok = register_common(),
    case py:call('__main__', cb_deep, [1, 20]) of
        {ok, 20} -> reentry_from_processes(50);
        Other -> {depth_20, Other}
    end.

%%% load

ten_megabyte_binary_goes_through_and_back(_Config) ->
    Size = 10 * 1024 * 1024,
    Bin = binary:copy(<<255>>, Size),
    ok = py:register_function(cb_size_and_echo, fun([B]) -> {byte_size(B), B} end),
    {ok, {<<"bytes">>, Size, <<"bytes">>, Back}} = py:call('__main__', cb_big, [Bin]),
    Size = byte_size(Back),
    true = Back =:= Bin.

hundred_thousand_element_list_goes_through_and_back(_Config) ->
    List = lists:seq(1, 100000),
    ok = py:register_function(cb_reverse_list, fun([Xs]) -> lists:reverse(Xs) end),
    {ok, {<<"list">>, 5000050000, Back}} = py:call('__main__', cb_list_through, [List]),
    100000 = length(Back),
    true = Back =:= lists:reverse(List),
    5000050000 = lists:sum(Back).

two_hundred_processes_reenter_at_once(_Config) ->
    ok = reentry_from_processes(200).

%% N processes each call Python, which calls an Erlang function, which calls
%% Python again; each gets its own result.
reentry_from_processes(N) ->
    Results = fan_out(fun(I) -> py:call('__main__', cb_outer, [I]) end, lists:seq(1, N)),
    case [{ok, 3 * I + 1} || I <- lists:seq(1, N)] of
        Results -> ok;
        _ -> {wrong_results, Results}
    end.

%%% timeouts

callback_outliving_the_timeout_does_not_block_the_thread(_Config) ->
    Self = self(),
    ok = py:register_function(cb_slow, fun(_) -> timer:sleep(5000), Self ! slow_done, late end),
    T0 = erlang:monotonic_time(millisecond),
    {error, timeout} = py:call('__main__', cb_calls_slow, [], #{}, 200),
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    ?assert(Elapsed < 3000, {elapsed, Elapsed}),
    %% cb_slow still sleeps; no thread waits for it.
    {ok, 4} = py:eval(<<"erlang.call('double_it', 2)">>, #{}, 2000),
    ok = every_thread_calls_erlang(),
    %% Its late answer is dropped, and calls still work afterwards.
    receive slow_done -> ok after scaled(10000) -> ct:fail(slow_never_done) end,
    ok = every_thread_calls_erlang(),
    {messages, []} = process_info(self(), messages).

killed_handler_raises_erlang_error_and_calls_go_on(_Config) ->
    ok = py:register_function(cb_suicide, fun(_) -> exit(self(), kill) end),
    {error, {<<"erlang.ErlangError">>, Message}} = py:eval(<<"erlang.call('cb_suicide')">>, #{}, 10000),
    {match, _} = re:run(Message, "died"),
    {ok, {<<"ErlangError">>, false, true, _}} =
        py:call('__main__', cb_catch_runtime_error, [<<"cb_suicide">>], #{}, 10000),
    {ok, 4} = py:eval(<<"erlang.call('double_it', 2)">>, #{}, 10000),
    %% Kill the handler of many threads, then use them all.
    Killed = fan_out(fun(_) -> py:eval(<<"erlang.call('cb_suicide')">>, #{}, 10000) end,
                     lists:seq(1, 20)),
    [{error, {<<"erlang.ErlangError">>, _}} = R || R <- Killed],
    ok = every_thread_calls_erlang().

%% Enough concurrent calls, each holding its thread a while, to run on
%% every dirty I/O scheduler and on pool threads; each calls Erlang.
every_thread_calls_erlang() ->
    N = 2 * erlang:system_info(dirty_io_schedulers) + 4,
    Results = fan_out(fun(I) -> py:call('__main__', cb_double_and_hold, [I], #{}, 2000) end,
                      lists:seq(1, N)),
    case [{ok, 2 * I} || I <- lists:seq(1, N)] of
        Results -> ok;
        _ -> {wrong_results, Results}
    end.

%%% helpers

%% Registered as cb_raiser: raises from a named function below it, so that
%% both appear in the stacktrace.
raise_from_helper([Reason]) ->
    Result = raise_here(Reason),
    {unreachable, Result}.

raise_here(never) ->
    fine;
raise_here(Reason) ->
    error({Reason, [Reason]}).
