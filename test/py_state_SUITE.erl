%% Shared state, as a user sees it from both sides: py:state_* from
%% Erlang, erlang.state_* from Python, each seeing the other's writes
%% (a Python str key is an Erlang binary); counters that lose nothing
%% under concurrency; the bound on keys, exact under concurrency; bad
%% input; and its life: emptied by a restart of the application, kept
%% through the crash of any of its processes, reached by Python under
%% names that no user can unregister.
-module(py_state_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [wait_until/2, fan_out/2, restart_app/0, restart_with/2,
                      restart_without/1]).

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([stored_value_is_fetched/1, missing_key_is_not_found/1, removed_key_is_gone/1,
         keys_lists_every_key/1, clear_removes_every_key/1,
         incr_and_decr_count_from_zero/1, incr_of_a_non_integer_is_an_error/1,
         bad_increment_is_an_error/1]).
-export([fifty_processes_lose_no_increment/1, bound_holds_under_concurrent_new_keys/1]).
-export([python_sees_erlangs_writes/1, erlang_sees_pythons_writes/1,
         python_counts_too/1, python_errors_are_python_exceptions/1]).
-export([new_key_past_the_bound_is_refused/1, python_is_refused_past_the_bound/1]).
-export([restart_empties_the_state/1, state_needs_the_application/1,
         state_survives_crashes_of_the_applications_processes/1,
         reserved_names_cannot_be_taken_or_removed/1]).

all() ->
    [{group, erlang_api}, {group, concurrency}, {group, python}, {group, bound},
     {group, lifecycle}].

%% Sequential: the cases share the one table.
groups() ->
    [{erlang_api, [],
      [stored_value_is_fetched, missing_key_is_not_found, removed_key_is_gone,
       keys_lists_every_key, clear_removes_every_key, incr_and_decr_count_from_zero,
       incr_of_a_non_integer_is_an_error, bad_increment_is_an_error]},
     {concurrency, [], [fifty_processes_lose_no_increment, bound_holds_under_concurrent_new_keys]},
     {python, [],
      [python_sees_erlangs_writes, erlang_sees_pythons_writes, python_counts_too,
       python_errors_are_python_exceptions]},
     {bound, [], [new_key_past_the_bound_is_refused, python_is_refused_past_the_bound]},
     {lifecycle, [],
      [restart_empties_the_state, state_needs_the_application,
       state_survives_crashes_of_the_applications_processes,
       reserved_names_cannot_be_taken_or_removed]}].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok.

%% Every case starts from an empty state.
init_per_testcase(_Case, Config) ->
    ok = py:state_clear(),
    Config.

end_per_testcase(_Case, _Config) ->
    ok.

%%% erlang_api

