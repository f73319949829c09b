%% @private
%% @doc Binds thread workers to handler processes. A worker with no handler
%% (its thread's first request, or the first after its handler died) sends
%% its requests here; the coordinator starts a handler under py_handler_sup,
%% binds the worker to it (py_nif:worker_bind/2) and forwards the request.
%% Afterwards the thread sends requests straight to its handler, so the
%% coordinator is on no call's path but a worker's first.
%%
%% The coordinator neither links to nor watches handlers: the supervisor
%% holds them, and each worker monitors its own handler, so a handler's
%% death fails the call it was running. Until it is bound, a worker
%% monitors the coordinator instead: if the coordinator dies with requests
%% in its mailbox, their threads wake with an error. That is also what
%% happens when a handler cannot be started: the coordinator crashes (a
%% broken invariant: py_handler_sup is started before it and outlives it)
%% and is restarted.
%%
%% The messages are those of py_protocol.hrl; any other message is
%% dropped.
-module(py_coordinator).
-behaviour(gen_server).

-include("py_protocol.hrl").

-export([start_link/0, handler_count/0, handlers/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% @doc Starts the coordinator, registered as py_coordinator (the name the
%% C side sends unbound requests to).
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc How many handler processes are alive. Exits if the application is
%% not running.
-spec handler_count() -> non_neg_integer().
handler_count() ->
    proplists:get_value(active, supervisor:count_children(py_handler_sup)).

%% @doc The handler processes alive; none while the application is not
%% running.
-spec handlers() -> [pid()].
handlers() ->
    try supervisor:which_children(py_handler_sup) of
        Children -> [Pid || {_Id, Pid, _Type, _Modules} <- Children, is_pid(Pid)]
    catch
        exit:_ -> []
    end.

%% @doc No state (gen_server callback).
-spec init([]) -> {ok, #{}}.
init([]) ->
    {ok, #{}}.

%% @doc Answers `{error, unknown_call}': the coordinator takes no calls
%% (gen_server callback).
-spec handle_call(term(), gen_server:from(), map()) -> {reply, {error, unknown_call}, map()}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @doc Drops the cast (gen_server callback).
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Request, State) ->
    {noreply, State}.

%% @doc Binds the worker of an unbound request and forwards the request;
%% drops any other message (gen_server callback).
-spec handle_info(unbound_request() | term(), map()) -> {noreply, map()}.
handle_info(?UNBOUND_REQUEST_MSG(Request), State) ->
    ok = forward(Request),
    {noreply, State};
handle_info(_Other, State) ->
    {noreply, State}.

%% Several requests can come here before the first is handled (a thread
%% starting with async calls): the first binds a handler, the rest find it.
-spec forward(request() | term()) -> ok.
forward(?ERLANG_CALL_MSG(Worker, _Serial, _Name, _Args, _Frame) = Call) ->
    bind_and_forward(Worker, Call);
forward(?ERLANG_ASYNC_CALL_MSG(Worker, _Id, _Name, _Args, _Frame) = Call) ->
    bind_and_forward(Worker, Call);
forward(?ERLANG_ASYNC_CANCEL_MSG(Worker, _Id) = Cancel) ->
    %% A cancel follows its call here, so finds the worker bound; unbound,
    %% its handler has died and taken the call with it.
    _ = case py_nif:worker_handler(Worker) of
            {ok, Handler} -> Handler ! Cancel;
            none -> ok
        end,
    ok;
forward(_Other) ->
    ok.

-spec bind_and_forward(worker(), erlang_call() | erlang_async_call()) -> ok.
bind_and_forward(Worker, Request) ->
    case py_nif:worker_handler(Worker) of
        {ok, Handler} ->
            Handler ! Request,
            ok;
        none ->
            {ok, Handler} = py_handler_sup:start_handler(Worker),
            case py_nif:worker_bind(Worker, Handler) of
                ok ->
                    Handler ! Request,
                    ok;
                {error, handler_died} ->
                    %% The worker has failed the request itself.
                    ok
            end
    end.
