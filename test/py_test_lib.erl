%% What the suites share: a help module, compiled by Common Test with them.
%%
%% Tests wait for evidence, not for time: every wait here ends as soon as
%% what it waits for is seen, and fails the case, naming what it waited
%% for, once its time limit passes. The limits grow with the cases' own
%% (scripts/run-tests.sh passes CT_MULTIPLY_TIMETRAPS; make valgrind sets
%% it to ten), so a slow run waits longer instead of failing.
-module(py_test_lib).

%% Waiting.
-export([wait_until/2, wait_for/2, settled/3, await_down/2, wait_calls_done/1, scaled/1]).
%% The run.
-export([memory_tool/0, os_thread_count/0]).
%% Setting a suite up: Python fixtures kept in the suites' data
%% directories, Erlang functions registered for Python.
-export([start_with_fixtures/1, exec_file/2, register_functions/1]).
%% The application and other VMs.
-export([restart_app/0, restart_with/2, restart_without/1, reload_py_nif/0,
         unload_and_load_py_nif/0, in_peer/2, make_distributed/1, undo_distributed/1]).
%% Many processes at once.
-export([fan_out/2, fan_out_start/2, fan_out_results/1]).
%% Commands and copies, for the suites that build what a user builds.
-export([command/4, command_ok/4, copy_dir/3]).
%% What the application logs.
-export([warning_of/1, log/2]).

-export_type([fan_out/0]).

-opaque fan_out() :: [{pid(), reference(), term()}].

%% How often a poll looks again.
-define(POLL_MS, 20).
%% How far apart two equal reads must be for settled/3.
-define(SETTLE_MS, 100).

%%% Waiting

%% @doc Polls Done until it returns true; fails the case, naming what it
%% waited for, if scaled(Ms) milliseconds pass first.
-spec wait_until(fun(() -> boolean()), non_neg_integer()) -> ok.
wait_until(Done, Ms) ->
    true = poll(fun() -> Done() =:= true end, Done, deadline(Ms)),
    ok.

%% @doc Polls Check until it returns something other than false, and
%% returns that; fails the case, naming what it waited for, if scaled(Ms)
%% milliseconds pass first.
-spec wait_for(fun(() -> Result), non_neg_integer()) -> Result when Result :: term().
wait_for(Check, Ms) ->
    poll(Check, Check, deadline(Ms)).

poll(Check, What, Deadline) ->
    case Check() of
        false ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> ct:fail({not_done_in_time, What});
                false -> timer:sleep(?POLL_MS), poll(Check, What, Deadline)
            end;
        Result ->
            Result
    end.

%% @doc What Read returns once two reads in a row, 100 ms apart, give the
%% same value: counters that work still in progress (threads exiting,
%% processes ending) may move. Fails the case, naming What and the last two
%% values, if they still differ after scaled(Ms) milliseconds.
-spec settled(term(), fun(() -> Value), non_neg_integer()) -> Value when Value :: term().
settled(What, Read, Ms) ->
    settle(What, Read, Read(), deadline(Ms)).

settle(What, Read, Last, Deadline) ->
    timer:sleep(?SETTLE_MS),
    case Read() of
        Last ->
            Last;
        Now ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> ct:fail({not_settled, What, Last, Now});
                false -> settle(What, Read, Now, Deadline)
            end
    end.

%% @doc Returns once Pid has ended (at once if it has already); fails the
%% case with Pid's stack if it is still alive after scaled(Ms)
%% milliseconds.
-spec await_down(pid(), non_neg_integer()) -> ok.
await_down(Pid, Ms) ->
    Ref = monitor(process, Pid),
    receive
        {'DOWN', Ref, process, Pid, _} -> ok
    after scaled(Ms) ->
        Stack = erlang:process_info(Pid, current_stacktrace),
        demonitor(Ref, [flush]),
        ct:fail({still_alive, Pid, Stack})
    end.

