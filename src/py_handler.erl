%% @private
%% @doc A handler process: runs the Erlang functions that one Python thread
%% calls, and answers through the thread's worker.
%%
%% Handlers are OTP special processes (proc_lib and sys), started by the
%% coordinator as temporary children of py_handler_sup: they answer system
%% messages (sys:get_state/1 gives the handler's state, sys:suspend/1 and
%% sys:resume/1 hold and release its requests), end when their supervisor
%% does, and drop any message they do not know. Requests are not reported
%% as sys debug events (sys:trace/2 on a handler shows nothing): that would
%% add work to every erlang.call.
%%
%% An `erlang.call' (the thread waits) runs in the handler itself, one at a
%% time. An `erlang.async_call' runs in a process of its own, so any number
%% run at once. That process is linked to the handler until it has
%% answered, so it ends with the handler (the worker then reports the
%% thread's async calls lost, and they are). The handler traps exits: a call
%% process killed before it answered fails only its own call, even while
%% the handler runs a sync call. The supervisor kills its handlers when it
%% stops (brutal_kill: a function that never returns must not hold up an
%% application stop). Cancelling an async call from Python kills its
%% process; a cancel can overtake its request (forwarded by the
%% coordinator), so a cancel for an unknown id is remembered (at most
%% ?MAX_CANCELLED of them, the oldest dropped first).
%%
%% The coordinator starts the handler on the worker's first request;
%% afterwards the thread sends requests here directly. If the thread stops
%% waiting for an `erlang.call' (the call was interrupted), the late answer
%% is `stale' and the handler ends unless the worker was bound to it again
%% meanwhile.
%%
%% The messages and replies are those of py_protocol.hrl.
-module(py_handler).

-include("py_protocol.hrl").

-export([start_link/1]).
%% proc_lib and sys callbacks
-export([init/2, system_continue/3, system_terminate/4, system_code_change/4]).

-define(FRAME_KEY, '$py_frame').
-define(MAX_CANCELLED, 1024).
%% The tag of the monitor on an async call's process.
-define(ASYNC_DONE(Id), {py_async_done, Id}).

-record(state, {worker :: worker(),
                parent :: pid(),
                debug = [] :: [sys:dbg_opt()],
                calls = #{} :: #{pos_integer() => pid()},
                cancelled = #{} :: #{pos_integer() => true}}).

%% @doc Starts the handler of Worker, linked to the caller (its
%% supervisor).
-spec start_link(worker()) -> {ok, pid()}.
start_link(Worker) ->
    proc_lib:start_link(?MODULE, init, [Worker, self()]).

%% @doc The handler process's entry point, for proc_lib.
-spec init(worker(), pid()) -> ok.
init(Worker, Parent) ->
    process_flag(trap_exit, true),
    proc_lib:init_ack(Parent, {ok, self()}),
    loop(#state{worker = Worker, parent = Parent}).

%% @doc The handler resumes after a system message (sys).
-spec system_continue(pid(), [sys:dbg_opt()], #state{}) -> ok.
system_continue(_Parent, Debug, State) ->
    loop(State#state{debug = Debug}).

%% @doc The handler is stopped through sys (sys:terminate/2). Its
%% supervisor's exit signal comes as an `'EXIT'' message instead.
-spec system_terminate(term(), pid(), [sys:dbg_opt()], #state{}) -> no_return().
system_terminate(Reason, _Parent, _Debug, _State) ->
    exit(Reason).

%% @doc A code change keeps the state: it has had one shape so far.
-spec system_code_change(#state{}, module(), term(), term()) -> {ok, #state{}}.
system_code_change(State, _Module, _OldVsn, _Extra) ->
    {ok, State}.

loop(#state{worker = Worker, parent = Parent, calls = Calls} = State) ->
    receive
        ?ERLANG_CALL_MSG(_Worker, Serial, Name, Args, Frame) ->
            Reply = run(Name, Args, Frame),
            case py_nif:worker_reply(Worker, Serial, Reply) =:= ok orelse
                py_nif:worker_handler(Worker) =:= {ok, self()} of
                true -> loop(State);
                false -> ok
            end;
        ?ERLANG_ASYNC_CALL_MSG(_Worker, Id, Name, Args, Frame) ->
            loop(start_async(Id, Name, Args, Frame, State));
        ?ERLANG_ASYNC_CANCEL_MSG(_Worker, Id) ->
            loop(cancel(Id, State));
        {?ASYNC_DONE(Id), _Monitor, process, _Pid, Reason} ->
            _ = Reason =:= normal orelse not is_map_key(Id, Calls) orelse
                py_nif:worker_async_reply(Worker, Id, died(Reason)),
            loop(State#state{calls = maps:remove(Id, Calls)});
        {system, From, Request} ->
            sys:handle_system_msg(Request, From, Parent, ?MODULE, State#state.debug, State);
        {'EXIT', Parent, Reason} ->
            exit(Reason);
        _Other ->
            %% Exits of call processes (trapped), and stray messages.
            loop(State)
    end.

start_async(Id, _Name, _Args, _Frame, #state{cancelled = Cancelled} = State)
  when is_map_key(Id, Cancelled) ->
    State#state{cancelled = maps:remove(Id, Cancelled)};
start_async(Id, Name, Args, Frame, #state{worker = Worker, calls = Calls} = State) ->
    Handler = self(),
    Run = fun() ->
              py_nif:worker_async_reply(Worker, Id, run(Name, Args, Frame)),
              unlink(Handler)
          end,
    {Pid, _} = spawn_opt(Run, [link, {monitor, [{tag, ?ASYNC_DONE(Id)}]}]),
    State#state{calls = Calls#{Id => Pid}}.

%% An unknown id: its request is still on its way, or it has already
%% answered (then the entry is never used, and ages out).
cancel(Id, #state{calls = Calls, cancelled = Cancelled} = State) ->
    case maps:take(Id, Calls) of
        {Pid, Rest} ->
            exit(Pid, kill),
            State#state{calls = Rest};
        error when map_size(Cancelled) >= ?MAX_CANCELLED ->
            Oldest = lists:min(maps:keys(Cancelled)),
            State#state{cancelled = maps:remove(Oldest, Cancelled#{Id => true})};
        error ->
            State#state{cancelled = Cancelled#{Id => true}}
    end.

%% The answer for a call whose process was killed before it answered.
-spec died(term()) -> reply().
died(Reason) ->
    ?REPLY_ERROR(exit, Reason, format_reason(Reason), []).

-spec run(function_name(), list(), frame()) -> reply().
run(Name, Args, Frame) ->
    case py_registry:lookup(Name) of
        {ok, Function} ->
            put(?FRAME_KEY, Frame),
            try
                ?REPLY_OK(apply_function(Function, Args))
            catch
                Class:Reason:Stack ->
                    ?REPLY_ERROR(Class, Reason, format_reason(Reason), format_stack(Stack))
            end;
        error ->
            ?REPLY_UNKNOWN(Name)
    end.

apply_function({Module, Function}, Args) ->
    Module:Function(Args);
apply_function(Fun, Args) ->
    Fun(Args).

format_reason(Reason) ->
    unicode:characters_to_binary(io_lib:format("~tp", [Reason])).

%% The frames of the function, without this module's own below them.
format_stack(Stack) ->
    Own = fun(Frame) -> element(1, Frame) =/= ?MODULE end,
    [unicode:characters_to_binary(format_frame(Frame)) || Frame <- lists:takewhile(Own, Stack)].

format_frame({Module, Function, Arity, Location}) when is_integer(Arity) ->
    io_lib:format("~ts:~ts/~b~ts", [atom_to_list(Module), atom_to_list(Function), Arity,
                                    format_location(Location)]);
format_frame({Module, Function, Args, Location}) when is_list(Args) ->
    format_frame({Module, Function, length(Args), Location}).

format_location(Location) ->
    case {proplists:get_value(file, Location), proplists:get_value(line, Location)} of
        {undefined, _} -> "";
        {File, undefined} -> io_lib:format(" (~ts)", [File]);
        {File, Line} -> io_lib:format(" (~ts:~b)", [File, Line])
    end.
