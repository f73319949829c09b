%% Hostile input: every NIF entry point given what it does not expect, and
%% values built to hurt (huge, deeply nested, enormous integers, objects that
%% raise while being converted, floods of distinct strings and exception
%% classes), and Python code that acts on the process it shares with the VM
%% (os._exit, os.fork, multiprocessing). Each must give a clear error or the
%% right value, and the VM must go on working.
-module(py_hostile_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [fan_out/2]).

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([nif_entry_points_reject_wrong_types/1, huge_list_crosses_both_ways/1,
         very_deep_erlang_term_is_refused/1, very_deep_python_value_is_refused/1,
         enormous_integer_crosses_both_ways/1, raising_hash_during_conversion_is_an_error/1,
         raising_repr_in_an_error_path_is_harmless/1, distinct_strings_make_no_atoms/1,
         million_exception_class_names_make_no_atoms/1, invalid_utf8_names_are_errors/1]).
-export([os_exit_raises_system_exit_in_the_vm/1, forked_child_exits_with_its_status/1,
         forked_child_that_returns_ends_with_status_0/1,
         forked_child_that_raises_ends_with_status_1/1,
         forked_child_cannot_call_erlang/1, multiprocessing_fork_pool_maps/1]).

all() ->
    [nif_entry_points_reject_wrong_types, huge_list_crosses_both_ways,
     very_deep_erlang_term_is_refused, very_deep_python_value_is_refused,
     enormous_integer_crosses_both_ways, raising_hash_during_conversion_is_an_error,
     raising_repr_in_an_error_path_is_harmless, distinct_strings_make_no_atoms,
     million_exception_class_names_make_no_atoms, invalid_utf8_names_are_errors,
     os_exit_raises_system_exit_in_the_vm, forked_child_exits_with_its_status,
     forked_child_that_returns_ends_with_status_0, forked_child_that_raises_ends_with_status_1,
     forked_child_cannot_call_erlang, multiprocessing_fork_pool_maps].

init_per_suite(Config) ->
    ok = py_test_lib:start_with_fixtures(Config),
    Config.

end_per_suite(_Config) ->
    ok.

