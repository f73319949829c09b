%% @doc `make soak': a bounded soak of erlang_python. For SOAK_SECONDS
%% (default 60) loaders run a mixed load without pause: py:call and
%% py:eval, Python calling back into Erlang, Python threads calling Erlang,
%% asyncio gathers of erlang.async_call, and calls cut short by timeouts.
%% Meanwhile a chaos process kills loaders mid-call, handler processes and
%% now and then the coordinator.
%%
%% It fails (exit status 1) if any result reaches the wrong caller, if any
%% failure is not one of the clean errors that the faults explain, if a
%% loader stops making progress (a hang), if file descriptors or processes
%% are not back near where they started once the load is gone, if the
%% resident memory ends above ?RSS_FACTOR times what it was at the start,
%% or if anything is printed to the VM's standard error while the load
%% runs (Python's tracebacks, "exception was never retrieved", warnings:
%% an interruption is part of the load, and each must end its call
%% cleanly). It prints what it did, the resource figures before and
%% after, and what was printed.
-module(py_soak).
-export([main/1]).

-define(LOADERS_PER_KIND, 2).
-define(HANG_MS, 30000).
%% The supervisor allows 5 restarts in 10 s: one coordinator kill every 3 s
%% stays below that.
-define(COORDINATOR_EVERY_MS, 3000).
-define(SETTLE_MS, 10000).
-define(FD_SLACK, 8).
-define(PROCESS_SLACK, 20).
%% Resident memory after the soak, settled, may be at most this many times
%% what it was before the load. What stays once the load is gone is the
%% pooled workers (a few KB each), Python's and ERTS's own free lists,
%% and the free memory glibc's malloc keeps at the top of each of its
%% arenas for reuse: up to 4 MB per arena, as c_src/process.c tells it
%% (the load's threads use up to 8 arenas per core). With a trim
%% threshold of 64 MB each arena kept up to 32 MB, the largest block it
%% had served (a timed-out list comprehension builds one), and the soak
%% went from 52 to 512 MB on a 2-core machine; with 4 MB it ends at 75-89
%% MB (six runs, from 53-55 MB). A leak of a few hundred bytes per call
%% (a million calls) would cross the bound; so would 16 arenas each
%% keeping 4 MB at once, which no run has come near (in one, 15 held 32 MB).
-define(RSS_FACTOR, 2).
%% At most this much of what was printed is shown.
-define(PRINTED_SHOWN, 4096).

-spec main(pos_integer()) -> no_return().
main(Seconds) ->
    ok = logger:add_primary_filter(soak_injected_kills, {fun drop_injected_kills/2, []}),
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = define(),
    warm_up(),
    ok = capture_stderr(),
    Before = resources(),
    Until = erlang:monotonic_time(millisecond) + Seconds * 1000,
    io:format("soak: ~b s, ~b loaders, chaos on~n",
              [Seconds, ?LOADERS_PER_KIND * length(kinds())]),
    {Outcomes, Faults, Problems} = run(Until),
    After = settle(Before),
    Printed = release_stderr(),
    Leaks = leaks(Before, After),
    report(Outcomes, Faults, Before, After, Printed),
    case Problems ++ Leaks ++ [{printed_to_stderr, byte_size(Printed)} || Printed =/= <<>>] of
        [] ->
            io:format("~nsoak: passed~n"),
            halt(0);
        All ->
            [io:format("soak problem: ~tp~n", [P]) || P <- All],
            io:format("~nsoak: failed~n"),
            halt(1)
    end.

%% The reports of processes this soak killed (crash and supervisor reports
%% with reason killed) would drown the rest; every other report stays.
drop_injected_kills(#{msg := {report, #{label := {proc_lib, crash}, report := [Info | _]}}}, _) ->
    case proplists:get_value(error_info, Info) of
        {exit, killed, _} -> stop;
        _ -> ignore
    end;
drop_injected_kills(#{msg := {report, #{label := {supervisor, child_terminated},
                                        report := Report}}}, _) ->
    case proplists:get_value(reason, Report) of
        killed -> stop;
        _ -> ignore
    end;
drop_injected_kills(_Event, _) ->
    ignore.

%%% The load

kinds() ->
    [call, reenter, threads, async, timeout].

define() ->
    ok = register_functions(),
    py:exec(<<"import asyncio, collections, gc, os, sys, tempfile, threading, time\n"
              "def soak_reenter(x):\n"
              "    return erlang.call('soak_ident', x)\n"
              "def soak_threads(n, ms):\n"
              "    deadline = time.monotonic() + ms / 1000\n"
              "    counts = collections.Counter()\n"
              "    lock = threading.Lock()\n"
              "    def work(k):\n"
              "        c = collections.Counter()\n"
              "        i = 0\n"
              "        while time.monotonic() < deadline:\n"
              "            i += 1\n"
              "            try:\n"
              "                c['ok' if erlang.call('soak_ident', (k, i)) == (k, i) else 'wrong'] += 1\n"
              "            except Exception as e:\n"
              "                c[type(e).__name__] += 1\n"
              "        with lock:\n"
              "            counts.update(c)\n"
              "    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]\n"
              "    for t in threads: t.start()\n"
              "    for t in threads: t.join()\n"
              "    return dict(counts)\n"
              "async def soak_async(n):\n"
              "    futures = []\n"
              "    try:\n"
              "        for i in range(n):\n"
              "            futures.append(erlang.async_call('soak_slow', i))\n"
              "    except BaseException:\n"
              "        # Else the calls already made would be left unawaited: an\n"
              "        # answer would fail one, and Python report its exception\n"
              "        # never retrieved.\n"
              "        for f in futures:\n"
              "            f.cancel()\n"
              "        raise\n"
              "    results = await asyncio.gather(*futures, return_exceptions=True)\n"
              "    counts = collections.Counter()\n"
              "    for i, r in enumerate(results):\n"
              "        if isinstance(r, BaseException):\n"
              "            counts[type(r).__name__] += 1\n"
              "        else:\n"
              "            counts['ok' if r == i else 'wrong'] += 1\n"
              "    return dict(counts)\n"
              "def soak_capture_stderr():\n"
              "    global soak_stderr, soak_saved_fd\n"
              "    sys.stderr.flush()\n"
              "    soak_stderr = tempfile.TemporaryFile()\n"
              "    soak_saved_fd = os.dup(2)\n"
              "    os.dup2(soak_stderr.fileno(), 2)\n"
              "def soak_release_stderr():\n"
              "    gc.collect()\n"
              "    sys.stderr.flush()\n"
              "    os.dup2(soak_saved_fd, 2)\n"
              "    os.close(soak_saved_fd)\n"
              "    soak_stderr.seek(0)\n"
              "    printed = soak_stderr.read()\n"
              "    soak_stderr.close()\n"
              "    return printed\n">>).

%% While the load runs, file descriptor 2 of the VM is a temporary file:
%% whatever Python (sys.stderr, its warnings and unraisable exceptions, its
%% logging's last resort) or C code prints there is read back at the end.
%% The Erlang side prints to standard output.
capture_stderr() ->
    {ok, none} = py:call('__main__', soak_capture_stderr, []),
    ok.

%% Collects what Python no longer refers to first, so that what its
%% destructors would print is printed now.
release_stderr() ->
    {ok, Printed} = py:call('__main__', soak_release_stderr, []),
    Printed.

%% The registry is emptied when the application restarts (the coordinator
%% dying too often restarts nothing, but stay safe): registered again by
%% the loaders when a call finds them missing.
register_functions() ->
    ok = py:register_function(soak_ident, fun([X]) -> X end),
    ok = py:register_function(soak_slow, fun([X]) -> timer:sleep(rand:uniform(20)), X end).

warm_up() ->
    [unit(Kind, 0) || Kind <- kinds()],
    ok.

%% One unit of work of a kind; returns counts of outcomes: ok, wrong, or
%% the name of a clean error.
unit(call, I) ->
    Sqrt = py:call(math, sqrt, [I * I]),
    Eval = py:eval(<<"x * 2">>, #{x => I}),
    merge(outcome(Sqrt, {ok, float(I)}), outcome(Eval, {ok, I * 2}));
unit(reenter, I) ->
    outcome(py:call('__main__', soak_reenter, [{self(), I}]), {ok, {self(), I}});
unit(threads, _I) ->
    python_counts(py:call('__main__', soak_threads, [4, 300], #{}, ?HANG_MS));
unit(async, _I) ->
    %% An async def called from Erlang runs in a loop of erlang._run_coroutine.
    python_counts(py:call('__main__', soak_async, [200], #{}, ?HANG_MS));
unit(timeout, I) ->
    Code = case I rem 2 of
               0 -> <<"time.sleep(5)">>;
               1 -> <<"[0 for _ in iter(int, 1)]">>
           end,
    outcome(py:eval(Code, #{}, 20), {error, timeout}).

outcome(Expected, Expected) -> #{ok => 1};
outcome({ok, _}, _) -> #{wrong => 1};
outcome({error, {Type, _}}, _) -> #{error_name(Type) => 1};
outcome(Other, _) -> #{{unexpected, Other} => 1}.

python_counts({ok, Counts}) when is_map(Counts) ->
    maps:fold(fun(<<"ok">>, N, Acc) -> Acc#{ok => N};
                 (<<"wrong">>, N, Acc) -> Acc#{wrong => N};
                 (Name, N, Acc) -> Acc#{Name => N}
              end, #{}, Counts);
python_counts(Other) ->
    outcome(Other, none).

error_name(Type) when is_atom(Type) -> atom_to_binary(Type);
error_name(<<"erlang.", Name/binary>>) -> Name;
error_name(Name) -> Name.

%% The clean errors that the faults explain: a killed handler or
%% coordinator (ErlangError), no coordinator for a moment (RuntimeError),
%% functions not yet registered again (UnknownFunctionError).
clean_error(Name) ->
    lists:member(Name, [<<"ErlangError">>, <<"RuntimeError">>, <<"UnknownFunctionError">>]).

%%% Loaders and chaos

run(Until) ->
    Self = self(),
    Loaders = maps:from_list([{start_loader(Self, Kind), Kind}
                              || Kind <- kinds(), _ <- lists:seq(1, ?LOADERS_PER_KIND)]),
    Start = erlang:monotonic_time(millisecond),
    Chaos = spawn_link(fun() -> chaos(Self, Until, Start) end),
    Now = erlang:monotonic_time(millisecond),
    State = #{loaders => Loaders, progress => maps:map(fun(_, _) -> Now end, Loaders),
              outcomes => #{}, faults => #{}, problems => [], until => Until, chaos => Chaos},
    drive(State).

start_loader(Driver, Kind) ->
    {Pid, _} = spawn_monitor(fun() -> loader(Driver, Kind, 1) end),
    Pid.

loader(Driver, Kind, I) ->
    Counts = unit(Kind, I),
    case maps:is_key(<<"UnknownFunctionError">>, Counts) of
        true -> register_functions();
        false -> ok
    end,
    Driver ! {unit, self(), Kind, Counts},
    receive stop -> ok after 0 -> loader(Driver, Kind, I + 1) end.

chaos(Driver, Until, LastCoordinatorKill) ->
    timer:sleep(50 + rand:uniform(150)),
    Now = erlang:monotonic_time(millisecond),
    case Now < Until of
        false ->
            Driver ! chaos_done;
        true when Now - LastCoordinatorKill >= ?COORDINATOR_EVERY_MS ->
            kill_named(py_coordinator),
            Driver ! {fault, coordinator_killed},
            chaos(Driver, Until, Now);
        true ->
            case rand:uniform(2) of
                1 -> Driver ! kill_a_loader;
                2 -> kill_a_handler(Driver)
            end,
            chaos(Driver, Until, LastCoordinatorKill)
    end.

kill_named(Name) ->
    case whereis(Name) of
        undefined -> ok;
        Pid -> exit(Pid, kill)
    end.

kill_a_handler(Driver) ->
    case py_coordinator:handlers() of
        [] ->
            ok;
        Handlers ->
            exit(lists:nth(rand:uniform(length(Handlers)), Handlers), kill),
            Driver ! {fault, handler_killed}
    end.

drive(#{loaders := Loaders, until := Until} = State) ->
    receive
        {unit, Pid, _Kind, Counts} ->
            #{outcomes := Outcomes, progress := Progress} = State,
            Now = erlang:monotonic_time(millisecond),
            drive(State#{outcomes := merge(Counts, Outcomes), progress := Progress#{Pid => Now}});
        {fault, Fault} ->
            drive(count_fault(Fault, State));
        kill_a_loader ->
            Pids = maps:keys(Loaders),
            exit(lists:nth(rand:uniform(length(Pids)), Pids), kill),
            drive(count_fault(caller_killed, State));
        {'DOWN', _, process, Pid, Reason} when is_map_key(Pid, Loaders) ->
            {Kind, Rest} = maps:take(Pid, Loaders),
            Problems = case Reason of
                           killed -> [];
                           normal -> [];
                           _ -> [{loader_crashed, Kind, Reason}]
                       end,
            State1 = add_problems(Problems, State#{loaders := Rest,
                                                   progress := maps:remove(Pid, maps:get(progress, State))}),
            case Reason =:= killed andalso erlang:monotonic_time(millisecond) < Until of
                true -> drive(add_loader(Kind, State1));
                false -> drive(State1)
            end;
        chaos_done ->
            stop_loaders(State)
    after 1000 ->
        drive(check_hangs(State))
    end.

add_loader(Kind, #{loaders := Loaders, progress := Progress} = State) ->
    Pid = start_loader(self(), Kind),
    State#{loaders := Loaders#{Pid => Kind},
           progress := Progress#{Pid => erlang:monotonic_time(millisecond)}}.

count_fault(Fault, #{faults := Faults} = State) ->
    State#{faults := maps:update_with(Fault, fun(N) -> N + 1 end, 1, Faults)}.

add_problems(New, #{problems := Problems} = State) ->
    State#{problems := Problems ++ New}.

check_hangs(#{progress := Progress, loaders := Loaders} = State) ->
    Now = erlang:monotonic_time(millisecond),
    Hung = [{hung, maps:get(Pid, Loaders), erlang:process_info(Pid, current_stacktrace)}
            || {Pid, Last} <- maps:to_list(Progress), Now - Last > ?HANG_MS],
    case Hung of
        [] -> State;
        _ -> add_problems(Hung, State#{progress := maps:map(fun(_, _) -> Now end, Progress)})
    end.

%% Each loader finishes its unit and stops; one that does not is hung.
stop_loaders(#{loaders := Loaders} = State) ->
    [Pid ! stop || Pid <- maps:keys(Loaders)],
    collect(State).

collect(#{loaders := Loaders} = State) when map_size(Loaders) =:= 0 ->
    #{outcomes := Outcomes, faults := Faults, problems := Problems} = State,
    {Outcomes, Faults, Problems ++ outcome_problems(Outcomes)};
collect(#{loaders := Loaders} = State) ->
    receive
        {unit, _Pid, _Kind, Counts} ->
            collect(State#{outcomes := merge(Counts, maps:get(outcomes, State))});
        {'DOWN', _, process, Pid, Reason} when is_map_key(Pid, Loaders) ->
            Problems = case Reason of
                           normal -> [];
                           _ -> [{loader_crashed, maps:get(Pid, Loaders), Reason}]
                       end,
            collect(add_problems(Problems, State#{loaders := maps:remove(Pid, Loaders)}))
    after ?HANG_MS ->
        {maps:get(outcomes, State), maps:get(faults, State),
         [{hung_at_stop, maps:values(Loaders)} | maps:get(problems, State)]}
    end.

outcome_problems(Outcomes) ->
    [{wrong_results, N} || {wrong, N} <- maps:to_list(Outcomes), N > 0] ++
    [{unclean_outcome, Name, N} || {Name, N} <- maps:to_list(Outcomes),
                                   Name =/= ok, Name =/= wrong, not is_clean(Name)].

is_clean(Name) when is_binary(Name) -> clean_error(Name);
is_clean(_) -> false.

merge(A, B) ->
    maps:fold(fun(K, N, Acc) -> maps:update_with(K, fun(M) -> M + N end, N, Acc) end, B, A).

%%% Resources

resources() ->
    {ok, Fds} = file:list_dir("/proc/self/fd"),
    {ok, Status} = file:read_file("/proc/self/status"),
    [_, Rss | _] = re:split(Status, <<"VmRSS:\\s*([0-9]+) kB">>),
    Threads = py:thread_stats(),
    Stats = py:stats(),
    #{fds => length(Fds), processes => erlang:system_info(process_count),
      rss_mb => binary_to_integer(Rss) div 1024, handlers => maps:get(handlers, Threads),
      workers => maps:get(workers_live, Threads) + maps:get(workers_pooled, Threads),
      python_calls => maps:get(dirty_calls, Stats) + maps:get(pool_calls, Stats),
      erlang_calls => maps:get(erlang_calls, Threads)}.

%% Waits until no call is running and the counts stop falling.
settle(Before) ->
    Deadline = erlang:monotonic_time(millisecond) + ?SETTLE_MS,
    settle(Before, resources(), Deadline).

settle(Before, Last, Deadline) ->
    timer:sleep(500),
    Now = resources(),
    Idle = case py:stats() of
               #{dirty_running := 0, pool_queued := 0, pool_threads := T, pool_idle := T} -> true;
               _ -> false
           end,
    Stable = maps:with([fds, processes], Now) =:= maps:with([fds, processes], Last),
    case (Idle andalso Stable) orelse erlang:monotonic_time(millisecond) > Deadline of
        true -> Now;
        false -> settle(Before, Now, Deadline)
    end.

%% Thread workers are pooled, each with its eventfd and handler, up to the
%% most threads that were calling at once: those are not leaks. Anything
%% else that stayed is.
leaks(Before, After) ->
    Unpooled = fun(R) -> {maps:get(fds, R) - maps:get(workers, R),
                          maps:get(processes, R) - maps:get(handlers, R)} end,
    {FdsBefore, ProcessesBefore} = Unpooled(Before),
    {FdsAfter, ProcessesAfter} = Unpooled(After),
    #{rss_mb := RssBefore} = Before,
    #{rss_mb := RssAfter} = After,
    [{fds_not_of_workers_grew, FdsBefore, FdsAfter} || FdsAfter > FdsBefore + ?FD_SLACK] ++
    [{processes_not_handlers_grew, ProcessesBefore, ProcessesAfter}
     || ProcessesAfter > ProcessesBefore + ?PROCESS_SLACK] ++
    [{rss_mb_above_bound, RssAfter, ?RSS_FACTOR * RssBefore}
     || RssAfter > ?RSS_FACTOR * RssBefore].

report(Outcomes, Faults, Before, After, Printed) ->
    io:format("~noutcomes of calls (units of work counted by their calls):~n"),
    [io:format("  ~-24ts ~b~n", [format_key(K), N]) || {K, N} <- lists:sort(maps:to_list(Outcomes))],
    io:format("faults injected:~n"),
    [io:format("  ~-24ts ~b~n", [atom_to_list(K), N]) || {K, N} <- lists:sort(maps:to_list(Faults))],
    io:format("calls made: ~b from Erlang into Python, ~b from Python into Erlang~n",
              [maps:get(python_calls, After) - maps:get(python_calls, Before),
               maps:get(erlang_calls, After) - maps:get(erlang_calls, Before)]),
    io:format("~n  ~-12s ~10s ~10s   (workers: pooled per peak calling threads, each with~n"
              "  ~-12s ~10s ~10s    an eventfd and a handler process)~n",
              ["", "before", "after", "", "", ""]),
    [io:format("  ~-12s ~10b ~10b~n", [atom_to_list(K), maps:get(K, Before), maps:get(K, After)])
     || K <- [rss_mb, fds, processes, handlers, workers]],
    io:format("  (rss_mb may end at most ~b times what it was before)~n", [?RSS_FACTOR]),
    case Printed of
        <<>> ->
            io:format("~nnothing printed to standard error~n");
        <<Shown:?PRINTED_SHOWN/binary, _/binary>> ->
            io:format("~nprinted to standard error (~b bytes, the first ~b):~n~s~n",
                      [byte_size(Printed), ?PRINTED_SHOWN, Shown]);
        _ ->
            io:format("~nprinted to standard error:~n~s~n", [Printed])
    end,
    ok.

format_key(K) when is_atom(K) -> atom_to_list(K);
format_key(K) when is_binary(K) -> binary_to_list(K);
format_key(K) -> io_lib:format("~tp", [K]).
