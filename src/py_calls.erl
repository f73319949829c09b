%% @private
%% @doc Calls that return at once: the machinery behind py:spawn_call/5,
%% py:await/2, py:cancel/1 and py:cast/4 (their contract is written in
%% py.erl).
%%
%% A spawned call runs py:call in a worker process of its own, linked to
%% the caller: the caller's death kills the worker, and the NIF then
%% interrupts the worker's Python work as it does for any caller that
%% dies. The worker unlinks the caller before it answers with
%% `{py_response, Ref, Result}' and ends, so a caller that traps exits
%% never sees an `'EXIT'' message from it.
%%
%% Each call has a claim, a one-counter atomics array that the worker and
%% the caller share: when its call is done the worker turns it from 0 to
%% ?ANSWERED, a cancel (or an await whose time is up) from 0 to ?CANCELLED,
%% each with one compare-and-exchange. Only the one that finds 0 goes on:
%% the worker to send the result, the cancel to kill the worker. So
%% exactly one `py_response' is sent.
%%
%% The caller keeps its calls, Ref to {Worker, Claim}, in its process
%% dictionary: only it may cancel or await them, and they go when it
%% dies. await/2 and cancel/1 drop the entry they are done with. The
%% entries of calls answered but never awaited (a gen_server takes the
%% message in handle_info) are dropped by spawn_call/5 itself whenever the
%% calls kept reach twice as many as were running at the last such pruning
%% (at least ?MIN_PRUNE_AT): the record stays within twice the calls
%% running, and pruning costs O(1) a call over time.
%%
%% (Before this, the calls lived in an ETS table owned by the top
%% supervisor, swept by a process for the entries of killed workers. The
%% three table operations a call made cost about 1 us, a third of a
%% py:call of math.sqrt; the process dictionary and an atomics array cost
%% a fraction of that, and need no process and no shared lock.)
%%
%% Workers are plain processes, not supervised: each lives for one call
%% and belongs to its caller (as the handler's async call processes do).
-module(py_calls).

-export([spawn_call/5, spawn_run/1, await/2, cancel/1, cast/4]).

-define(CALLS_KEY, '$py_calls').
-define(MIN_PRUNE_AT, 64).
%% The claim's values.
-define(RUNNING, 0).
-define(ANSWERED, 1).
-define(CANCELLED, 2).

-type calls() :: {PruneAt :: pos_integer(), #{reference() => {pid(), atomics:atomics_ref()}}}.

%% @doc Starts Module.Function(*Args, **Kwargs) in a worker linked to the
%% caller; its result comes as `{py_response, Ref, Result}'.
-spec spawn_call(py:name(), py:name(), list(), map(), py:opts()) -> reference().
spawn_call(Module, Function, Args, Kwargs, Opts) ->
    spawn_run(fun() -> py:call(Module, Function, Args, Kwargs, Opts) end).

%% @doc Runs `Call' in a worker linked to the caller, as spawn_call/5 runs
%% its call (a pool's call, for one).
-spec spawn_run(fun(() -> term())) -> reference().
spawn_run(Call) ->
    Caller = self(),
    Ref = make_ref(),
    Claim = atomics:new(1, []),
    Worker = spawn_link(fun() ->
                                Result = Call(),
                                Won = atomics:compare_exchange(Claim, 1, ?RUNNING, ?ANSWERED),
                                unlink(Caller),
                                _ = Won =:= ok andalso Caller ! {py_response, Ref, Result},
                                ok
                        end),
    remember(Ref, Worker, Claim),
    Ref.

%% @doc The result of the call Ref, once it comes; on timeout the call is
%% cancelled without a message and `{error, timeout}' is returned.
-spec await(reference(), timeout()) -> term().
await(Ref, Timeout) ->
    receive
        {py_response, Ref, Result} ->
            forget(Ref),
            Result
    after Timeout ->
        case stop(Ref) of
            stopped ->
                {error, timeout};
            {answering, Worker} ->
                late_answer(Ref, Worker);
            not_found ->
                %% Unknown, or no call of this process.
                {error, timeout}
        end
    end.