nif_entry_points_reject_wrong_types(_Config) ->
    Bad = [foo, 1.5, -1, [1 | 2], <<1:3>>, self(), make_ref(), #{}, {}],
    [begin
         {error, {badarg, _}} = py_nif:call(B, sqrt, [4], #{}, 1000, 0, value),
         {error, {badarg, _}} = py_nif:eval(B, #{}, 1000, 0, value),
         {error, {badarg, _}} = py_nif:exec(B, 1000, 0)
     end || B <- Bad, not is_binary(B), not is_atom(B)],
    [begin
         {error, {badarg, ref}} = py_nif:call_method(B, real, [], #{}, 1000, 0, value),
         {error, {badarg, ref}} = py_nif:getattr(B, real, 1000, 0, value),
         {error, {badarg, ref}} = py_nif:to_term(B, 1000, 0),
         {error, {badarg, ref}} = py_nif:release(B, 1000, 0),
         false = py_nif:is_ref(B)
     end || B <- [bar, <<"x">> | Bad]],
    {ok, Ref} = py:eval(<<"3 + 4j">>, #{}, #{return => ref}),
    [begin
         {error, {badarg, _}} = py_nif:call(math, sqrt, [4], #{}, 1000, 0, B),
         {error, {badarg, _}} = py_nif:eval(<<"1">>, #{}, 1000, 0, B),
         {error, {badarg, _}} = py_nif:call_method(Ref, conjugate, [], #{}, 1000, 0, B),
         {error, {badarg, _}} = py_nif:call_method(Ref, conjugate, B, #{}, 1000, 0, value),
         {error, {badarg, _}} = py_nif:getattr(Ref, real, B, 0, value)
     end || B <- Bad],
    [{error, {badarg, name}} = py_nif:getattr(Ref, B, 1000, 0, value)
     || B <- Bad, not is_atom(B), not is_binary(B)],
    {'EXIT', {badarg, _}} = catch py_nif:call(math, sqrt, [4], #{}, 1000, -1, value),
    {'EXIT', {badarg, _}} = catch py_nif:eval(<<"1">>, #{}, 1000, foo, value),
    {'EXIT', {badarg, _}} = catch py_nif:to_term(Ref, 1000, -1),
    {'EXIT', {badarg, _}} = catch py_nif:cancel(make_ref()),
    {'EXIT', {badarg, _}} = catch py_nif:worker_bind(make_ref(), self()),
    {'EXIT', {badarg, _}} = catch py_nif:worker_reply(foo, 1, ok),
    {'EXIT', {badarg, _}} = catch py_nif:set_dirty_limit(-1),
    {'EXIT', {badarg, _}} = catch py_nif:set_max_depth(0),
    {ok, 2.0} = py:call(math, sqrt, [4]).

huge_list_crosses_both_ways(_Config) ->
    List = lists:seq(1, 1000000),
    {ok, List} = py:call('__main__', hostile_ident, [List]),
    {ok, 1000000} = py:eval(<<"len(list(range(1000000)))">>),
    {ok, Back} = py:eval(<<"list(range(1000000))">>),
    1000000 = length(Back).

very_deep_erlang_term_is_refused(_Config) ->
    Deep = lists:foldl(fun(_, Acc) -> [Acc] end, [], lists:seq(1, 100000)),
    {error, {'ValueError', Message}} = py:call('__main__', hostile_ident, [Deep]),
    {match, _} = re:run(Message, "deeper than"),
    DeepTuple = lists:foldl(fun(_, Acc) -> {Acc} end, {}, lists:seq(1, 100000)),
    {error, {'ValueError', _}} = py:call('__main__', hostile_ident, [DeepTuple]),
    DeepMap = lists:foldl(fun(_, Acc) -> #{k => Acc} end, #{}, lists:seq(1, 100000)),
    {error, {'ValueError', _}} = py:call('__main__', hostile_ident, [DeepMap]).

very_deep_python_value_is_refused(_Config) ->
    {error, {'ValueError', _}} = py:call('__main__', hostile_deep, [100000]),
    {ok, 2} = py:eval(<<"1 + 1">>).

enormous_integer_crosses_both_ways(_Config) ->
    Big = 1 bsl 1000000 + 12345,
    {ok, Big} = py:call('__main__', hostile_ident, [Big]),
    {ok, true} = py:eval(<<"x == (1 << 1000000) + 12345">>, #{x => Big}),
    Negative = -Big,
    {ok, Negative} = py:call('__main__', hostile_ident, [Negative]).

raising_hash_during_conversion_is_an_error(_Config) ->
    {error, {'TypeError', _}} = py:eval(<<"[HostileKey()]">>),
    {error, {'RuntimeError', Message}} = py:eval(<<"{1: [HostileIndex()]}">>),
    {match, _} = re:run(Message, "no index"),
    {ok, 2} = py:eval(<<"1 + 1">>).

raising_repr_in_an_error_path_is_harmless(_Config) ->
    %% The key converts (a str), the value does not, and the key's repr,
    %% used to name the place of the error, raises.
    {error, {'TypeError', Message}} = py:eval(<<"{HostileRepr('k'): object()}">>),
    {match, _} = re:run(Message, "HostileRepr key"),
    {ok, 2} = py:eval(<<"1 + 1">>).

distinct_strings_make_no_atoms(_Config) ->
    {ok, _} = py:call('__main__', hostile_strings, [10]),
    Before = erlang:system_info(atom_count),
    {ok, Map} = py:call('__main__', hostile_strings, [1000000]),
    1000000 = map_size(Map),
    <<"v7">> = maps:get(<<"k7">>, Map),
    After = erlang:system_info(atom_count),
    ?assert(After - Before < 10, {atoms_grew, After - Before}).

%% Each call raises an instance of a class made for it, so a million
%% different exception type names reach Erlang.
million_exception_class_names_make_no_atoms(_Config) ->
    {error, _} = py:call('__main__', hostile_raise_new_class, [0]),
    Before = erlang:system_info(atom_count),
    Workers = 4,
    PerWorker = 250000,
    Done = fan_out(fun(W) ->
                           First = W * PerWorker,
                           [{error, {<<"__main__.HostileGenerated", _/binary>>, _}} =
                                py:call('__main__', hostile_raise_new_class, [I])
                            || I <- lists:seq(First, First + PerWorker - 1)],
                           done
                   end, lists:seq(0, Workers - 1)),
    Done = lists:duplicate(Workers, done),
    After = erlang:system_info(atom_count),
    ?assert(After - Before < 10, {atoms_grew, After - Before}),
    {error, {<<"__main__.HostileGenerated7">>, <<"7">>}} =
        py:call('__main__', hostile_raise_new_class, [7]).

invalid_utf8_names_are_errors(_Config) ->
    {error, {_, _}} = py:call(<<255, 254>>, f, []),
    {error, {_, _}} = py:call(math, <<255>>, []),
    {error, {'UnicodeDecodeError', _}} = py:call(json, dumps, [1], #{<<255>> => 1}),
    {ok, 2} = py:eval(<<"1 + 1">>).

%%% The process Python shares with the VM

os_exit_raises_system_exit_in_the_vm(_Config) ->
    {error, {'SystemExit', <<"3">>}} = py:eval(<<"os._exit(3)">>),
    {error, {'SystemExit', <<"4">>}} = py:eval(<<"__import__('posix')._exit(4)">>),
    {error, {'TypeError', _}} = py:eval(<<"os._exit('x')">>),
    {ok, 2} = py:eval(<<"1 + 1">>).

forked_child_exits_with_its_status(_Config) ->
    {ok, 7} = py:eval(<<"fork_then(lambda: os._exit(7))">>, #{}, 10000),
    %% time.sleep in the child is Python's own: the parent's call and its
    %% watchdog did not come along.
    {ok, 8} = py:eval(<<"fork_then(lambda: (__import__('time').sleep(0.01), os._exit(8)))">>,
                      #{}, 10000),
    {ok, 2} = py:eval(<<"1 + 1">>).

%% The child's Python code returns into the NIF, which ends the child as a
%% script that runs off its end: the parent (the VM) is unaffected.
forked_child_that_returns_ends_with_status_0(_Config) ->
    {ok, 0} = py:eval(<<"fork_then(lambda: 'returned in the child')">>, #{}, 10000),
    {ok, 2} = py:eval(<<"1 + 1">>).

forked_child_that_raises_ends_with_status_1(_Config) ->
    {ok, 1} = py:eval(<<"fork_then(lambda: 1 / 0)">>, #{}, 10000),
    {ok, 2} = py:eval(<<"1 + 1">>).

forked_child_cannot_call_erlang(_Config) ->
    ok = py:register_function(hostile_double, fun([X]) -> 2 * X end),
    Calls = [<<"lambda: erlang.call('hostile_double', 1)">>,
             <<"lambda: erlang.hostile_double(1)">>,
             <<"lambda p=pid: erlang.send(p, 1)">>,
             <<"lambda: __import__('asyncio').run(hostile_async_double())">>],
    [begin
         {ok, Text} = py:eval(<<"hostile_child_calls(", Call/binary, ")">>, #{pid => self()}, 10000),
         {match, _} = re:run(Text, "cannot be reached from a process forked from the VM")
     end || Call <- Calls],
    %% The parent still reaches Erlang.
    {ok, 4} = py:eval(<<"erlang.call('hostile_double', 2)">>).

%% Its children end through os._exit, which must end them.
multiprocessing_fork_pool_maps(_Config) ->
    {ok, [1, 4, 9]} = py:call('__main__', hostile_pool_squares, [[1, 2, 3]], #{}, 30000),
    {ok, 2} = py:eval(<<"1 + 1">>).
