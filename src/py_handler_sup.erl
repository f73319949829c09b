%% @private
%% @doc The supervisor of the handler processes (py_handler), one per
%% thread worker that has called Erlang. The coordinator starts a handler
%% here for a worker's first request; handlers are `temporary': one that
%% dies is not restarted (its worker's monitor fails the call it was
%% running, and the worker's next request has the coordinator start a new
%% one). Handlers are killed, not asked, when this supervisor stops: one may
%% be running a function that never returns, and its death is what wakes
%% the Python thread waiting for it.
-module(py_handler_sup).
-behaviour(supervisor).

-export([start_link/0, start_handler/1]).
-export([init/1]).

%% @doc Starts the supervisor, registered as py_handler_sup.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc Starts a handler for Worker.
-spec start_handler(reference()) -> supervisor:startchild_ret().
start_handler(Worker) ->
    supervisor:start_child(?MODULE, [Worker]).

%% @doc The supervisor's specification (supervisor callback).
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Handler = #{id => py_handler, start => {py_handler, start_link, []},
                restart => temporary, shutdown => brutal_kill, type => worker,
                modules => [py_handler]},
    {ok, {#{strategy => simple_one_for_one}, [Handler]}}.
