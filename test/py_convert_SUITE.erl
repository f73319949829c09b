%% Converting values between Erlang and Python, as docs/types.md describes.
%%
%% Every row of the type table in both directions: integers of any size
%% (and integers Erlang cannot hold), floats (the sign of zero; nan and inf
%% as atoms), UTF-8 binaries and str, non-UTF-8 binaries and bytes, booleans and the
%% atoms that mean None, other atoms as erlang.Atom (including unicode
%% atoms and the 255-character limit), lists, tuples, maps and dicts (map
%% keys Python cannot hash or holds equal), pids and references as opaque
%% hashable objects, sets, numpy arrays and scalars, keyword arguments and
%% locals. Then what cannot cross: Erlang funs, ports and partial-byte
%% bitstrings, Python objects with no Erlang form (the error names the type
%% and the place in the value), conversions that raise, and values nested
%% deeper than 512 levels or referring to themselves.
%%
%% Most values are checked by a round trip through a Python identity
%% function and also by looking at them from the other side (type names,
%% str(), len()), so that a mistake in one direction cannot be hidden by the
%% same mistake in the other. Equality is exact (=:=): 1 and 1.0 differ.
-module(py_convert_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [wait_until/2]).

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2]).

-export([small_integers_roundtrip_exactly/1, sixty_four_bit_edges_roundtrip_exactly/1,
         bignum_roundtrips_losslessly/1, python_sees_the_exact_erlang_integer/1,
         python_bignum_arrives_exact/1, integer_too_large_for_erlang_is_a_value_error/1,
         integer_and_float_stay_distinct/1]).
-export([floats_roundtrip_bit_for_bit/1, negative_zero_keeps_its_sign/1,
         positive_zero_stays_positive/1, nan_and_infinity_are_atoms_both_ways/1]).
-export([utf8_binary_becomes_str/1, unicode_text_roundtrips/1,
         python_str_arrives_as_utf8_binary/1, invalid_utf8_binary_becomes_bytes/1,
         python_bytes_and_bytearray_become_binaries/1,
         partial_byte_bitstring_is_a_type_error/1, lone_surrogate_is_a_unicode_error/1,
         large_results_outlive_their_python_objects/1,
         python_object_is_released_once_erlang_drops_its_binary/1,
         bytes_marker_always_arrives_as_bytes/1, binary_option_says_what_every_binary_becomes/1,
         bytes_tuples_env_honours_the_reference_tuples/1]).
-export([booleans_roundtrip/1, undefined_none_and_nil_become_python_none/1,
         none_atom_env_says_what_none_becomes/1,
         atom_becomes_an_erlang_atom_str/1, atoms_roundtrip/1, unicode_atoms_roundtrip/1,
         python_makes_an_atom_by_name/1, plain_str_never_becomes_an_atom/1,
         overlong_atom_name_is_a_value_error/1]).
-export([lists_roundtrip/1, large_list_roundtrips/1, mixed_list_roundtrips/1,
         improper_list_is_a_type_error/1, tuples_roundtrip/1, maps_roundtrip_with_any_key_type/1,
         python_sees_map_keys_as_python_values/1, unhashable_map_key_is_a_type_error/1,
         keys_python_holds_equal_are_a_value_error/1,
         dict_keys_colliding_in_erlang_are_a_value_error/1, sets_become_lists/1]).
-export([pid_roundtrips/1, reference_roundtrips/1, equal_pids_are_equal_and_hashable/1,
         equal_refs_are_equal_and_hashable/1, fun_argument_is_a_type_error/1,
         port_argument_is_a_type_error/1]).
-export([unconvertible_result_names_its_type/1, nested_unconvertible_names_its_place/1,
         functions_and_generators_have_no_erlang_form/1,
         raising_index_is_an_error_not_a_crash/1, index_object_becomes_an_integer/1]).
-export([five_hundred_levels_roundtrip/1, six_hundred_levels_from_erlang_are_refused/1,
         six_hundred_levels_from_python_are_refused/1,
         self_referencing_containers_are_refused/1]).
-export([kwargs_reach_the_function/1, kwargs_values_are_converted/1,
         kwargs_key_must_be_a_name/1, locals_names_may_be_atoms_or_binaries/1]).
-export([numpy_array_becomes_a_list/1, numpy_matrix_becomes_nested_lists/1,
         numpy_int_scalar_becomes_an_integer/1, numpy_float_scalar_becomes_a_float/1,
         numpy_bool_becomes_a_boolean/1, numpy_nan_is_an_atom/1,
         numpy_frombuffer_takes_any_binary_marked_as_bytes/1]).

all() ->
    [{group, integers}, {group, floats}, {group, text}, {group, atoms},
     {group, containers}, {group, opaque}, {group, unconvertible}, {group, nesting},
     {group, kwargs}, {group, numpy}].

