%% @doc `make bench': latency of calls into Python, as medians and p99 over
%% many sequential calls after a warm-up, each also given as a ratio to a
%% baseline measured in the same run (a no-op dirty NIF call).
%%
%% Rows for the NIF-owned thread path are measured with dirty_call_limit set
%% to 0, which sends every call there.
-module(py_bench).
-export([main/0]).

-define(WARMUP, 2000).
-define(N, 20000).

-spec main() -> ok.
main() ->
    {ok, _} = application:ensure_all_started(erlang_python),
    #{python_version := Version} = py:stats(),
    io:format("erlang_python benchmark: OTP ~s, Python ~s, ~b cores, ~b dirty I/O schedulers~n",
              [erlang:system_info(otp_release), Version, erlang:system_info(logical_processors),
               erlang:system_info(dirty_io_schedulers)]),
    Baseline = measure(fun baseline_nif:dirty_noop/0),
    Rows = [{"no-op NIF (normal scheduler)", measure(fun baseline_nif:noop/0)},
            {"no-op dirty NIF (baseline)", Baseline},
            {"Erlang process ping-pong", measure(ping_pong())},
            {"py:call(math, sqrt, [16])", measure(fun sqrt/0)},
            {"py:eval(<<\"1+1\">>)", measure(fun eval/0)},
            {"erlang.call(identity) from the calling thread", erlang_call()}]
        ++ threaded_calls([1, 4, 16])
        ++ fresh_threads()
        ++ async_calls()
        ++ with_pool_only([{"py:call(math, sqrt, [16]), pool thread", fun sqrt/0},
                           {"py:eval(<<\"1+1\">>), pool thread", fun eval/0}]),
    {BaseMedian, _} = Baseline,
    io:format("~n~-50s ~12s ~12s ~10s~n", ["", "median us", "p99 us", "x baseline"]),
    [io:format("~-50ts ~12.2f ~12.2f ~10.2f~n", [Name, Median, P99, Median / BaseMedian])
     || {Name, {Median, P99}} <- Rows],
    ok.

sqrt() -> {ok, 4.0} = py:call(math, sqrt, [16]).
eval() -> {ok, 2} = py:eval(<<"1+1">>).

ping_pong() ->
    Echo = spawn_link(fun Loop() -> receive {From, M} -> From ! M, Loop() end end),
    fun() -> Echo ! {self(), ping}, receive ping -> ok end end.

%% Timed inside Python, per call, after a warm-up.
erlang_call() ->
    ok = py:register_function(bench_identity, fun([X]) -> X end),
    ok = py:exec(<<"def bench_erlang_call(warmup, n):\n"
                   "    import time\n"
                   "    call = erlang.call\n"
                   "    for i in range(warmup): call('bench_identity', i)\n"
                   "    times = []\n"
                   "    clock = time.perf_counter_ns\n"
                   "    for i in range(n):\n"
                   "        t0 = clock(); call('bench_identity', i); times.append(clock() - t0)\n"
                   "    times.sort()\n"
                   "    return times[n // 2] / 1000, times[n * 99 // 100] / 1000\n">>),
    {ok, {Median, P99}} = py:call('__main__', bench_erlang_call, [?WARMUP, ?N], #{}, infinity),
    {Median, P99}.

%% erlang.call from N Python threads at once: wall time over all calls,
%% per call (so 4 threads at 1 us each show 0.25 us). The median of 5 runs;
%% no p99 for an aggregate.
threaded_calls(Counts) ->
    ok = py:exec(<<"def bench_threads(nthreads, calls):\n"
                   "    import threading, time\n"
                   "    barrier = threading.Barrier(nthreads + 1)\n"
                   "    def work():\n"
                   "        call = erlang.call\n"
                   "        for i in range(100): call('bench_identity', i)\n"
                   "        barrier.wait()\n"
                   "        for i in range(calls): call('bench_identity', i)\n"
                   "        barrier.wait()\n"
                   "    threads = [threading.Thread(target=work) for _ in range(nthreads)]\n"
                   "    for t in threads: t.start()\n"
                   "    barrier.wait()\n"
                   "    t0 = time.perf_counter_ns()\n"
                   "    barrier.wait()\n"
                   "    t1 = time.perf_counter_ns()\n"
                   "    for t in threads: t.join()\n"
                   "    return (t1 - t0) / (nthreads * calls) / 1000\n">>),
    [begin
         Runs = lists:sort([begin
                                {ok, PerCall} = py:call('__main__', bench_threads,
                                                        [N, 20000 div N], #{}, infinity),
                                PerCall
                            end || _ <- lists:seq(1, 5)]),
         Median = lists:nth(3, Runs),
         {io_lib:format("erlang.call from ~b Python threads, per call", [N]), {Median, Median}}
     end || N <- Counts].

%% A new threading.Thread whose first act is an erlang.call, start to
%% join; and the same thread doing nothing, for comparison.
fresh_threads() ->
    ok = py:exec(<<"def bench_fresh_thread(n, call_erlang):\n"
                   "    import threading, time\n"
                   "    target = (lambda: erlang.call('bench_identity', 1)) if call_erlang else (lambda: None)\n"
                   "    times = []\n"
                   "    for _ in range(n):\n"
                   "        t0 = time.perf_counter_ns()\n"
                   "        t = threading.Thread(target=target)\n"
                   "        t.start(); t.join()\n"
                   "        times.append(time.perf_counter_ns() - t0)\n"
                   "    times.sort()\n"
                   "    return times[n // 2] / 1000, times[n * 99 // 100] / 1000\n">>),
    {ok, WithCall} = py:call('__main__', bench_fresh_thread, [2000, true], #{}, infinity),
    {ok, Bare} = py:call('__main__', bench_fresh_thread, [2000, false], #{}, infinity),
    [{"new thread + first erlang.call, start to join", WithCall},
     {"new thread doing nothing, start to join", Bare}].

%% erlang.async_call from one event loop: 1 000 gathered (wall time per
%% call, median of 7 rounds), and one awaited at a time; and py:call of an
%% async def, which runs it in a new event loop.
async_calls() ->
    ok = py:exec(<<"import asyncio, time\n"
                   "async def bench_gather(n):\n"
                   "    t0 = time.perf_counter_ns()\n"
                   "    await asyncio.gather(*[erlang.async_call('bench_identity', i) for i in range(n)])\n"
                   "    return (time.perf_counter_ns() - t0) / n / 1000\n"
                   "async def bench_gathers(n, rounds):\n"
                   "    await bench_gather(n)\n"
                   "    per_call = sorted([await bench_gather(n) for _ in range(rounds)])\n"
                   "    return per_call[rounds // 2]\n"
                   "async def bench_one_by_one(warmup, n):\n"
                   "    call = erlang.async_call\n"
                   "    for i in range(warmup): await call('bench_identity', i)\n"
                   "    times = []\n"
                   "    clock = time.perf_counter_ns\n"
                   "    for i in range(n):\n"
                   "        t0 = clock(); await call('bench_identity', i); times.append(clock() - t0)\n"
                   "    times.sort()\n"
                   "    return times[n // 2] / 1000, times[n * 99 // 100] / 1000\n"
                   "async def bench_async_noop():\n"
                   "    return 1\n">>),
    {ok, PerCall} = py:eval(<<"asyncio.run(bench_gathers(1000, 7))">>, #{}, infinity),
    {ok, OneByOne} = py:eval(<<"asyncio.run(bench_one_by_one(warmup, n))">>,
                             #{warmup => ?WARMUP, n => ?N}, infinity),
    [{io_lib:format("erlang.async_call x1000 in flight (~b calls/s)",
                    [round(1.0e6 / PerCall)]), {PerCall, PerCall}},
     {"erlang.async_call awaited one at a time", OneByOne},
     {"py:call of an async def (new event loop)",
      measure(fun() -> {ok, 1} = py:call('__main__', bench_async_noop, []) end)}].

with_pool_only(Cases) ->
    ok = application:stop(erlang_python),
    ok = application:set_env(erlang_python, dirty_call_limit, 0),
    {ok, _} = application:ensure_all_started(erlang_python),
    try
        [{Name, measure(Fun)} || {Name, Fun} <- Cases]
    after
        ok = application:stop(erlang_python),
        application:unset_env(erlang_python, dirty_call_limit),
        {ok, _} = application:ensure_all_started(erlang_python)
    end.

%% {Median, P99} in microseconds.
measure(Fun) ->
    [Fun() || _ <- lists:seq(1, ?WARMUP)],
    Times = lists:sort([begin
                            T0 = erlang:monotonic_time(nanosecond),
                            Fun(),
                            erlang:monotonic_time(nanosecond) - T0
                        end || _ <- lists:seq(1, ?N)]),
    {lists:nth(?N div 2, Times) / 1000, lists:nth(?N * 99 div 100, Times) / 1000}.