%% @doc Cancels the caller's call Ref, which then answers
%% `{error, cancelled}'.
-spec cancel(reference()) -> ok | {error, not_found}.
cancel(Ref) ->
    case stop(Ref) of
        stopped ->
            self() ! {py_response, Ref, {error, cancelled}},
            ok;
        {answering, _Worker} ->
            {error, not_found};
        not_found ->
            {error, not_found}
    end.

%% @doc Runs the call in a process of its own, not linked to the caller;
%% an error is logged.
-spec cast(py:name(), py:name(), list(), map()) -> ok.
cast(Module, Function, Args, Kwargs) ->
    _ = spawn(fun() ->
                      case py:call(Module, Function, Args, Kwargs) of
                          {ok, _} -> ok;
                          {error, Reason} -> log_cast_error(Module, Function, Reason)
                      end
              end),
    ok.

%%% Internals

%% Stops the caller's call Ref if it is still running: then no message
%% comes for it. `{answering, Worker}': the worker has claimed the answer
%% (its message is here, or on its way).
stop(Ref) ->
    case lookup(Ref) of
        {ok, {Worker, Claim}} ->
            case atomics:compare_exchange(Claim, 1, ?RUNNING, ?CANCELLED) of
                ok ->
                    forget(Ref),
                    %% Unlinked first: the kill must not reach the caller.
                    unlink(Worker),
                    exit(Worker, kill),
                    stopped;
                ?ANSWERED ->
                    {answering, Worker};
                ?CANCELLED ->
                    not_found
            end;
        error ->
            not_found
    end.

%% The worker claimed the answer just as the time ran out: it comes
%% (unless something else killed the worker).
late_answer(Ref, Worker) ->
    forget(Ref),
    Monitor = monitor(process, Worker),
    receive
        {py_response, Ref, Result} ->
            demonitor(Monitor, [flush]),
            Result;
        {'DOWN', Monitor, process, Worker, _} ->
            receive {py_response, Ref, Result} -> Result after 0 -> {error, timeout} end
    end.

remember(Ref, Worker, Claim) ->
    {PruneAt, Calls} = calls(),
    Kept = Calls#{Ref => {Worker, Claim}},
    case map_size(Kept) > PruneAt of
        false ->
            put(?CALLS_KEY, {PruneAt, Kept});
        true ->
            Running = maps:filter(fun(_, Call) -> running(Call) end, Kept),
            put(?CALLS_KEY, {max(?MIN_PRUNE_AT, 2 * map_size(Running)), Running})
    end.

%% Neither answered nor cancelled, and the worker alive (something other
%% than a cancel may have killed it).
running({Worker, Claim}) ->
    atomics:get(Claim, 1) =:= ?RUNNING andalso is_process_alive(Worker).

forget(Ref) ->
    case get(?CALLS_KEY) of
        {PruneAt, Calls} when is_map_key(Ref, Calls) ->
            put(?CALLS_KEY, {PruneAt, maps:remove(Ref, Calls)});
        _ ->
            ok
    end.

lookup(Ref) ->
    {_, Calls} = calls(),
    maps:find(Ref, Calls).

-spec calls() -> calls().
calls() ->
    case get(?CALLS_KEY) of
        undefined -> {?MIN_PRUNE_AT, #{}};
        Calls -> Calls
    end.

log_cast_error(Module, Function, Reason) ->
    logger:error("erlang_python: py:cast(~0p, ~0p, ...) failed: ~0p~ts",
                 [Module, Function, Reason, traceback()],
                 #{domain => [erlang_python], py_cast => {Module, Function},
                   py_error => Reason}).

traceback() ->
    case py:last_traceback() of
        undefined -> "";
        Traceback -> ["\n", Traceback]
    end.
