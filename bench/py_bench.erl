%% @doc `make bench': what calls between Erlang and Python cost, next to
%% baselines measured in the same run, printed as one table.
%%
%% Every row gives a median and a p99 after a warm-up, and its ratio to the
%% baseline its target names (no-op dirty NIF call, C thread -> Erlang
%% process -> C thread round trip, 1 MB memcpy); rows with a target say
%% whether it is met. Two kinds of row:
%% <ul>
%% <li>latency rows time one operation many times (?N samples, ?SLOW_N for
%%     slow operations); median and p99 are over those samples;</li>
%% <li>aggregate rows (many callers, many threads, many calls in flight)
%%     time whole runs: wall time divided by the calls made, ?RUNS runs
%%     after a warm-up run; median and p99 are over the runs, and calls/s
%%     is the median's inverse.</li>
%% </ul>
%% A row's baseline is measured alongside it: blocks of the row alternate
%% with blocks of the baseline, so that on a machine whose load changes
%% (a shared one) both are measured over the same stretch of time, and the
%% ratio compares like with like. The baseline rows at the end are the same
%% measurements on their own, taken first.
%%
%% Everything is measured by samplers: a sampler, given N, returns N
%% durations in nanoseconds. The Python side of the samplers is
%% bench/pybench.py; the C baselines are timed by bench/baseline_nif.c.
%% All percentiles are computed here.
-module(py_bench).
-export([main/1]).

-define(WARMUP, 2000).
-define(N, 50000).
%% For operations of 50 us and more.
-define(SLOW_WARMUP, 100).
-define(SLOW_N, 2000).
%% Latency rows alternate with their baseline in ?BLOCKS blocks; every
%% block of a row is followed by ?BASE_BLOCK samples of its baseline.
-define(BLOCKS, 20).
-define(BASE_BLOCK, 1000).
%% Aggregate rows: runs, and calls per run (shared by all callers).
-define(RUNS, 31).
-define(RUN_CALLS, 12000).
-define(CALLER_WARMUP, 100).
-define(LIVE_THREADS, 1000).
%% As SPIN_NS in c_src/worker.c: how long a waiting thread worker spins.
-define(WORKER_SPIN_NS, 20000).
-define(RESULTS_DIR, "bench/results").
-define(CHANNEL_MESSAGES, 100000).
%% Row 14: iterations of the CPU-bound loop (about 30 ms), and contexts
%% made to weigh one.
-define(SPIN, 600000).
-define(WEIGHED_CONTEXTS, 10).

-type baseline() :: dirty_nif | round_trip | memcpy | py_call | value_call | sqrt_call
                    | list_items | python_sends | one_process | erpc_noop | filtered_log
                    | terminal_call | stringio_print.
-type sampler() :: fun((non_neg_integer()) -> [number()]).
-type shape() :: latency | slow | runs.
-type stats() :: #{median := float(), p90 => float(), p99 := float() | undefined,
                   rate => float(), unit => us | kib | fd, vs => baseline() | absolute,
                   base => float()}.
-type row() :: #{group := 1..17, name := binary(), unit := us | kib | fd,
                 median := float(), p90 => float(), p99 := float() | undefined, rate := float() | undefined,
                 vs := baseline() | absolute | undefined, base := float() | undefined,
                 limit := number() | undefined,
                 ratio => float() | undefined, met => boolean() | undefined}.

%% @doc Runs the benchmark, prints the table and halts the VM. `Out' is
%% `BENCH_OUT': empty, or `csv', `json' or `csv,json' to also write the
%% table to bench/results/bench-TIME.EXT; a CSV comes with an SVG chart of
%% the table beside it (bench-TIME.svg). Halts with status 2, before
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
    Bases = setup(),
    Machine = machine(),
    io:format("erlang_python benchmark: OTP ~ts, Python ~ts, ~b cores (~ts), "
              "~b dirty I/O schedulers~nmeasuring, about two minutes...~n",
              [maps:get(otp, Machine), maps:get(python, Machine), maps:get(cores, Machine),
               maps:get(cpu, Machine), maps:get(dirty_io_schedulers, Machine)]),
    %% Row 9 first, on a VM that has done nothing else yet; row 8 before
    %% the other Python threads, so that no pooled worker hides the
    %% descriptors a new thread costs.
    Measured = lists:append([F(Bases) || F <- [fun baselines/1, fun py_calls/1, fun evals/1,
                                               fun erlang_calls/1, fun live_threads/1,
                                               fun python_threads/1, fun fresh_threads/1,
                                               fun async_calls/1, fun conversions/1,
                                               fun references/1, fun spawned_calls/1,
                                               fun streams/1, fun channels/1,
                                               fun contexts/1, fun pools/1, fun logging/1, fun output/1,
                                               fun on_pool_threads/1]]),
    Rows = judge(lists:sort(fun(A, B) -> maps:get(group, A) =< maps:get(group, B) end,
                            Measured)),
    Wall = (now_ns() - Start) / 1.0e9,
    print(Rows),
    io:format("~nwall time ~.1f s~n", [Wall]),
    Stem = results_stem(),
    Charted = case lists:member(<<"csv">>, Formats) of
                  true -> Formats ++ [<<"svg">>];
                  false -> Formats
              end,
    [io:format("wrote ~ts~n", [write(F, Stem, Machine#{wall_s => Wall}, Rows)]) || F <- Charted],
    ok.

%% Starts the application and what the samplers need; returns the
%% samplers of the baselines that rows are judged by.
-spec setup() -> #{baseline() => sampler()}.
setup() ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = py:register_function(bench_identity, fun([X]) -> X end),
    ok = py:register_function(bench_thread_stats, fun([]) -> py:thread_stats() end),
    Dir = filename:dirname(code:which(?MODULE)),
    {ok, _} = py:eval(<<"__import__('sys').path.insert(0, d)">>,
                      #{d => unicode:characters_to_binary(Dir)}),
    Echo = spawn_link(fun pong_echo/0),
    #{dirty_nif => erl(fun baseline_nif:dirty_noop/0),
      round_trip => round_trip(Echo, condvar, 0),
      memcpy => c_sampler(fun(N) -> baseline_nif:memcpys(1 bsl 20, 0, N) end)}.

%% ---- row groups, numbered as in the table ------------------------------

%% 1. py:call from one caller, and from many at once.
py_calls(Bases) ->
    [row(1, "1 caller", measure(latency, erl(fun sqrt/0), dirty_nif, Bases), 1.5)
     | [row(1, io_lib:format("~b concurrent callers, per call", [N]),
            measure(runs, runs(fun() -> callers(N, fun sqrt/0) end), dirty_nif, Bases))
        || N <- [2, 4, 16, 64]]].

%% 2.
evals(Bases) ->
    [row(2, "1 caller", measure(latency, erl(fun eval/0), dirty_nif, Bases), 2)].

%% 3. erlang.call from the thread py:call runs on (timed in Python).
erlang_calls(Bases) ->
    [row(3, "erlang.call('bench_identity', 1)",
         measure(latency, pybench_sampler(calls, []), round_trip, Bases), 1.2)].

%% 4. erlang.call from N threads at once.
python_threads(Bases) ->
    [row(4, io_lib:format("~b Python thread~s, per call", [N, plural(N)]),
         measure(runs, runs(fun() -> pybench(threads, [N, ?RUN_CALLS div N, ?CALLER_WARMUP]) end),
                 round_trip, Bases),
         case N of 4 -> 0.7; _ -> undefined end)
     || N <- [1, 2, 4, 16]].

%% 5. A new threading.Thread whose first act is an erlang.call, the call
%% timed in the thread. Its cost is bimodal (the handler's scheduler awake
%% or asleep), so the row gives the median and the p90, both against the
%% median of the C round trip.
fresh_threads(Bases) ->
    Stats = #{p90 := P90} = measure(slow, pybench_sampler(first_calls, []), round_trip, Bases),
    [row(5, "its first erlang.call, timed in the thread: median", Stats, 2),
     row(5, "its first erlang.call, timed in the thread: p90",
         Stats#{median := P90, p99 := undefined}, 4)].

%% 6. erlang.async_call from one event loop; a run is one round of 1 000
%% calls gathered. Also one call awaited at a time, and py:call of an
%% async def, which runs it in a new event loop.
async_calls(Bases) ->
    Gathered = runs(fun() -> [Round] = pybench(async_rounds, [1000, 1, 1]), Round / 1000 end),
    [row(6, "1 000 in flight from one loop, per call",
         measure(runs, Gathered, round_trip, Bases)),
     row(6, "one awaited at a time",
         measure(latency, pybench_sampler(async_rounds, [1, 0]), round_trip, Bases)),
     row(6, "py:call of an async def (new event loop)",
         measure(slow, erl(fun() -> {ok, none} = py:call(pybench, nothing, []) end),
                 round_trip, Bases))].

%% 7. Large terms through an identity function, checked once to come back
%% equal.
conversions(Bases) ->
    Binary = crypto:strong_rand_bytes(1 bsl 20),
    false = is_binary(unicode:characters_to_binary(Binary)),
    Cases = [{"1 MB binary, not UTF-8 (bytes)", Binary, 3},
             {"1 MB binary, ASCII (str)", binary:copy(<<"a">>, 1 bsl 20), 3},
             {"100 000-integer list", lists:seq(1, 100000), undefined},
             {"10 000-key map", maps:from_list([{integer_to_binary(I), I}
                                                || I <- lists:seq(1, 10000)]), undefined}],
    Changed = <<(binary:part(Binary, 0, byte_size(Binary) - 1))/binary, "!">>,
    {ok, Changed} = py:call(pybench, one_changed, [Binary]),
    [begin
         {ok, Term} = py:call(pybench, ident, [Term]),
         Ident = erl(fun() -> {ok, _} = py:call(pybench, ident, [Term]) end),
         row(7, Name, measure(slow, Ident, memcpy, Bases), Limit)
     end || {Name, Term, Limit} <- Cases]
    ++ [row(7, "1 MB binary, Python answers a new bytes (x[:-1] + b'!')",
            measure(slow, erl(fun() -> {ok, _} = py:call(pybench, one_changed, [Binary]) end),
                    memcpy, Bases))].

%% 8. ?LIVE_THREADS threads that have each called Erlang, all alive. One
%% reading: a second would find the workers of the first in the pool.
live_threads(_Bases) ->
    #{<<"before">> := Before, <<"after">> := After} = pybench(live_threads, [?LIVE_THREADS]),
    Delta = fun(Key) -> (maps:get(Key, After) - maps:get(Key, Before)) / ?LIVE_THREADS end,
    StatsDelta = fun(Key) ->
                         maps:get(Key, maps:get(<<"stats">>, After))
                             - maps:get(Key, maps:get(<<"stats">>, Before))
                 end,
    [row(8, io_lib:format("resident memory (+~b workers, +~b handlers)",
                          [StatsDelta(workers_live), StatsDelta(handlers)]),
         #{median => Delta(<<"rss_kib">>), p99 => undefined, unit => kib}),
     row(8, "open file descriptors",
         #{median => Delta(<<"fds">>), p99 => undefined, unit => fd, vs => absolute}, 1)].

%% 17. Output: what routing a call's output to its caller's group leader
%% (the default) costs a call that prints nothing, against the same call
%% with output => terminal; and a call printing one line to a group leader
%% (a process that takes it at once), against the same call printing
%% into an io.StringIO.
output(Bases) ->
    Sink = spawn_link(fun io_sink/0),
    Me = self(),
    %% The rows run in a process whose group leader is the sink.
    Runner = spawn_link(fun() ->
        group_leader(Sink, self()),
        Sqrt = erl(fun() -> {ok, 4.0} = py:call(math, sqrt, [16]) end),
        Printed = erl(fun() -> {ok, none} = py:call(pybench, print_line, []) end),
        OutBases = Bases#{terminal_call => erl(fun() ->
                                                       {ok, 4.0} = py:call(math, sqrt, [16], #{},
                                                                           #{output => terminal})
                                               end),
                          stringio_print => erl(fun() ->
                                                        {ok, none} = py:call(pybench, print_line_to_memory, [])
                                                end)},
        Me ! {self(), [row(17, "py:call(math, sqrt, [16]), output => group_leader (the default)",
                           measure(latency, Sqrt, terminal_call, OutBases), 1.1),
                       row(17, "py:call of a function printing one line, to a group leader",
                           measure(latency, Printed, stringio_print, OutBases), 5)]}
    end),
    receive {Runner, Rows} -> unlink(Sink), exit(Sink, kill), Rows end.

%% A group leader that takes every request at once.
io_sink() ->
    receive
        {io_request, From, ReplyAs, _} -> From ! {io_reply, ReplyAs, ok}
    end,
    io_sink().

%% 16. Python's logging: a call whose function logs one warning, which
%% the handler sends to py_logger, against the same call logging a debug
%% record, which the level stops in Python. logger's primary level is
%% raised meanwhile, so that py_logger's logger:log drops them at once
%% rather than print them: the row is the cost to the calling thread,
%% while py_logger takes its share on the other core.
logging(Bases) ->
    ok = py:configure_logging(#{level => warning}),
    ok = logger:set_primary_config(level, error),
    {ok, 3} = py:call(pybench, log_warning, [3]),
    Logged = erl(fun() -> {ok, 3} = py:call(pybench, log_warning, [3]) end),
    LogBases = Bases#{filtered_log => erl(fun() -> {ok, 3} = py:call(pybench, log_debug, [3]) end)},
    Row = row(16, "py:call of a function logging one warning, sent to logger",
              measure(latency, Logged, filtered_log, LogBases), 3),
    ok = logger:set_primary_config(level, warning),
    [Row].

%% 10. References: a method called through a reference against py:call of
%% a module function doing the same work; and references made and dropped
%% against the same calls taking the value. A run of the latter is a
%% process making ?RUN_CALLS calls, its exit (which drops its references)
%% and one more call, which releases what the release thread has not.
references(Bases) ->
    {ok, Doubler} = py:call(pybench, 'Doubler', [], #{}, #{return => ref}),
    {ok, 6} = py:call_method(Doubler, double, [3]),
    {ok, {1, 2}} = py:call(pybench, pair, []),
    Method = erl(fun() -> {ok, 6} = py:call_method(Doubler, double, [3]) end),
    Made = fun(Return) -> runs(fun() -> pair_calls(Return) end) end,
    RefBases = Bases#{py_call => erl(fun() -> {ok, 6} = py:call(pybench, double, [3]) end),
                      value_call => Made(value)},
    [row(10, "py:call_method(Ref, double, [3])", measure(latency, Method, py_call, RefBases), 1.2),
     row(10, "return => ref, then dropped, per call", measure(runs, Made(ref), value_call, RefBases),
         1.5)].

%% 11. A call that returns at once, and its result awaited, against the
%% same py:call made directly, measured in alternating blocks; and the
%% floor of any call made in a process of its own: a process spawned to
%% send one message back, with no Python.
spawned_calls(Bases) ->
    Spawned = erl(fun() -> {ok, 4.0} = py:await(py:spawn_call(math, sqrt, [16])) end),
    Floor = erl(fun() ->
                        Self = self(),
                        Ref = make_ref(),
                        spawn_link(fun() -> Self ! {Ref, done} end),
                        receive {Ref, done} -> ok end
                end),
    Bases1 = Bases#{sqrt_call => erl(fun sqrt/0)},
    [row(11, "py:spawn_call(math, sqrt, [16]) + py:await",
         measure(latency, Spawned, sqrt_call, Bases1), 2),
     row(11, "a process spawned to answer, no Python (the floor)",
         measure(latency, Floor, sqrt_call, Bases1))].

%% 12. A stream of 100 000 small integers from a generator, received by the
%% process that started it, against the same integers returned as one list
%% by py:call; per item, each run one whole stream or call, in a new
%% process (a selective receive pays for every other message waiting in a
%% mailbox, and the bench's own may hold some).
streams(Bases) ->
    N = 100000,
    {ok, Ints} = py:call(pybench, ints, [N]),
    N = length(Ints),
    AsList = runs(fun() ->
                          in_new_process(fun() ->
                                                 Start = now_ns(),
                                                 {ok, L} = py:call(pybench, ints, [N]),
                                                 N = length(L),
                                                 (now_ns() - Start) / N
                                         end)
                  end),
    Streamed = runs(fun() ->
                            in_new_process(fun() ->
                                                   Start = now_ns(),
                                                   {ok, Ref} = py:stream_start(pybench, ints_gen,
                                                                               [N]),
                                                   N = receive_stream(Ref, 0),
                                                   (now_ns() - Start) / N
                                           end)
                    end),
    %% The floor of any stream: the same messages sent by an Erlang process.
    Floor = runs(fun() ->
                         in_new_process(fun() ->
                                                Ref = make_ref(),
                                                Owner = self(),
                                                Start = now_ns(),
                                                spawn_link(fun() -> send_items(Owner, Ref, N) end),
                                                N = receive_stream(Ref, 0),
                                                (now_ns() - Start) / N
                                        end)
                 end),
    Bases1 = Bases#{list_items => AsList},
    [row(12, "100 000 integers, per item", measure(runs, Streamed, list_items, Bases1), 3),
     row(12, "the same messages sent by an Erlang process (the floor)",
         measure(runs, Floor, list_items, Bases1))].

send_items(Owner, Ref, N) ->
    [Owner ! {py_stream, Ref, {data, I}} || I <- lists:seq(0, N - 1)],
    Owner ! {py_stream, Ref, done}.

%% 13. ?CHANNEL_MESSAGES small integers sent into a channel and received by
%% a Python call, against as many erlang.send from Python to a process;
%% per message, from the first send to the last receive, each run in new
%% processes.
channels(Bases) ->
    N = ?CHANNEL_MESSAGES,
    Channel = runs(fun() ->
                           in_new_process(fun() ->
                                                  {ok, Ch} = py_channel:new(),
                                                  Start = now_ns(),
                                                  Taker = py:spawn_call(pybench, channel_take,
                                                                        [Ch, N]),
                                                  send_all(Ch, N),
                                                  {ok, N} = py:await(Taker, infinity),
                                                  (now_ns() - Start) / N
                                          end)
                   end),
    Sends = runs(fun() ->
                         in_new_process(fun() ->
                                                Start = now_ns(),
                                                {ok, N} = py:call(pybench, sends, [self(), N]),
                                                ok = receive_ints(N),
                                                (now_ns() - Start) / N
                                        end)
                 end),
    [row(13, "100 000 integers, per message", measure(runs, Channel, python_sends,
                                                       Bases#{python_sends => Sends}), 2)].

%% 14. Contexts: a call in a worker context and in an own-GIL context
%% against the same call made without one; a CPU-bound pure-Python
%% function called from 2 processes at once, each on its own own-GIL
%% context, against the same two calls made one after the other from 1
%% process (a run: the two calls, wall time); and the memory an own-GIL
%% context takes (resident memory grown by ?WEIGHED_CONTEXTS new contexts,
%% divided). The own-GIL rows need Python 3.12 or later.
contexts(Bases) ->
    Bases1 = Bases#{sqrt_call => erl(fun sqrt/0)},
    {ok, Worker} = py_context:new(#{mode => worker}),
    Rows = [row(14, "py:call(Ctx, math, sqrt, [16]), worker context",
                measure(latency, erl(fun() -> {ok, 4.0} = py:call(Worker, math, sqrt, [16]) end),
                        sqrt_call, Bases1), 1.3)],
    ok = py_context:stop(Worker),
    case py:subinterp_supported() of
        true ->
            Rows ++ own_gil_rows(Bases1);
        false ->
            io:format("row 14: Python ~ts has no own-GIL subinterpreters; "
                      "only the worker row is measured~n", [maps:get(python_version, py:stats())]),
            Rows
    end.

own_gil_rows(Bases) ->
    Contexts = [begin
                    {ok, C} = py_context:new(#{mode => owngil}),
                    ok = py:exec(C, spin_source()),
                    C
                end || _ <- [1, 2]],
    [A, B] = Contexts,
    SpinIn = fun(C) -> {ok, _} = py:call(C, '__main__', spin, [?SPIN], #{timeout => infinity}) end,
    Parallel = runs(fun() ->
                            Start = now_ns(),
                            Pids = [spawn_monitor(fun() -> SpinIn(C) end) || C <- Contexts],
                            [receive {'DOWN', M, process, P, normal} -> ok end || {P, M} <- Pids],
                            now_ns() - Start
                    end),
    Serial = runs(fun() ->
                          Start = now_ns(),
                          SpinIn(A),
                          SpinIn(A),
                          now_ns() - Start
                  end),
    Rows = [row(14, "py:call(Ctx, math, sqrt, [16]), owngil context",
                measure(latency, erl(fun() -> {ok, 4.0} = py:call(B, math, sqrt, [16]) end),
                        sqrt_call, Bases), 1.3),
            row(14, "CPU-bound function, 2 processes on 2 owngil contexts, per run",
                measure(runs, Parallel, one_process, Bases#{one_process => Serial}), 0.6),
            row(14, "the same in pure Erlang, 2 processes (the floor: this VM's parallelism)",
                measure(runs, erlang_spins(parallel), one_process,
                        Bases#{one_process => erlang_spins(serial)})),
            row(14, "resident memory per owngil context", context_weight())],
    [ok = py_context:stop(C) || C <- Contexts],
    Rows.

%% 15. A pool of 2 peer nodes (py_pool): a small call against erpc:call of a
%% no-op to the same member, and the CPU-bound function of row 14 from 2
%% processes through the pool against the same 2 calls from 1 process to
%% 1 member. This VM becomes a distributed node for them (with an epmd of
%% its own if none runs).
pools(Bases) ->
    case distributed() of
        true ->
            {ok, _} = py_pool:start_link(bench_pool, #{peers => 2, setup => spin_source()}),
            try pool_rows(Bases)
            after py_pool:stop(bench_pool)
            end;
        false ->
            io:format("row 15: this VM cannot become a distributed node; no pool rows~n"),
            []
    end.

pool_rows(Bases) ->
    [Node | _] = py_pool:members(bench_pool),
    Key = hd([K || K <- lists:seq(1, 100),
                   py:call(bench_pool, os, getpid, [], #{key => K}) =:=
                       {ok, list_to_integer(erpc:call(Node, os, getpid, []))}]),
    Bases1 = Bases#{erpc_noop => erl(fun() -> Node = erpc:call(Node, erlang, node, []) end)},
    Small = erl(fun() -> {ok, 3} = py:call(bench_pool, operator, add, [1, 2], #{key => Key}) end),
    SpinOn = fun(Opts) ->
                     {ok, _} = py:call(bench_pool, '__main__', spin, [?SPIN],
                                       Opts#{timeout => infinity})
             end,
    Parallel = runs(fun() ->
                            Start = now_ns(),
                            Pids = [spawn_monitor(fun() -> SpinOn(#{}) end) || _ <- [1, 2]],
                            [receive {'DOWN', M, process, P, normal} -> ok end || {P, M} <- Pids],
                            now_ns() - Start
                    end),
    Serial = runs(fun() ->
                          Start = now_ns(),
                          SpinOn(#{key => Key}),
                          SpinOn(#{key => Key}),
                          now_ns() - Start
                  end),
    [row(15, "py:call(Pool, operator, add, [1, 2]), to one member",
         measure(slow, Small, erpc_noop, Bases1), 1.5),
     row(15, "CPU-bound function, 2 processes through a pool of 2 peers, per run",
         measure(runs, Parallel, one_process, Bases1#{one_process => Serial}), 0.6)].

spin_source() ->
    <<"def spin(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t\n">>.

%% Whether this VM is a distributed node, made one if need be.
distributed() ->
    is_alive() orelse begin
        _ = erl_epmd:names() =:= {error, address} andalso os:cmd("epmd -daemon"),
        wait_epmd(50),
        case net_kernel:start([list_to_atom("py_bench_" ++ os:getpid()), shortnames]) of
            {ok, _} -> true;
            _ -> false
        end
    end.

wait_epmd(0) -> ok;
wait_epmd(N) ->
    case erl_epmd:names() of
        {ok, _} -> ok;
        _ -> timer:sleep(100), wait_epmd(N - 1)
    end.

%% Two runs of a CPU-bound Erlang loop of about the Python one's length,
%% one after the other or in two processes at once: wall time.
erlang_spins(How) ->
    Spin = fun() -> spin(?SPIN * 20, 0) end,
    runs(fun() ->
                 Start = now_ns(),
                 case How of
                     serial ->
                         Spin(),
                         Spin();
                     parallel ->
                         Pids = [spawn_monitor(Spin) || _ <- [1, 2]],
                         [receive {'DOWN', M, process, P, normal} -> ok end || {P, M} <- Pids]
                 end,
                 now_ns() - Start
         end).

spin(0, Sum) -> Sum;
spin(N, Sum) -> spin(N - 1, Sum + N).

%% Resident memory grown by new own-GIL contexts, each having run a call,
%% per context, in KiB.
context_weight() ->
    Before = rss_kib(),
    Contexts = [begin
                    {ok, C} = py_context:new(#{mode => owngil}),
                    {ok, 4.0} = py:call(C, math, sqrt, [16]),
                    C
                end || _ <- lists:seq(1, ?WEIGHED_CONTEXTS)],
    After = rss_kib(),
    [ok = py_context:stop(C) || C <- Contexts],
    #{median => (After - Before) / ?WEIGHED_CONTEXTS, p99 => undefined, unit => kib}.

rss_kib() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    {match, [Kib]} = re:run(Status, "VmRSS:\\s+(\\d+)", [{capture, all_but_first, binary}]),
    binary_to_integer(Kib).

send_all(_Ch, 0) -> ok;
send_all(Ch, K) -> ok = py_channel:send(Ch, K), send_all(Ch, K - 1).

receive_ints(0) -> ok;
receive_ints(K) -> receive I when is_integer(I) -> receive_ints(K - 1) end.

%% Fun() run in a new process, and its result; a failure there fails the
%% row.
in_new_process(Fun) ->
    {Pid, Mon} = spawn_monitor(fun() -> exit({result, Fun()}) end),
    receive
        {'DOWN', Mon, process, Pid, {result, Result}} -> Result;
        {'DOWN', Mon, process, Pid, Reason} -> error({run_failed, Reason})
    end.

receive_stream(Ref, Count) ->
    receive
        {py_stream, Ref, {data, _}} -> receive_stream(Ref, Count + 1);
        {py_stream, Ref, done} -> Count
    end.

pair_calls(Return) ->
    Start = now_ns(),
    in_new_process(fun() ->
                           repeat(fun() ->
                                          {ok, _} = py:call(pybench, pair, [], #{},
                                                            #{return => Return})
                                  end, ?RUN_CALLS)
                   end),
    {ok, _} = py:call(pybench, pair, []),
    (now_ns() - Start) / ?RUN_CALLS.

%% 9. The baselines on their own, each given against the no-op dirty NIF.
baselines(Bases) ->
    {PingPong, PingPongEcho} = ping_pong(),
    Echo = spawn_link(fun pong_echo/0),
    Samplers = [{"no-op NIF, normal scheduler", erl(fun baseline_nif:noop/0), latency},
                {"no-op dirty NIF", maps:get(dirty_nif, Bases), latency},
                {"Erlang process ping-pong", erl(PingPong), latency},
                {"C thread -> process -> C thread, condvar", maps:get(round_trip, Bases), latency},
                {"C thread -> process -> C thread, eventfd", round_trip(Echo, eventfd, 0), latency},
                {"C thread -> process -> C thread, eventfd + 20 us spin",
                 round_trip(Echo, eventfd, ?WORKER_SPIN_NS), latency},
                {"two C threads, condvar ping-pong",
                 c_sampler(fun(N) -> baseline_nif:ping_pongs(0, N) end), latency},
                {"1 MB memcpy", maps:get(memcpy, Bases), slow}],
    Stats = [{Name, latency(warm(Sampler, Shape))} || {Name, Sampler, Shape} <- Samplers],
    [begin unlink(P), exit(P, kill) end || P <- [Echo, PingPongEcho]],
    {_, #{median := DirtyNif}} = lists:keyfind("no-op dirty NIF", 1, Stats),
    [row(9, Name, S#{vs => dirty_nif, base => DirtyNif}) || {Name, S} <- Stats].

%% Rows 1 and 2 again with dirty_call_limit 0, which sends every call to
%% the pool of NIF-owned threads. Restarts the application (twice), so it
%% comes last.
on_pool_threads(Bases) ->
    ok = application:stop(erlang_python),
    ok = application:set_env(erlang_python, dirty_call_limit, 0),
    {ok, _} = application:ensure_all_started(erlang_python),
    try
        [row(1, "1 caller, on a pool thread", measure(latency, erl(fun sqrt/0), dirty_nif, Bases)),
         row(2, "1 caller, on a pool thread", measure(latency, erl(fun eval/0), dirty_nif, Bases))]
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

%% The Erlang process of the C round trip: answers each ping by waking the
%% thread through its channel.
pong_echo() ->
    receive {baseline_ping, Channel} -> ok = baseline_nif:pong(Channel) end,
    pong_echo().

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

%% ---- measuring -----------------------------------------------------------

now_ns() -> erlang:monotonic_time(nanosecond).

repeat(_Fun, 0) -> ok;
repeat(Fun, K) -> Fun(), repeat(Fun, K - 1).

%% Fun timed in Erlang, once per sample.
-spec erl(fun(() -> term())) -> sampler().
erl(Fun) ->
    fun(N) -> [begin Start = now_ns(), Fun(), now_ns() - Start end || _ <- lists:seq(1, N)] end.

%% A sampler of bench/pybench.py: Function(*Args, N) returns N durations.
pybench_sampler(Function, Args) ->
    fun(N) -> pybench(Function, Args ++ [N]) end.

%% Run() returns the ns per call of one whole run.
runs(Run) ->
    fun(N) -> [Run() || _ <- lists:seq(1, N)] end.

%% Start(N) starts a C timer thread of baseline_nif, which sends its samples.
c_sampler(Start) ->
    fun(N) ->
            Ref = Start(N),
            receive
                {Ref, Samples} when is_list(Samples) -> Samples;
                {Ref, {error, Reason}} -> error({baseline_failed, Reason})
            end
    end.

round_trip(Echo, Wait, SpinNs) ->
    c_sampler(fun(N) -> baseline_nif:round_trips(Echo, Wait, SpinNs, 0, N) end).

%% {warm-up samples, blocks, samples per block}
shape(latency) -> {?WARMUP, ?BLOCKS, ?N div ?BLOCKS};
shape(slow) -> {?SLOW_WARMUP, ?BLOCKS, ?SLOW_N div ?BLOCKS};
shape(runs) -> {1, ?RUNS, 1}.

%% A sampler's samples after its warm-up, measured on their own.
warm(Sampler, Shape) ->
    {Warmup, Blocks, PerBlock} = shape(Shape),
    _ = Sampler(Warmup),
    Sampler(Blocks * PerBlock).

%% The row's stats, with its baseline Vs and `base', the median of Vs
%% measured in blocks alternating with the row's, after a warm-up of both.
-spec measure(shape(), sampler(), baseline(), #{baseline() => sampler()}) -> stats().
measure(Shape, Sampler, Vs, Bases) ->
    {Warmup, Blocks, PerBlock} = shape(Shape),
    Base = maps:get(Vs, Bases),
    BaseBlock = base_block(Vs),
    _ = Sampler(Warmup),
    _ = Base(BaseBlock),
    Parts = [{Sampler(PerBlock), Base(BaseBlock)} || _ <- lists:seq(1, Blocks)],
    Stats = latency(lists:append([S || {S, _} <- Parts])),
    #{median := BaseMedian} = latency(lists:append([B || {_, B} <- Parts])),
    case Shape of
        runs -> Stats#{vs => Vs, base => BaseMedian, rate => 1.0e6 / maps:get(median, Stats)};
        _ -> Stats#{vs => Vs, base => BaseMedian}
    end.

%% Samples of a baseline per block: a baseline measured in whole runs (row
%% 10's) gives one run per block, as its row does.
base_block(value_call) -> 1;
base_block(list_items) -> 1;
base_block(python_sends) -> 1;
base_block(one_process) -> 1;
base_block(erpc_noop) -> 100;
base_block(_) -> ?BASE_BLOCK.

%% Median, p90 and p99 of durations in ns, in us.
-spec latency([number()]) -> stats().
latency(Samples) ->
    Sorted = lists:sort(Samples),
    #{median => percentile(50, Sorted) / 1000, p90 => percentile(90, Sorted) / 1000,
      p99 => percentile(99, Sorted) / 1000}.

percentile(P, Sorted) ->
    lists:nth(max(1, ceil(P * length(Sorted) / 100)), Sorted).

%% ---- rows, ratios, targets ---------------------------------------------

row(Group, Name, Stats) -> row(Group, Name, Stats, undefined).

%% A row of the table from a measurement's stats; Limit is its target, a
%% ratio to its baseline (or, for vs `absolute', a bound on the value).
-spec row(1..17, unicode:chardata(), stats(), number() | undefined) -> row().
row(Group, Name, Stats, Limit) ->
    maps:merge(#{rate => undefined, unit => us, vs => undefined, base => undefined},
               Stats#{group => Group, name => unicode:characters_to_binary(Name),
                      limit => Limit}).

%% Each row's ratio to the baseline measured with it (for `absolute'
%% targets the value itself is judged), and whether its target is met.
judge(Rows) ->
    [begin
         Ratio = case Base of
                     undefined -> undefined;
                     _ -> Median / Base
                 end,
         Judged = case Vs of
                      absolute -> Median;
                      _ -> Ratio
                  end,
         Met = case Limit of
                   undefined -> undefined;
                   _ -> Judged =< Limit
               end,
         Row#{ratio => Ratio, met => Met}
     end || Row = #{vs := Vs, base := Base, median := Median, limit := Limit} <- Rows].

baseline_name(dirty_nif) -> "dirty NIF";
baseline_name(round_trip) -> "C round trip";
baseline_name(memcpy) -> "1 MB memcpy";
baseline_name(erpc_noop) -> "erpc:call of a no-op to the member";
baseline_name(py_call) -> "py:call(pybench, double, [3])";
baseline_name(value_call) -> "the same, return => value";
baseline_name(sqrt_call) -> "py:call(math, sqrt, [16])";
baseline_name(list_items) -> "one list from py:call";
baseline_name(python_sends) -> "erlang.send from Python";
baseline_name(one_process) -> "the same two calls from 1 process";
baseline_name(filtered_log) -> "the same logging a debug record (below the level)";
baseline_name(terminal_call) -> "the same, output => terminal";
baseline_name(stringio_print) -> "the same printing into an io.StringIO".

group_title(1) -> "1. py:call(math, sqrt, [16])";
group_title(2) -> "2. py:eval(<<\"1+1\">>) repeated";
group_title(3) -> "3. erlang.call from the executing thread";
group_title(4) -> "4. erlang.call from Python threads";
group_title(5) -> io_lib:format("5. a fresh threading.Thread making one erlang.call (~b threads)",
                                [?SLOW_N]);
group_title(6) -> "6. erlang.async_call";
group_title(7) -> "7. large terms into Python and back (py:call of an identity function)";
group_title(8) -> io_lib:format("8. per live calling thread (~b threads)", [?LIVE_THREADS]);
group_title(9) -> "9. baselines";
group_title(10) -> "10. references to Python objects";
group_title(11) -> "11. calls that return at once";
group_title(12) -> "12. streams (py:stream_start)";
group_title(13) -> "13. channels (py_channel:send, then Python receive)";
group_title(14) -> "14. contexts (py_context)";
group_title(15) -> "15. pools of peer nodes (py_pool)";
group_title(16) -> "16. Python logging into logger (py_logger)";
group_title(17) -> "17. output of calls (print to the caller's group leader)".

%% ---- output --------------------------------------------------------------

%% Column widths, negative for left-aligned; a wider cell pushes the rest
%% of its line right rather than being cut.
-define(WIDTHS, [-58, 11, 11, 8, 7, -25, 0]).

print(Rows) ->
    io:format("~n"),
    print_line(["", "median", "p99", "calls/s", "ratio", "  baseline (its median)", "target"]),
    lists:foldl(fun(Row = #{group := G}, Last) ->
                        G =/= Last andalso io:format("~ts~n", [group_title(G)]),
                        print_line(cells(Row)),
                        G
                end, 0, Rows),
    ok.

print_line(Cells) ->
    Padded = [case W < 0 of
                  true -> string:pad(C, -W);
                  false -> string:pad(C, W, leading)
              end || {C, W} <- lists:zip(Cells, ?WIDTHS)],
    io:format("~ts~n", [string:trim(lists:join(" ", Padded), trailing)]).

cells(#{name := Name, unit := Unit, median := Median, p99 := P99, rate := Rate, vs := Vs,
        base := Base, ratio := Ratio, limit := Limit, met := Met}) ->
    ["  " ++ binary_to_list(Name), value(Median, Unit), value(P99, Unit), rate(Rate),
     ratio(Ratio), baseline(Vs, Base), target(Vs, Limit, Met)].

baseline(_, undefined) -> "";
baseline(Vs, Base) -> io_lib:format("  ~s (~.2f us)", [baseline_name(Vs), Base]).

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

-define(COLUMNS, [group, section, row, unit, median, p99, calls_per_s, baseline,
                  baseline_median, ratio, target, met]).

%% One record per row, the same fields in CSV and JSON, figures rounded to
%% what the clock resolves. Python's csv and json modules do the quoting
%% and encoding (OTP 25 has no JSON encoder).
%% bench/results/bench-TIME, the files of this run but for their extension.
results_stem() ->
    {{Y, Mo, D}, {H, Mi, S}} = calendar:universal_time(),
    lists:flatten(io_lib:format("~s/bench-~4..0b~2..0b~2..0bT~2..0b~2..0b~2..0bZ",
                                [?RESULTS_DIR, Y, Mo, D, H, Mi, S])).

write(Format, Stem, Machine, Rows) ->
    Path = Stem ++ "." ++ binary_to_list(Format),
    ok = filelib:ensure_dir(Path),
    Records = [record(Row) || Row <- Rows],
    Abs = unicode:characters_to_binary(filename:absname(Path)),
    case Format of
        <<"csv">> -> pybench(write_csv, [Abs, ?COLUMNS, Records]);
        <<"json">> -> pybench(write_json, [Abs, #{machine => Machine,
                                                  rows => [maps:from_list(lists:zip(?COLUMNS, R))
                                                           || R <- Records]}]);
        <<"svg">> -> ok = file:write_file(Path, unicode:characters_to_binary(svg(Machine, Rows)))
    end,
    Path.

%% ---- the chart --------------------------------------------------------

-define(ROW_H, 26).
-define(LABEL_W, 600).
-define(BAR_W, 300).
-define(NOTE_W, 380).

%% The table as an SVG chart: a line per row, with two bars, the row's
%% median (blue) over its baseline's (grey), both drawn to the scale of
%% the larger, and the figures and the target's verdict after them. A row
%% with no baseline has its figure only.
svg(Machine, Rows) ->
    Lines = chart_lines(Rows, undefined),
    Width = ?LABEL_W + ?BAR_W + ?NOTE_W,
    Height = 70 + ?ROW_H * length(Lines),
    Title = io_lib:format("erlang_python benchmark: OTP ~ts, Python ~ts, ~b cores (~ts)",
                          [maps:get(otp, Machine), maps:get(python, Machine),
                           maps:get(cores, Machine), maps:get(cpu, Machine)]),
    [<<"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n">>,
     io_lib:format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"~b\" height=\"~b\" "
                   "font-family=\"sans-serif\" font-size=\"12\">~n", [Width, Height]),
     <<"<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n">>,
     text(10, 22, [{"font-size", "15"}, {"font-weight", "bold"}], Title),
     svg_legend(),
     [chart_line(Line, 70 + ?ROW_H * (I - 1)) || {I, Line} <- lists:enumerate(Lines)],
     <<"</svg>\n">>].

