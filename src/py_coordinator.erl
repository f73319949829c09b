%% @private
%% @doc Spawns a handler process for each thread worker on its first
%% request, and links to it. Handlers trap exits (so that one call process
%% dying does not end them), so when the coordinator stops it kills them:
%% stopping the application ends every handler, which wakes any Python
%% thread waiting on one.
%%
%% Requests go from a thread straight to its handler; only those sent
%% before the handler was bound come here (several, when a thread starts
%% with async calls), and are forwarded. A handler's death reaches its
%% worker through the worker's own monitor.
%%
%% The messages are those of py_protocol.hrl.
-module(py_coordinator).
-behaviour(gen_server).

-include("py_protocol.hrl").

-export([start_link/0, handler_count/0, handlers/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc How many handler processes are alive.
-spec handler_count() -> non_neg_integer().
handler_count() ->
    gen_server:call(?MODULE, handler_count).

%% @doc The handler processes alive; none while the coordinator is not
%% running (or dies while asked).
-spec handlers() -> [pid()].
handlers() ->
    try
        gen_server:call(?MODULE, handlers)
    catch
        exit:_ -> []
    end.

-spec init([]) -> {ok, #{}}.
init([]) ->
    process_flag(trap_exit, true),
    {ok, #{}}.

-spec handle_call(term(), gen_server:from(), map()) ->
    {reply, non_neg_integer() | [pid()] | {error, unknown_call}, map()}.
handle_call(handler_count, _From, State) ->
    {reply, length(linked_handlers()), State};
handle_call(handlers, _From, State) ->
    {reply, linked_handlers(), State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Request, State) ->
    {noreply, State}.

%% @doc Binds the worker of an unbound request and forwards the request
%% (gen_server callback).
-spec handle_info(unbound_request() | term(), map()) -> {noreply, map()}.
handle_info(?UNBOUND_REQUEST_MSG(Request), State) ->
    ok = forward(Request),
    {noreply, State};
handle_info({'EXIT', _Handler, _Reason}, State) ->
    {noreply, State};
handle_info(_Other, State) ->
    {noreply, State}.

%% Several requests can come here before the first is handled (a thread
%% starting with async calls): the first binds a handler, the rest find it.
-spec forward(request() | term()) -> ok.
forward(?ERLANG_CALL_MSG(Worker, _Serial, _Name, _Args, _Depth) = Call) ->
    bind_and_forward(Worker, Call);
forward(?ERLANG_ASYNC_CALL_MSG(Worker, _Id, _Name, _Args, _Depth) = Call) ->
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
            Handler = py_handler:start_link(Worker),
            case py_nif:worker_bind(Worker, Handler) of
                ok ->
                    Handler ! Request,
                    ok;
                {error, handler_died} ->
                    %% The worker has failed the request itself.
                    ok
            end
    end.

-spec terminate(term(), map()) -> ok.
terminate(_Reason, _State) ->
    lists:foreach(fun(Handler) -> exit(Handler, kill) end, linked_handlers()).

%% Every link but the one to the supervisor is a handler.
linked_handlers() ->
    {links, Links} = process_info(self(), links),
    [Parent | _] = get('$ancestors'),
    [Pid || Pid <- Links, Pid =/= whereis(Parent), Pid =/= Parent].
