%% @doc `make bench': what calls between Erlang and Python cost, next to
%% baselines measured in the same run, printed as one table.
%%
%% Every row gives a median and a p99 after a warm-up, and its ratio to the
%% baseline its target names (no-op dirty NIF call, C thread -> Erlang
%% process -> C thread round trip, 1 MB memcpy); rows with a target say
%% whether it is met. Two kinds of row:
%% <ul>
%% <li>latency rows time one operation many times (?N samples unless the
%%     operation is slow); median and p99 are over those samples;</li>
%% <li>aggregate rows (many callers, many threads, many calls in flight)
%%     time whole runs: wall time divided by the calls made, one warm-up
%%     run and then ?RUNS runs; median and p99 are over the runs, and
%%     calls/s is the median's inverse.</li>
%% </ul>
%% The Python side of each measurement is bench/pybench.py; the baselines
%% are timed in C by bench/baseline_nif.c. All percentiles are computed here
%% from raw samples.
-module(py_bench).
-export([main/1]).

-define(WARMUP, 2000).
-define(N, 30000).
%% For operations of 50 us and more.
-define(SLOW_WARMUP, 100).
-define(SLOW_N, 2000).
%% Aggregate rows: runs, and calls per run (shared by all callers).
-define(RUNS, 21).
-define(RUN_CALLS, 12000).
-define(CALLER_WARMUP, 100).
-define(LIVE_THREADS, 1000).
%% As SPIN_NS in c_src/worker.c: how long a waiting thread worker spins.
-define(WORKER_SPIN_NS, 20000).
-define(RESULTS_DIR, "bench/results").

-type baseline() :: dirty_nif | round_trip | memcpy.
-type stats() :: #{median := float(), p99 := float() | undefined, rate => float()}.
-type row() :: #{group := 1..9, name := binary(), unit := us | kib | fd,
                 median := float(), p99 := float() | undefined, rate := float() | undefined,
                 vs := baseline() | absolute | undefined, limit := number() | undefined,
                 key := baseline() | undefined,
                 ratio => float() | undefined, met => boolean() | undefined}.

%% @doc Runs the benchmark, prints the table and halts the VM. `Out' is
%% `BENCH_OUT': empty, or `csv', `json' or `csv,json' to also write the
%% table to bench/results/bench-TIME.EXT. Halts with status 2, before
%% measuring anything, when `Out' names another format.
-spec main(string()) -> no_return().
main(Out) ->
    case formats(Out) of
        {ok, Formats} ->
            run(Formats),
            halt(0);
        error ->
            io:format(standard_error, "BENCH_OUT=~ts: expected csv, json or csv,json~n", [Out]),
            halt(2)
    end.

formats(Out) ->
    Formats = [list_to_binary(F) || F <- string:lexemes(Out, ", ")],
    case Formats -- [<<"csv">>, <<"json">>] of
        [] -> {ok, lists:usort(Formats)};
        _ -> error
    end.