chart_lines([], _Group) ->
    [];
chart_lines([#{group := G} = Row | Rest], G) ->
    [{row, Row} | chart_lines(Rest, G)];
chart_lines([#{group := G} | _] = Rows, _Other) ->
    [{title, group_title(G)} | chart_lines(Rows, G)].

svg_legend() ->
    [rect(10, 38, 14, 8, "#3366cc"), text(28, 46, [], "the row (median)"),
     rect(160, 38, 14, 8, "#aaaaaa"), text(178, 46, [], "its baseline, measured with it"),
     text(?LABEL_W, 46, [], "bars of a row to its own scale")].

chart_line({title, Title}, Y) ->
    text(10, Y + 17, [{"font-weight", "bold"}], Title);
chart_line({row, #{name := Name, median := Median, base := Base, unit := Unit} = Row}, Y) ->
    Label = text(20, Y + 16, [], Name),
    case Base of
        undefined ->
            [Label, text(?LABEL_W, Y + 16, [], figure(Median, Unit))];
        _ ->
            Scale = ?BAR_W / max(max(Median, Base), 1.0e-9),
            [Label,
             rect(?LABEL_W, Y + 3, round(Median * Scale), 9, "#3366cc"),
             rect(?LABEL_W, Y + 14, round(Base * Scale), 9, "#aaaaaa"),
             text(?LABEL_W + ?BAR_W + 10, Y + 16, [], verdict(Row))]
    end.

verdict(#{median := Median, base := Base, unit := Unit, ratio := Ratio, limit := Limit,
          met := Met}) ->
    Target = case Limit of
                 undefined -> "";
                 _ -> io_lib:format(", target \x{2264} ~p: ~s", [Limit, case Met of
                                                                         true -> "met";
                                                                         false -> "NOT met"
                                                                     end])
             end,
    [figure(Median, Unit), " vs ", figure(Base, Unit), io_lib:format(" (~.2f\x{d7}", [Ratio]),
     Target, ")"].

figure(Value, us) -> io_lib:format("~.2f \x{b5}s", [Value]);
figure(Value, kib) -> io_lib:format("~.1f KiB", [Value]);
figure(Value, fd) -> io_lib:format("~.2f fd", [Value]).

rect(X, Y, W, H, Fill) ->
    io_lib:format("<rect x=\"~b\" y=\"~b\" width=\"~b\" height=\"~b\" fill=\"~s\"/>~n",
                  [X, Y, max(W, 1), H, Fill]).

text(X, Y, Attributes, Text) ->
    [io_lib:format("<text x=\"~b\" y=\"~b\"", [X, Y]),
     [io_lib:format(" ~s=\"~s\"", [K, V]) || {K, V} <- Attributes], ">",
     xml_escape(unicode:characters_to_list(Text)), "</text>\n"].

xml_escape(Text) ->
    lists:flatmap(fun($&) -> "&amp;";
                     ($<) -> "&lt;";
                     ($>) -> "&gt;";
                     ($") -> "&quot;";
                     (C) -> [C]
                  end, Text).

record(#{group := G, name := Name, unit := Unit, median := Median, p99 := P99, rate := Rate,
         vs := Vs, base := Base, ratio := Ratio, limit := Limit, met := Met}) ->
    Baseline = case Vs of
                   absolute -> undefined;
                   _ -> Vs
               end,
    [G, unicode:characters_to_binary(group_title(G)), Name, Unit, round3(Median), round3(P99),
     round3(Rate), Baseline, round3(Base), round3(Ratio), Limit, Met].

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
