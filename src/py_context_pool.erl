%% @private
%% @doc The contexts of py:context/0,1: a fixed set of contexts, owned by
%% this process (under the application's supervisor), that callers share.
%% A process is given the same context every time (chosen by a hash of its
%% pid), so what it defines there stays where it finds it again.
%%
%% The set is started by py:start_contexts/1, by py:context/0,1 on first
%% use (with the defaults), or at the application's start when its
%% environment has `context_pool' (a map as start_contexts/1 takes). The
%% contexts are read from a persistent term: choosing one costs no message.
-module(py_context_pool).
-behaviour(gen_server).

-export([start_link/0, start_contexts/1, stop_contexts/0, contexts_started/0, context/0,
         context/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(KEY, ?MODULE).

%% @doc Starts the pool's owner, registered as py_context_pool.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Starts the contexts, unless started: `count' (default: the
%% schedulers online) contexts of `mode' (default `worker').
-spec start_contexts(map()) -> {ok, [py_context:context()]} | {error, term()}.
start_contexts(Opts) when is_map(Opts) ->
    case contexts() of
        undefined -> gen_server:call(?MODULE, {start, Opts}, infinity);
        Contexts -> {ok, tuple_to_list(Contexts)}
    end;
start_contexts(_Opts) ->
    {error, {badarg, opts}}.

%% @doc Stops the contexts, if started.
-spec stop_contexts() -> ok.
stop_contexts() ->
    gen_server:call(?MODULE, stop, infinity).

-spec contexts_started() -> boolean().
contexts_started() ->
    contexts() =/= undefined.

%% @doc The calling process's context, starting the contexts if need be.
-spec context() -> py_context:context() | {error, term()}.
context() ->
    with_contexts(fun(Contexts) ->
        element(erlang:phash2(self(), tuple_size(Contexts)) + 1, Contexts)
    end).

%% @doc The Nth context (from 1), starting the contexts if need be.
-spec context(pos_integer()) -> py_context:context() | {error, term()}.
context(N) ->
    with_contexts(fun
        (Contexts) when is_integer(N), N >= 1, N =< tuple_size(Contexts) -> element(N, Contexts);
        (_Contexts) -> {error, {badarg, index}}
    end).

%% @private
init([]) ->
    process_flag(trap_exit, true),
    case application:get_env(erlang_python, context_pool) of
        {ok, Opts} ->
            case start(Opts) of
                {ok, _} -> {ok, #{}};
                {error, Reason} -> {stop, {context_pool, Reason}}
            end;
        undefined ->
            {ok, #{}}
    end.

%% @private
handle_call({start, Opts}, _From, State) ->
    Reply = case contexts() of
        undefined -> start(Opts);
        Contexts -> {ok, tuple_to_list(Contexts)}
    end,
    {reply, Reply, State};
handle_call(stop, _From, State) ->
    stop(),
    {reply, ok, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
handle_cast(_Request, State) ->
    {noreply, State}.

%% @private
handle_info(_Message, State) ->
    {noreply, State}.

%% @private
terminate(_Reason, _State) ->
    stop().

%% Internals

contexts() ->
    persistent_term:get(?KEY, undefined).

with_contexts(Use) ->
    case contexts() of
        undefined ->
            case start_contexts(#{}) of
                {ok, _} -> Use(contexts());
                Error -> Error
            end;
        Contexts ->
            Use(Contexts)
    end.

start(Opts) when is_map(Opts) ->
    Defaults = #{count => erlang:system_info(schedulers_online), mode => worker},
    case maps:merge(Defaults, Opts) of
        #{count := Count, mode := Mode} = All
          when map_size(All) =:= 2, is_integer(Count), Count > 0 ->
            make(Count, Mode, []);
        _ ->
            {error, {badarg, opts}}
    end;
start(_Opts) ->
    {error, {badarg, opts}}.

make(0, _Mode, Contexts) ->
    persistent_term:put(?KEY, list_to_tuple(Contexts)),
    {ok, Contexts};
make(Count, Mode, Contexts) ->
    case py_context:new(#{mode => Mode}) of
        {ok, Context} ->
            make(Count - 1, Mode, [Context | Contexts]);
        Error ->
            lists:foreach(fun py_context:stop/1, Contexts),
            Error
    end.

stop() ->
    case contexts() of
        undefined ->
            ok;
        Contexts ->
            persistent_term:erase(?KEY),
            lists:foreach(fun py_context:stop/1, tuple_to_list(Contexts))
    end.
