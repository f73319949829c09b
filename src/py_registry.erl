%% @private
%% @doc The functions registered for Python: an ETS table that handlers
%% read, written only by this process so that the table and the Python
%% side's set of names (erlang._set_registered) change together.
-module(py_registry).
-behaviour(gen_server).

-export([start_link/0, register/2, unregister/1, lookup/1]).
-export([init/1, handle_call/3, handle_cast/2]).

-define(TABLE, py_functions).

-type function_spec() :: fun((list()) -> term()) | {module(), atom()}.
-export_type([function_spec/0]).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec register(binary(), function_spec()) -> ok.
register(Name, Function) ->
    gen_server:call(?MODULE, {register, Name, Function}, infinity).

-spec unregister(binary()) -> ok.
unregister(Name) ->
    gen_server:call(?MODULE, {unregister, Name}, infinity).

%% @doc The function registered under Name (a binary, or an atom when
%% Python passed an erlang.Atom).
-spec lookup(binary() | atom()) -> {ok, function_spec()} | error.
lookup(Name) when is_atom(Name) ->
    lookup(atom_to_binary(Name, utf8));
lookup(Name) ->
    try ets:lookup(?TABLE, Name) of
        [{_, Function}] -> {ok, Function};
        [] -> error
    catch
        error:badarg -> error
    end.

-spec init([]) -> {ok, #{}}.
init([]) ->
    ?TABLE = ets:new(?TABLE, [named_table, protected, set, {read_concurrency, true}]),
    {ok, none} = py:call(erlang, '_clear_registered', [], #{}, infinity),
    {ok, #{}}.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, ok, map()}.
handle_call({register, Name, Function}, _From, State) ->
    true = ets:insert(?TABLE, {Name, Function}),
    {ok, none} = py:call(erlang, '_set_registered', [Name, true], #{}, infinity),
    {reply, ok, State};
handle_call({unregister, Name}, _From, State) ->
    true = ets:delete(?TABLE, Name),
    {ok, none} = py:call(erlang, '_set_registered', [Name, false], #{}, infinity),
    {reply, ok, State}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Request, State) ->
    {noreply, State}.