%% @doc Returns once no Python call is running or waiting to run, on a
%% dirty scheduler or on the pool (py:stats/0): whatever a call leaves
%% behind (a reply, a message) has been sent. Fails the case if calls are
%% still busy after scaled(Ms) milliseconds.
-spec wait_calls_done(non_neg_integer()) -> ok.
wait_calls_done(Ms) ->
    Done = fun() ->
                   #{dirty_running := Dirty, pool_queued := Queued, pool_threads := Threads,
                     pool_idle := Idle} = py:stats(),
                   {Dirty, Queued, Threads - Idle} =:= {0, 0, 0}
           end,
    try
        wait_until(Done, Ms)
    catch
        exit:{test_case_failed, _} ->
            %% What was still running, for the failure to say: the
            %% counters, and where every Python thread is (in the reason:
            %% run-tests runs at verbosity 0, which drops ct:log).
            Stacks = py:eval(<<"'\\n'.join('thread %d:\\n%s' % (i, ''.join("
                               "__import__('traceback').format_stack(f))) "
                               "for i, f in __import__('sys')._current_frames().items())">>,
                             #{}, 5000),
            ct:fail({calls_not_done_in_time, py:stats(), py:thread_stats(), Stacks})
    end.

%% @doc Ms milliseconds, multiplied as the cases' time limits are in slow
%% runs: for `receive ... after' that waits for evidence.
-spec scaled(non_neg_integer()) -> non_neg_integer().
scaled(Ms) ->
    Ms * time_multiplier().

deadline(Ms) ->
    erlang:monotonic_time(millisecond) + scaled(Ms).

%% What scripts/run-tests.sh multiplies the time limits by.
time_multiplier() ->
    case string:to_integer(os:getenv("CT_MULTIPLY_TIMETRAPS", "1")) of
        {N, ""} when N > 0 -> N;
        _ -> 1
    end.

%% @doc The memory checker the VM runs under (make asan, tsan, valgrind),
%% or `none'. Their allocators keep freed memory (quarantines, shadow
%% memory), so resident-memory figures mean nothing under them.
-spec memory_tool() -> none | asan | tsan | valgrind.
memory_tool() ->
    case {os:getenv("ASAN_OPTIONS"), os:getenv("TSAN_OPTIONS"), os:getenv("ERL_WRAPPER")} of
        {Asan, _, _} when Asan =/= false -> asan;
        {_, Tsan, _} when Tsan =/= false -> tsan;
        {_, _, "valgrind"} -> valgrind;
        _ -> none
    end.

%% @doc How many threads this OS process (the VM, Python) has now.
-spec os_thread_count() -> non_neg_integer().
os_thread_count() ->
    {ok, Tasks} = file:list_dir("/proc/self/task"),
    length(Tasks).

%%% Setting a suite up

%% @doc For init_per_suite: starts the application and runs the suite's
%% fixtures.py (exec_file/2).
-spec start_with_fixtures([{atom(), term()}]) -> ok.
start_with_fixtures(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    exec_file(Config, "fixtures.py").

%% @doc Runs the Python file File of the case's data directory
%% (test/SUITE_data/File) in the shared __main__, as py:exec/1 would run
%% its text: definitions the cases then call. Fails the case if it raises.
-spec exec_file([{atom(), term()}], file:filename()) -> ok.
exec_file(Config, File) ->
    Path = filename:join(proplists:get_value(data_dir, Config), File),
    {ok, Source} = file:read_file(Path),
    case py:exec(Source) of
        ok -> ok;
        {error, Error} -> ct:fail({python_fixture_failed, Path, Error, py:last_traceback()})
    end.

%% @doc Registers every {Name, Fun} of Functions for Python
%% (py:register_function/2).
-spec register_functions([{py:name(), fun((list()) -> term())}]) -> ok.
register_functions(Functions) ->
    lists:foreach(fun({Name, Fun}) -> ok = py:register_function(Name, Fun) end, Functions).

%%% The application and other VMs

%% @doc Stops and starts the erlang_python application (which empties the
%% registry of functions; the interpreter lives on).
-spec restart_app() -> ok.
restart_app() ->
    ok = application:stop(erlang_python),
    {ok, _} = application:ensure_all_started(erlang_python),
    ok.

%% @doc Restarts the application with Key set to Value in its environment.
-spec restart_with(atom(), term()) -> ok.
restart_with(Key, Value) ->
    ok = application:stop(erlang_python),
    ok = application:set_env(erlang_python, Key, Value),
    {ok, _} = application:ensure_all_started(erlang_python),
    ok.

%% @doc Loads py_nif again while it is loaded (its upgrade callback) and
%% purges the old code.
-spec reload_py_nif() -> ok.
reload_py_nif() ->
    {module, py_nif} = code:load_file(py_nif),
    true = code:soft_purge(py_nif),
    ok.

%% @doc Stops the application, deletes and purges py_nif (the library's
%% unload, which orphans its resource types), loads it again (its load
%% callback, not upgrade) and starts the application.
-spec unload_and_load_py_nif() -> ok.
unload_and_load_py_nif() ->
    ok = application:stop(erlang_python),
    true = code:delete(py_nif),
    true = code:soft_purge(py_nif),
    false = code:is_loaded(py_nif),
    {module, py_nif} = code:load_file(py_nif),
    {ok, _} = application:ensure_all_started(erlang_python),
    ok.

%% @doc Restarts the application with Key back to its default.
-spec restart_without(atom()) -> ok.
restart_without(Key) ->
    ok = application:stop(erlang_python),
    ok = application:unset_env(erlang_python, Key),
    {ok, _} = application:ensure_all_started(erlang_python),
    ok.

%% @doc Runs Fun(Peer) with a peer VM started with the extra emulator
%% arguments Args, whose code path holds the application and the suites;
%% stops the peer afterwards, whatever Fun did.
-spec in_peer([string()], fun((pid()) -> Result)) -> Result when Result :: term().
in_peer(Args, Fun) ->
    Paths = [filename:dirname(code:which(M)) || M <- [py, ?MODULE]],
    {ok, Peer, _Node} = peer:start_link(#{connection => standard_io,
                                          args => ["-pa" | Paths] ++ Args}),
    try
        Fun(Peer)
    after
        peer:stop(Peer)
    end.