groups() ->
    [{integers, [],
      [small_integers_roundtrip_exactly, sixty_four_bit_edges_roundtrip_exactly,
       bignum_roundtrips_losslessly, python_sees_the_exact_erlang_integer,
       python_bignum_arrives_exact, integer_too_large_for_erlang_is_a_value_error,
       integer_and_float_stay_distinct]},
     {floats, [],
      [floats_roundtrip_bit_for_bit, negative_zero_keeps_its_sign,
       positive_zero_stays_positive, nan_and_infinity_are_atoms_both_ways]},
     {text, [],
      [utf8_binary_becomes_str, unicode_text_roundtrips, python_str_arrives_as_utf8_binary,
       invalid_utf8_binary_becomes_bytes, python_bytes_and_bytearray_become_binaries,
       partial_byte_bitstring_is_a_type_error, lone_surrogate_is_a_unicode_error,
       large_results_outlive_their_python_objects,
       python_object_is_released_once_erlang_drops_its_binary,
       bytes_marker_always_arrives_as_bytes, binary_option_says_what_every_binary_becomes,
       bytes_tuples_env_honours_the_reference_tuples]},
     {atoms, [],
      [booleans_roundtrip, undefined_none_and_nil_become_python_none,
       none_atom_env_says_what_none_becomes,
       atom_becomes_an_erlang_atom_str, atoms_roundtrip, unicode_atoms_roundtrip,
       python_makes_an_atom_by_name, plain_str_never_becomes_an_atom,
       overlong_atom_name_is_a_value_error]},
     {containers, [],
      [lists_roundtrip, large_list_roundtrips, mixed_list_roundtrips,
       improper_list_is_a_type_error, tuples_roundtrip, maps_roundtrip_with_any_key_type,
       python_sees_map_keys_as_python_values, unhashable_map_key_is_a_type_error,
       keys_python_holds_equal_are_a_value_error,
       dict_keys_colliding_in_erlang_are_a_value_error, sets_become_lists]},
     {opaque, [],
      [pid_roundtrips, reference_roundtrips, equal_pids_are_equal_and_hashable,
       equal_refs_are_equal_and_hashable, fun_argument_is_a_type_error,
       port_argument_is_a_type_error]},
     {unconvertible, [],
      [unconvertible_result_names_its_type, nested_unconvertible_names_its_place,
       functions_and_generators_have_no_erlang_form, raising_index_is_an_error_not_a_crash,
       index_object_becomes_an_integer]},
     {nesting, [],
      [five_hundred_levels_roundtrip, six_hundred_levels_from_erlang_are_refused,
       six_hundred_levels_from_python_are_refused, self_referencing_containers_are_refused]},
     {kwargs, [],
      [kwargs_reach_the_function, kwargs_values_are_converted, kwargs_key_must_be_a_name,
       locals_names_may_be_atoms_or_binaries]},
     {numpy, [],
      [numpy_array_becomes_a_list, numpy_matrix_becomes_nested_lists,
       numpy_int_scalar_becomes_an_integer, numpy_float_scalar_becomes_a_float,
       numpy_bool_becomes_a_boolean, numpy_nan_is_an_atom,
       numpy_frombuffer_takes_any_binary_marked_as_bytes]}].

init_per_suite(Config) ->
    ok = py_test_lib:start_with_fixtures(Config),
    Config.

end_per_suite(_Config) ->
    ok.

%% numpy cases run when numpy imports in the embedded Python. They are
%% skipped only when the same Python, run on its own, cannot import it
%% either; an import that fails only when embedded is a failure.
init_per_group(numpy, Config) ->
    case py:exec(<<"import numpy">>) of
        ok ->
            Config;
        {error, ImportError} ->
            {ok, Exe} = py:eval(<<"__import__('sys').executable">>),
            Cmd = binary_to_list(Exe) ++ " -c 'import numpy' >/dev/null 2>&1; echo \"exit=$?\"",
            case os:cmd(Cmd) of
                "exit=0\n" ->
                    {fail, {numpy_imports_in_python_but_not_embedded, Exe, ImportError}};
                _ ->
                    {skip, "numpy is not installed for " ++ binary_to_list(Exe)}
            end
    end;
init_per_group(_Group, Config) ->
    Config.

end_per_group(_Group, _Config) ->
    ok.

%%% integers

small_integers_roundtrip_exactly(_Config) ->
    lists:foreach(fun roundtrip/1, [0, 1, -1, 42, -42, 255, 256, 1 bsl 27, -(1 bsl 27),
                                    1 bsl 31, -(1 bsl 31), 1 bsl 32]).

sixty_four_bit_edges_roundtrip_exactly(_Config) ->
    lists:foreach(fun roundtrip/1,
                  [(1 bsl 63) - 1, 1 bsl 63, -(1 bsl 63), -(1 bsl 63) - 1,
                   (1 bsl 64) - 1, 1 bsl 64, -(1 bsl 64), -(1 bsl 64) - 1, (1 bsl 64) + 1]).

bignum_roundtrips_losslessly(_Config) ->
    lists:foreach(fun roundtrip/1,
                  [1 bsl 200, -(1 bsl 200), (1 bsl 200) + 12345, -(1 bsl 1000),
                   (1 bsl 2048) - 1, -(1 bsl 2048) + 1, 1 bsl 2040, pow10(300) + 7]).

