%% @private
%% @doc One stream of py:stream_start/4: the process that hands the items
%% of a Python iterable to its owner as messages, no faster than the owner
%% acknowledges them when the stream has a window.
%%
%% The iterable is held by reference (a Source of priv/python/
%% erlang_python/streams.py), and its items are taken a batch at a time, at
%% most as many as the window has room for. Each batch is taken by a
%% short-lived puller process; Python sends the items to this process as
%% they are produced, in numbered groups that none waits in for more than
%% about a millisecond (c_src/stream.c), and this process hands each item
%% to the owner, in order (groups can come out of order: they are sent from
%% more than one thread). When the take returns, the puller reports how many
%% items it sent and how it ended; once that many have been handed on, this
%% process sends `done' or the error, or asks for the next batch. So
%% between batches nothing holds a dirty scheduler or a thread, and this
%% process stays free to take acks, a cancel or the owner's death while a
%% batch is being made. Stopping a stream kills the puller first (the
%% Python work of a dead caller is interrupted), waits until it is gone,
%% then closes the Source, so that the generator's `finally' blocks run.
%%
%% The window counts the items handed to the owner and not yet
%% acknowledged; this process hands them on itself, so an ack can never
%% come before the item it acknowledges.
%%
%% Streams are found by their reference in a public table that the
%% application's supervisor owns; each stream removes its own row when it
%% ends.
-module(py_stream).
-behaviour(gen_server).

-export([create_table/0, start/5, ack/2, cancel/1]).
-export([start_link/1]).
-export([init/1, handle_continue/2, handle_call/3, handle_cast/2, handle_info/2,
         terminate/2]).

-define(TABLE, py_streams).
%% Items asked of Python at a time, at most.
-define(BATCH, 1024).
-define(STREAMS, 'erlang_python.streams').

-record(stream, {ref :: reference(),
                 owner :: pid(),
                 target :: {py:name(), py:name(), list(), map()},
                 window :: pos_integer() | infinity,
                 source :: py:ref() | undefined,
                 unacked = 0 :: non_neg_integer(),
                 %% Items handed to the owner so far, and groups that came
                 %% before their turn, by the number of their first item.
                 forwarded = 0 :: non_neg_integer(),
                 early = #{} :: #{non_neg_integer() => [term()]},
                 %% The batch being taken, from item number First.
                 pull :: {running, pid(), reference(), First :: non_neg_integer()}
                       | {reported, First :: non_neg_integer(), Sent :: non_neg_integer(),
                          more | done | {failed, term()}}
                       | undefined}).

%% @doc Makes the table of streams; from the supervisor's init.
-spec create_table() -> ok.
create_table() ->
    ?TABLE = ets:new(?TABLE, [set, public, named_table, {read_concurrency, true}]),
    ok.

%% @doc Starts a stream of Module.Function(*Args, **Kwargs) for Owner.
-spec start(py:name(), py:name(), list(), map(), #{owner := pid(),
                                                   window := pos_integer() | infinity}) ->
          {ok, reference()} | {error, term()}.
start(Module, Function, Args, Kwargs, #{owner := Owner, window := Window}) ->
    Ref = make_ref(),
    Spec = #stream{ref = Ref, owner = Owner, target = {Module, Function, Args, Kwargs},
                   window = Window},
    case supervisor:start_child(py_stream_sup, [Spec]) of
        {ok, _} -> {ok, Ref};
        {error, _} = Error -> Error
    end.

%% @doc Acknowledges Count items of the stream Ref.
-spec ack(reference(), pos_integer()) -> ok.
ack(Ref, Count) ->
    case whereis_stream(Ref) of
        {ok, Pid} -> gen_server:cast(Pid, {ack, Count});
        error -> ok
    end.

%% @doc Ends the stream Ref; returns once it has ended.
-spec cancel(reference()) -> ok.
cancel(Ref) ->
    case whereis_stream(Ref) of
        {ok, Pid} ->
            try gen_server:call(Pid, cancel, infinity)
            catch exit:{Reason, _} when Reason =:= noproc; Reason =:= normal -> ok
            end;
        error ->
            ok
    end.

whereis_stream(Ref) ->
    case ets:lookup(?TABLE, Ref) of
        [{Ref, Pid}] -> {ok, Pid};
        [] -> error
    end.

