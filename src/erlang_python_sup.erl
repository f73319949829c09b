%% @private
%% @doc Top supervisor of erlang_python. Calls from Erlang into Python need
%% no process of their own (they run in the caller); calls from Python into
%% Erlang are served by:
%% <ul>
%% <li>py_registry, the functions Python may call, in a table this
%%     supervisor owns (so that it outlives the registry);</li>
%% <li>py_handler_sup, the supervisor of the handler processes that run
%%     those functions, one per thread worker;</li>
%% <li>py_coordinator, which starts a handler for a worker's first request
%%     and binds the worker to it.</li>
%% </ul>
%% py_context_pool owns the contexts of py:context/0, and each context the
%% environment's `contexts' names has a process of its own (py_context);
%% py_stream_sup supervises the streams of py:stream_start/4, found by
%% their references in a table this supervisor owns too. py_pool_agent
%% serves the pools of other nodes that use this one as a member. It also
%% owns the
%% table of the shared state (py_state), which no process serves: callers
%% read and write it directly. Owned here, the tables outlive a crash of
%% any child, and end with the application.
%%
%% The strategy is one_for_one because the children do not depend on each
%% other's processes: handlers read the table, not the registry; the
%% coordinator finds py_handler_sup by name; and each thread worker
%% monitors its own handler (or the coordinator, until it has one), so the
%% death of any of them fails exactly the calls that depended on it. Under
%% rest_for_one, a crash of the registry would kill every handler and fail
%% every call in flight for nothing.
%%
%% The order is the order of need. py_logger (Python's logging into
%% logger) starts first and stops last, so that what Python logs while the
%% others start and stop reaches logger. The registry starts next, so that
%% Python's set of names is in step with the table before any function
%% runs. Children stop in reverse: the coordinator first, so that no
%% handler is started during the stop; then py_handler_sup, which kills
%% every handler, and so wakes every Python thread waiting in erlang.call
%% (the worker's monitor fails its call); the registry, and py_logger,
%% last.
-module(erlang_python_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).

%% @doc Starts the supervisor, registered as erlang_python_sup.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc Makes the tables and gives the children (supervisor callback).
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    ok = py_registry:create_table(),
    ok = py_stream:create_table(),
    ok = py_state:create_table(),
    Children = [#{id => py_logger, start => {py_logger, start_link, []}},
                #{id => py_registry, start => {py_registry, start_link, []}},
                #{id => py_handler_sup, start => {py_handler_sup, start_link, []},
                  type => supervisor, shutdown => infinity},
                #{id => py_coordinator, start => {py_coordinator, start_link, []}},
                #{id => py_stream_sup, start => {py_stream_sup, start_link, []},
                  type => supervisor, shutdown => infinity},
                #{id => py_context_pool, start => {py_context_pool, start_link, []},
                  shutdown => 10000},
                #{id => py_pool_agent, start => {py_pool_agent, start_link, []}}
                | [py_context:child_spec(Opts)
                   || Opts <- application:get_env(erlang_python, contexts, [])]],
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, Children}}.