%% The integer Python receives is the right one, not just one that comes
%% back the same.
python_sees_the_exact_erlang_integer(_Config) ->
    lists:foreach(
      fun(I) ->
              Expected = integer_to_binary(I),
              {ok, Expected} = py:eval(<<"str(x)">>, #{x => I}),
              {ok, <<"int">>} = py:eval(<<"type(x).__name__">>, #{x => I})
      end,
      [0, -1, (1 bsl 63) - 1, 1 bsl 63, 1 bsl 64, -(1 bsl 63) - 1, 1 bsl 200, -(1 bsl 1000)]),
    {ok, true} = py:eval(<<"x == 2**200">>, #{x => 1 bsl 200}),
    {ok, true} = py:eval(<<"x == -(2**1000)">>, #{x => -(1 bsl 1000)}).

python_bignum_arrives_exact(_Config) ->
    Expected100 = 1 bsl 100,
    {ok, Expected100} = py:eval(<<"2**100">>),
    ExpectedNeg = -(1 bsl 1000),
    {ok, ExpectedNeg} = py:eval(<<"-(2**1000)">>),
    Max64 = (1 bsl 64) - 1,
    {ok, Max64} = py:eval(<<"2**64 - 1">>),
    Min64 = -(1 bsl 63),
    {ok, Min64} = py:eval(<<"-(2**63)">>),
    Below64 = -(1 bsl 63) - 1,
    {ok, Below64} = py:eval(<<"-(2**63) - 1">>),
    Big = pow10(300) + 7,
    {ok, Big} = py:eval(<<"10**300 + 7">>),
    %% bool is an int subclass in Python but stays a boolean.
    {ok, true} = py:eval(<<"True">>).

integer_too_large_for_erlang_is_a_value_error(_Config) ->
    {error, {'ValueError', Message}} = py:eval(<<"1 << 100000000">>),
    assert_mentions(<<"(at result)">>, Message),
    %% The interpreter is fine afterwards.
    {ok, 3} = py:eval(<<"1 + 2">>).

integer_and_float_stay_distinct(_Config) ->
    {ok, One} = py:call('__main__', ident, [1]),
    ?assert(One =:= 1),
    {ok, OneFloat} = py:call('__main__', ident, [1.0]),
    ?assert(OneFloat =:= 1.0),
    {ok, <<"int">>} = py:eval(<<"type(x).__name__">>, #{x => 1}),
    {ok, <<"float">>} = py:eval(<<"type(x).__name__">>, #{x => 1.0}),
    {ok, Two} = py:eval(<<"4 / 2">>),
    ?assert(Two =:= 2.0),
    {ok, Two2} = py:eval(<<"4 // 2">>),
    ?assert(Two2 =:= 2).

%%% floats

floats_roundtrip_bit_for_bit(_Config) ->
    Floats = [1.5, -2.25, 0.1, 1.0 / 3.0, 3.0, 1.0e308, -1.0e-308, 5.0e-324,
              1.7976931348623157e308, 2.2250738585072014e-308, 123456789.125],
    lists:foreach(
      fun(F) ->
              roundtrip(F),
              Text = float_to_binary(F, [short]),
              %% Python parses Erlang's shortest text to the same double ...
              {ok, true} = py:eval(<<"x == float(s) and type(x) is float">>, #{x => F, s => Text}),
              %% ... and a float made in Python arrives as that double.
              {ok, FromPython} = py:eval(<<"float(s)">>, #{s => Text}),
              ?assertEqual(<<F/float>>, <<FromPython/float>>)
      end,
      Floats).

negative_zero_keeps_its_sign(_Config) ->
    <<NegZero/float>> = <<1:1, 0:63>>,
    {ok, Back} = py:call('__main__', ident, [NegZero]),
    ?assertEqual(<<1:1, 0:63>>, <<Back/float>>),
    %% Python sees the sign ...
    {ok, -1.0} = py:eval(<<"__import__('math').copysign(1.0, x)">>, #{x => NegZero}),
    %% ... and a -0.0 made in Python arrives with it.
    {ok, FromPython} = py:eval(<<"-0.0">>),
    ?assertEqual(<<1:1, 0:63>>, <<FromPython/float>>).

positive_zero_stays_positive(_Config) ->
    <<PosZero/float>> = <<0:64>>,
    {ok, Back} = py:call('__main__', ident, [PosZero]),
    ?assertEqual(<<0:64>>, <<Back/float>>),
    {ok, 1.0} = py:eval(<<"__import__('math').copysign(1.0, x)">>, #{x => PosZero}).

%% Python's nan, inf and -inf, which Erlang floats cannot hold, are the
%% atoms nan, infinity and neg_infinity, both ways (as in the reference
%% system).
nan_and_infinity_are_atoms_both_ways(_Config) ->
    {ok, nan} = py:eval(<<"float('nan')">>),
    {ok, infinity} = py:eval(<<"float('inf')">>),
    {ok, neg_infinity} = py:eval(<<"float('-inf')">>),
    {ok, [1.0, #{<<"x">> := infinity}, neg_infinity]} =
        py:eval(<<"[1.0, {'x': float('inf')}, -float('inf')]">>),
    {ok, true} = py:eval(<<"x != x and isinstance(x, float)">>, #{x => nan}),
    {ok, true} = py:call(math, isinf, [infinity]),
    {ok, true} = py:eval(<<"x == float('-inf')">>, #{x => neg_infinity}),
    {ok, [infinity, nan]} = py:call('__main__', ident, [[infinity, nan]]),
    {ok, 5.0} = py:call(builtins, min, [infinity, 5.0]),
    %% Other atoms stay atoms.
    {ok, true} = py:eval(<<"isinstance(x, erlang.Atom)">>, #{x => infinite}).

%%% text

utf8_binary_becomes_str(_Config) ->
    {ok, <<"str">>} = py:eval(<<"type(x).__name__">>, #{x => <<"hello">>}),
    {ok, <<"str">>} = py:eval(<<"type(x).__name__">>, #{x => <<>>}),
    {ok, <<"str">>} = py:eval(<<"type(x).__name__">>, #{x => <<"héllo ✓ 日本"/utf8>>}),
    {ok, true} = py:eval(<<"x == 'hello'">>, #{x => <<"hello">>}),
    roundtrip(<<"hello">>),
    roundtrip(<<>>).

unicode_text_roundtrips(_Config) ->
    Text = <<"héllo ✓ 日本"/utf8>>,
    roundtrip(Text),
    %% Python sees characters, not bytes.
    {ok, 10} = py:eval(<<"len(x)">>, #{x => Text}),
    {ok, true} = py:eval(<<"x == 'h\\u00e9llo \\u2713 \\u65e5\\u672c'">>, #{x => Text}),
    Emoji = <<"😀 and NUL \0 inside"/utf8>>,
    roundtrip(Emoji),
    {ok, true} = py:eval(<<"x[0] == '\\U0001F600'">>, #{x => Emoji}).

python_str_arrives_as_utf8_binary(_Config) ->
    Expected = <<"日本 é"/utf8>>,
    {ok, Expected} = py:eval(<<"'\\u65e5\\u672c \\u00e9'">>),
    {ok, <<"abc">>} = py:eval(<<"'abc'">>),
    {ok, <<>>} = py:eval(<<"''">>).

invalid_utf8_binary_becomes_bytes(_Config) ->
    Bin = <<255, 0, 1>>,
    {ok, <<"bytes">>} = py:eval(<<"type(x).__name__">>, #{x => Bin}),
    {ok, true} = py:eval(<<"x == b'\\xff\\x00\\x01'">>, #{x => Bin}),
    roundtrip(Bin),
    %% A truncated UTF-8 sequence is not UTF-8 either.
    <<Truncated:2/binary, _/binary>> = <<"日"/utf8>>,
    {ok, <<"bytes">>} = py:eval(<<"type(x).__name__">>, #{x => Truncated}),
    roundtrip(Truncated).

python_bytes_and_bytearray_become_binaries(_Config) ->
    {ok, <<255, 0, 1>>} = py:eval(<<"b'\\xff\\x00\\x01'">>),
    {ok, <<"abc">>} = py:eval(<<"b'abc'">>),
    {ok, <<>>} = py:eval(<<"b''">>),
    {ok, <<1, 2, 255>>} = py:eval(<<"bytearray([1, 2, 255])">>),
    {ok, <<>>} = py:eval(<<"bytearray()">>).

partial_byte_bitstring_is_a_type_error(_Config) ->
    {error, {'TypeError', Message}} = py:call('__main__', ident, [<<1:3>>]),
    assert_mentions(<<"args[0]">>, Message),
    {error, {'TypeError', _}} = py:call('__main__', ident, [[<<"ok">>, <<1, 2:4>>]]).

%% docs/types.md: "a lone surrogate is an error", reported like the other
%% conversion errors (py.erl: a ValueError naming the place). The encoder's
%% own UnicodeEncodeError, a ValueError subclass, is as good.
lone_surrogate_is_a_unicode_error(_Config) ->
    {error, {Type, Message}} = py:eval(<<"'\\ud800'">>),
    ?assert(lists:member(Type, ['ValueError', 'UnicodeEncodeError']), {Type, Message}),
    assert_mentions(<<"(at result)">>, Message),
    {error, {Type2, Nested}} = py:eval(<<"['ok', 'bad \\udfff']">>),
    ?assert(lists:member(Type2, ['ValueError', 'UnicodeEncodeError']), {Type2, Nested}),
    assert_mentions(<<"result[1]">>, Nested).

%%% atoms

booleans_roundtrip(_Config) ->
    roundtrip(true),
    roundtrip(false),
    {ok, <<"bool">>} = py:eval(<<"type(x).__name__">>, #{x => true}),
    {ok, true} = py:eval(<<"x is True and y is False">>, #{x => true, y => false}),
    {ok, true} = py:eval(<<"1 == 1">>),
    {ok, false} = py:eval(<<"1 == 2">>).

undefined_none_and_nil_become_python_none(_Config) ->
    lists:foreach(
      fun(A) ->
              {ok, true} = py:eval(<<"x is None">>, #{x => A}),
              {ok, none} = py:call('__main__', ident, [A])
      end,
      [undefined, none, nil]),
    {ok, none} = py:eval(<<"None">>).

%% none_atom => nil (Elixir's): None comes back as nil, in results,
%% containers and what Python sends; none, nil and undefined still all go
%% in as None. The application works as before with it (its own calls
%% that return None). A bad value is a warning, and none.
none_atom_env_says_what_none_becomes(_Config) ->
    try
        py_test_lib:restart_with(none_atom, nil),
        {ok, nil} = py:eval(<<"None">>),
        [{ok, true} = py:eval(<<"x is None">>, #{x => A}) || A <- [undefined, none, nil]],
        {ok, [nil, #{<<"k">> := nil}, {nil}]} = py:eval(<<"[None, {'k': None}, (None,)]">>),
        {ok, nil} = py:call('__main__', ident, [none]),
        ok = py:register_function(convert_suite_echo, fun([X]) -> X end),
        {ok, true} = py:eval(<<"__import__('erlang').call('convert_suite_echo', None) is None">>),
        ok = py:unregister_function(convert_suite_echo),
        py_test_lib:restart_with(none_atom, undefined),
        {ok, undefined} = py:eval(<<"None">>),
        Warning = py_test_lib:warning_of(fun() -> py_test_lib:restart_with(none_atom, null) end),
        {match, _} = re:run(Warning, "none_atom null"),
        {ok, none} = py:eval(<<"None">>)
    after
        py_test_lib:restart_without(none_atom)
    end,
    {ok, none} = py:eval(<<"None">>).

atom_becomes_an_erlang_atom_str(_Config) ->
    {ok, true} = py:eval(<<"isinstance(x, str)">>, #{x => hello}),
    {ok, <<"Atom">>} = py:eval(<<"type(x).__name__">>, #{x => hello}),
    {ok, true} = py:eval(<<"x == 'hello'">>, #{x => hello}),
    {ok, true} = py:eval(<<"isinstance(x, erlang.Atom)">>, #{x => hello}).

atoms_roundtrip(_Config) ->
    lists:foreach(fun roundtrip/1,
                  [hello, ok, error, 'Hello World', '', 'with\'quote', 'true_ish',
                   list_to_atom(lists:duplicate(255, $a)),
                   list_to_atom([$a, 0, $b]), list_to_atom([0]), list_to_atom([12354, 0])]),
    %% A NUL inside an atom is a character like any other, not its end.
    {ok, 3} = py:eval(<<"len(x)">>, #{x => list_to_atom([$a, 0, $b])}).

unicode_atoms_roundtrip(_Config) ->
    Latin1 = 'héllo',
    roundtrip(Latin1),
    {ok, true} = py:eval(<<"x == 'h\\u00e9llo' and len(x) == 5">>, #{x => Latin1}),
    Hiragana = list_to_atom([12354]),
    roundtrip(Hiragana),
    {ok, true} = py:eval(<<"x == '\\u3042' and type(x).__name__ == 'Atom'">>,
                         #{x => Hiragana}),
    Longest = list_to_atom(lists:duplicate(255, 12354)),
    roundtrip(Longest),
    {ok, 255} = py:eval(<<"len(x)">>, #{x => Longest}),
    Mixed = list_to_atom("a" ++ [233, 12354, 128512]),
    roundtrip(Mixed).

python_makes_an_atom_by_name(_Config) ->
    {ok, hello} = py:eval(<<"erlang.Atom('hello')">>),
    {ok, [ok, {error, 'Some Atom'}]} =
        py:eval(<<"[erlang.Atom('ok'), (erlang.Atom('error'), erlang.Atom('Some Atom'))]">>),
    Expected = list_to_atom([12354]),
    {ok, Expected} = py:eval(<<"erlang.Atom('\\u3042')">>).

plain_str_never_becomes_an_atom(_Config) ->
    {ok, <<"hello">>} = py:eval(<<"'hello'">>),
    %% A str made from an Atom is a plain str again.
    {ok, <<"hello">>} = py:eval(<<"str(x)">>, #{x => hello}).

overlong_atom_name_is_a_value_error(_Config) ->
    {error, {'ValueError', Message}} = py:eval(<<"erlang.Atom('a' * 256)">>),
    assert_mentions(<<"255">>, Message),
    {error, {'ValueError', _}} = py:eval(<<"[erlang.Atom('\\u3042' * 256)]">>),
    Longest = list_to_atom(lists:duplicate(255, $a)),
    {ok, Longest} = py:eval(<<"erlang.Atom('a' * 255)">>).

%%% containers

lists_roundtrip(_Config) ->
    lists:foreach(fun roundtrip/1, [[], [1], [1, 2, 3], [[]], [[1, [2, [3]]], []]]),
    {ok, <<"list">>} = py:eval(<<"type(x).__name__">>, #{x => [1, 2]}),
    {ok, <<"list">>} = py:eval(<<"type(x).__name__">>, #{x => []}),
    {ok, [1, 2, 3]} = py:eval(<<"[1, 2, 3]">>),
    {ok, []} = py:eval(<<"[]">>).

large_list_roundtrips(_Config) ->
    List = lists:seq(1, 100000),
    roundtrip(List),
    {ok, 100000} = py:eval(<<"len(x)">>, #{x => List}),
    {ok, 5000050000} = py:eval(<<"sum(x)">>, #{x => List}),
    {ok, List} = py:eval(<<"list(range(1, 100001))">>).

mixed_list_roundtrips(_Config) ->
    List = [1, 2.5, <<"s">>, atom, {1, <<"t">>}, #{a => 1}, [], <<255>>, true, false, none,
            1 bsl 100, self(), -0.5],
    roundtrip(List),
    {ok, [<<"int">>, <<"float">>, <<"str">>, <<"Atom">>, <<"tuple">>, <<"dict">>, <<"list">>,
          <<"bytes">>, <<"bool">>, <<"bool">>, <<"NoneType">>, <<"int">>, <<"Pid">>,
          <<"float">>]} =
        py:eval(<<"[type(i).__name__ for i in x]">>, #{x => List}).

improper_list_is_a_type_error(_Config) ->
    {error, {'TypeError', Message}} = py:call('__main__', ident, [[1 | 2]]),
    assert_mentions(<<"args[0]">>, Message),
    {error, {'TypeError', _}} = py:call('__main__', ident, [{ok, [a, b | c]}]).

tuples_roundtrip(_Config) ->
    lists:foreach(fun roundtrip/1, [{}, {1}, {1, 2}, {a, <<"b">>, [c], {d}}, {{}, {{}}}]),
    {ok, <<"tuple">>} = py:eval(<<"type(x).__name__">>, #{x => {}}),
    {ok, 0} = py:eval(<<"len(x)">>, #{x => {}}),
    {ok, {}} = py:eval(<<"()">>),
    {ok, {1, {2, 3}}} = py:eval(<<"(1, (2, 3))">>).

maps_roundtrip_with_any_key_type(_Config) ->
    lists:foreach(fun roundtrip/1,
                  [#{}, #{a => 1}, #{1 => one, 2.5 => two_and_a_half, <<"k">> => v, atom => x,
                                     {1, 2} => tuple_key, <<255>> => bytes_key,
                                     1 bsl 100 => big, self() => pid},
                   #{nested => #{deeper => #{deepest => [1, 2]}}}]),
    {ok, <<"dict">>} = py:eval(<<"type(x).__name__">>, #{x => #{}}),
    {ok, #{}} = py:eval(<<"{}">>),
    FromPython = #{<<"a">> => 1, 2 => [3], {4, 5} => none},
    {ok, FromPython} = py:eval(<<"{'a': 1, 2: [3], (4, 5): None}">>).

python_sees_map_keys_as_python_values(_Config) ->
    Map = #{1 => int, atom => atom, <<"bin">> => bin, {1, 2} => tuple},
    {ok, int} = py:eval(<<"x[1]">>, #{x => Map}),
    {ok, atom} = py:eval(<<"x['atom']">>, #{x => Map}),
    {ok, bin} = py:eval(<<"x['bin']">>, #{x => Map}),
    {ok, tuple} = py:eval(<<"x[(1, 2)]">>, #{x => Map}),
    {ok, 4} = py:eval(<<"len(x)">>, #{x => Map}).

unhashable_map_key_is_a_type_error(_Config) ->
    {error, {'TypeError', ListKey}} = py:call('__main__', ident, [#{[1] => a}]),
    assert_mentions(<<"list">>, ListKey),
    {error, {'TypeError', MapKey}} = py:call('__main__', ident, [#{#{} => a}]),
    assert_mentions(<<"dict">>, MapKey).

keys_python_holds_equal_are_a_value_error(_Config) ->
    {error, {'ValueError', _}} = py:call('__main__', ident, [#{1 => a, 1.0 => b}]),
    {error, {'ValueError', _}} = py:call('__main__', ident, [#{1 => a, true => b}]),
    {error, {'ValueError', _}} = py:call('__main__', ident, [#{0 => a, false => b}]),
    %% The same keys in separate maps are fine.
    roundtrip([#{1 => a}, #{1.0 => b}]).

dict_keys_colliding_in_erlang_are_a_value_error(_Config) ->
    {error, {'ValueError', _}} = py:eval(<<"{'a': 1, b'a': 2}">>),
    {error, {'ValueError', _}} = py:eval(<<"{'a': 1, bytearray(b'a').decode(): 2, b'a': 3}">>).

sets_become_lists(_Config) ->
    {ok, Set} = py:eval(<<"{3, 1, 2}">>),
    [1, 2, 3] = lists:sort(Set),
    {ok, Frozen} = py:eval(<<"frozenset(['b', 'a', 'c'])">>),
    [<<"a">>, <<"b">>, <<"c">>] = lists:sort(Frozen),
    {ok, []} = py:eval(<<"set()">>),
    {ok, []} = py:eval(<<"frozenset()">>).

%%% opaque

pid_roundtrips(_Config) ->
    Self = self(),
    roundtrip(Self),
    Other = spawn(fun() -> ok end),
    roundtrip(Other),
    {ok, <<"Pid">>} = py:eval(<<"type(x).__name__">>, #{x => Self}).

reference_roundtrips(_Config) ->
    Ref = make_ref(),
    roundtrip(Ref),
    roundtrip([make_ref(), make_ref()]),
    {ok, <<"Ref">>} = py:eval(<<"type(x).__name__">>, #{x => Ref}).

equal_pids_are_equal_and_hashable(_Config) ->
    Self = self(),
    Other = spawn(fun() -> ok end),
    {ok, true} = py:eval(<<"a == b">>, #{a => Self, b => Self}),
    {ok, false} = py:eval(<<"a == b">>, #{a => Self, b => Other}),
    {ok, true} = py:eval(<<"a != b">>, #{a => Self, b => Other}),
    {ok, true} = py:eval(<<"hash(a) == hash(b)">>, #{a => Self, b => Self}),
    {ok, 1} = py:eval(<<"len({a, b})">>, #{a => Self, b => Self}),
    {ok, 2} = py:eval(<<"len({a, b})">>, #{a => Self, b => Other}),
    %% Usable as a dict key in both directions.
    PidKey = #{Self => yes},
    {ok, PidKey} = py:eval(<<"{a: erlang.Atom('yes')}">>, #{a => Self}).

equal_refs_are_equal_and_hashable(_Config) ->
    Ref = make_ref(),
    Other = make_ref(),
    {ok, true} = py:eval(<<"a == b">>, #{a => Ref, b => Ref}),
    {ok, false} = py:eval(<<"a == b">>, #{a => Ref, b => Other}),
    {ok, true} = py:eval(<<"hash(a) == hash(b)">>, #{a => Ref, b => Ref}),
    {ok, 1} = py:eval(<<"len({a, b})">>, #{a => Ref, b => Ref}),
    {ok, 2} = py:eval(<<"len({a, b})">>, #{a => Ref, b => Other}),
    RefKey = #{Ref => 1},
    {ok, RefKey} = py:eval(<<"{a: 1}">>, #{a => Ref}).

fun_argument_is_a_type_error(_Config) ->
    {error, {'TypeError', Message}} = py:call('__main__', ident, [fun() -> ok end]),
    assert_mentions(<<"fun">>, Message),
    assert_mentions(<<"args[0]">>, Message),
    {error, {'TypeError', _}} = py:call('__main__', ident, [[1, fun lists:seq/2]]).

port_argument_is_a_type_error(_Config) ->
    Port = open_port({spawn, "cat"}, [binary]),
    try
        {error, {'TypeError', Message}} = py:call('__main__', ident, [Port]),
        assert_mentions(<<"port">>, Message),
        {error, {'TypeError', _}} = py:call('__main__', ident, [#{p => Port}])
    after
        port_close(Port)
    end.

%%% unconvertible

unconvertible_result_names_its_type(_Config) ->
    {error, {'TypeError', Message}} = py:eval(<<"object()">>),
    assert_mentions(<<"object">>, Message),
    assert_mentions(<<"(at result">>, Message),
    {error, {'TypeError', FromCall}} = py:call(builtins, object, []),
    assert_mentions(<<"object">>, FromCall),
    assert_mentions(<<"(at result">>, FromCall).

nested_unconvertible_names_its_place(_Config) ->
    {error, {'TypeError', Message}} = py:eval(<<"[1, {'k': object()}]">>),
    assert_mentions(<<"object">>, Message),
    assert_mentions(<<"result[1]['k']">>, Message),
    {error, {'TypeError', InTuple}} = py:eval(<<"(0, 1, (2, object()))">>),
    assert_mentions(<<"result[2][1]">>, InTuple).

functions_and_generators_have_no_erlang_form(_Config) ->
    {error, {'TypeError', Function}} = py:eval(<<"lambda: 1">>),
    assert_mentions(<<"function">>, Function),
    {error, {'TypeError', Generator}} = py:eval(<<"(i for i in [])">>),
    assert_mentions(<<"generator">>, Generator),
    {error, {'TypeError', Module}} = py:eval(<<"__import__('math')">>),
    assert_mentions(<<"module">>, Module).

%% The exception raised by __index__ during conversion is the one reported.
raising_index_is_an_error_not_a_crash(_Config) ->
    {error, {'RuntimeError', Message}} = py:eval(<<"ConvertBadIndex()">>),
    assert_mentions(<<"boom from __index__">>, Message),
    {error, {'RuntimeError', Nested}} = py:eval(<<"[1, ConvertBadIndex()]">>),
    assert_mentions(<<"result[1]">>, Nested),
    {ok, 2} = py:eval(<<"1 + 1">>).

index_object_becomes_an_integer(_Config) ->
    Expected = 1 bsl 70,
    {ok, Expected} = py:eval(<<"ConvertGoodIndex()">>),
    {ok, [Expected]} = py:eval(<<"[ConvertGoodIndex()]">>).

%%% nesting

five_hundred_levels_roundtrip(_Config) ->
    Deep = nest_list(500),
    roundtrip(Deep),
    {ok, 500} = py:call('__main__', convert_list_depth, [Deep]),
    {ok, Deep} = py:eval(<<"convert_deep500">>),
    roundtrip(nest_tuple(500)),
    roundtrip(nest_map(500)).

six_hundred_levels_from_erlang_are_refused(_Config) ->
    {error, {'ValueError', Message}} = py:call('__main__', ident, [nest_list(600)]),
    assert_mentions(<<"deeper">>, Message),
    {error, {'ValueError', Tuple}} = py:call('__main__', ident, [nest_tuple(600)]),
    assert_mentions(<<"deeper">>, Tuple),
    {error, {'ValueError', Map}} = py:call('__main__', ident, [nest_map(600)]),
    assert_mentions(<<"deeper">>, Map),
    {ok, 1} = py:call('__main__', ident, [1]).

six_hundred_levels_from_python_are_refused(_Config) ->
    {error, {'ValueError', Message}} = py:eval(<<"convert_deep600">>),
    assert_mentions(<<"deeper">>, Message),
    {error, {'ValueError', Dict}} = py:eval(<<"convert_deepdict600">>),
    assert_mentions(<<"deeper">>, Dict).

self_referencing_containers_are_refused(_Config) ->
    {error, {'ValueError', List}} = py:eval(<<"convert_selfref">>),
    assert_mentions(<<"deeper">>, List),
    {error, {'ValueError', _}} = py:eval(<<"convert_selfdict">>),
    {ok, 1} = py:eval(<<"len(convert_selfref)">>).

%%% kwargs and locals

kwargs_reach_the_function(_Config) ->
    {ok, <<"[\n  1\n]">>} = py:call(json, dumps, [[1]], #{indent => 2}),
    {ok, <<"[\n  1\n]">>} = py:call(json, dumps, [[1]], #{<<"indent">> => 2}),
    {ok, <<"[1]">>} = py:call(json, dumps, [[1]], #{}).

kwargs_values_are_converted(_Config) ->
    Expected = #{<<"a">> => {1, 2}, <<"b">> => [x, <<"y">>], <<"c">> => 1 bsl 100},
    {ok, Expected} =
        py:call('__main__', convert_kwargs_of, [], #{a => {1, 2}, <<"b">> => [x, <<"y">>],
                                                     c => 1 bsl 100}),
    {error, {'TypeError', _}} = py:call('__main__', convert_kwargs_of, [],
                                        #{a => fun() -> ok end}).

kwargs_key_must_be_a_name(_Config) ->
    {error, {'TypeError', _}} = py:call(json, dumps, [[1]], #{1 => 2}),
    {error, {'TypeError', _}} = py:call(json, dumps, [[1]], #{{indent} => 2}).

locals_names_may_be_atoms_or_binaries(_Config) ->
    {ok, 7} = py:eval(<<"a + b">>, #{a => 3, <<"b">> => 4}),
    {ok, 5} = py:eval(<<"hé"/utf8>>, #{'hé' => 5}),
    {ok, 6} = py:eval(<<"hé + 1"/utf8>>, #{<<"hé"/utf8>> => 5}),
    Hiragana = list_to_atom([12354]),
    {ok, 7} = py:eval(<<"あ"/utf8>>, #{Hiragana => 7}).

%%% numpy

numpy_array_becomes_a_list(_Config) ->
    {ok, [1, 2, 3]} = py:call(numpy, array, [[1, 2, 3]]),
    {ok, [1.5, 2.5]} = py:call(numpy, array, [[1.5, 2.5]]),
    {ok, []} = py:eval(<<"__import__('numpy').array([])">>),
    {ok, [0, 1, 2, 3]} = py:eval(<<"__import__('numpy').arange(4)">>).

numpy_matrix_becomes_nested_lists(_Config) ->
    {ok, [[0, 1, 2], [3, 4, 5]]} = py:eval(<<"__import__('numpy').arange(6).reshape(2, 3)">>),
    {ok, [[1.0, 0.0], [0.0, 1.0]]} = py:eval(<<"__import__('numpy').eye(2)">>).

numpy_int_scalar_becomes_an_integer(_Config) ->
    {ok, Five} = py:eval(<<"__import__('numpy').int64(5)">>),
    ?assert(Five =:= 5),
    {ok, Max} = py:eval(<<"__import__('numpy').uint64(2**64 - 1)">>),
    ?assert(Max =:= (1 bsl 64) - 1),
    {ok, Neg} = py:eval(<<"__import__('numpy').int8(-7)">>),
    ?assert(Neg =:= -7).

numpy_float_scalar_becomes_a_float(_Config) ->
    {ok, F32} = py:eval(<<"__import__('numpy').float32(1.5)">>),
    ?assert(F32 =:= 1.5),
    {ok, F64} = py:eval(<<"__import__('numpy').float64(0.1)">>),
    ?assert(F64 =:= 0.1),
    {ok, Sum} = py:eval(<<"__import__('numpy').array([0.5, 0.25]).sum()">>),
    ?assert(Sum =:= 0.75).

numpy_bool_becomes_a_boolean(_Config) ->
    {ok, true} = py:eval(<<"__import__('numpy').bool_(True)">>),
    {ok, [true, false]} = py:eval(<<"__import__('numpy').array([1, 0]) > 0">>).

%% The case that asked for the marker: frombuffer refuses the str a UTF-8
%% binary becomes, and takes it marked.
numpy_frombuffer_takes_any_binary_marked_as_bytes(_Config) ->
    Code = <<"list(__import__('numpy').frombuffer(b, dtype=__import__('numpy').uint8))">>,
    {error, {'TypeError', _}} = py:eval(Code, #{b => <<"abcdefgh">>}),
    {ok, "abcdefgh"} = py:eval(Code, #{b => py:bytes(<<"abcdefgh">>)}),
    {ok, [255, 1, 2]} = py:eval(Code, #{b => <<255, 1, 2>>}),
    {ok, "abc"} = py:eval(Code, #{b => <<"abc">>}, #{binary => bytes}).

numpy_nan_is_an_atom(_Config) ->
    {ok, nan} = py:eval(<<"__import__('numpy').float32('nan')">>),
    {ok, [1.0, infinity]} = py:eval(<<"__import__('numpy').array([1.0, float('inf')])">>).

%%% binaries that must be bytes

bytes_marker_always_arrives_as_bytes(_Config) ->
    Type = <<"type(x).__name__">>,
    {ok, <<"str">>} = py:eval(Type, #{x => <<"abc">>}),
    [{ok, <<"bytes">>} = py:eval(Type, #{x => py:bytes(B)})
     || B <- [<<"abc">>, <<>>, <<255, 0>>, ["ab", <<"c">>, $d], <<"h", 16#e9, "llo">>]],
    {ok, <<"abcd">>} = py:eval(<<"x">>, #{x => py:bytes(["ab", <<"c">>, $d])}),
    %% Anywhere in a value; and back as a binary.
    {ok, [<<"bytes">>, <<"bytes">>, <<"bytes">>, <<"str">>]} =
        py:eval(<<"[type(v).__name__ for v in (x[0], x[1]['k'], x[2][0], x[3])]">>,
                #{x => [py:bytes(<<"a">>), #{<<"k">> => py:bytes(<<"b">>)}, {py:bytes(<<"c">>)},
                        <<"d">>]}),
    {ok, 6} = py:call(builtins, len, [py:bytes(<<"h", 16#c3, 16#a9, "llo">>)]),
    {ok, <<"abc">>} = py:call('__main__', ident, [py:bytes(<<"abc">>)]),
    %% A large one.
    Large = binary:copy(<<"0123456789abcdef">>, 65536),
    {ok, {<<"bytes">>, 1048576}} = py:eval(<<"(type(x).__name__, len(x))">>,
                                           #{x => py:bytes(Large)}),
    {'EXIT', {badarg, _}} = catch py:bytes(123),
    {'EXIT', {badarg, _}} = catch py:bytes([foo]),
    ok.

binary_option_says_what_every_binary_becomes(_Config) ->
    Types = <<"[type(v).__name__ for v in x]">>,
    Values = #{x => [<<"a">>, <<255>>, [<<"b">>], #{<<"k">> => <<"v">>}]},
    {ok, [<<"str">>, <<"bytes">>, <<"list">>, <<"dict">>]} = py:eval(Types, Values),
    {ok, [<<"str">>, <<"bytes">>, <<"list">>, <<"dict">>]} =
        py:eval(Types, Values, #{binary => auto}),
    {ok, [<<"bytes">>, <<"bytes">>]} =
        py:eval(<<"[type(x[0]).__name__, type(x[2][0]).__name__]">>, Values, #{binary => bytes}),
    {ok, <<"bytes">>} = py:eval(<<"type(list(x[3].values())[0]).__name__">>, Values,
                                #{binary => bytes}),
    %% str: text or an error naming where the binary was.
    {ok, [<<"str">>, <<"str">>]} = py:eval(<<"[type(v).__name__ for v in x]">>,
                                           #{x => [<<"a">>, <<"h", 16#c3, 16#a9>>]},
                                           #{binary => str}),
    {error, {'ValueError', Why}} = py:eval(Types, Values, #{binary => str}),
    {match, _} = re:run(Why, "not UTF-8 text .*at locals\\[x\\]\\[1\\]"),
    %% A marked binary keeps its mark.
    {ok, <<"bytes">>} = py:eval(<<"type(x).__name__">>, #{x => py:bytes(<<"a">>)},
                                #{binary => str}),
    %% call/5: positional and keyword arguments (the keywords' names stay names).
    ok = py:exec(<<"def convert_suite_types(*a, **k): "
                   "return [type(v).__name__ for v in a + tuple(k.values())]">>),
    {ok, [<<"bytes">>, <<"bytes">>]} =
        py:call('__main__', convert_suite_types, [<<"a">>], #{<<"kw">> => <<"b">>},
                #{binary => bytes}),
    {ok, Ctx} = py_context:new(),
    ok = py:exec(Ctx, <<"def types(*a, **k): return [type(v).__name__ for v in a + tuple(k.values())]">>),
    {ok, [<<"bytes">>, <<"bytes">>]} =
        py:call(Ctx, '__main__', types, [<<"a">>], #{kwargs => #{kw => <<"b">>}, binary => bytes}),
    {ok, [<<"bytes">>]} = py:eval(Ctx, <<"[type(x).__name__]">>, #{x => <<"a">>},
                                  #{binary => bytes}),
    ok = py_context:stop(Ctx),
    [{error, {badarg, opts}} = R
     || R <- [py:eval(<<"1">>, #{}, #{binary => text}),
              py:call(math, sqrt, [4], #{}, #{binary => "bytes"}),
              py:exec(<<"pass">>, #{binary => bytes})]].

bytes_tuples_env_honours_the_reference_tuples(_Config) ->
    Type = <<"type(x).__name__">>,
    {ok, <<"tuple">>} = py:eval(Type, #{x => {bytes, <<"a">>}}),
    try
        py_test_lib:restart_with(bytes_tuples, true),
        {ok, <<"bytes">>} = py:eval(Type, #{x => {bytes, <<"a">>}}),
        {ok, [<<"bytes">>, <<"tuple">>, <<"tuple">>]} =
            py:eval(<<"[type(v).__name__ for v in x]">>,
                    #{x => [{bytes, <<"é"/utf8>>}, {bytes, 1}, {bytes, <<"a">>, <<"b">>}]}),
        py_test_lib:restart_with(bytes_tuples, yes),
        {ok, <<"tuple">>} = py:eval(Type, #{x => {bytes, <<"a">>}})
    after
        py_test_lib:restart_without(bytes_tuples)
    end,
    {ok, <<"tuple">>} = py:eval(Type, #{x => {bytes, <<"a">>}}).

%%% helpers

%% Term goes to Python and back through an identity function unchanged.
roundtrip(Term) ->
    case py:call('__main__', ident, [Term]) of
        {ok, Back} when Back =:= Term -> ok;
        Other -> ct:fail({roundtrip_changed, Term, Other})
    end.

assert_mentions(Part, Message) when is_binary(Message) ->
    case binary:match(Message, Part) of
        nomatch -> ct:fail({message_does_not_mention, Part, Message});
        _ -> ok
    end.

nest_list(0) -> [];
nest_list(N) -> [nest_list(N - 1)].

nest_tuple(0) -> {};
nest_tuple(N) -> {nest_tuple(N - 1)}.

nest_map(0) -> #{};
nest_map(N) -> #{k => nest_map(N - 1)}.

pow10(0) -> 1;
pow10(N) -> 10 * pow10(N - 1).

%% Large bytes and str results become binaries over the Python objects'
%% own buffers (no copy): the binaries stay right after Python has dropped
%% every reference of its own, through later calls, garbage collections and
%% sends, and a bytearray (mutable) is copied, so changing it afterwards
%% changes nothing in Erlang.
large_results_outlive_their_python_objects(_Config) ->
    Expected = fun(N, Seed) -> << <<((Seed + I) rem 251)>> || I <- lists:seq(0, N - 1) >> end,
    Results = [{N, Seed, element(2, {ok, _} = py:call('__main__', big_bytes, [N, Seed]))}
               || {N, Seed} <- [{65535, 1}, {65536, 2}, {300000, 3}, {1 bsl 20, 4}]],
    {ok, Str} = py:call('__main__', big_str, [100000]),
    {ok, Array} = py:call('__main__', big_bytearray, []),
    {ok, none} = py:eval(<<"kept_bytearray.__setitem__(0, 7)">>),
    [{ok, _} = py:call('__main__', big_bytes, [200000, I]) || I <- lists:seq(1, 20)],
    erlang:garbage_collect(),
    Self = self(),
    spawn(fun() -> Self ! {copy, Results} end),
    Sent = receive {copy, R} -> R end,
    [Bin = Expected(N, Seed) || {N, Seed, Bin} <- Sent],
    Str = unicode:characters_to_binary(lists:sublist(lists:append(lists:duplicate(50000, [16#e9, 16#65e5])), 100000)),
    Array = binary:copy(<<0>>, 200000).

python_object_is_released_once_erlang_drops_its_binary(_Config) ->
    Self = self(),
    Holder = spawn(fun() ->
                           {ok, Bin} = py:call('__main__', tracked, [100000]),
                           Self ! held,
                           receive drop -> byte_size(Bin) end
                   end),
    receive held -> ok end,
    %% Erlang holds it: the object lives.
    {ok, []} = py:eval(<<"released">>),
    Ref = monitor(process, Holder),
    Holder ! drop,
    receive {'DOWN', Ref, process, Holder, normal} -> ok end,
    %% Released by the next call that takes the GIL.
    wait_until(fun() -> py:eval(<<"released">>) =:= {ok, [100000]} end, 2000).
