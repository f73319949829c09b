%% @private
%% @doc Calls that return at once: the machinery behind py:spawn_call/5,
%% py:await/2, py:cancel/1 and py:cast/4 (their contract is written in
%% py.erl), and the process that sweeps the table of calls in flight.
%%
%% A spawned call runs py:call in a worker process of its own, linked to
%% the caller: the caller's death kills the worker, and the NIF then
%% interrupts the worker's Python work as it does for any caller that
%% dies. The worker unlinks the caller before it answers with
%% `{py_response, Ref, Result}' and ends, so a caller that traps exits
%% never sees an `'EXIT'' message from it.
%%
%% The table of calls in flight, `{Ref, Caller, Worker, Claims}', is made
%% by the application's top supervisor (so that it outlives this process)
%% and written by callers and workers directly. It decides who answers:
%% when its call is done, the worker adds ?ANSWERED to Claims; a cancel
%% (or an await whose time is up) adds ?CANCELLED. Each reads the value
%% before its own addition in the same atomic ets:update_counter, and only
%% the one that finds 0 goes on: the worker to send the result and delete
%% the entry, the cancel to kill the worker. So exactly one `py_response'
%% is sent. The caller enters the call after spawning the worker; a worker
%% that finishes first enters it itself, already answered, and the caller
%% then finds it there and deletes it. A worker that finds no table (the
%% application is not running) answers. (A counter rather than a state
%% atom changed by ets:select_replace: that compiles a match spec each
%% time, which cost more than the rest of the bookkeeping together.)
%%
%% What stays in the table is the entries of workers that were killed: by
%% their caller's death, or by a cancel (the cancel's claim keeps the dying
%% worker from answering). This process deletes the entries whose
%% worker is dead every ?SWEEP_MS, so a long-lived process making calls
%% leaks nothing, whether or not it awaits them.
%%
%% Workers are plain processes, not supervised: each lives for one call
%% and belongs to its caller (as the handler's async call processes do).
-module(py_calls).
-behaviour(gen_server).

%% The calls.
-export([spawn_call/5, await/2, cancel/1, cast/4]).
%% The sweeper.
-export([create_table/0, start_link/0, sweep/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(TABLE, py_calls).
-define(SWEEP_MS, 5000).
%% What the worker and a cancel add to an entry's claims.
-define(ANSWERED, 1).
-define(CANCELLED, 2).

%%% The calls

%% @doc Starts Module.Function(*Args, **Kwargs) in a worker linked to the
%% caller; its result comes as `{py_response, Ref, Result}'.
-spec spawn_call(py:name(), py:name(), list(), map(), py:opts()) -> reference().
spawn_call(Module, Function, Args, Kwargs, Opts) ->
    Caller = self(),
    Ref = make_ref(),
    Worker = spawn_link(fun() ->
                                Result = py:call(Module, Function, Args, Kwargs, Opts),
                                answer(Caller, Ref, Result)
                        end),
    track(Ref, Caller, Worker),
    Ref.

%% @doc The result of the call Ref, once it comes; on timeout the call is
%% cancelled without a message and `{error, timeout}' is returned.
-spec await(reference(), timeout()) -> term().
await(Ref, Timeout) ->
    receive
        {py_response, Ref, Result} -> Result
    after Timeout ->
        case stop(Ref) of
            stopped -> {error, timeout};
            {answering, Worker} -> late_answer(Ref, Worker);
            %% Unknown, or answered since the time ran out: then the
            %% answer is in the mailbox already (sent before the entry
            %% was deleted).
            not_found -> receive {py_response, Ref, Result} -> Result after 0 -> {error, timeout} end
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
        _ ->
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

%%% The sweeper

%% @doc Makes the table of calls in flight, owned by the calling process
%% (the top supervisor), unless it exists (a release upgrade runs the
%% supervisor's init/1 again).
-spec create_table() -> ok.
create_table() ->
    case ets:whereis(?TABLE) of
        undefined ->
            ?TABLE = ets:new(?TABLE, [named_table, public, set, {write_concurrency, true}]),
            ok;
        _Table ->
            ok
    end.

%% @doc Starts the sweeper, registered as py_calls.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Sweeps now; returns how many entries were deleted.
-spec sweep() -> non_neg_integer().
sweep() ->
    gen_server:call(?MODULE, sweep, infinity).

%% @doc Arms the first sweep (gen_server callback).
-spec init([]) -> {ok, reference()}.
init([]) ->
    {ok, erlang:send_after(?SWEEP_MS, self(), sweep)}.

%% @doc Sweeps on request; answers `{error, unknown_call}' to anything else
%% (gen_server callback).
-spec handle_call(term(), gen_server:from(), reference()) ->
          {reply, non_neg_integer() | {error, unknown_call}, reference()}.
handle_call(sweep, _From, Timer) ->
    {reply, sweep_table(), Timer};
handle_call(_Request, _From, Timer) ->
    {reply, {error, unknown_call}, Timer}.

%% @doc Drops the cast (gen_server callback).
-spec handle_cast(term(), reference()) -> {noreply, reference()}.
handle_cast(_Request, Timer) ->
    {noreply, Timer}.

%% @doc Sweeps every ?SWEEP_MS; drops other messages (gen_server
%% callback).
-spec handle_info(term(), reference()) -> {noreply, reference()}.
handle_info(sweep, _Timer) ->
    _ = sweep_table(),
    {noreply, erlang:send_after(?SWEEP_MS, self(), sweep)};
handle_info(_Message, Timer) ->
    {noreply, Timer}.

%%% Internals

%% Enters the call in the table, unless its worker has answered already
%% (and entered it, answered): then that entry is dropped. Without the
%% application running there is no table, and the call cannot be
%% cancelled.
track(Ref, Caller, Worker) ->
    try ets:insert_new(?TABLE, {Ref, Caller, Worker, 0}) of
        true -> ok;
        false -> _ = delete(Ref), ok
    catch
        error:badarg -> ok
    end.

%% In the worker, its call done: answer unless a cancel came first.
answer(Caller, Ref, Result) ->
    Claim = claim_answer(Caller, Ref),
    unlink(Caller),
    case Claim of
        lost ->
            ok;
        _ ->
            Caller ! {py_response, Ref, Result},
            _ = Claim =:= won andalso delete(Ref),
            ok
    end.

%% `won': the entry is the worker's to delete; `first': the caller has not
%% entered the call yet, and will delete the entry the worker leaves;
%% `lost': a cancel came first; `no_table'.
claim_answer(Caller, Ref) ->
    case claim(Ref, ?ANSWERED) of
        no_entry ->
            try ets:insert_new(?TABLE, {Ref, Caller, self(), ?ANSWERED}) of
                true -> first;
                false -> claim_answer(Caller, Ref)
            catch
                error:badarg -> no_table
            end;
        Claim ->
            Claim
    end.

%% Stops the caller's call Ref, if it is still running and no answer is on
%% its way: then no message comes for it. `{answering, Worker}': the
%% worker has its result and is sending it.
stop(Ref) ->
    Self = self(),
    case lookup(Ref) of
        [{_, Self, Worker, Claims}] when Claims < ?CANCELLED ->
            case claim(Ref, ?CANCELLED) of
                won ->
                    %% Unlinked first: the kill must not reach the caller.
                    unlink(Worker),
                    exit(Worker, kill),
                    stopped;
                lost ->
                    {answering, Worker};
                no_entry ->
                    %% Answered and deleted since the lookup.
                    not_found
            end;
        _ ->
            not_found
    end.

%% Adds Claim to Ref's claims: `won' if nobody had claimed it, `lost' if
%% somebody had, `no_entry' if there is none (or no table).
claim(Ref, Claim) ->
    try ets:update_counter(?TABLE, Ref, [{4, 0}, {4, Claim}]) of
        [0, _] -> won;
        [_, _] -> lost
    catch
        error:badarg -> no_entry
    end.

lookup(Ref) ->
    try ets:lookup(?TABLE, Ref) catch error:badarg -> [] end.

delete(Ref) ->
    try ets:delete(?TABLE, Ref) catch error:badarg -> false end.

%% The worker claimed its entry just as the time ran out: its
%% answer comes (unless something else killed it).
late_answer(Ref, Worker) ->
    Monitor = monitor(process, Worker),
    receive
        {py_response, Ref, Result} ->
            demonitor(Monitor, [flush]),
            Result;
        {'DOWN', Monitor, process, Worker, _} ->
            receive {py_response, Ref, Result} -> Result after 0 -> {error, timeout} end
    end.

%% An entry is dead once its worker is.
sweep_table() ->
    Dead = ets:foldl(fun({_, _, Worker, _} = Entry, Acc) ->
                             case is_process_alive(Worker) of
                                 true -> Acc;
                                 false -> [Entry | Acc]
                             end
                     end, [], ?TABLE),
    %% delete_object: an entry that changed meanwhile is not touched.
    lists:foreach(fun(Entry) -> ets:delete_object(?TABLE, Entry) end, Dead),
    length(Dead).

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