run(Formats) ->
    Start = now_ns(),
    %% The pool rows restart the application; its stop reports are noise.
    logger:set_primary_config(level, warning),
    setup(),
    Machine = machine(),
    io:format("erlang_python benchmark: OTP ~ts, Python ~ts, ~b cores (~ts), "
              "~b dirty I/O schedulers~nmeasuring, about two minutes...~n",
              [maps:get(otp, Machine), maps:get(python, Machine), maps:get(cores, Machine),
               maps:get(cpu, Machine), maps:get(dirty_io_schedulers, Machine)]),
    %% Row 8 comes before the other Python threads so that no pooled
    %% worker hides the descriptors a new thread costs.
    First = baseline_samples(),
    Measured = lists:append([py_calls(), evals(), erlang_calls(), live_threads(),
                             python_threads(), fresh_threads(), async_calls(), conversions(),
                             on_pool_threads()]),
    Baselines = baselines(First, baseline_samples()),
    Rows = judge(lists:sort(fun(A, B) -> maps:get(group, A) =< maps:get(group, B) end,
                            Measured ++ Baselines)),
    Wall = (now_ns() - Start) / 1.0e9,
    print(Rows),
    io:format("~nwall time ~.1f s~n", [Wall]),
    [io:format("wrote ~ts~n", [write(F, Machine#{wall_s => Wall}, Rows)]) || F <- Formats],
    ok.

setup() ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = py:register_function(bench_identity, fun([X]) -> X end),
    ok = py:register_function(bench_thread_stats, fun([]) -> py:thread_stats() end),
    Dir = filename:dirname(code:which(?MODULE)),
    {ok, _} = py:eval(<<"__import__('sys').path.insert(0, d)">>,
                      #{d => unicode:characters_to_binary(Dir)}),
    ok.

%% ---- row groups, numbered as in the table ------------------------------

%% 1. py:call from one caller, and from many at once.
py_calls() ->
    [row(1, "1 caller", measure(fun sqrt/0), dirty_nif, 1.5)
     | [row(1, io_lib:format("~b concurrent callers, per call", [N]),
            aggregate(fun() -> callers(N, fun sqrt/0) end), dirty_nif)
        || N <- [2, 4, 16, 64]]].

%% 2.
evals() ->
    [row(2, "1 caller", measure(fun eval/0), dirty_nif, 2)].

%% 3. erlang.call from the thread py:call runs on (timed in Python).
erlang_calls() ->
    [row(3, "erlang.call('bench_identity', 1)",
         latency(pybench(calls, [?WARMUP, ?N])), round_trip, 1.2)].

%% 4. erlang.call from N threads at once.
python_threads() ->
    [row(4, io_lib:format("~b Python thread~s, per call", [N, plural(N)]),
         aggregate(fun() -> pybench(threads, [N, ?RUN_CALLS div N, ?CALLER_WARMUP]) end),
         round_trip, case N of 4 -> 0.7; _ -> undefined end)
     || N <- [1, 2, 4, 16]].

%% 5. A new threading.Thread whose first act is an erlang.call, and one that
%% does nothing: the difference is what the first call costs.
fresh_threads() ->
    WithCall = latency(pybench(fresh_threads, [true, ?SLOW_WARMUP, ?SLOW_N])),
    Bare = latency(pybench(fresh_threads, [false, ?SLOW_WARMUP, ?SLOW_N])),
    FirstCall = #{median => maps:get(median, WithCall) - maps:get(median, Bare),
                  p99 => undefined},
    [row(5, "start() to the result of its one erlang.call", WithCall, round_trip),
     row(5, "start() to its target running (no call)", Bare, round_trip),
     row(5, "the call (difference of the medians)", FirstCall, round_trip, 2)].

%% 6. erlang.async_call from one event loop; a run is one round of 1 000
%% calls gathered. Also one call awaited at a time, and py:call of an
%% async def, which runs it in a new event loop.
async_calls() ->
    Gathered = aggregate(fun() ->
                                 [Round] = pybench(async_rounds, [1000, 1, 1]),
                                 Round / 1000
                         end),
    [row(6, "1 000 in flight from one loop, per call", Gathered, round_trip),
     row(6, "one awaited at a time", latency(pybench(async_rounds, [1, ?WARMUP, ?N])),
         round_trip),
     row(6, "py:call of an async def (new event loop)",
         measure(fun() -> {ok, none} = py:call(pybench, nothing, []) end,
                 ?SLOW_WARMUP, ?SLOW_N),
         round_trip)].

%% 7. Large terms through an identity function, checked once to come back
%% equal.
conversions() ->
    Binary = crypto:strong_rand_bytes(1 bsl 20),
    false = is_binary(unicode:characters_to_binary(Binary)),
    Cases = [{"1 MB binary, not UTF-8 (bytes)", Binary, 3},
             {"1 MB binary, ASCII (str)", binary:copy(<<"a">>, 1 bsl 20), 3},
             {"100 000-integer list", lists:seq(1, 100000), undefined},
             {"10 000-key map", maps:from_list([{integer_to_binary(I), I}
                                                || I <- lists:seq(1, 10000)]), undefined}],
    [begin
         {ok, Term} = py:call(pybench, ident, [Term]),
         Fun = fun() -> {ok, _} = py:call(pybench, ident, [Term]) end,
         row(7, Name, measure(Fun, ?SLOW_WARMUP, ?SLOW_N), memcpy, Limit)
     end || {Name, Term, Limit} <- Cases].

%% 8. ?LIVE_THREADS threads that have each called Erlang, all alive.
live_threads() ->
    #{<<"before">> := Before, <<"after">> := After} = pybench(live_threads, [?LIVE_THREADS]),
    Delta = fun(Key) -> (maps:get(Key, After) - maps:get(Key, Before)) / ?LIVE_THREADS end,
    StatsDelta = fun(Key) ->
                         maps:get(Key, maps:get(<<"stats">>, After))
                             - maps:get(Key, maps:get(<<"stats">>, Before))
                 end,
    Single = fun(Value) -> #{median => Value, p99 => undefined} end,
    [(row(8, io_lib:format("resident memory (+~b workers, +~b handlers)",
                           [StatsDelta(workers_live), StatsDelta(handlers)]),
          Single(Delta(<<"rss_kib">>)), undefined))#{unit => kib},
     (row(8, "open file descriptors", Single(Delta(<<"fds">>)), absolute, 1))#{unit => fd}].

%% 9. The baselines. Measured at the start of the run and again at the
%% end, each row summarising both sets of samples: on a machine whose load
%% changes during the run, they then move as the other rows do.
baseline_samples() ->
    Echo = spawn_link(fun pong_echo/0),
    RoundTrip = fun(Wait, Spin) ->
                        c_samples(baseline_nif:round_trips(Echo, Wait, Spin, ?WARMUP, ?N))
                end,
    {PingPong, PingPongEcho} = ping_pong(),
    Samples = [{undefined, "no-op NIF, normal scheduler", samples(fun baseline_nif:noop/0)},
               {dirty_nif, "no-op dirty NIF", samples(fun baseline_nif:dirty_noop/0)},
               {undefined, "Erlang process ping-pong", samples(PingPong)},
               {round_trip, "C thread -> process -> C thread, condvar", RoundTrip(condvar, 0)},
               {undefined, "C thread -> process -> C thread, eventfd", RoundTrip(eventfd, 0)},
               {undefined, "C thread -> process -> C thread, eventfd + 20 us spin",
                RoundTrip(eventfd, ?WORKER_SPIN_NS)},
               {undefined, "two C threads, condvar ping-pong",
                c_samples(baseline_nif:ping_pongs(?WARMUP, ?N))},
               {memcpy, "1 MB memcpy",
                c_samples(baseline_nif:memcpys(1 bsl 20, ?SLOW_WARMUP, ?SLOW_N))}],
    [begin unlink(P), exit(P, kill) end || P <- [Echo, PingPongEcho]],
    Samples.

%% The Erlang process of the C round trip: answers each ping by waking the
%% thread through its channel.
pong_echo() ->
    receive {baseline_ping, Channel} -> ok = baseline_nif:pong(Channel) end,
    pong_echo().

%% Each baseline is given against the no-op dirty NIF.
baselines(First, Last) ->
    [(row(9, Name, latency(S1 ++ S2), dirty_nif))#{key => Key}
     || {{Key, Name, S1}, {Key, Name, S2}} <- lists:zip(First, Last)].

%% Rows 1 and 2 again with dirty_call_limit 0, which sends every call to
%% the pool of NIF-owned threads. Restarts the application (twice), so it
%% comes last.
on_pool_threads() ->
    ok = application:stop(erlang_python),
    ok = application:set_env(erlang_python, dirty_call_limit, 0),
    {ok, _} = application:ensure_all_started(erlang_python),
    try
        [row(1, "1 caller, on a pool thread", measure(fun sqrt/0), dirty_nif),
         row(2, "1 caller, on a pool thread", measure(fun eval/0), dirty_nif)]
    after
        ok = application:stop(erlang_python),
        application:unset_env(erlang_python, dirty_call_limit),
        {ok, _} = application:ensure_all_started(erlang_python)
    end.

sqrt() -> {ok, 4.0} = py:call(math, sqrt, [16]).
eval() -> {ok, 2} = py:eval(<<"1+1">>).

%% A fun that sends a message to an echo process and waits for it to come
%% back, and the echo process.
ping_pong() ->
    Echo = spawn_link(fun Loop() -> receive {From, M} -> From ! M, Loop() end end),
    {fun() -> Echo ! {self(), ping}, receive ping -> ok end end, Echo}.

%% N processes calling Fun at once, released together after a warm-up:
%% wall time per call, in ns.
callers(N, Fun) ->
    Parent = self(),
    Each = ?RUN_CALLS div N,
    Caller = fun() ->
                     repeat(Fun, ?CALLER_WARMUP),
                     Parent ! {ready, self()},
                     receive go -> ok end,
                     repeat(Fun, Each),
                     Parent ! {done, self()}
             end,
    Pids = [spawn_link(Caller) || _ <- lists:seq(1, N)],
    [receive {ready, P} -> ok end || P <- Pids],
    Start = now_ns(),
    [P ! go || P <- Pids],
    [receive {done, P} -> ok end || P <- Pids],
    (now_ns() - Start) / (N * Each).

pybench(Function, Args) ->
    {ok, Result} = py:call(pybench, Function, Args, #{}, infinity),
    Result.

%% ---- measuring: one loop, one summary ----------------------------------

now_ns() -> erlang:monotonic_time(nanosecond).

repeat(_Fun, 0) -> ok;
repeat(Fun, K) -> Fun(), repeat(Fun, K - 1).

%% Once() returns one duration; Warmup untimed rounds first.
collect(Once, Warmup, N) ->
    repeat(Once, Warmup),
    [Once() || _ <- lists:seq(1, N)].

timed(Fun) ->
    fun() -> Start = now_ns(), Fun(), now_ns() - Start end.

samples(Fun) -> collect(timed(Fun), ?WARMUP, ?N).

measure(Fun) -> latency(samples(Fun)).
measure(Fun, Warmup, N) -> latency(collect(timed(Fun), Warmup, N)).

%% ns per call of one run each time Run() is called: a warm-up run, then
%% ?RUNS.
aggregate(Run) ->
    _ = Run(),
    Stats = latency([Run() || _ <- lists:seq(1, ?RUNS)]),
    Stats#{rate => 1.0e6 / maps:get(median, Stats)}.

%% Samples from a C timer thread (baseline_nif).
c_samples(Ref) ->
    receive
        {Ref, Samples} when is_list(Samples) -> Samples;
        {Ref, {error, Reason}} -> error({baseline_failed, Reason})
    end.

%% Median and p99 of durations in ns, in us.
-spec latency([number()]) -> stats().
latency(Samples) ->
    Sorted = lists:sort(Samples),
    #{median => percentile(50, Sorted) / 1000, p99 => percentile(99, Sorted) / 1000}.

percentile(P, Sorted) ->
    lists:nth(max(1, ceil(P * length(Sorted) / 100)), Sorted).

%% ---- rows, ratios, targets ---------------------------------------------

row(Group, Name, Stats, Vs) -> row(Group, Name, Stats, Vs, undefined).

-spec row(1..9, unicode:chardata(), stats(), baseline() | absolute | undefined,
          number() | undefined) -> row().
row(Group, Name, Stats, Vs, Limit) ->
    maps:merge(#{rate => undefined, unit => us, key => undefined},
               Stats#{group => Group, name => unicode:characters_to_binary(Name), vs => Vs,
                      limit => Limit}).

%% Each row's ratio to its baseline's median (for `absolute' targets the
%% value itself is judged), and whether its target is met.
judge(Rows) ->
    Baselines = maps:from_list([{Key, M} || #{key := Key, median := M} <- Rows,
                                            Key =/= undefined]),
    [begin
         Ratio = case Vs of
                     _ when Vs =:= absolute; Vs =:= undefined -> undefined;
                     _ -> Median / maps:get(Vs, Baselines)
                 end,
         Judged = case Vs of absolute -> Median; _ -> Ratio end,
         Met = case Limit of
                   undefined -> undefined;
                   _ -> Judged =< Limit
               end,
         Row#{ratio => Ratio, met => Met}
     end || Row = #{vs := Vs, median := Median, limit := Limit} <- Rows].

baseline_name(dirty_nif) -> "dirty NIF";
baseline_name(round_trip) -> "C round trip";
baseline_name(memcpy) -> "1 MB memcpy";
baseline_name(_) -> "".

group_title(1) -> "1. py:call(math, sqrt, [16])";
group_title(2) -> "2. py:eval(<<\"1+1\">>) repeated";
group_title(3) -> "3. erlang.call from the executing thread";
group_title(4) -> "4. erlang.call from Python threads";
group_title(5) -> "5. a fresh threading.Thread making one erlang.call";
group_title(6) -> "6. erlang.async_call";
group_title(7) -> "7. large terms into Python and back (py:call of an identity function)";
group_title(8) -> io_lib:format("8. per live calling thread (~b threads)", [?LIVE_THREADS]);
group_title(9) -> "9. baselines".

%% ---- output --------------------------------------------------------------

-define(ROW_FORMAT, "~-56ts ~11ts ~11ts ~9ts ~7ts ~-13ts ~ts~n").

print(Rows) ->
    io:format("~n" ?ROW_FORMAT, ["", "median", "p99", "calls/s", "ratio", "of", "target"]),
    lists:foldl(fun(Row = #{group := G}, Last) ->
                        G =/= Last andalso io:format("~ts~n", [group_title(G)]),
                        io:format(?ROW_FORMAT, cells(Row)),
                        G
                end, 0, Rows),
    ok.

cells(#{name := Name, unit := Unit, median := Median, p99 := P99, rate := Rate, vs := Vs,
        ratio := Ratio, limit := Limit, met := Met}) ->
    ["  " ++ binary_to_list(Name), value(Median, Unit), value(P99, Unit),
     rate(Rate), ratio(Ratio), baseline_name(Vs), target(Vs, Limit, Met)].

value(undefined, _) -> "-";
value(V, us) -> io_lib:format("~.2f us", [V]);
value(V, kib) -> io_lib:format("~.1f KiB", [V]);
value(V, fd) -> io_lib:format("~.2f fd", [V]).

rate(undefined) -> "-";
rate(Rate) -> integer_to_list(round(Rate)).

ratio(undefined) -> "-";
ratio(Ratio) -> io_lib:format("~.2f", [Ratio]).

target(_, undefined, _) -> "";
target(Vs, Limit, Met) ->
    Unit = case Vs of
               absolute -> "fd";
               _ -> "x"
           end,
    io_lib:format("<= ~p ~s ~s", [Limit, Unit, case Met of true -> "met"; false -> "NOT MET" end]).

-define(COLUMNS, [group, section, row, unit, median, p99, calls_per_s, baseline, ratio, target,
                  met]).

%% One record per row, the same fields in CSV and JSON, figures rounded to
%% what the clock resolves. Python's csv and json modules do the quoting
%% and encoding (OTP 25 has no JSON encoder).
write(Format, Machine, Rows) ->
    {{Y, Mo, D}, {H, Mi, S}} = calendar:universal_time(),
    Path = lists:flatten(io_lib:format("~s/bench-~4..0b~2..0b~2..0bT~2..0b~2..0b~2..0bZ.~s",
                                       [?RESULTS_DIR, Y, Mo, D, H, Mi, S, Format])),
    ok = filelib:ensure_dir(Path),
    Records = [record(Row) || Row <- Rows],
    Abs = unicode:characters_to_binary(filename:absname(Path)),
    case Format of
        <<"csv">> -> pybench(write_csv, [Abs, ?COLUMNS, Records]);
        <<"json">> -> pybench(write_json, [Abs, #{machine => Machine,
                                                  rows => [maps:from_list(lists:zip(?COLUMNS, R))
                                                           || R <- Records]}])
    end,
    Path.

record(#{group := G, name := Name, unit := Unit, median := Median, p99 := P99, rate := Rate,
         vs := Vs, ratio := Ratio, limit := Limit, met := Met}) ->
    Baseline = case Vs of
                   absolute -> undefined;
                   _ -> Vs
               end,
    [G, unicode:characters_to_binary(group_title(G)), Name, Unit, round3(Median), round3(P99),
     round3(Rate), Baseline, round3(Ratio), Limit, Met].

round3(undefined) -> undefined;
round3(X) -> round(X * 1000) / 1000.

machine() ->
    #{python_version := Python} = py:stats(),
    #{cores => erlang:system_info(logical_processors_available),
      cpu => cpu_model(),
      otp => otp_version(),
      python => Python,
      schedulers => erlang:system_info(schedulers_online),
      dirty_io_schedulers => erlang:system_info(dirty_io_schedulers)}.

cpu_model() ->
    case file:read_file("/proc/cpuinfo") of
        {ok, Info} ->
            Options = [multiline, {capture, all_but_first, binary}],
            case re:run(Info, "^model name\\s*: (.*)$", Options) of
                {match, [Model]} -> Model;
                nomatch -> <<"unknown CPU">>
            end;
        {error, _} -> <<"unknown CPU">>
    end.

otp_version() ->
    Release = erlang:system_info(otp_release),
    File = filename:join([code:root_dir(), "releases", Release, "OTP_VERSION"]),
    case file:read_file(File) of
        {ok, Version} -> string:trim(Version);
        {error, _} -> list_to_binary(Release)
    end.

plural(1) -> "";
plural(_) -> "s".
