%% @private
%% @doc Shared state: a table of keys and values that Erlang reaches
%% through py:state_* (their contract is written in py.erl) and Python
%% through erlang.state_* (priv/erlang_async.py), which call the py_*
%% functions here under reserved names (py_registry:lookup/1).
%%
%% No process serves the table: callers read and write it directly, and
%% the application's top supervisor owns it, so it lives exactly as long as
%% the application runs. A stop of the application empties the state.
%%
%% The bound on entries (application environment `max_state_entries') is
%% kept exactly under concurrent writers by a counter of entries next to
%% the table: a new key is only inserted (ets:insert_new) after a slot was
%% taken on the counter, and every entry removed gives its slot back.
%% Values of existing keys change in place (ets:update_element,
%% ets:update_counter), which takes no slot.
-module(py_state).

%% Erlang's API, behind py:state_*.
-export([store/2, fetch/1, remove/1, keys/0, clear/0, incr/2]).
%% Python's, under reserved names.
-export([py_get/1, py_set/1, py_delete/1, py_keys/1, py_incr/1]).
%% The table.
-export([create_table/0]).

-define(TABLE, py_state).
-define(COUNT_KEY, {?MODULE, entries}).
-define(DEFAULT_MAX, 100000).

-type error() :: {error, not_running | {state_full, pos_integer()}}.
-export_type([error/0]).

%% @doc Makes the table, owned by the calling process (the top
%% supervisor), and its counter of entries, unless the table exists (a
%% release upgrade runs the supervisor's init/1 again).
-spec create_table() -> ok.
create_table() ->
    case ets:whereis(?TABLE) of
        undefined ->
            ?TABLE = ets:new(?TABLE, [named_table, public, set, {read_concurrency, true},
                                      {write_concurrency, true}]),
            persistent_term:put(?COUNT_KEY, atomics:new(1, [{signed, true}])),
            ok;
        _Table ->
            ok
    end.

%% @doc Key gets Value.
-spec store(term(), term()) -> ok | error().
store(Key, Value) ->
    running(fun() -> store_loop(Key, Value) end).

store_loop(Key, Value) ->
    case ets:update_element(?TABLE, Key, {2, Value}) of
        true ->
            ok;
        false ->
            case insert_new(Key, Value) of
                true -> ok;
                false -> store_loop(Key, Value);
                Full -> Full
            end
    end.

%% @doc Key's value.
-spec fetch(term()) -> {ok, term()} | {error, not_found} | error().
fetch(Key) ->
    running(fun() ->
                    case ets:lookup(?TABLE, Key) of
                        [{_, Value}] -> {ok, Value};
                        [] -> {error, not_found}
                    end
            end).

%% @doc Removes Key, if it is there.
-spec remove(term()) -> ok | error().
remove(Key) ->
    running(fun() ->
                    case ets:take(?TABLE, Key) of
                        [_] -> release(1);
                        [] -> ok
                    end
            end).

%% @doc Every key, in no order.
-spec keys() -> [term()] | error().
keys() ->
    running(fun() -> ets:select(?TABLE, [{{'$1', '_'}, [], ['$1']}]) end).

%% @doc Removes every key.
-spec clear() -> ok | error().
clear() ->
    running(fun() -> release(ets:select_delete(?TABLE, [{'_', [], [true]}])) end).

%% @doc Adds N to the integer under Key (0 if Key is missing); returns
%% the new value.
-spec incr(term(), integer()) -> integer() | {error, not_an_integer} | error().
incr(Key, N) ->
    running(fun() -> incr_loop(Key, N) end).

incr_loop(Key, N) ->
    try
        ets:update_counter(?TABLE, Key, {2, N})
    catch
        error:badarg ->
            case ets:lookup(?TABLE, Key) of
                [_] ->
                    {error, not_an_integer};
                [] ->
                    case insert_new(Key, N) of
                        true -> N;
                        false -> incr_loop(Key, N);
                        Full -> Full
                    end
            end
    end.

%%% Python's side: erlang.state_* call these with their arguments as a
%%% list, and take their results apart (priv/erlang_async.py).

%% @doc erlang.state_get: `[Value]', or `[]' for a missing key.
-spec py_get(list()) -> list() | error().
py_get([Key]) ->
    case fetch(Key) of
        {ok, Value} -> [Value];
        {error, not_found} -> [];
        Error -> Error
    end.

%% @doc erlang.state_set.
-spec py_set(list()) -> ok | error().
py_set([Key, Value]) ->
    store(Key, Value).

%% @doc erlang.state_delete.
-spec py_delete(list()) -> ok | error().
py_delete([Key]) ->
    remove(Key).

%% @doc erlang.state_keys.
-spec py_keys(list()) -> [term()] | error().
py_keys([]) ->
    keys().

%% @doc erlang.state_incr and erlang.state_decr (with -N).
-spec py_incr(list()) -> integer() | {error, not_an_integer} | error().
py_incr([Key, N]) when is_integer(N) ->
    incr(Key, N).

%%% Internals

%% Runs Fun on the table; `{error, not_running}' when the application is
%% not running (there is no table).
running(Fun) ->
    try
        Fun()
    catch
        error:badarg:Stack ->
            case ets:whereis(?TABLE) of
                undefined -> {error, not_running};
                _ -> erlang:raise(error, badarg, Stack)
            end
    end.

%% Inserts a new key if a slot is free: true, false (the key is there
%% already), or the error that the table is full.
insert_new(Key, Value) ->
    Count = persistent_term:get(?COUNT_KEY),
    Max = max_entries(),
    case atomics:add_get(Count, 1, 1) > Max of
        true ->
            atomics:sub(Count, 1, 1),
            {error, {state_full, Max}};
        false ->
            case ets:insert_new(?TABLE, {Key, Value}) of
                true -> true;
                false -> atomics:sub(Count, 1, 1), false
            end
    end.

release(N) ->
    atomics:sub(persistent_term:get(?COUNT_KEY), 1, N).

max_entries() ->
    case application:get_env(erlang_python, max_state_entries, ?DEFAULT_MAX) of
        Max when is_integer(Max), Max > 0 -> Max;
        _ -> ?DEFAULT_MAX
    end.
