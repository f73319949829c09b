%% What a user can see of the embedded Python from Erlang: its version,
%% its memory as Python's allocator, collector and tracemalloc count it
%% and as the OS does, and its garbage collector run on demand.
%%
%% Each figure is checked against what Python itself says, or against a
%% change the case makes (objects kept, cycles dropped, tracemalloc
%% started), not only for its type.
-module(py_observability_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([version_is_the_embedded_pythons/1,
         memory_stats_follow_what_python_allocates/1,
         memory_stats_report_tracemalloc_while_it_traces/1,
         memory_stats_report_this_os_process/1,
         gc_collects_unreachable_cycles/1,
         gc_of_one_generation_and_bad_generations/1]).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [version_is_the_embedded_pythons, memory_stats_follow_what_python_allocates,
     memory_stats_report_tracemalloc_while_it_traces, memory_stats_report_this_os_process,
     gc_collects_unreachable_cycles, gc_of_one_generation_and_bad_generations].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok.

version_is_the_embedded_pythons(_Config) ->
    Version = py:version(),
    {ok, Version} = py:eval(<<"'%d.%d.%d' % __import__('sys').version_info[:3]">>),
    [_, _, _] = binary:split(Version, <<".">>, [global]).

memory_stats_follow_what_python_allocates(_Config) ->
    {ok, #{python_allocated_blocks := Before, gc_counts := [_, _, _] = Counts,
           gc_collections := [_, _, _] = Collections}} = py:memory_stats(),
    [true = is_integer(N) andalso N >= 0 || N <- Counts ++ Collections],
    ok = py:exec(<<"obs_kept = [object() for _ in range(100000)]">>),
    {ok, #{python_allocated_blocks := Holding}} = py:memory_stats(),
    ?assert(Holding >= Before + 100000, {Before, Holding}),
    ok = py:exec(<<"del obs_kept">>),
    {ok, #{python_allocated_blocks := After}} = py:memory_stats(),
    %% Give or take the few blocks the calls themselves leave.
    ?assert(After =< Holding - 99000, {Holding, After}).

memory_stats_report_tracemalloc_while_it_traces(_Config) ->
    {ok, #{tracemalloc := not_tracing}} = py:memory_stats(),
    {ok, _} = py:call(tracemalloc, start, []),
    try
        ok = py:exec(<<"obs_traced = bytearray(4_000_000)">>),
        {ok, #{tracemalloc := #{current := Current, peak := Peak}}} = py:memory_stats(),
        ?assert(Current >= 4000000, Current),
        ?assert(Peak >= Current, {Peak, Current}),
        ok = py:exec(<<"del obs_traced">>)
    after
        {ok, _} = py:call(tracemalloc, stop, [])
    end,
    {ok, #{tracemalloc := not_tracing}} = py:memory_stats().

memory_stats_report_this_os_process(_Config) ->
    {ok, #{rss_bytes := Rss, rss_peak_bytes := Peak, erlang_total_bytes := Erlang}} =
        py:memory_stats(),
    {ok, Status} = file:read_file("/proc/self/status"),
    {match, [Kib]} = re:run(Status, "VmRSS:\\s+(\\d+) kB", [{capture, all_but_first, binary}]),
    Now = binary_to_integer(Kib) * 1024,
    %% Read a moment apart: within 50 MB of each other.
    ?assert(abs(Now - Rss) < 50 bsl 20, {Now, Rss}),
    ?assert(Peak >= Rss, {Peak, Rss}),
    %% The OS process holds the VM's own memory and Python's.
    ?assert(Rss > Erlang, {Rss, Erlang}).

gc_collects_unreachable_cycles(_Config) ->
    {ok, _} = py:gc(),
    ok = py:exec(<<"class ObsNode:\n"
                   "    pass\n"
                   "def obs_make_cycles(n):\n"
                   "    for _ in range(n):\n"
                   "        a, b = ObsNode(), ObsNode()\n"
                   "        a.other, b.other = b, a\n">>),
    %% With the automatic collector off, the cycles wait for py:gc/0.
    {ok, none} = py:call(gc, disable, []),
    try
        {ok, none} = py:call('__main__', obs_make_cycles, [1000]),
        {ok, Found} = py:gc(),
        %% At least the two objects of each cycle.
        ?assert(Found >= 2000, Found)
    after
        {ok, none} = py:call(gc, enable, [])
    end.

gc_of_one_generation_and_bad_generations(_Config) ->
    {ok, N} = py:gc(0),
    true = is_integer(N) andalso N >= 0,
    {ok, _} = py:gc(2),
    {error, {badarg, generation}} = py:gc(3),
    {error, {badarg, generation}} = py:gc(-1),
    {error, {badarg, generation}} = py:gc(young).
