%% @private
%% @doc Top supervisor of erlang_python: the registry of functions that
%% Python may call, and the coordinator that spawns their handler
%% processes. Calls from Erlang into Python need no process of their own
%% (they run in the caller).
%%
%% The supervisor owns the registry's table, so that registrations
%% outlive a crash of the registry.
-module(erlang_python_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).

%% @doc Starts the supervisor, registered as erlang_python_sup.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc Makes the registry's table and gives the children (supervisor
%% callback).
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    ok = py_registry:create_table(),
    Children = [#{id => py_registry, start => {py_registry, start_link, []}},
                #{id => py_coordinator, start => {py_coordinator, start_link, []}}],
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, Children}}.