%% @doc Makes this node distributed, unless it is already: short names,
%% named Prefix_OsPid, on loopback only, with an epmd of its own (on
%% loopback) if none runs. Returns what undo_distributed/1 undoes.
-spec make_distributed(string()) -> {made, boolean(), boolean()}.
make_distributed(Prefix) ->
    case node() of
        nonode@nohost ->
            EpmdWasUp = epmd_up(),
            _ = EpmdWasUp orelse os:cmd("epmd -address 127.0.0.1 -daemon"),
            wait_until(fun epmd_up/0, 5000),
            ok = application:set_env(kernel, inet_dist_use_interface, {127, 0, 0, 1}),
            {ok, _} = net_kernel:start([list_to_atom(Prefix ++ "_" ++ os:getpid()), shortnames]),
            {made, true, not EpmdWasUp};
        _ ->
            {made, false, false}
    end.

%% @doc Stops what make_distributed/1 started: distribution, and then the
%% epmd once no node is registered with it.
-spec undo_distributed({made, boolean(), boolean()}) -> ok.
undo_distributed({made, MadeDistributed, StartedEpmd}) ->
    _ = MadeDistributed andalso begin
                                    ok = net_kernel:stop(),
                                    application:unset_env(kernel, inet_dist_use_interface)
                                end,
    _ = StartedEpmd andalso begin
                                wait_until(fun() -> erl_epmd:names() =:= {ok, []} end, 10000),
                                os:cmd("epmd -kill"),
                                wait_until(fun() -> not epmd_up() end, 5000)
                            end,
    ok.

epmd_up() ->
    case erl_epmd:names() of
        {ok, _} -> true;
        _ -> false
    end.

%%% Many processes at once

%% @doc Fun(Item) for every Item, each in a process of its own, all at
%% once; the results in the order of Items. A Fun that raises fails the
%% case, naming its Item.
-spec fan_out(fun((Item) -> Result), [Item]) -> [Result] when Item :: term(), Result :: term().
fan_out(Fun, Items) ->
    fan_out_results(fan_out_start(Fun, Items)).

%% @doc Starts Fun(Item) for every Item, each in a process of its own
%% (linked to the caller, so that a failed case leaves none behind), and
%% returns at once; fan_out_results/1 waits for what they return.
-spec fan_out_start(fun((Item) -> term()), [Item]) -> fan_out() when Item :: term().
fan_out_start(Fun, Items) ->
    Self = self(),
    [begin
         Ref = make_ref(),
         Pid = spawn_link(fun() ->
                                  Outcome = try {ok, Fun(Item)}
                                            catch Class:Reason:Stack -> {raised, Class, Reason, Stack}
                                            end,
                                  Self ! {Ref, Outcome}
                          end),
         {Pid, Ref, Item}
     end || Item <- Items].

