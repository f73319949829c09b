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
-module(py_coordinator).
-behaviour(gen_server).

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

-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({unbound_request, Request}, State) when element(1, Request) =:= erlang_call;
                                              element(1, Request) =:= erlang_async_call;
                                              element(1, Request) =:= erlang_async_cancel ->
    Worker = element(2, Request),
    %% Requests sent before the first was handled come here too (a thread
    %% starting with several async calls): they go to the handler bound for
    %% the first. A cancel follows its call here, so finds it bound.
    _ = case {py_nif:worker_handler(Worker), element(1, Request)} of
            {{ok, Handler}, _} ->
                Handler ! Request;
            {none, erlang_async_cancel} ->
                ok;
            {none, _} ->
                Handler = py_handler:start_link(Worker),
                case py_nif:worker_bind(Worker, Handler) of
                    ok -> Handler ! Request;
                    {error, handler_died} -> ok
                end
        end,
    {noreply, State};
handle_info({'EXIT', _Handler, _Reason}, State) ->
    {noreply, State};
handle_info(_Other, State) ->
    {noreply, State}.

-spec terminate(term(), map()) -> ok.
terminate(_Reason, _State) ->
    lists:foreach(fun(Handler) -> exit(Handler, kill) end, linked_handlers()).

%% Every link but the one to the supervisor is a handler.
linked_handlers() ->
    {links, Links} = process_info(self(), links),
    [Parent | _] = get('$ancestors'),
    [Pid || Pid <- Links, Pid =/= whereis(Parent), Pid =/= Parent].
