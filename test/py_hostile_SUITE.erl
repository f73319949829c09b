%% Hostile input: every NIF entry point given what it does not expect, and
%% values built to hurt (huge, deeply nested, enormous integers, objects that
%% raise while being converted, floods of distinct strings). Each must give
%% a clear error or the right value, and the VM must go on working.
-module(py_hostile_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([nif_entry_points_reject_wrong_types/1, huge_list_crosses_both_ways/1,
         very_deep_erlang_term_is_refused/1, very_deep_python_value_is_refused/1,
         enormous_integer_crosses_both_ways/1, raising_hash_during_conversion_is_an_error/1,
         raising_repr_in_an_error_path_is_harmless/1, distinct_strings_make_no_atoms/1,
         invalid_utf8_names_are_errors/1]).

all() ->
    [nif_entry_points_reject_wrong_types, huge_list_crosses_both_ways,
     very_deep_erlang_term_is_refused, very_deep_python_value_is_refused,
     enormous_integer_crosses_both_ways, raising_hash_during_conversion_is_an_error,
     raising_repr_in_an_error_path_is_harmless, distinct_strings_make_no_atoms,
     invalid_utf8_names_are_errors].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = py:exec(<<"def hostile_ident(x): return x">>),
    Config.

end_per_suite(_Config) ->
    ok.

nif_entry_points_reject_wrong_types(_Config) ->
    Bad = [foo, 1.5, -1, [1 | 2], <<1:3>>, self(), make_ref(), #{}, {}],
    [begin
         {error, {badarg, _}} = py_nif:call(B, sqrt, [4], #{}, 1000, 0),
         {error, {badarg, _}} = py_nif:eval(B, #{}, 1000, 0),
         {error, {badarg, _}} = py_nif:exec(B, 1000, 0)
     end || B <- Bad, not is_binary(B), not is_atom(B)],
    {'EXIT', {badarg, _}} = catch py_nif:call(math, sqrt, [4], #{}, 1000, -1),
    {'EXIT', {badarg, _}} = catch py_nif:eval(<<"1">>, #{}, 1000, foo),
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
    ok = py:exec(<<"def hostile_deep(n):\n    x = []\n    for _ in range(n):\n        x = [x]\n"
                   "    return x\n">>),
    {error, {'ValueError', _}} = py:call('__main__', hostile_deep, [100000]),
    {ok, 2} = py:eval(<<"1 + 1">>).

enormous_integer_crosses_both_ways(_Config) ->
    Big = 1 bsl 1000000 + 12345,
    {ok, Big} = py:call('__main__', hostile_ident, [Big]),
    {ok, true} = py:eval(<<"x == (1 << 1000000) + 12345">>, #{x => Big}),
    Negative = -Big,
    {ok, Negative} = py:call('__main__', hostile_ident, [Negative]).

raising_hash_during_conversion_is_an_error(_Config) ->
    ok = py:exec(<<"class HostileKey:\n"
                   "    def __hash__(self): raise RuntimeError('no hash')\n"
                   "    def __eq__(self, other): raise RuntimeError('no eq')\n"
                   "class HostileIndex:\n"
                   "    def __index__(self): raise RuntimeError('no index')\n">>),
    {error, {'TypeError', _}} = py:eval(<<"[HostileKey()]">>),
    {error, {'RuntimeError', Message}} = py:eval(<<"{1: [HostileIndex()]}">>),
    {match, _} = re:run(Message, "no index"),
    {ok, 2} = py:eval(<<"1 + 1">>).

raising_repr_in_an_error_path_is_harmless(_Config) ->
    ok = py:exec(<<"class HostileRepr(str):\n"
                   "    def __repr__(self): raise RuntimeError('no repr')\n">>),
    %% The key converts (a str), the value does not, and the key's repr,
    %% used to name the place of the error, raises.
    {error, {'TypeError', Message}} = py:eval(<<"{HostileRepr('k'): object()}">>),
    {match, _} = re:run(Message, "HostileRepr key"),
    {ok, 2} = py:eval(<<"1 + 1">>).

distinct_strings_make_no_atoms(_Config) ->
    ok = py:exec(<<"def hostile_strings(n):\n"
                   "    return {'k%d' % i: 'v%d' % i for i in range(n)}\n">>),
    {ok, _} = py:call('__main__', hostile_strings, [10]),
    Before = erlang:system_info(atom_count),
    {ok, Map} = py:call('__main__', hostile_strings, [200000]),
    200000 = map_size(Map),
    <<"v7">> = maps:get(<<"k7">>, Map),
    After = erlang:system_info(atom_count),
    ?assert(After - Before < 10, {atoms_grew, After - Before}).

invalid_utf8_names_are_errors(_Config) ->
    {error, {_, _}} = py:call(<<255, 254>>, f, []),
    {error, {_, _}} = py:call(math, <<255>>, []),
    {error, {'UnicodeDecodeError', _}} = py:call(json, dumps, [1], #{<<255>> => 1}),
    {ok, 2} = py:eval(<<"1 + 1">>).