%% @doc What the processes of fan_out_start/2 returned, in the order of
%% their items, once they all have; a Fun that raised fails the case,
%% naming its Item. The processes are unlinked: they are done.
-spec fan_out_results(fan_out()) -> [term()].
fan_out_results(Started) ->
    Results = [receive
                   {Ref, {ok, Result}} -> Result;
                   {Ref, Raised} -> ct:fail({fan_out_item_failed, Item, Raised})
               end || {_Pid, Ref, Item} <- Started],
    [unlink(Pid) || {Pid, _, _} <- Started],
    Results.

%%% Commands and copies

%% @doc {ExitStatus, Output} of the program Exe run with Args in Dir, with
%% Env added to its environment, stderr with stdout; fails the case with
%% what it printed if it runs longer than scaled(Ms).
-spec command(file:filename(), [string()], file:filename(), [{string(), string()}]) ->
          {non_neg_integer(), binary()}.
command(Exe, Args, Dir, Env) ->
    Port = open_port({spawn_executable, Exe},
                     [{args, Args}, {cd, Dir}, {env, Env}, exit_status, stderr_to_stdout, binary]),
    Deadline = deadline(240000),
    command_output(Port, Exe, Args, Deadline, []).

%% @doc command/4, failing the case with the command's output unless it
%% exits 0.
-spec command_ok(file:filename(), [string()], file:filename(), [{string(), string()}]) -> ok.
command_ok(Exe, Args, Dir, Env) ->
    case command(Exe, Args, Dir, Env) of
        {0, _} -> ok;
        {Status, Output} -> ct:fail({command_failed, Exe, Args, Status, Output})
    end.

command_output(Port, Exe, Args, Deadline, Output) ->
    receive
        {Port, {data, Data}} ->
            command_output(Port, Exe, Args, Deadline, [Output, Data]);
        {Port, {exit_status, Status}} ->
            {Status, iolist_to_binary(Output)}
    after max(0, Deadline - erlang:monotonic_time(millisecond)) ->
        ct:fail({command_hangs, Exe, Args, iolist_to_binary(Output)})
    end.

%% @doc Copies the directory From to To, but for the entries named in Skip
%% (at any depth).
-spec copy_dir(file:filename(), file:filename(), [string()]) -> ok.
copy_dir(From, To, Skip) ->
    ok = filelib:ensure_dir(filename:join(To, "x")),
    {ok, Names} = file:list_dir(From),
    lists:foreach(fun(Name) ->
                          Src = filename:join(From, Name),
                          Dst = filename:join(To, Name),
                          case filelib:is_dir(Src) of
                              true -> ok = copy_dir(Src, Dst, Skip);
                              false -> {ok, _} = file:copy(Src, Dst)
                          end
                  end, [N || N <- Names, not lists:member(N, Skip)]),
    ok.

%%% What the application logs

%% @doc Runs Fun and returns the text of the first warning erlang_python
%% logs meanwhile (domain [erlang_python]); fails the case if none comes
%% within scaled(5000) ms of Fun's return.
-spec warning_of(fun(() -> term())) -> binary().
warning_of(Fun) ->
    Handler = list_to_atom("py_test_lib_" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = logger:add_handler(Handler, ?MODULE,
                            #{config => #{pid => self()}, filter_default => stop,
                              filters => [{ours, {fun logger_filters:domain/2,
                                                  {log, sub, [erlang_python]}}}]}),
    try
        _ = Fun(),
        receive
            {py_test_lib_logged, #{level := warning, msg := {Format, Args}}} ->
                unicode:characters_to_binary(io_lib:format(Format, Args))
        after scaled(5000) ->
            ct:fail(no_warning_from_erlang_python)
        end
    after
        logger:remove_handler(Handler)
    end.

%% @private The logger handler of warning_of/1.
log(Event, #{config := #{pid := Pid}}) ->
    Pid ! {py_test_lib_logged, Event},
    ok.
