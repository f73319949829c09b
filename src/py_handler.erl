%% @private
%% @doc A handler process: runs the Erlang functions that one Python thread
%% calls, and answers through the thread's worker.
%%
%% An `erlang.call' (the thread waits) runs in the handler itself, one at a
%% time. An `erlang.async_call' runs in a process of its own, spawned and
%% monitored here, so any number run at once; cancelling one from Python
%% kills its process.
%%
%% The coordinator spawns the handler on the worker's first request;
%% afterwards the thread sends requests here directly. If the thread stops
%% waiting for an `erlang.call' (the call was interrupted), the late answer
%% is `stale' and the handler ends: the thread has been given a new one.
%% Async calls it spawned run on and still answer.
-module(py_handler).

-export([start_link/1, init/1]).

-define(DEPTH_KEY, '$py_depth').

-spec start_link(reference()) -> pid().
start_link(Worker) ->
    proc_lib:spawn_link(?MODULE, init, [Worker]).

-spec init(reference()) -> ok.
init(Worker) ->
    loop(Worker, #{}).

%% Async: call id => pid of the process running it.
loop(Worker, Async) ->
    receive
        {py_call, _Worker, Serial, Name, Args, Depth} ->
            Reply = run(Name, Args, Depth),
            case py_nif:worker_reply(Worker, Serial, Reply) of
                ok -> loop(Worker, Async);
                stale -> ok
            end;
        {py_async, _Worker, Id, Name, Args, Depth} ->
            Run = fun() -> py_nif:worker_async_reply(Worker, Id, run(Name, Args, Depth)) end,
            {Pid, _} = spawn_opt(Run, [{monitor, [{tag, {py_async_done, Id}}]}]),
            loop(Worker, Async#{Id => Pid});
        {py_async_cancel, Id} ->
            case maps:take(Id, Async) of
                {Pid, Rest} ->
                    exit(Pid, kill),
                    loop(Worker, Rest);
                error ->
                    loop(Worker, Async)
            end;
        {{py_async_done, Id}, _Monitor, process, _Pid, _Reason} ->
            loop(Worker, maps:remove(Id, Async))
    end.

run(Name, Args, Depth) ->
    case py_registry:lookup(Name) of
        {ok, Function} ->
            put(?DEPTH_KEY, Depth),
            try
                {ok, apply_function(Function, Args)}
            catch
                Class:Reason:Stack ->
                    {error, Class, Reason, format_reason(Reason), format_stack(Stack)}
            end;
        error ->
            {unknown, Name}
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
