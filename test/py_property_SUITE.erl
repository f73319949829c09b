%% Property tests of the conversion between Erlang and Python (PropEr).
%%
%% What the suite proves, on thousands of random values each run:
%%
%% - Every Erlang term the type table (docs/types.md) lets cross comes back
%%   from a Python identity function exactly as it went in: integers of any
%%   size and both signs (64-bit edges and a few hundred bits), finite
%%   floats bit for bit (the sign of zero included), binaries of any bytes
%%   (valid UTF-8 travels as str, the rest as bytes; short, long and not
%%   byte-aligned in memory), booleans, atoms (unicode, 255 characters),
%%   pids, references, and lists, tuples and maps (small, and over 32 keys)
%%   of all of these nested up to eight levels. The same holds for terms
%%   given to py:eval as locals.
%% - Every Python value the table lets cross comes back from an Erlang
%%   identity function (Python -> erlang.call -> Erlang -> Python) as the
%%   table says: the same value with the same types (bool stays bool, an
%%   erlang.Atom stays an Atom, a tuple stays a tuple), except where the
%%   table maps two Python forms to one Erlang term (bytes that are valid
%%   UTF-8 come back as str, bytearray as bytes, an int subclass as int,
%%   Atom('none') as None, Atom('true') as True). The random Python values
%%   are built in Python from a seed, so a failure names the seed and the
%%   repr of the value.
%%
%% - A binary becomes a str exactly when it is well-formed UTF-8 (judged by
%%   Erlang's own unicode module), bytes otherwise, also for binaries that
%%   nearly are: one byte changed, cut short, overlong forms, surrogates,
%%   code points past U+10FFFF.
%% - Terms of the first kind with references to Python objects that have
%%   no Erlang form (py:call with return => ref) put at random places, map
%%   keys included, come back from a Python identity function (and as
%%   py:eval locals) exactly as they went in: each object goes back as its
%%   reference. Each reference arrives in Python as its very object, which
%%   a fixture checks place by place against a registry.
%%
%% Map keys are generated so that no two keys are equal in Python (and dict
%% keys so that no two become one Erlang term): those maps are errors by
%% design, checked in py_convert_SUITE.
%%
%% Needs PropEr: Debian's erlang-proper, and erlang-proper-dev for
%% proper.hrl.
-module(py_property_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("proper/include/proper.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([erlang_terms_survive_a_trip_through_python/1,
         python_values_survive_a_trip_through_erlang/1,
         erlang_terms_survive_as_python_eval_locals/1,
         binaries_become_str_exactly_when_they_are_utf8/1,
         terms_with_refs_survive_a_trip_through_python/1]).

-define(NUMTESTS, 10000).
-define(EVAL_NUMTESTS, 1000).
-define(REF_NUMTESTS, 3000).
%% How many Python objects the terms of the reference property refer to.
-define(OPAQUE_POOL, 16).
%% Containers nest at most this deep, plus two levels of tuples in map
%% keys (the limit is 512).
-define(MAX_DEPTH, 6).
-define(OPAQUE_POOL_KEY, {?MODULE, opaque_pool}).

suite() ->
    [{timetrap, {minutes, 10}}].

all() ->
    [erlang_terms_survive_a_trip_through_python,
     python_values_survive_a_trip_through_erlang,
     erlang_terms_survive_as_python_eval_locals,
     binaries_become_str_exactly_when_they_are_utf8,
     terms_with_refs_survive_a_trip_through_python].

init_per_suite(Config) ->
    ?assertNotEqual(non_existing, code:which(proper)),
    ok = py_test_lib:start_with_fixtures(Config),
    ok = py:register_function(prop_echo, fun([X]) -> X end),
    Config.

end_per_suite(_Config) ->
    py:unregister_function(prop_echo),
    application:stop(erlang_python),
    ok.

%% Test cases

binaries_become_str_exactly_when_they_are_utf8(_Config) ->
    check(prop_binary_kind(), ?NUMTESTS,
          fun([Bin]) -> {sent, Bin, became, binary_kind(Bin)} end).

erlang_terms_survive_a_trip_through_python(_Config) ->
    check(prop_erlang_roundtrip(fun via_call/1), ?NUMTESTS,
          fun([Term]) -> {sent, Term, received, via_call(Term)} end).

python_values_survive_a_trip_through_erlang(_Config) ->
    check(prop_python_roundtrip(), ?NUMTESTS,
          fun([{Seed, Size}]) -> describe_python(Seed, Size, python_roundtrip(Seed, Size)) end).

erlang_terms_survive_as_python_eval_locals(_Config) ->
    check(prop_erlang_roundtrip(fun via_eval/1), ?EVAL_NUMTESTS,
          fun([Term]) -> {sent, Term, received, via_eval(Term)} end).

%% One reference to each of ?OPAQUE_POOL objects, kept in a persistent
%% term for the generator (and by the registry in Python) while the case
%% runs.
terms_with_refs_survive_a_trip_through_python(_Config) ->
    Pool = [begin
                {ok, Ref} = py:call('__main__', prop_opaque_new, [Key], #{}, #{return => ref}),
                true = py:is_ref(Ref),
                {Key, Ref}
            end || Key <- lists:seq(0, ?OPAQUE_POOL - 1)],
    persistent_term:put(?OPAQUE_POOL_KEY, Pool),
    try
        check(prop_refs_roundtrip(), ?REF_NUMTESTS,
              fun([Term]) -> {sent, Term, received, via_call(Term), via_eval(Term),
                              opaque_keys_in_python, py:call('__main__', prop_opaque_keys, [Term])}
              end)
    after
        persistent_term:erase(?OPAQUE_POOL_KEY)
    end.

%% Properties

prop_refs_roundtrip() ->
    ?FORALL(Term, term_with_refs(),
            begin
                Call = via_call(Term),
                Eval = via_eval(Term),
                InPython = py:call('__main__', prop_opaque_keys, [Term]),
                Keys = maps:from_list([{R, K} || {K, R} <- opaque_pool()]),
                Expected = {ok, opaque_keys(Term, Keys)},
                ?WHENFAIL(io:format(user, "~nsent:     ~p~ncall:     ~p~neval:     ~p~n"
                                    "keys:     ~p~nexpected: ~p~n",
                                    [Term, Call, Eval, InPython, Expected]),
                          conjunction([{call, ok_same({ok, Term}, Call)},
                                       {eval, ok_same({ok, Term}, Eval)},
                                       {each_ref_is_its_object, ok_same(Expected, InPython)}]))
            end).

ok_same({ok, A}, {ok, B}) -> same(A, B);
ok_same(_, _) -> false.

%% What prop_opaque_keys in Python makes of Term: every reference of the
%% pool replaced by {opaque, Key}.
opaque_keys(Ref, Keys) when is_reference(Ref) ->
    case Keys of
        #{Ref := Key} -> {opaque, Key};
        #{} -> Ref
    end;
opaque_keys(List, Keys) when is_list(List) ->
    [opaque_keys(E, Keys) || E <- List];
opaque_keys(Tuple, Keys) when is_tuple(Tuple) ->
    list_to_tuple(opaque_keys(tuple_to_list(Tuple), Keys));
opaque_keys(Map, Keys) when is_map(Map) ->
    maps:from_list([{opaque_keys(K, Keys), opaque_keys(V, Keys)} || {K, V} <- maps:to_list(Map)]);
opaque_keys(Other, _Keys) ->
    Other.

prop_erlang_roundtrip(Trip) ->
    ?FORALL(Term, crossing_term(),
            begin
                Result = Trip(Term),
                ?WHENFAIL(io:format(user, "~nsent:     ~p~nreceived: ~p~n", [Term, Result]),
                          case Result of
                              {ok, Back} -> same(Term, Back);
                              _ -> false
                          end)
            end).

prop_binary_kind() ->
    ?FORALL(Bin, nearly_utf8_binary(),
            binary_kind(Bin) =:= case unicode:characters_to_binary(Bin) of
                                     Bin -> {ok, <<"str">>};
                                     _ -> {ok, <<"bytes">>}
                                 end).

binary_kind(Bin) ->
    py:call('__main__', prop_kind, [Bin]).

via_call(Term) ->
    py:call('__main__', prop_ident, [Term]).

via_eval(Term) ->
    py:eval(<<"x">>, #{x => Term}).

%% The seed picks the Python value; Size bounds the length of its
%% containers. Pids and references cannot be made in Python, so Erlang
%% hands some over for the value to contain.
prop_python_roundtrip() ->
    ?FORALL({Seed, Size}, {seed(), integer(0, 10)},
            begin
                Result = python_roundtrip(Seed, Size),
                ?WHENFAIL(io:format(user, "~n~tp~n", [describe_python(Seed, Size, Result)]),
                          Result =:= {ok, true})
            end).

python_roundtrip(Seed, Size) ->
    Pool = [self(), make_ref(), list_to_pid("<0.0.0>"), whereis(init), make_ref()],
    py:call('__main__', prop_roundtrip, [Seed, Size, Pool]).

%% What a failure shows: the seed and size that rebuild the value
%% (prop_random_value(Seed, Size, Pool) in Python), its repr, the repr of
%% what came back or of the exception, and the smallest part of the value
%% that fails on its own with what came back for it.
describe_python(Seed, Size, {ok, {Kind, Sent, Received, Smallest}}) ->
    #{seed => Seed, size => Size, sent => Sent, binary_to_atom(Kind, utf8) => Received,
      smallest_failing_part => Smallest};
describe_python(Seed, Size, Other) ->
    #{seed => Seed, size => Size, result => Other}.

seed() ->
    ?LET(Bytes, binary(8), binary:decode_unsigned(Bytes)).

%% Runs the property; a failure shows the shrunk counterexample, run
%% once more for Describe to say what happened to it.
check(Prop, NumTests, Describe) ->
    case proper:quickcheck(Prop, [{numtests, NumTests}, quiet, {to_file, user}]) of
        true ->
            ok;
        Other ->
            Counterexample = proper:counterexample(),
            Description = case Counterexample of
                              undefined -> Other;
                              _ -> Describe(Counterexample)
                          end,
            ct:pal("Counterexample: ~tp", [Description]),
            ct:fail({property_failed, Description})
    end.

%% Generators of Erlang terms

opaque_pool() ->
    persistent_term:get(?OPAQUE_POOL_KEY).

%% A crossing term in which some leaves (map keys included), picked by a
%% list of numbers taken one per leaf in a walk of the term, became
%% references of the pool; a list too short leaves the rest as they are.
term_with_refs() ->
    ?LET({Term, Picks}, {crossing_term(), list(integer(0, 3 * ?OPAQUE_POOL))},
         begin
             {WithRefs, _} = embed_refs(Term, Picks, [R || {_, R} <- opaque_pool()]),
             WithRefs
         end).

embed_refs(List, Picks, Pool) when is_list(List) ->
    lists:mapfoldl(fun(E, P) -> embed_refs(E, P, Pool) end, Picks, List);
embed_refs(Tuple, Picks, Pool) when is_tuple(Tuple) ->
    {List, Rest} = embed_refs(tuple_to_list(Tuple), Picks, Pool),
    {list_to_tuple(List), Rest};
embed_refs(Map, Picks, Pool) when is_map(Map) ->
    {Pairs, Rest} = embed_refs(lists:sort(maps:to_list(Map)), Picks, Pool),
    {maps:from_list(Pairs), Rest};
embed_refs(_Leaf, [Pick | Rest], Pool) when Pick < length(Pool) ->
    {lists:nth(Pick + 1, Pool), Rest};
embed_refs(Leaf, [_ | Rest], _Pool) ->
    {Leaf, Rest};
embed_refs(Leaf, [], _Pool) ->
    {Leaf, []}.


crossing_term() ->
    ?SIZED(Size, crossing_term(?MAX_DEPTH, Size)).

%% Leaves get the size of the test; containers get shorter the deeper they
%% are (at most 18, 15, 12... elements), which keeps a term at the largest
%% size to some hundreds of nodes, a few thousand at most. Now and then
%% the outermost container is wide instead: a map of more than 32 keys is
%% stored differently from a small one.
crossing_term(0, Size) ->
    resize(Size, leaf());
crossing_term(Depth, Size) ->
    Inner = crossing_term(Depth - 1, Size),
    Length = min(Size div 2, 3 * Depth),
    Wide = case Depth of
               ?MAX_DEPTH -> 1;
               _ -> 0
           end,
    frequency([{12, resize(Size, leaf())},
               {3, ?LAZY(resize(Length, list(Inner)))},
               {3, ?LAZY(?LET(Elements, resize(Length, list(Inner)),
                              list_to_tuple(Elements)))},
               {3, ?LAZY(map_of(Length, Inner, Size))},
               {Wide, ?LAZY(wide_container(Size))}]).

wide_container(Size) ->
    ?LET(N, integer(33, 100),
         oneof([vector(N, resize(Size, leaf())),
                ?LET(Pairs, vector(N, {resize(Size, key_leaf()), resize(Size, leaf())}),
                     distinct_keys(Pairs))])).

leaf() ->
    frequency([{4, any_integer()},
               {3, any_float()},
               {3, any_binary()},
               {2, any_atom()},
               {1, boolean()},
               {1, any_pid()},
               {1, any_reference()}]).

any_integer() ->
    oneof([integer(),
           %% Up to 400 bits, either sign.
           ?LET({Sign, Bytes}, {elements([1, -1]), resize(50, binary())},
                Sign * binary:decode_unsigned(Bytes)),
           %% Around the edges of machine words and small integers.
           ?LET({Sign, Bits, Delta},
                {elements([1, -1]), elements([27, 28, 31, 32, 59, 60, 63, 64, 127, 128]),
                 integer(-2, 2)},
                Sign * ((1 bsl Bits) + Delta))]).

any_float() ->
    oneof([float(),
           %% Any bit pattern but nan and inf: subnormals, huge, tiny.
           ?LET(Bytes, binary(8),
                case Bytes of
                    <<F:64/float>> -> F;
                    _ -> 1.5
                end),
           elements([0.0, negative_zero(), 5.0e-324, -5.0e-324, 2.2250738585072014e-308,
                     1.7976931348623157e308, -1.7976931348623157e308, 0.1, 1.0e16,
                     9007199254740993.0])]).

negative_zero() ->
    <<F:64/float>> = <<1:1, 0:63>>,
    F.

any_binary() ->
    frequency([{3, binary()},
               {3, utf8_binary()},
               %% Valid UTF-8 spoiled by one byte that never occurs in UTF-8.
               {2, ?LET({Text, Tail}, {utf8_binary(), utf8_binary()},
                        <<Text/binary, 16#FF, Tail/binary>>)},
               %% Longer than 64 bytes: kept off the process heap.
               {1, ?LET(Text, resize(300, utf8_binary()), <<Text/binary, Text/binary>>)},
               {1, resize(2000, binary())},
               %% A whole number of bytes that does not start on a byte
               %% boundary in memory.
               {1, ?LET({Skip, Bin}, {integer(1, 7), oneof([binary(), utf8_binary()])},
                        unaligned(Skip, Bin))}]).

%% Binaries on both sides of the line between UTF-8 and not.
nearly_utf8_binary() ->
    frequency([{2, any_binary()},
               {3, ?LET({Text, At, Byte}, {non_empty(utf8_binary()), nat(), byte()},
                        replace_byte(Text, At, Byte))},
               {2, ?LET({Text, Cut}, {non_empty(utf8_binary()), nat()},
                        binary:part(Text, 0, Cut rem byte_size(Text)))},
               {3, ?LET({Head, Odd, Tail}, {utf8_binary(), odd_sequence(), utf8_binary()},
                        <<Head/binary, Odd/binary, Tail/binary>>)}]).

replace_byte(Text, At, Byte) ->
    N = At rem byte_size(Text),
    <<Before:N/binary, _, After/binary>> = Text,
    <<Before/binary, Byte, After/binary>>.

%% Sequences at the edges of what UTF-8 allows, most of them not allowed.
odd_sequence() ->
    oneof([?LET(B, integer(16#80, 16#C1), <<B, 16#80>>),               % continuation, C0, C1
           ?LET({B, C}, {integer(16#C2, 16#DF), byte()}, <<B, C>>),
           ?LET(C, integer(16#80, 16#BF), <<16#E0, C, 16#80>>),           % overlong below A0
           ?LET(C, integer(16#80, 16#BF), <<16#ED, C, 16#80>>),           % surrogates from A0
           ?LET(C, integer(16#80, 16#BF), <<16#F0, C, 16#80, 16#80>>),    % overlong below 90
           ?LET(C, integer(16#80, 16#BF), <<16#F4, C, 16#80, 16#80>>),    % past U+10FFFF from 90
           ?LET(B, integer(16#F5, 16#FF), <<B, 16#80, 16#80, 16#80>>),
           ?LET(B, integer(16#E1, 16#EF), <<B, 16#80>>)]).                % cut short

unaligned(Skip, Bin) ->
    <<_:Skip, Sub/binary>> = <<0:Skip, Bin/binary>>,
    Sub.

utf8_binary() ->
    ?LET(Chars, list(code_point()), unicode:characters_to_binary(Chars)).

code_point() ->
    frequency([{4, integer(0, 16#7F)},
               {2, integer(16#80, 16#7FF)},
               {2, integer(16#800, 16#D7FF)},
               {1, integer(16#E000, 16#FFFF)},
               {1, integer(16#10000, 16#10FFFF)}]).

%% Atoms Python holds apart from None (undefined and nil become None too,
%% which comes back as none).
any_atom() ->
    elements(atoms()).

atoms() ->
    [ok, error, foo, none, true, false, '', 'with space', 'Foo.Bar', 'x',
     binary_to_atom(<<"héllo"/utf8>>, utf8),
     binary_to_atom(<<"日本語"/utf8>>, utf8),
     binary_to_atom(<<"🐍"/utf8>>, utf8),
     list_to_atom(lists:duplicate(255, $a)),
     binary_to_atom(unicode:characters_to_binary(lists:duplicate(255, $é)), utf8),
     binary_to_atom(unicode:characters_to_binary(lists:duplicate(255, 16#1F40D)), utf8)].

%% The test process, the first and a system process, a dead one.
any_pid() ->
    oneof([elements([self(), list_to_pid("<0.0.0>"), whereis(init)]),
           ?LAZY(spawn(fun() -> ok end))]).

any_reference() ->
    ?LAZY(make_ref()).

%% Keys are what Python can hash. Pairs whose key Python would hold equal
%% to an earlier key (1 and true, foo and <<"foo">>, {1} and {true}) are
%% dropped, so the dict has as many keys as the map.
map_of(Length, Value, Size) ->
    ?LET(Pairs, resize(Length, list({key(2, Size), Value})), distinct_keys(Pairs)).

key(0, Size) ->
    resize(Size, key_leaf());
key(Depth, Size) ->
    frequency([{6, resize(Size, key_leaf())},
               {1, ?LAZY(?LET(Elements, resize(Size div 8, list(key(Depth - 1, Size))),
                              list_to_tuple(Elements)))}]).

key_leaf() ->
    frequency([{3, any_integer()},
               {2, any_atom()},
               {2, any_binary()},
               {1, boolean()},
               {1, any_pid()}]).

distinct_keys(Pairs) ->
    {Kept, _} = lists:foldl(
                  fun({Key, Value}, {Acc, Seen}) ->
                          PyKey = python_key(Key),
                          case maps:is_key(PyKey, Seen) of
                              true -> {Acc, Seen};
                              false -> {[{Key, Value} | Acc], Seen#{PyKey => true}}
                          end
                  end, {[], #{}}, Pairs),
    maps:from_list(Kept).

%% A form of a key that is equal exactly when the Python keys are equal.
python_key(true) -> {int, 1};
python_key(false) -> {int, 0};
python_key(Atom) when Atom =:= none; Atom =:= undefined; Atom =:= nil -> none;
python_key(Atom) when is_atom(Atom) -> {str, atom_to_binary(Atom, utf8)};
python_key(Int) when is_integer(Int) -> {int, Int};
python_key(Bin) when is_binary(Bin) ->
    case unicode:characters_to_binary(Bin) of
        Bin -> {str, Bin};
        _ -> {bytes, Bin}
    end;
python_key(Tuple) when is_tuple(Tuple) ->
    list_to_tuple([python_key(E) || E <- tuple_to_list(Tuple)]);
python_key(Other) ->
    {other, Other}.

%% Exact equality: =:= plus the sign of zero, which =:= ignores before
%% OTP 27.
same(A, B) when is_float(A), is_float(B) ->
    <<A:64/float>> =:= <<B:64/float>>;
same([A | As], [B | Bs]) ->
    same(A, B) andalso same(As, Bs);
same(A, B) when is_tuple(A), is_tuple(B), tuple_size(A) =:= tuple_size(B) ->
    same(tuple_to_list(A), tuple_to_list(B));
same(A, B) when is_map(A), is_map(B), map_size(A) =:= map_size(B) ->
    lists:all(fun({K, V}) ->
                      case B of
                          #{K := W} -> same(V, W);
                          #{} -> false
                      end
              end, maps:to_list(A))
        andalso same(lists:sort(maps:keys(A)), lists:sort(maps:keys(B)));
same(A, B) ->
    A =:= B.