%% @private
-spec start_link(#stream{}) -> {ok, pid()}.
start_link(Stream) ->
    gen_server:start_link(?MODULE, Stream, []).

%%% gen_server callbacks

%% @private
init(#stream{ref = Ref, owner = Owner} = S) ->
    process_flag(trap_exit, true),
    true = ets:insert(?TABLE, {Ref, self()}),
    erlang:monitor(process, Owner),
    {ok, S, {continue, pull}}.

%% @private
handle_continue(pull, S) ->
    {noreply, maybe_pull(S)}.

%% @private
handle_call(cancel, _From, S) ->
    {stop, normal, ok, stop_python(S)};
handle_call(_Request, _From, S) ->
    {reply, {error, unknown_request}, S}.

%% @private
handle_cast({ack, Count}, #stream{unacked = Unacked} = S) ->
    %% More than are unacknowledged counts as all of them.
    {noreply, maybe_pull(S#stream{unacked = Unacked - min(Count, Unacked)})};
handle_cast(_Request, S) ->
    {noreply, S}.

%% @private
handle_info({py_stream_items, Ref, First, Items}, #stream{ref = Ref, early = Early} = S) ->
    settle(forward_in_order(S#stream{early = Early#{First => Items}}));
handle_info({opened, Pid, Source}, #stream{pull = {running, Pid, _, _}} = S) ->
    {noreply, S#stream{source = Source}};
handle_info({pulled, Pid, Source, Sent, Status}, #stream{pull = {running, Pid, Mon, First}} = S) ->
    erlang:demonitor(Mon, [flush]),
    settle(S#stream{source = Source, pull = {reported, First, Sent, Status}});
handle_info({'DOWN', _, process, Owner, _}, #stream{owner = Owner} = S) ->
    {stop, normal, stop_python(S)};
handle_info({'DOWN', Mon, process, Pid, Reason}, #stream{pull = {running, Pid, Mon, _}} = S) ->
    %% A puller that died without reporting (it never should).
    S#stream.owner ! {py_stream, S#stream.ref, {error, {puller_died, Reason}}},
    {stop, normal, close(S#stream{pull = undefined})};
handle_info({'EXIT', _, Reason}, S) ->
    {stop, Reason, stop_python(S)};
handle_info(_Message, S) ->
    {noreply, S}.

%% @private
terminate(_Reason, #stream{ref = Ref} = S) ->
    _ = stop_python(S),
    ets:delete(?TABLE, Ref),
    ok.

%%% Internals

%% Hands the owner every group whose turn has come, oldest item first
%% (groups are newest first).
forward_in_order(#stream{forwarded = Forwarded, early = Early} = S) ->
    case maps:take(Forwarded, Early) of
        {Items, Rest} ->
            #stream{ref = Ref, owner = Owner, unacked = Unacked} = S,
            N = lists:foldr(fun(Item, K) -> Owner ! {py_stream, Ref, {data, Item}}, K + 1 end,
                            0, Items),
            forward_in_order(S#stream{forwarded = Forwarded + N, early = Rest,
                                      unacked = Unacked + N});
        error ->
            S
    end.

%% Once every item of a reported batch has been handed on: the next batch,
%% or the end.
settle(#stream{pull = {reported, First, Sent, Status}, forwarded = Forwarded} = S)
  when Forwarded >= First + Sent ->
    #stream{ref = Ref, owner = Owner} = S,
    Settled = S#stream{pull = undefined},
    case Status of
        more ->
            {noreply, maybe_pull(Settled)};
        done ->
            Owner ! {py_stream, Ref, done},
            {stop, normal, close(Settled)};
        {failed, Reason} ->
            Owner ! {py_stream, Ref, {error, Reason}},
            {stop, normal, close(Settled)}
    end;
settle(S) ->
    {noreply, S}.

%% Starts a puller if none runs and the window has room.
maybe_pull(#stream{pull = undefined, window = Window, unacked = Unacked} = S)
  when Window =:= infinity; Unacked < Window ->
    Count = case Window of
                infinity -> ?BATCH;
                _ -> min(?BATCH, Window - Unacked)
            end,
    Self = self(),
    #stream{ref = Ref, source = Source, target = Target, forwarded = First} = S,
    {Pid, Mon} = spawn_monitor(fun() -> pull(Self, Ref, Source, Target, Count, First) end),
    S#stream{pull = {running, Pid, Mon, First}};
maybe_pull(S) ->
    S.

%% The puller: opens the Source on the first batch, has it send up to
%% Count items to this process (Stream), numbered from First, and reports
%% how many it sent and how the iterable ended.
pull(Stream, Ref, Source0, Target, Count, First) ->
    Opened = case Source0 of
                 undefined -> opened(Stream, open_source(Target));
                 _ -> {ok, Source0}
             end,
    Report = case Opened of
                 {ok, Source} ->
                     {Source, take(Source, [Count, Stream, Ref, First])};
                 {error, Reason} ->
                     {undefined, {0, {failed, Reason}}}
             end,
    {Source1, {Sent, Status}} = Report,
    Stream ! {pulled, self(), Source1, Sent, Status}.

take(Source, Args) ->
    case py:call_method(Source, take, Args, #{}, infinity) of
        {ok, {Sent, failed}} ->
            {error, Reason} = py:call_method(Source, failure, [], #{}, infinity),
            {Sent, {failed, Reason}};
        {ok, {Sent, Status}} ->
            {Sent, Status};
        {error, Reason} ->
            {0, {failed, Reason}}
    end.

%% A new Source is reported at once: a stop that kills the puller while
%% it takes the first batch must still close it.
opened(Stream, {ok, Source} = Opened) ->
    Stream ! {opened, self(), Source},
    Opened;
opened(_Stream, Error) ->
    Error.

%% A Source over what Module.Function(*Args, **Kwargs) returns, made by
%% py:call itself (its lookup of names, its errors) and held by reference.
open_source({Module, Function, Args, Kwargs}) ->
    Forever = #{return => ref, timeout => infinity},
    case py:call(Module, Function, Args, Kwargs, Forever) of
        {ok, Iterable} ->
            try py:call(?STREAMS, 'Source', [Iterable], #{}, Forever)
            after py:release(Iterable)
            end;
        Error ->
            Error
    end.

%% Kills a running puller (which interrupts its Python work), waits until
%% it is gone, and closes the Source.
stop_python(#stream{pull = {running, Pid, Mon, _}} = S) ->
    exit(Pid, kill),
    receive {'DOWN', Mon, process, Pid, _} -> ok end,
    %% The puller's report of a Source it opened came before its 'DOWN'.
    Source = receive {opened, Pid, Opened} -> Opened after 0 -> S#stream.source end,
    stop_python(S#stream{pull = undefined, source = Source});
stop_python(S) ->
    close(S).

close(#stream{source = undefined} = S) ->
    S;
close(#stream{source = Source} = S) ->
    case py:call_method(Source, close, [], #{}, infinity) of
        {ok, _} -> ok;
        {error, Reason} -> logger:notice("erlang_python: closing a stream failed: ~0p", [Reason])
    end,
    _ = py:release(Source),
    S#stream{source = undefined}.