stored_value_is_fetched(_Config) ->
    ok = py:state_store(user, #{name => <<"ada">>}),
    {ok, #{name := <<"ada">>}} = py:state_fetch(user),
    ok = py:state_store(user, replaced),
    {ok, replaced} = py:state_fetch(user),
    %% Any term is a key.
    ok = py:state_store({session, 1, <<"x">>}, [1, 2]),
    {ok, [1, 2]} = py:state_fetch({session, 1, <<"x">>}).

missing_key_is_not_found(_Config) ->
    {error, not_found} = py:state_fetch(nobody),
    ok = py:state_store(<<"a">>, 1),
    %% An atom and a binary of the same name are two keys.
    {error, not_found} = py:state_fetch(a).

removed_key_is_gone(_Config) ->
    ok = py:state_store(k, v),
    ok = py:state_remove(k),
    {error, not_found} = py:state_fetch(k),
    ok = py:state_remove(k).

keys_lists_every_key(_Config) ->
    [] = py:state_keys(),
    [ok = py:state_store(K, K) || K <- [a, <<"b">>, 3]],
    [3, a, <<"b">>] = lists:sort(py:state_keys()).

clear_removes_every_key(_Config) ->
    [ok = py:state_store(K, K) || K <- lists:seq(1, 100)],
    ok = py:state_clear(),
    [] = py:state_keys(),
    {error, not_found} = py:state_fetch(1).

incr_and_decr_count_from_zero(_Config) ->
    1 = py:state_incr(hits),
    11 = py:state_incr(hits, 10),
    10 = py:state_decr(hits),
    4 = py:state_decr(hits, 6),
    -1 = py:state_decr(other),
    -5 = py:state_incr(third, -5),
    {ok, 4} = py:state_fetch(hits),
    %% Past 64 bits.
    ok = py:state_store(big, 1 bsl 64),
    Big = (1 bsl 64) + 1,
    Big = py:state_incr(big).

incr_of_a_non_integer_is_an_error(_Config) ->
    [begin
         ok = py:state_store(k, Value),
         {error, not_an_integer} = py:state_incr(k),
         {error, not_an_integer} = py:state_decr(k, 2),
         {ok, Value} = py:state_fetch(k)
     end || Value <- [1.5, <<"1">>, one, [1]]].

bad_increment_is_an_error(_Config) ->
    [{error, {badarg, increment}} = F(k, N)
     || F <- [fun py:state_incr/2, fun py:state_decr/2], N <- [1.0, one, <<"1">>]],
    {error, not_found} = py:state_fetch(k).

%%% concurrency

fifty_processes_lose_no_increment(_Config) ->
    Counts = fan_out(fun(_) -> [py:state_incr(total) || _ <- lists:seq(1, 1000)] end,
                     lists:seq(1, 50)),
    {ok, 50000} = py:state_fetch(total),
    %% Every new value was handed out once.
    Values = lists:append(Counts),
    50000 = length(lists:usort(Values)),
    50000 = lists:max(Values).

%% Twenty processes race to add new keys past a bound of ten: exactly ten
%% are kept.
bound_holds_under_concurrent_new_keys(_Config) ->
    restart_with(max_state_entries, 10),
    try
        Results = fan_out(fun(I) -> [py:state_store({I, J}, J) || J <- lists:seq(1, 5)] end,
                          lists:seq(1, 20)),
        Stored = [R || R <- lists:append(Results), R =:= ok],
        10 = length(Stored),
        100 - 10 = length([R || {error, {state_full, 10}} = R <- lists:append(Results)]),
        10 = length(py:state_keys()),
        %% Removing frees slots, exactly.
        [K | _] = py:state_keys(),
        ok = py:state_remove(K),
        ok = py:state_store(new, 1),
        {error, {state_full, 10}} = py:state_store(newer, 1),
        ok = py:state_clear(),
        [ok = py:state_store(I, I) || I <- lists:seq(1, 10)]
    after
        restart_without(max_state_entries)
    end.

%%% python

python_sees_erlangs_writes(_Config) ->
    ok = py:state_store(<<"greeting">>, <<"hello">>),
    ok = py:state_store(an_atom, [1, 2.5, {x}]),
    {ok, <<"hello">>} = py:eval(<<"erlang.state_get('greeting')">>),
    {ok, [1, 2.5, {x}]} = py:eval(<<"erlang.state_get(erlang.Atom('an_atom'))">>),
    {ok, none} = py:eval(<<"erlang.state_get('missing')">>),
    {ok, 7} = py:eval(<<"erlang.state_get('missing', 7)">>),
    {ok, [<<"an_atom">>, <<"greeting">>]} = py:eval(<<"sorted(map(str, erlang.state_keys()))">>).

erlang_sees_pythons_writes(_Config) ->
    ok = py:exec(<<"erlang.state_set('from_python', {'n': 1, 'l': [True, None]})">>),
    %% A str key is a binary.
    {ok, #{<<"n">> := 1, <<"l">> := [true, none]}} = py:state_fetch(<<"from_python">>),
    ok = py:exec(<<"erlang.state_set(erlang.Atom('atom_key'), b'bytes')">>),
    {ok, <<"bytes">>} = py:state_fetch(atom_key),
    ok = py:exec(<<"erlang.state_delete('from_python')">>),
    {error, not_found} = py:state_fetch(<<"from_python">>).

python_counts_too(_Config) ->
    {ok, 1} = py:eval(<<"erlang.state_incr('c')">>),
    {ok, 6} = py:eval(<<"erlang.state_incr('c', 5)">>),
    {ok, 5} = py:eval(<<"erlang.state_decr('c')">>),
    {ok, 2} = py:eval(<<"erlang.state_decr('c', 3)">>),
    3 = py:state_incr(<<"c">>),
    %% Erlang and Python threads counting together.
    ok = py:exec(<<"
import threading
def _count():
    for _ in range(200):
        erlang.state_incr('together')
_threads = [threading.Thread(target=_count) for _ in range(4)]
for _t in _threads: _t.start()
">>),
    [py:state_incr(<<"together">>) || _ <- lists:seq(1, 200)],
    ok = py:exec(<<"for _t in _threads: _t.join()">>),
    {ok, 1000} = py:state_fetch(<<"together">>).

python_errors_are_python_exceptions(_Config) ->
    ok = py:state_store(<<"text">>, <<"abc">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.state_incr('text')">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.state_incr('n', 1.5)">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.state_decr('n', '1')">>),
    %% A value with no Erlang form is refused before anything is stored.
    {error, {'TypeError', _}} = py:eval(<<"erlang.state_set('obj', object())">>),
    {error, not_found} = py:state_fetch(<<"obj">>),
    {ok, <<"abc">>} = py:state_fetch(<<"text">>).

%%% bound

new_key_past_the_bound_is_refused(_Config) ->
    restart_with(max_state_entries, 3),
    try
        [ok = py:state_store(K, 0) || K <- [a, b, c]],
        {error, {state_full, 3}} = py:state_store(d, 0),
        {error, {state_full, 3}} = py:state_incr(d),
        %% Existing keys still change.
        ok = py:state_store(a, 1),
        1 = py:state_incr(b),
        ok = py:state_remove(c),
        ok = py:state_store(d, 0)
    after
        restart_without(max_state_entries)
    end.

python_is_refused_past_the_bound(_Config) ->
    restart_with(max_state_entries, 1),
    try
        ok = py:exec(<<"erlang.state_set('one', 1)">>),
        {error, {<<"erlang.StateFullError">>, _}} = py:exec(<<"erlang.state_set('two', 2)">>),
        {error, {<<"erlang.StateFullError">>, _}} = py:eval(<<"erlang.state_incr('two')">>),
        {ok, 2} = py:eval(<<"erlang.state_incr('one')">>)
    after
        restart_without(max_state_entries)
    end.

%%% lifecycle

%% The state is the application's run's: a restart starts empty (the
%% choice documented in docs/state.md).
restart_empties_the_state(_Config) ->
    ok = py:state_store(k, v),
    restart_app(),
    {error, not_found} = py:state_fetch(k),
    [] = py:state_keys(),
    ok = py:state_store(k, v2),
    {ok, v2} = py:state_fetch(k).

state_needs_the_application(_Config) ->
    ok = application:stop(erlang_python),
    try
        {error, not_running} = py:state_store(k, v),
        {error, not_running} = py:state_fetch(k),
        {error, not_running} = py:state_remove(k),
        {error, not_running} = py:state_keys(),
        {error, not_running} = py:state_clear(),
        {error, not_running} = py:state_incr(k)
    after
        {ok, _} = application:ensure_all_started(erlang_python)
    end.

%% No process serves the table; the supervisor owns it. Killing every
%% other process of the application loses nothing, and Python still
%% reaches it afterwards.
state_survives_crashes_of_the_applications_processes(_Config) ->
    ok = py:exec(<<"erlang.state_set('kept', 1)">>),
    Handlers = [Pid || {_, Pid, _, _} <- supervisor:which_children(py_handler_sup)],
    [exit(Pid, kill) || Pid <- Handlers],
    [begin
         Old = whereis(Name),
         exit(Old, kill),
         wait_until(fun() -> is_pid(whereis(Name)) andalso whereis(Name) =/= Old end, 5000)
     end || Name <- [py_registry, py_coordinator]],
    {ok, 1} = py:state_fetch(<<"kept">>),
    {ok, 2} = py:eval(<<"erlang.state_incr('kept')">>).

%% Python's half reaches the state through reserved names: no user can
%% register or unregister them, and they work after a restart.
reserved_names_cannot_be_taken_or_removed(_Config) ->
    Reserved = <<"_erlang_python.state_get">>,
    {error, {badarg, name}} = py:register_function(Reserved, fun(_) -> hijacked end),
    {error, {badarg, name}} = py:unregister_function(Reserved),
    {error, {badarg, name}} = py:register_function(<<"_erlang_python.other">>, fun(_) -> x end),
    ok = py:state_store(<<"k">>, 1),
    {ok, 1} = py:eval(<<"erlang.state_get('k')">>),
    restart_app(),
    ok = py:state_store(<<"k">>, 2),
    {ok, 2} = py:eval(<<"erlang.state_get('k')">>),
    %% Not attributes of the erlang module.
    {ok, false} = py:eval(<<"hasattr(erlang, '_erlang_python.state_get')">>).
