%% @private
%% @doc The functions registered for Python: an ETS table that handlers
%% read, written only by this process so that the table and the Python
%% side's set of names (erlang._set_registered) change together.
%%
%% The table is made by the application's top supervisor (create_table/0)
%% and so outlives this process: a crash of the registry loses no
%% registration, and calls keep finding their functions while it restarts.
%% The table is public because its owner is not its writer; nothing but
%% this process writes it.
%%
%% The Python side's set of names is always a subset of the table's: a name
%% enters the table before Python hears of it, and leaves Python before it
%% leaves the table, so a crash between the two steps leaves a name in the
%% table only. On start the registry makes Python's set equal to the table:
%% it sets every name of the table, or, when the table is empty (a new
%% start of the application, whose previous run may have left names in
%% Python), clears the set.
%%
%% Each own-GIL context (py_context) has an interpreter, and so a set of
%% names, of its own: py_context adds it here when it is made, which sets
%% its names, and every change is made there too, until the context is
%% found stopped (at a change, or when another context is added). Worker
%% contexts share the main interpreter's set.
%%
%% Names that begin with `_erlang_python.' are reserved for the
%% application's own functions (erlang.state_* and the output streams of
%% py_output call them): they are not in
%% the table but built in to lookup/1, so that neither a user's
%% unregistering nor a restart can take them away. py:register_function/2
%% refuses them.
-module(py_registry).
-behaviour(gen_server).

-export([start_link/0, create_table/0, register/2, unregister/1, lookup/1, is_reserved/1,
         add_context/1, contexts/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(TABLE, py_functions).
-define(RESERVED_PREFIX, "_erlang_python.").

-type function_spec() :: fun((list()) -> term()) | {module(), atom()}.
-export_type([function_spec/0]).

%% @doc Starts the registry, registered as py_registry.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Makes the table of registered functions, owned by the calling
%% process (the top supervisor), unless it exists: a release upgrade runs
%% the supervisor's init/1 again in the same process.
-spec create_table() -> ok.
create_table() ->
    case ets:whereis(?TABLE) of
        undefined ->
            ?TABLE = ets:new(?TABLE, [named_table, public, set, {read_concurrency, true}]),
            ok;
        _Table ->
            ok
    end.

%% @doc Registers Function under Name, for Python.
-spec register(binary(), function_spec()) -> ok.
register(Name, Function) ->
    gen_server:call(?MODULE, {register, Name, Function}, infinity).

%% @doc Removes Name.
-spec unregister(binary()) -> ok.
unregister(Name) ->
    gen_server:call(?MODULE, {unregister, Name}, infinity).

%% @doc Gives an own-GIL context the registered names, and keeps it in
%% step from now on.
-spec add_context(py_context:context()) -> ok.
add_context(Context) ->
    gen_server:call(?MODULE, {add_context, Context}, infinity).

%% @doc The own-GIL contexts added and not found stopped.
-spec contexts() -> [py_context:context()].
contexts() ->
    gen_server:call(?MODULE, contexts, infinity).

%% @doc The function registered under Name (a binary, or an atom when
%% Python passed an erlang.Atom).
-spec lookup(binary() | atom()) -> {ok, function_spec()} | error.
lookup(Name) when is_atom(Name) ->
    lookup(atom_to_binary(Name, utf8));
lookup(Name) ->
    try ets:lookup(?TABLE, Name) of
        [{_, Function}] -> {ok, Function};
        [] -> reserved(Name)
    catch
        error:badarg -> error
    end.

%% @doc Whether Name (a binary) is reserved for the application's own
%% functions.
-spec is_reserved(binary()) -> boolean().
is_reserved(<<?RESERVED_PREFIX, _/binary>>) -> true;
is_reserved(_Name) -> false.

%% @doc Makes Python's set of names that of the table (gen_server
%% callback).
-spec init([]) -> {ok, #{contexts := [py_context:context()]}}.
init([]) ->
    case names() of
        [] ->
            {ok, _} = py:call(erlang, '_clear_registered', [], #{}, infinity),
            ok;
        Names ->
            lists:foreach(fun(Name) -> set_in_python(Name, true) end, Names)
    end,
    {ok, #{contexts => []}}.

%% @doc Registers and unregisters; answers `{error, unknown_call}' to
%% anything else (gen_server callback).
-spec handle_call(term(), gen_server:from(), map()) -> {reply, ok | {error, unknown_call}, map()}.
handle_call({register, Name, Function}, _From, #{contexts := Contexts} = State) ->
    true = ets:insert(?TABLE, {Name, Function}),
    set_in_python(Name, true),
    {reply, ok, State#{contexts := set_in_contexts(Contexts, [Name], true)}};
handle_call({unregister, Name}, _From, #{contexts := Contexts} = State) ->
    set_in_python(Name, false),
    Live = set_in_contexts(Contexts, [Name], false),
    true = ets:delete(?TABLE, Name),
    {reply, ok, State#{contexts := Live}};
handle_call({add_context, Context}, _From, #{contexts := Contexts} = State) ->
    Running = py_context:running(Contexts),
    {reply, ok, State#{contexts := set_in_contexts([Context], names(), true) ++ Running}};
handle_call(contexts, _From, #{contexts := Contexts} = State) ->
    {reply, py_context:running(Contexts), State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @doc Drops the cast (gen_server callback).
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Request, State) ->
    {noreply, State}.

%% @doc Drops the message (gen_server callback).
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info(_Message, State) ->
    {noreply, State}.

%% The application's own functions, for Python's half of the erlang
%% module.
reserved(<<?RESERVED_PREFIX, "state_get">>) -> {ok, {py_state, py_get}};
reserved(<<?RESERVED_PREFIX, "state_set">>) -> {ok, {py_state, py_set}};
reserved(<<?RESERVED_PREFIX, "state_delete">>) -> {ok, {py_state, py_delete}};
reserved(<<?RESERVED_PREFIX, "state_keys">>) -> {ok, {py_state, py_keys}};
reserved(<<?RESERVED_PREFIX, "state_incr">>) -> {ok, {py_state, py_incr}};
reserved(<<?RESERVED_PREFIX, "put_chars">>) -> {ok, {py_output, put_chars}};
reserved(_Name) -> error.

names() ->
    ets:select(?TABLE, [{{'$1', '_'}, [], ['$1']}]).

%% Sets the names in each context, and returns those not stopped. A call
%% that fails otherwise (overloaded) leaves that context's set behind, with
%% a warning, and the context kept.
set_in_contexts(Contexts, Names, Registered) ->
    [Context || Context <- Contexts, set_in_context(Context, Names, Registered)].

set_in_context(Context, [Name | Names], Registered) ->
    case py:call(Context, erlang, '_set_registered', [Name, Registered], #{timeout => infinity}) of
        {ok, _} ->
            set_in_context(Context, Names, Registered);
        {error, context_stopped} ->
            false;
        {error, Reason} ->
            logger:warning("erlang_python: the registered name ~ts could not be ~ts in a context: ~0p",
                           [Name, case Registered of true -> "set"; false -> "unset" end, Reason],
                           #{domain => [erlang_python]}),
            set_in_context(Context, Names, Registered)
    end;
set_in_context(_Context, [], _Registered) ->
    true.

set_in_python(Name, Registered) ->
    {ok, _} = py:call(erlang, '_set_registered', [Name, Registered], #{}, infinity),
    ok.
