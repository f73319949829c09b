%% References to Python objects as a user sees them: `return => ref' on
%% py:call, py:eval, py:call_method and py:getattr; py:call_method,
%% py:getattr, py:to_term, py:release and py:is_ref; erlang.ref from
%% Python (as a result, through erlang.call, erlang.send, a Python thread
%% and asyncio). A reference handed back to Python is the very object; an
%% object with no Erlang form comes back as its reference; the object lives
%% exactly as long as some Erlang term refers to it (or until released);
%% many processes may use one object at once; references survive a reload
%% of py_nif; every bad input is a clean error; a reference on another node
%% is a remote_ref there.
-module(py_ref_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [wait_until/2, wait_calls_done/1, scaled/1, fan_out/2, fan_out_start/2,
                      fan_out_results/1]).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([counter_example_works_as_documented/1, fraction_attribute_is_read_by_getattr/1,
         model_loaded_by_reference_embeds_text/1]).
-export([ref_passed_back_is_the_same_object/1, ref_nested_in_containers_is_the_same_object/1,
         ref_in_kwargs_and_eval_locals_is_the_same_object/1,
         same_ref_twice_in_one_call_is_one_object_twice/1,
         two_refs_to_one_object_arrive_as_that_object/1,
         object_without_erlang_form_comes_back_as_its_ref/1,
         object_with_erlang_form_comes_back_as_a_value/1,
         object_without_form_that_came_as_no_ref_is_an_error/1,
         refs_can_be_sent_stored_in_ets_and_used_as_map_keys/1]).
-export([return_ref_works_on_call_eval_call_method_and_getattr/1,
         timeout_in_the_options_map_stops_a_slow_call/1, bad_option_maps_are_rejected/1]).
-export([erlang_ref_result_is_a_ref_to_the_object/1, erlang_ref_wraps_an_object_once/1,
         erlang_ref_reaches_an_erlang_function_that_calls_back/1,
         erlang_ref_in_erlang_send_arrives_as_a_ref/1,
         erlang_ref_from_a_python_thread_arrives_as_a_ref/1,
         erlang_ref_from_asyncio_async_call_arrives_as_a_ref/1]).
-export([released_ref_cannot_be_used/1, released_ref_in_arguments_is_a_value_error/1,
         releasing_twice_is_ok/1, release_runs_the_finalizer_before_it_returns/1,
         release_leaves_an_object_python_still_holds_alive/1,
         releasing_what_is_no_ref_is_badarg/1, release_during_a_running_method_lets_it_finish/1]).
-export([what_is_no_ref_is_badarg_everywhere/1,
         raising_method_gives_its_exception_and_the_object_lives_on/1,
         missing_attribute_or_method_is_an_attribute_error/1,
         bad_names_and_arguments_are_rejected/1]).
-export([object_dies_within_bounded_time_after_its_holder_exits/1, object_dies_when_no_call_comes/1,
         object_lives_while_a_live_process_holds_its_ref/1,
         ref_stored_in_ets_keeps_the_object_until_deleted/1]).
-export([fifty_processes_call_one_object_at_once/1,
         release_during_calls_gives_results_or_badarg/1]).
-export([million_refs_dropped_leave_no_objects_and_no_memory/1]).
-export([ref_on_another_node_is_a_remote_ref_there/1]).
-export([refs_survive_a_reload_of_py_nif/1,
         refs_made_before_an_unload_and_load_of_py_nif_keep_working/1]).

%% A hang fails the case instead of stalling the run.
suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, examples}, {group, identity}, {group, options}, {group, from_python},
     {group, release}, {group, errors}, {group, lifetime}, {group, concurrency},
     {group, churn}, {group, distribution}, {group, module}].

groups() ->
    [{examples, [parallel],
      [counter_example_works_as_documented, fraction_attribute_is_read_by_getattr,
       model_loaded_by_reference_embeds_text]},
     {identity, [parallel],
      [ref_passed_back_is_the_same_object, ref_nested_in_containers_is_the_same_object,
       ref_in_kwargs_and_eval_locals_is_the_same_object,
       same_ref_twice_in_one_call_is_one_object_twice,
       two_refs_to_one_object_arrive_as_that_object,
       object_without_erlang_form_comes_back_as_its_ref,
       object_with_erlang_form_comes_back_as_a_value,
       object_without_form_that_came_as_no_ref_is_an_error,
       refs_can_be_sent_stored_in_ets_and_used_as_map_keys]},
     {options, [parallel],
      [return_ref_works_on_call_eval_call_method_and_getattr,
       timeout_in_the_options_map_stops_a_slow_call, bad_option_maps_are_rejected]},
     {from_python, [parallel],
      [erlang_ref_result_is_a_ref_to_the_object, erlang_ref_wraps_an_object_once,
       erlang_ref_reaches_an_erlang_function_that_calls_back,
       erlang_ref_in_erlang_send_arrives_as_a_ref,
       erlang_ref_from_a_python_thread_arrives_as_a_ref,
       erlang_ref_from_asyncio_async_call_arrives_as_a_ref]},
     {release, [parallel],
      [released_ref_cannot_be_used, released_ref_in_arguments_is_a_value_error,
       releasing_twice_is_ok, release_runs_the_finalizer_before_it_returns,
       release_leaves_an_object_python_still_holds_alive, releasing_what_is_no_ref_is_badarg,
       release_during_a_running_method_lets_it_finish]},
     {errors, [parallel],
      [what_is_no_ref_is_badarg_everywhere,
       raising_method_gives_its_exception_and_the_object_lives_on,
       missing_attribute_or_method_is_an_attribute_error,
       bad_names_and_arguments_are_rejected]},
     %% Sequential: each waits for an object's death, and the churn below
     %% would make them slower.
     {lifetime, [],
      [object_dies_within_bounded_time_after_its_holder_exits, object_dies_when_no_call_comes,
       object_lives_while_a_live_process_holds_its_ref,
       ref_stored_in_ets_keeps_the_object_until_deleted]},
     {concurrency, [],
      [fifty_processes_call_one_object_at_once, release_during_calls_gives_results_or_badarg]},
     %% Alone: it counts every live instance and the VM's memory.
     {churn, [], [million_refs_dropped_leave_no_objects_and_no_memory]},
     {distribution, [], [ref_on_another_node_is_a_remote_ref_there]},
     %% Sequential: it reloads the NIF module under everyone.
     {module, [],
     [refs_survive_a_reload_of_py_nif,
      refs_made_before_an_unload_and_load_of_py_nif_keep_working]}].

init_per_suite(Config) ->
    ok = py_test_lib:start_with_fixtures(Config),
    ok = register_functions(),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = register_functions(),
    Config.

end_per_testcase(_Case, _Config) ->
    ok.

%% ref_cb: what Python hands over by reference, used from inside the
%% callback (a nested call into Python), and given back.
register_functions() ->
    py:register_function(ref_cb, fun([R]) ->
                                         {ok, Key} = py:call_method(R, get_key, []),
                                         {py:is_ref(R), Key, R}
                                 end).

%%% examples

counter_example_works_as_documented(_Config) ->
    {ok, C} = py:call(collections, 'Counter', [[a, b, a]], #{}, #{return => ref}),
    true = py:is_ref(C),
    true = is_reference(C),
    {ok, [{a, 2}]} = py:call_method(C, most_common, [1]),
    {ok, 2} = py:call(operator, getitem, [C, a]),
    {ok, #{a := 2, b := 1}} = py:to_term(C),
    {ok, 2} = py:eval(<<"c[x]">>, #{c => C, x => a}),
    %% A method that changes the object: the change is seen afterwards.
    {ok, none} = py:call_method(C, update, [[b, b, c]]),
    {ok, #{a := 2, b := 3, c := 1}} = py:to_term(C).

fraction_attribute_is_read_by_getattr(_Config) ->
    {ok, Fraction34} = py:call('__main__', ref_fraction, [3, 4], #{}, #{return => ref}),
    {ok, 3} = py:getattr(Fraction34, numerator),
    {ok, 4} = py:getattr(Fraction34, <<"denominator">>),
    {ok, 0.75} = py:call(builtins, float, [Fraction34]),
    {ok, {3, 4}} = py:call_method(Fraction34, as_integer_ratio, []).

model_loaded_by_reference_embeds_text(_Config) ->
    {ok, Model} = py:call('__main__', ref_load_model, [<<"tiny">>], #{}, #{return => ref}),
    {ok, <<"tiny">>} = py:getattr(Model, name),
    {ok, [5.0, E]} = py:call_method(Model, embed, [<<"hello">>]),
    E = float(lists:sum("hello") rem 97),
    {ok, [0.0, 0.0]} = py:call_method(Model, embed, [], #{text => <<>>}),
    %% Not convertible itself.
    {error, {'TypeError', _}} = py:to_term(Model).

%%% identity

ref_passed_back_is_the_same_object(_Config) ->
    O = new_opaque(back),
    {ok, true} = py:call('__main__', ref_is, [back, O]),
    {ok, true} = py:call('__main__', ref_is, [back, O]),
    {ok, back} = py:call_method(O, get_key, []).

ref_nested_in_containers_is_the_same_object(_Config) ->
    O = new_opaque(nested),
    Term = [1, {O, [#{k => O, O => <<"v">>}]}, [[[O]]]],
    {ok, 4} = py:call('__main__', ref_count_opaque, [Term]),
    {ok, Term} = py:call('__main__', ref_ident, [Term]),
    {ok, true} = py:eval(<<"x[1][1][0]['k'] is x[2][0][0][0] is ref_registry['nested']">>,
                         #{x => Term}).

ref_in_kwargs_and_eval_locals_is_the_same_object(_Config) ->
    O = new_opaque(kw),
    {ok, #{<<"a">> := true, <<"b">> := true}} =
        py:call('__main__', ref_kw_is, [kw], #{a => O, <<"b">> => O}),
    {ok, true} = py:eval(<<"o is ref_registry[k]">>, #{o => O, k => kw}),
    {ok, true} = py:eval(<<"o[0] is p['q'] is ref_registry['kw']">>, #{o => {O}, p => #{q => O}}).

same_ref_twice_in_one_call_is_one_object_twice(_Config) ->
    O = new_opaque(twice),
    {ok, true} = py:call('__main__', ref_same, [O, O]),
    {ok, true} = py:eval(<<"a[0] is b['x']">>, #{a => [O], b => #{x => O}}),
    {ok, true} = py:eval(<<"a[0] is a[1]">>, #{a => [O, O]}),
    {ok, [O, O]} = py:call('__main__', ref_ident, [[O, O]]).

%% Two references made apart for one object: both arrive as that object,
%% and the object goes back as one of them.
two_refs_to_one_object_arrive_as_that_object(_Config) ->
    O = new_opaque(two),
    {ok, P} = py:eval(<<"ref_registry['two']">>, #{}, #{return => ref}),
    ?assertNotEqual(O, P),
    {ok, true} = py:call('__main__', ref_same, [O, P]),
    {ok, [A, B]} = py:call('__main__', ref_ident, [[O, P]]),
    ct:log("[O, P] = ~p came back as ~p", [[O, P], [A, B]]),
    true = lists:member(A, [O, P]),
    true = lists:member(B, [O, P]),
    {ok, P} = py:call('__main__', ref_ident, [P]),
    {ok, O} = py:call('__main__', ref_ident, [O]).

object_without_erlang_form_comes_back_as_its_ref(_Config) ->
    O = new_opaque(form),
    {ok, Back} = py:call('__main__', ref_ident, [O]),
    true = Back =:= O,
    {ok, {O, [O], #{O := O}}} = py:eval(<<"(o, [o], {o: o})">>, #{o => O}),
    {ok, O} = py:eval(<<"o">>, #{o => O}).

object_with_erlang_form_comes_back_as_a_value(_Config) ->
    {ok, C} = py:call(collections, 'Counter', [[x, y, x]], #{}, #{return => ref}),
    {ok, #{x := 2, y := 1}} = py:call('__main__', ref_ident, [C]),
    {ok, [#{x := 2, y := 1}]} = py:call('__main__', ref_ident, [[C]]),
    {ok, L} = py:eval(<<"[1, 2]">>, #{}, #{return => ref}),
    {ok, [1, 2]} = py:call('__main__', ref_ident, [L]).

object_without_form_that_came_as_no_ref_is_an_error(_Config) ->
    O = new_opaque(noref),
    {error, {'TypeError', <<"Python value of type 'object' has no Erlang form (at result)">>}} =
        py:eval(<<"object()">>),
    {error, {'TypeError', Message}} = py:eval(<<"[o, Opaque('other')]">>, #{o => O}),
    {match, _} = re:run(Message, "type 'Opaque' has no Erlang form \\(at result\\[1\\]\\)"),
    {error, {'TypeError', _}} = py:to_term(O),
    {ok, O} = py:eval(<<"o">>, #{o => O}).

refs_can_be_sent_stored_in_ets_and_used_as_map_keys(_Config) ->
    O = new_opaque(terms),
    Self = self(),
    Pid = spawn_link(fun() ->
                             receive
                                 {ref, R} -> Self ! {used, py:call_method(R, get_key, []), R}
                             end
                     end),
    Pid ! {ref, O},
    receive {used, Result, Back} -> {ok, terms} = Result, O = Back
    after scaled(10000) -> ct:fail(no_reply)
    end,
    Table = ets:new(refs, [set, private]),
    true = ets:insert(Table, {O, value}),
    [{O, value}] = ets:lookup(Table, O),
    [{Stored, value}] = ets:tab2list(Table),
    {ok, true} = py:call('__main__', ref_is, [terms, Stored]),
    ets:delete(Table),
    Map = #{O => 1, other => 2},
    1 = maps:get(O, Map),
    {ok, terms} = py:call_method(hd([K || K <- maps:keys(Map), is_reference(K)]), get_key, []),
    %% Through term_to_binary and back on this node: the same reference.
    O = binary_to_term(term_to_binary(O)),
    {ok, terms} = py:call_method(binary_to_term(term_to_binary(O)), get_key, []).

%%% options

return_ref_works_on_call_eval_call_method_and_getattr(_Config) ->
    {ok, L} = py:call(builtins, list, [[3, 1, 2]], #{}, #{return => ref}),
    true = py:is_ref(L),
    {ok, E} = py:eval(<<"[x * 2 for x in l]">>, #{l => L}, #{return => ref}),
    true = py:is_ref(E),
    {ok, S} = py:call_method(E, '__len__', [], #{}, #{return => ref}),
    true = py:is_ref(S),
    {ok, 3} = py:to_term(S),
    {ok, A} = py:getattr(L, sort, #{return => ref}),
    true = py:is_ref(A),
    {ok, none} = py:eval(<<"a()">>, #{a => A}),
    {ok, [1, 2, 3]} = py:to_term(L),
    {ok, [6, 2, 4]} = py:to_term(E),
    %% return => value is the default and may be given.
    {ok, [1, 2, 3]} = py:call(builtins, list, [L], #{}, #{return => value}),
    {ok, 3} = py:call_method(L, '__len__', [], #{}, #{timeout => 5000}),
    {ok, 3} = py:call_method(L, '__len__', [], #{}, 5000).

timeout_in_the_options_map_stops_a_slow_call(_Config) ->
    O = new_opaque(slow),
    {error, timeout} = py:call_method(O, slow, [30], #{}, #{timeout => 100}),
    {error, timeout} = py:call_method(O, slow, [30], #{}, #{timeout => 100, return => ref}),
    {error, timeout} = py:call('__main__', ref_slow, [30], #{}, #{timeout => 100, return => ref}),
    {error, timeout} = py:eval(<<"o.slow(30)">>, #{o => O}, #{timeout => 100, return => ref}),
    {ok, slow} = py:call_method(O, slow, [0], #{}, #{timeout => 10000}),
    {ok, R} = py:call('__main__', ref_slow, [0.01], #{}, #{timeout => 10000, return => ref}),
    {ok, <<"slow">>} = py:getattr(R, key, #{timeout => 10000}).

bad_option_maps_are_rejected(_Config) ->
    O = new_opaque(opts),
    Calls = [fun(Opts) -> py:call(builtins, len, [[1]], #{}, Opts) end,
             fun(Opts) -> py:eval(<<"1">>, #{}, Opts) end,
             fun(Opts) -> py:call_method(O, get_key, [], #{}, Opts) end,
             fun(Opts) -> py:getattr(O, key, Opts) end],
    [begin
         {error, {badarg, opts}} = Call(#{foo => 1}),
         {error, {badarg, opts}} = Call(#{timeout => 1000, return => ref, extra => x}),
         {error, {badarg, opts}} = Call(#{"return" => ref}),
         {error, {badarg, return}} = Call(#{return => refs}),
         {error, {badarg, return}} = Call(#{return => <<"ref">>}),
         {error, {badarg, return}} = Call(#{return => undefined})
     end || Call <- Calls],
    {ok, opts} = py:call_method(O, get_key, []).

%%% from_python

erlang_ref_result_is_a_ref_to_the_object(_Config) ->
    {ok, R} = py:call('__main__', ref_wrapped, [wrapped]),
    true = py:is_ref(R),
    {ok, wrapped} = py:call_method(R, get_key, []),
    {ok, true} = py:call('__main__', ref_is, [wrapped, R]),
    {ok, R} = py:call('__main__', ref_ident, [R]),
    %% One wrapper in three places: three terms for the one object.
    {ok, #{<<"one">> := A, <<"list">> := [B, {C}]}} =
        py:call('__main__', ref_wrapped_inside, [inside]),
    [true, true, true] = [py:is_ref(X) || X <- [A, B, C]],
    {ok, true} = py:eval(<<"a is b is c is ref_registry['inside']">>, #{a => A, b => B, c => C}),
    %% erlang.ref of something with an Erlang form is still a reference.
    {ok, N} = py:eval(<<"erlang.ref([1, 2])">>),
    true = py:is_ref(N),
    {ok, [1, 2]} = py:to_term(N).

erlang_ref_wraps_an_object_once(_Config) ->
    {ok, {Repr, true, true, true}} = py:call('__main__', ref_wrapper_facts, [<<"facts">>]),
    <<"erlang.ref(Opaque('facts'))">> = Repr.

erlang_ref_reaches_an_erlang_function_that_calls_back(_Config) ->
    {ok, {true, through, true}} = py:call('__main__', ref_through_erlang, [through]).

erlang_ref_in_erlang_send_arrives_as_a_ref(_Config) ->
    {ok, true} = py:call('__main__', ref_send, [self(), sent]),
    R = receive {ref_sent, X} -> X after scaled(10000) -> ct:fail(nothing_sent) end,
    true = py:is_ref(R),
    {ok, sent} = py:call_method(R, get_key, []),
    {ok, true} = py:call('__main__', ref_is, [sent, R]).

erlang_ref_from_a_python_thread_arrives_as_a_ref(_Config) ->
    {ok, {true, thread, true}} = py:call('__main__', ref_from_thread, [self(), thread]),
    R = receive {ref_sent, X} -> X after scaled(10000) -> ct:fail(nothing_sent) end,
    true = py:is_ref(R),
    {ok, thread} = py:call_method(R, get_key, []),
    {ok, true} = py:call('__main__', ref_is, [thread, R]).

erlang_ref_from_asyncio_async_call_arrives_as_a_ref(_Config) ->
    {ok, {true, async, true}} = py:call('__main__', ref_from_asyncio, [async]).

%%% release

released_ref_cannot_be_used(_Config) ->
    O = new_opaque(released),
    ok = py:release(O),
    true = py:is_ref(O),
    {error, {badarg, ref}} = py:call_method(O, get_key, []),
    {error, {badarg, ref}} = py:call_method(O, get_key, [], #{}, #{return => ref}),
    {error, {badarg, ref}} = py:getattr(O, key),
    {error, {badarg, ref}} = py:getattr(O, key, #{return => ref}),
    {error, {badarg, ref}} = py:to_term(O),
    %% The registry still holds the object: only the reference is gone.
    {ok, released} = py:eval(<<"ref_registry['released'].key">>).

released_ref_in_arguments_is_a_value_error(_Config) ->
    O = new_opaque(released_arg),
    ok = py:release(O),
    {error, {'ValueError', <<"a reference whose object was released (at args[0])">>}} =
        py:call('__main__', ref_ident, [O]),
    {error, {'ValueError', M1}} = py:call('__main__', ref_ident, [[1, {O}]]),
    {match, _} = re:run(M1, "released \\(at args\\[0\\]"),
    {error, {'ValueError', M2}} = py:call('__main__', ref_kw_is, [released_arg], #{a => O}),
    {match, _} = re:run(M2, "released \\(at kwargs"),
    {error, {'ValueError', M3}} = py:eval(<<"x">>, #{x => O}),
    {match, _} = re:run(M3, "released \\(at locals"),
    P = new_opaque(alive),
    {error, {'ValueError', _}} = py:call_method(P, '__eq__', [O]),
    {ok, alive} = py:call_method(P, get_key, []).

releasing_twice_is_ok(_Config) ->
    O = new_opaque(twice_released),
    ok = py:release(O),
    ok = py:release(O),
    ok = py:release(O),
    {error, {badarg, ref}} = py:getattr(O, key).

release_runs_the_finalizer_before_it_returns(_Config) ->
    {ok, O} = py:call('__main__', ref_watched, [release_fin], #{}, #{return => ref}),
    {ok, false} = py:call('__main__', ref_finalized, [release_fin]),
    ok = py:release(O),
    {ok, true} = py:call('__main__', ref_finalized, [release_fin]).

release_leaves_an_object_python_still_holds_alive(_Config) ->
    {ok, O} = py:call('__main__', ref_watched_kept, [kept], #{}, #{return => ref}),
    ok = py:release(O),
    {ok, false} = py:call('__main__', ref_finalized, [kept]),
    {ok, kept} = py:eval(<<"ref_registry['kept'].get_key()">>),
    %% A new reference to it works.
    {ok, P} = py:eval(<<"ref_registry['kept']">>, #{}, #{return => ref}),
    {ok, kept} = py:call_method(P, get_key, []),
    ok = py:release(P),
    {ok, none} = py:eval(<<"ref_registry.pop('kept') and None">>),
    {ok, true} = py:call('__main__', ref_finalized, [kept]).

%% The running call holds the object: it finishes, and the object dies
%% once it has.
release_during_a_running_method_lets_it_finish(_Config) ->
    {ok, O} = py:call('__main__', ref_watched, [running], #{}, #{return => ref}),
    Self = self(),
    Caller = spawn_link(fun() ->
                                Self ! {result, py:call_method(O, signal_then_sleep, [Self, 2])}
                        end),
    receive running -> ok after scaled(10000) -> ct:fail(not_running) end,
    ok = py:release(O),
    {ok, false} = py:call('__main__', ref_finalized, [running]),
    {error, {badarg, ref}} = py:getattr(O, key),
    receive {result, Result} -> {ok, running} = Result
    after scaled(10000) -> ct:fail({no_result, Caller})
    end,
    wait_until(fun() -> finalized(running) end, 5000).

releasing_what_is_no_ref_is_badarg(_Config) ->
    [{error, {badarg, ref}} = py:release(B)
     || B <- [make_ref(), self(), foo, <<"ref">>, 1, [], {}, #{}]].

%%% errors

what_is_no_ref_is_badarg_everywhere(_Config) ->
    {ok, Released} = py:eval(<<"Opaque('gone')">>, #{}, #{return => ref}),
    ok = py:release(Released),
    Bad = [make_ref(), self(), foo, <<"bin">>, 1, 1.5, [], {}, #{}, fun() -> ok end, Released],
    [begin
         false = (py:is_ref(B) andalso B =/= Released),
         {error, {badarg, ref}} = py:call_method(B, get_key, []),
         {error, {badarg, ref}} = py:call_method(B, get_key, [], #{}, #{return => ref}),
         {error, {badarg, ref}} = py:getattr(B, key),
         {error, {badarg, ref}} = py:to_term(B)
     end || B <- Bad],
    [false = py:is_ref(B) || B <- Bad -- [Released]],
    vm_and_objects_intact().

raising_method_gives_its_exception_and_the_object_lives_on(_Config) ->
    O = new_opaque(raising),
    {error, {'ValueError', <<"bad input">>}} = py:call_method(O, fail, [<<"bad input">>]),
    Traceback = py:last_traceback(),
    {match, _} = re:run(Traceback, "in fail"),
    {error, {'KeyError', _}} = py:call_method(O, fail_key, []),
    {error, {'TypeError', _}} = py:call_method(O, get_key, [1, 2, 3]),
    {error, {'TypeError', _}} = py:call_method(O, get_key, [], #{nope => 1}),
    {error, {'ZeroDivisionError', _}} = py:eval(<<"len(o.key) / 0">>, #{o => O}),
    {ok, raising} = py:call_method(O, get_key, []),
    {ok, true} = py:call('__main__', ref_is, [raising, O]).

missing_attribute_or_method_is_an_attribute_error(_Config) ->
    O = new_opaque(missing),
    {error, {'AttributeError', _}} = py:getattr(O, nope),
    {error, {'AttributeError', _}} = py:getattr(O, 'key.nope'),
    {error, {'AttributeError', _}} = py:call_method(O, nope, []),
    {error, {'AttributeError', _}} = py:call_method(O, 'get_key.nope', []),
    %% An attribute that is not callable.
    {error, {'TypeError', _}} = py:call_method(O, key, []),
    %% A dotted name is an attribute path.
    {ok, <<"get_key">>} = py:getattr(O, 'get_key.__name__'),
    {ok, <<"MISSING">>} = py:call_method(O, 'key.upper', []),
    {ok, missing} = py:call_method(O, get_key, []).

bad_names_and_arguments_are_rejected(_Config) ->
    O = new_opaque(bad_names),
    [{error, {badarg, name}} = py:call_method(O, N, []) || N <- [<<>>, 1, "get_key", {a}]],
    %% Not UTF-8: as for py:call, Python's decoding error.
    {error, {'UnicodeDecodeError', _}} = py:call_method(O, <<255>>, []),
    {error, {'UnicodeDecodeError', _}} = py:getattr(O, <<"key", 255>>),
    [{error, {badarg, name}} = py:getattr(O, N) || N <- [<<>>, 1, "key", [], self()]],
    {error, {badarg, args}} = py:call_method(O, get_key, notalist),
    {error, {badarg, args}} = py:call_method(O, get_key, [a | b]),
    {error, {badarg, kwargs}} = py:call_method(O, get_key, [], [{a, 1}]),
    {error, {'TypeError', _}} = py:call_method(O, get_key, [], #{1 => 2}),
    {ok, bad_names} = py:call_method(O, <<"get_key">>, []),
    vm_and_objects_intact().

%%% lifetime

object_dies_within_bounded_time_after_its_holder_exits(_Config) ->
    Self = self(),
    Holder = spawn(fun() ->
                           {ok, O} = py:call('__main__', ref_watched, [holder_exits], #{},
                                             #{return => ref}),
                           {ok, holder_exits} = py:call_method(O, get_key, []),
                           Self ! {made, self()}
                   end),
    receive {made, Holder} -> ok after scaled(10000) -> ct:fail(not_made) end,
    py_test_lib:await_down(Holder, 5000),
    wait_until(fun() -> finalized(holder_exits) end, 5000).

%% Nothing calls into Python after the holder exits: the release thread
%% drops the object, and its finalizer tells this process.
object_dies_when_no_call_comes(_Config) ->
    Self = self(),
    Holder = spawn(fun() ->
                           {ok, _} = py:call('__main__', ref_watched_telling, [no_call, Self],
                                             #{}, #{return => ref}),
                           Self ! {made, self()}
                   end),
    receive {made, Holder} -> ok after scaled(10000) -> ct:fail(not_made) end,
    receive {finalized, no_call} -> ok after scaled(5000) -> ct:fail(not_released) end.

object_lives_while_a_live_process_holds_its_ref(_Config) ->
    Holder = start_holder(holder_lives),
    true = erlang:garbage_collect(),
    true = erlang:garbage_collect(Holder),
    [{ok, _} = py:call(math, sqrt, [N]) || N <- lists:seq(1, 20)],
    Holder ! {use, self()},
    receive {used, {ok, holder_lives}} -> ok after scaled(10000) -> ct:fail(not_used) end,
    true = erlang:garbage_collect(),
    true = erlang:garbage_collect(Holder),
    [{ok, _} = py:call(math, sqrt, [N]) || N <- lists:seq(1, 20)],
    {ok, false} = py:call('__main__', ref_finalized, [holder_lives]),
    unlink(Holder),
    Holder ! stop,
    wait_until(fun() -> finalized(holder_lives) end, 5000).

%% A linked process holding a reference to a new watched object (Key), which
%% answers {use, From} with a call of its method and ends on stop.
start_holder(Key) ->
    Self = self(),
    Holder = spawn_link(fun() ->
                                {ok, O} = py:call('__main__', ref_watched, [Key], #{},
                                                  #{return => ref}),
                                Self ! {made, self()},
                                hold(O)
                        end),
    receive {made, Holder} -> Holder after scaled(10000) -> ct:fail({not_made, Key}) end.

hold(O) ->
    receive
        {use, From} -> From ! {used, py:call_method(O, get_key, [])}, hold(O);
        stop -> ok
    end.

ref_stored_in_ets_keeps_the_object_until_deleted(_Config) ->
    Table = ets:new(kept_refs, [set, public]),
    Self = self(),
    Maker = spawn(fun() ->
                          {ok, O} = py:call('__main__', ref_watched, [in_ets], #{},
                                            #{return => ref}),
                          true = ets:insert(Table, {key, O}),
                          Self ! {made, self()}
                  end),
    receive {made, Maker} -> ok after scaled(10000) -> ct:fail(not_made) end,
    py_test_lib:await_down(Maker, 5000),
    true = erlang:garbage_collect(),
    [{ok, _} = py:call(math, sqrt, [N]) || N <- lists:seq(1, 20)],
    {ok, false} = py:call('__main__', ref_finalized, [in_ets]),
    [{key, O}] = ets:lookup(Table, key),
    {ok, in_ets} = py:call_method(O, get_key, []),
    true = ets:delete(Table, key),
    %% The copy read into this process is gone once it is collected.
    gc_then_wait(in_ets),
    true = ets:delete(Table).

%% Waits for the object to die, collecting this process's garbage (the
%% copy that lookup made) first.
gc_then_wait(Key) ->
    true = erlang:garbage_collect(),
    wait_until(fun() -> finalized(Key) end, 5000).

finalized(Key) ->
    {ok, Done} = py:call('__main__', ref_finalized, [Key]),
    Done.

%%% concurrency

fifty_processes_call_one_object_at_once(_Config) ->
    {ok, T} = py:call('__main__', ref_tally, [], #{}, #{return => ref}),
    Calls = 100,
    Results = fan_out(fun(I) -> [py:call_method(T, add, [I]) || _ <- lists:seq(1, Calls)] end,
                      lists:seq(1, 50)),
    [true = is_integer(N) || Rs <- Results, {ok, N} <- Rs],
    Expected = 50 * Calls,
    Expected = length([ok || Rs <- Results, {ok, N} <- Rs, is_integer(N)]),
    Total = Calls * lists:sum(lists:seq(1, 50)),
    {ok, {Total, 5000, Items}} = py:call_method(T, summary, []),
    Items = lists:sort([I || I <- lists:seq(1, 50), _ <- lists:seq(1, Calls)]),
    {ok, Total} = py:getattr(T, total).

release_during_calls_gives_results_or_badarg(_Config) ->
    {ok, T} = py:call('__main__', ref_tally, [], #{}, #{return => ref}),
    Self = self(),
    Started = fan_out_start(fun(I) -> Self ! {started, I}, use_until_released(T, I, 0, #{}) end,
                            lists:seq(1, 20)),
    [receive {started, I} -> ok after scaled(10000) -> ct:fail({not_started, I}) end
     || I <- lists:seq(1, 20)],
    %% Let every caller succeed a few times first.
    wait_until(fun() -> {ok, N} = py:getattr(T, total), N > 200 end, 10000),
    ok = py:release(T),
    Outcomes = fan_out_results(Started),
    ct:log("outcomes: ~p", [Outcomes]),
    [1 = maps:get(badarg, O) || O <- Outcomes],
    ?assert(lists:sum([maps:get(ok, O, 0) || O <- Outcomes]) > 0),
    {error, {badarg, ref}} = py:getattr(T, total),
    ok = py:release(T),
    vm_and_objects_intact().

%% Calls methods of T (and hands T as an argument) until T is released;
%% counts outcomes; fails on anything else.
use_until_released(T, I, K, Counts) ->
    Result = case K rem 4 of
                 0 -> py:call_method(T, add, [1]);
                 1 -> py:getattr(T, total);
                 2 -> py:call(builtins, getattr, [T, <<"total">>]);
                 3 -> py:call_method(T, summary, [], #{}, #{return => ref})
             end,
    case Result of
        {ok, _} ->
            use_until_released(T, I, K + 1, maps:update_with(ok, fun(N) -> N + 1 end, 1, Counts));
        {error, {badarg, ref}} ->
            Counts#{badarg => 1};
        {error, {'ValueError', <<"a reference whose object was released (at args[0])">>}} ->
            Counts#{badarg => 1};
        Other ->
            ct:fail({unexpected, I, K, Other})
    end.

%%% churn

million_refs_dropped_leave_no_objects_and_no_memory(_Config) ->
    Workers = 4,
    Batch = 1000,
    BatchesPerWorker = 250,
    Singles = 25000,
    {ok, Start} = py:call('__main__', ref_live_count, []),
    %% A first round so that what is allocated once (arenas, heaps) is in
    %% the starting figure.
    churn(Workers, Batch, 5, 100),
    wait_until(fun() -> live_count() =:= Start end, 30000),
    Rss0 = rss_kb(),
    T0 = erlang:monotonic_time(millisecond),
    churn(Workers, Batch, BatchesPerWorker, Singles),
    T1 = erlang:monotonic_time(millisecond),
    Peak = rss_kb(),
    wait_until(fun() -> live_count() =:= Start end, 30000),
    T2 = erlang:monotonic_time(millisecond),
    Made = Workers * (Batch * BatchesPerWorker + Singles),
    ?assert(Made >= 1000000),
    SlackKb = 50 * 1024,
    Settled = case py_test_lib:memory_tool() of
                  none ->
                      py_test_lib:wait_for(fun() ->
                                                   Rss = rss_kb(),
                                                   Rss =< Rss0 + SlackKb andalso Rss
                                           end, 20000);
                  Tool ->
                      %% Its allocator keeps what is freed; the live count
                      %% above is what counts here.
                      ct:log("resident memory not judged under ~p", [Tool]),
                      rss_kb()
              end,
    ct:log("~b refs made and dropped in ~b ms; live back to ~b after ~b ms more~n"
           "VmRSS: start ~b kB, after churn ~b kB, settled ~b kB (growth ~b kB, slack ~b kB)",
           [Made, T1 - T0, Start, T2 - T1, Rss0, Peak, Settled, Settled - Rss0, SlackKb]),
    vm_and_objects_intact().

%% Workers processes each make Batches lists of Batch references (and
%% Singles single ones by return => ref), use one of each, and drop them.
churn(Workers, Batch, Batches, Singles) ->
    Done = fan_out(fun(W) ->
                           lists:foreach(
                             fun(B) ->
                                     {ok, Refs} = py:call('__main__', ref_counted_batch, [Batch]),
                                     Batch = length(Refs),
                                     {ok, _} = py:call_method(lists:nth(1 + B rem Batch, Refs),
                                                              get, [])
                             end, lists:seq(1, Batches)),
                           lists:foreach(
                             fun(I) ->
                                     {ok, R} = py:call('__main__', ref_counted, [I], #{},
                                                       #{return => ref}),
                                     I rem 100 =:= 0 andalso
                                         ({ok, I} = py:call_method(R, get, [])) =:= {ok, I}
                             end, lists:seq(1, Singles)),
                           W
                   end, lists:seq(1, Workers)),
    Done = lists:seq(1, Workers),
    ok.

live_count() ->
    {ok, N} = py:call('__main__', ref_live_count, []),
    N.

rss_kb() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    {match, [Kb]} = re:run(Status, "VmRSS:\\s+(\\d+) kB", [{capture, all_but_first, binary}]),
    binary_to_integer(Kb).

%%% distribution

%% The peer is a distributed node on loopback; this node becomes one for
%% the case if it is not already (py_test_lib:make_distributed/1).
ref_on_another_node_is_a_remote_ref_there(_Config) ->
    Made = py_test_lib:make_distributed("py_ref_origin"),
    try
        remote_ref_checks()
    after
        py_test_lib:undo_distributed(Made)
    end.

remote_ref_checks() ->
    O = new_opaque(remote),
    Origin = node(),
    Origin = node(O),
    Paths = [filename:dirname(code:which(M)) || M <- [py, py_test_lib]],
    {ok, Peer, Node} = peer:start_link(#{name => peer:random_name(), args => ["-pa" | Paths]}),
    try
        {ok, _} = erpc:call(Node, application, ensure_all_started, [erlang_python]),
        {error, {remote_ref, Origin}} = erpc:call(Node, py, call_method, [O, get_key, []]),
        {error, {remote_ref, Origin}} = erpc:call(Node, py, getattr, [O, key]),
        {error, {remote_ref, Origin}} = erpc:call(Node, py, to_term, [O]),
        false = erpc:call(Node, py, is_ref, [O]),
        %% The peer's own references work there.
        {true, <<"x">>} =
            erpc:call(Node, erlang, apply,
                      [fun() ->
                               {ok, R} = py:eval(<<"'x'">>, #{}, #{return => ref}),
                               {py:is_ref(R), element(2, py:to_term(R))}
                       end, []]),
        %% Held on the peer, then sent back: the origin's reference again.
        Self = self(),
        Keeper = erlang:spawn(Node, fun() ->
                                            receive
                                                {keep, R} -> receive back -> Self ! {back, R} end
                                            end
                                    end),
        Keeper ! {keep, O},
        Keeper ! back,
        Back = receive {back, B} -> B after scaled(10000) -> ct:fail(not_sent_back) end,
        ct:log("sent ~p, came back as ~p (equal: ~p)", [O, Back, Back =:= O]),
        true = Back =:= O,
        true = py:is_ref(Back),
        {ok, remote} = py:call_method(Back, get_key, []),
        {ok, true} = py:call('__main__', ref_is, [remote, Back])
    after
        peer:stop(Peer)
    end.

%%% module

refs_survive_a_reload_of_py_nif(_Config) ->
    O = new_opaque(reload),
    {ok, C} = py:call(collections, 'Counter', [[a, a]], #{}, #{return => ref}),
    Holder = start_holder(reload_watched),
    [begin
         ok = py_test_lib:reload_py_nif(),
         {ok, reload} = py:call_method(O, get_key, []),
         {ok, true} = py:call('__main__', ref_is, [reload, O]),
         {ok, #{a := 2}} = py:to_term(C),
         true = py:is_ref(O),
         %% A reference made now, next to the old one.
         {ok, New} = py:eval(<<"ref_registry['reload']">>, #{}, #{return => ref}),
         {ok, true} = py:call('__main__', ref_same, [O, New]),
         {ok, O} = py:call('__main__', ref_ident, [O]),
         Holder ! {use, self()},
         receive {used, {ok, reload_watched}} -> ok after scaled(10000) -> ct:fail(not_used) end
     end || _ <- [first, second]],
    %% An old reference dropped after the reload still lets go of its
    %% object, and one released after it too.
    {ok, false} = py:call('__main__', ref_finalized, [reload_watched]),
    unlink(Holder),
    Holder ! stop,
    wait_until(fun() -> finalized(reload_watched) end, 5000),
    ok = py:release(C),
    {error, {badarg, ref}} = py:to_term(C),
    vm_and_objects_intact().

%% py_nif deleted and purged (ERTS orphans the library's resource type),
%% then loaded again, twice: references of every earlier load still work,
%% as arguments too, next to new ones, and still let go of their objects.
refs_made_before_an_unload_and_load_of_py_nif_keep_working(_Config) ->
    O = new_opaque(unload),
    Holder = start_holder(unload_watched),
    Refs = lists:foldl(
             fun(Round, Earlier) ->
                     ok = py_test_lib:unload_and_load_py_nif(),
                     ok = register_functions(),
                     [begin
                          true = py:is_ref(R),
                          {ok, unload} = py:call_method(R, get_key, []),
                          {ok, true} = py:call('__main__', ref_is, [unload, R]),
                          {ok, R} = py:call('__main__', ref_ident, [R])
                      end || R <- Earlier],
                     Holder ! {use, self()},
                     receive
                         {used, {ok, unload_watched}} -> ok
                     after scaled(10000) -> ct:fail({not_used, Round})
                     end,
                     {ok, New} = py:eval(<<"ref_registry['unload']">>, #{}, #{return => ref}),
                     [New | Earlier]
             end, [O], [first, second]),
    3 = length(Refs),
    {ok, false} = py:call('__main__', ref_finalized, [unload_watched]),
    unlink(Holder),
    Holder ! stop,
    wait_until(fun() -> finalized(unload_watched) end, 5000),
    [ok = py:release(R) || R <- Refs],
    [{error, {badarg, ref}} = py:call_method(R, get_key, []) || R <- Refs],
    vm_and_objects_intact().

%%% helpers

%% A reference to a new Opaque(Key), which the registry also keeps.
new_opaque(Key) ->
    {ok, O} = py:call('__main__', ref_new, [Key], #{}, #{return => ref}),
    true = py:is_ref(O),
    O.

vm_and_objects_intact() ->
    {ok, 4.0} = py:call(math, sqrt, [16]),
    O = new_opaque(intact),
    {ok, intact} = py:call_method(O, get_key, []),
    {ok, O} = py:call('__main__', ref_ident, [O]),
    wait_calls_done(5000).
