%% Python's logging into Erlang's logger, as a user sees it: a logger
%% handler of the suite's own receives what Python logs, with the mapped
%% level and the record's details as metadata, from calls, from threads
%% Python started and from own-GIL contexts; py:configure_logging/1 and the
%% application environment set the level; restarts and a crash of the
%% forwarding process leave exactly one handler in Python.
%%
%% Every case logs under a logger name of its own and waits for the
%% records it expects; a record that must not arrive is shown absent by a
%% later record of the same thread that does (one thread's records arrive
%% in order).
-module(py_logging_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([record_reaches_logger_with_its_details/1,
         python_levels_map_to_logger_levels/1,
         records_below_the_level_stay_in_python/1,
         exception_text_is_in_the_message_and_the_metadata/1,
         records_from_python_threads_reach_logger/1,
         records_from_an_owngil_context_reach_logger/1,
         bad_options_are_rejected_and_change_nothing/1,
         level_none_gives_python_its_own_handling_back/1,
         application_restarts_leave_one_handler/1,
         killed_forwarder_is_restarted_with_one_handler/1,
         logging_env_is_applied_at_start_and_a_bad_one_is_logged/1,
         bad_records_do_not_stop_the_ones_after/1,
         many_records_from_many_threads_all_arrive/1,
         flood_past_the_queue_limit_is_dropped_and_counted/1]).
%% logger handler callback
-export([log/2]).

-define(HANDLER, py_logging_suite).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [record_reaches_logger_with_its_details, python_levels_map_to_logger_levels,
     records_below_the_level_stay_in_python, exception_text_is_in_the_message_and_the_metadata,
     records_from_python_threads_reach_logger, records_from_an_owngil_context_reach_logger,
     bad_options_are_rejected_and_change_nothing, level_none_gives_python_its_own_handling_back,
     application_restarts_leave_one_handler, killed_forwarder_is_restarted_with_one_handler,
     logging_env_is_applied_at_start_and_a_bad_one_is_logged,
     bad_records_do_not_stop_the_ones_after, many_records_from_many_threads_all_arrive,
     flood_past_the_queue_limit_is_dropped_and_counted].

%% Everything through logger's primary level; OTP's default handler (which
%% the application lets [python] through) kept quiet.
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    #{level := Primary} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, all),
    Default = case logger:get_handler_config(default) of
                  {ok, #{level := L}} -> ok = logger:set_handler_config(default, level, none), L;
                  {error, _} -> undefined
              end,
    [{primary_level, Primary}, {default_level, Default} | Config].

end_per_suite(Config) ->
    _ = ?config(default_level, Config) =/= undefined andalso
        logger:set_handler_config(default, level, ?config(default_level, Config)),
    ok = logger:set_primary_config(level, ?config(primary_level, Config)).

%% Each case: a handler that sends this process the events of domain
%% [python] (and erlang_python's own), and logging at its default.
init_per_testcase(_Case, Config) ->
    ok = logger:add_handler(?HANDLER, ?MODULE,
                            #{config => #{pid => self()}, filter_default => stop,
                              filters => [{python, {fun logger_filters:domain/2,
                                                    {log, sub, [python]}}},
                                          {ours, {fun logger_filters:domain/2,
                                                  {log, sub, [erlang_python]}}}]}),
    ok = py:configure_logging(#{level => warning}),
    Config.

end_per_testcase(_Case, _Config) ->
    _ = logger:remove_handler(?HANDLER),
    case whereis(py_logger) of
        undefined -> {ok, _} = application:ensure_all_started(erlang_python);
        _ -> ok
    end,
    ok = py:configure_logging(#{level => warning}).

%% The handler callback: the event to the case's process.
log(Event, #{config := #{pid := Pid}}) ->
    Pid ! {logged, Event},
    ok.

%%% Cases

record_reaches_logger_with_its_details(Config) ->
    Before = os:system_time(microsecond),
    ok = py:exec(<<"import logging\n"
                   "def logging_suite_details():\n"
                   "    logging.getLogger('suite.details').warning('hello %s, %d', 'w\\u00e9rld', 42)\n"
                   "logging_suite_details()\n">>),
    {warning, <<"hello w", 16#e9/utf8, "rld, 42">>, Meta} = next_record(<<"suite.details">>),
    After = os:system_time(microsecond),
    #{domain := [python], python_logger := <<"suite.details">>,
      python_function := <<"logging_suite_details">>, line := 3, time := Time,
      thread := Thread, file := File, python_module := Module} = Meta,
    ?assert(Before =< Time andalso Time =< After, {Before, Time, After}),
    ?assert(is_binary(Thread) andalso is_binary(Module), Meta),
    ?assert(io_lib:char_list(File), File),
    false = maps:is_key(exception, Meta),
    %% From a module file: its name and path.
    Dir = ?config(priv_dir, Config),
    ok = file:write_file(filename:join(Dir, "logging_suite_mod.py"),
                         <<"import logging\n"
                           "def shout():\n"
                           "    logging.getLogger('suite.module').error('from a module')\n">>),
    {ok, none} = py:eval(<<"__import__('sys').path.insert(0, d)">>, #{d => list_to_binary(Dir)}),
    {ok, none} = py:call(logging_suite_mod, shout, []),
    {error, <<"from a module">>, #{python_module := <<"logging_suite_mod">>,
                                   python_function := <<"shout">>, line := 3,
                                   file := ModFile}} = next_record(<<"suite.module">>),
    ?assertEqual(filename:join(Dir, "logging_suite_mod.py"), ModFile).

python_levels_map_to_logger_levels(_Config) ->
    ok = py:configure_logging(#{level => all}),
    ok = py:exec(<<"import logging\n"
                   "l = logging.getLogger('suite.levels')\n"
                   "for n in (5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 70):\n"
                   "    l.log(n, 'at %d', n)\n">>),
    Expected = [{5, debug}, {10, debug}, {15, debug}, {20, info}, {25, notice}, {30, warning},
                {35, warning}, {40, error}, {45, error}, {50, critical}, {60, alert},
                {70, emergency}],
    [begin
         Text = iolist_to_binary(io_lib:format("at ~b", [N])),
         {Level, Text, _} = next_record(<<"suite.levels">>)
     end || {N, Level} <- Expected],
    %% logging's own helpers, each at its namesake.
    ok = py:exec(<<"l.debug('d'); l.info('i'); l.warning('w'); l.error('e'); l.critical('c')">>),
    [{debug, <<"d">>}, {info, <<"i">>}, {warning, <<"w">>}, {error, <<"e">>},
     {critical, <<"c">>}] = [begin {L, T, _} = next_record(<<"suite.levels">>), {L, T} end
                             || _ <- lists:seq(1, 5)].

records_below_the_level_stay_in_python(_Config) ->
    %% Default: warning. The info record is not sent; the warning after it is.
    ok = py:exec(<<"import logging\n"
                   "l = logging.getLogger('suite.below')\n"
                   "l.info('quiet'); l.debug('quieter'); l.warning('loud')">>),
    {warning, <<"loud">>, _} = next_record(<<"suite.below">>),
    {ok, 30} = py:eval(<<"__import__('logging').getLogger().level">>),
    ok = py:configure_logging(#{level => info}),
    {ok, 20} = py:eval(<<"__import__('logging').getLogger().level">>),
    ok = py:exec(<<"l.debug('quiet'); l.info('now heard')">>),
    {info, <<"now heard">>, _} = next_record(<<"suite.below">>),
    ok = py:configure_logging(#{level => error}),
    ok = py:exec(<<"l.warning('quiet'); l.error('only this')">>),
    {error, <<"only this">>, _} = next_record(<<"suite.below">>),
    %% A logger level of Python's own still counts, as in Python.
    ok = py:exec(<<"l.setLevel(logging.CRITICAL)\nl.error('quiet'); l.critical('top')\n"
                   "l.setLevel(logging.NOTSET)">>),
    {critical, <<"top">>, _} = next_record(<<"suite.below">>).

exception_text_is_in_the_message_and_the_metadata(_Config) ->
    ok = py:exec(<<"import logging\n"
                   "def logging_suite_fails():\n"
                   "    raise ValueError('bad value')\n"
                   "try:\n"
                   "    logging_suite_fails()\n"
                   "except ValueError:\n"
                   "    logging.getLogger('suite.exc').exception('it failed')\n">>),
    {error, Text, #{exception := Exception}} = next_record(<<"suite.exc">>),
    [<<"it failed">>, Exception] = binary:split(Text, <<"\n">>),
    <<"Traceback (most recent call last):", _/binary>> = Exception,
    {match, _} = re:run(Exception, <<"in logging_suite_fails\n.*ValueError: bad value$">>,
                        [dotall]),
    %% stack_info too.
    ok = py:exec(<<"logging.getLogger('suite.exc').warning('here', stack_info=True)">>),
    {warning, _, #{exception := <<"Stack (most recent call last):", _/binary>>}} =
        next_record(<<"suite.exc">>).

records_from_python_threads_reach_logger(_Config) ->
    %% A thread that logs after the call that started it has returned,
    %% with no caller at all.
    ok = py:exec(<<"import logging, threading\n"
                   "logging_suite_go = threading.Event()\n"
                   "def logging_suite_late():\n"
                   "    logging_suite_go.wait()\n"
                   "    logging.getLogger('suite.thread').warning('late, from %s',\n"
                   "        threading.current_thread().name)\n"
                   "logging_suite_t = threading.Thread(target=logging_suite_late, name='lt')\n"
                   "logging_suite_t.start()\n">>),
    ok = py:exec(<<"logging_suite_go.set()">>),
    {warning, <<"late, from lt">>, #{thread := <<"lt">>}} = next_record(<<"suite.thread">>),
    ok = py:exec(<<"logging_suite_t.join()">>),
    %% And from an asyncio task of a call.
    ok = py:exec(<<"import asyncio\n"
                   "async def logging_suite_task():\n"
                   "    await asyncio.sleep(0)\n"
                   "    logging.getLogger('suite.thread').warning('from a task')\n"
                   "asyncio.run(logging_suite_task())\n">>),
    {warning, <<"from a task">>, _} = next_record(<<"suite.thread">>).

records_from_an_owngil_context_reach_logger(_Config) ->
    case py:subinterp_supported() of
        false ->
            {skip, "own-GIL contexts need Python 3.12 or later"};
        true ->
            {ok, Ctx} = py_context:new(#{mode => owngil}),
            try
                ok = py:exec(Ctx, <<"import logging\n"
                                    "logging.getLogger('suite.ctx').warning('from a context')">>),
                {warning, <<"from a context">>, _} = next_record(<<"suite.ctx">>),
                %% configure_logging reaches the context too.
                ok = py:configure_logging(#{level => info}),
                {ok, 20} = py:eval(Ctx, <<"__import__('logging').getLogger().level">>),
                ok = py:exec(Ctx, <<"logging.getLogger('suite.ctx').info('info in a context')">>),
                {info, <<"info in a context">>, _} = next_record(<<"suite.ctx">>),
                %% A restarted py_logger takes the running context back.
                kill_and_await_logger(),
                ok = py:exec(Ctx, <<"logging.getLogger('suite.ctx').warning('after a restart')">>),
                {warning, <<"after a restart">>, _} = next_record(<<"suite.ctx">>)
            after
                py_context:stop(Ctx)
            end,
            %% A stopped context is dropped, not an error.
            ok = py:configure_logging(#{level => warning})
    end.

bad_options_are_rejected_and_change_nothing(_Config) ->
    {error, {badarg, level}} = py:configure_logging(#{level => loud}),
    {error, {badarg, level}} = py:configure_logging(#{level => "debug"}),
    {error, {badarg, colour}} = py:configure_logging(#{colour => red}),
    {error, {badarg, options}} = py:configure_logging([{level, debug}]),
    {error, {badarg, options}} = py:configure_logging(debug),
    {ok, 30} = py:eval(<<"__import__('logging').getLogger().level">>),
    ok = py:exec(<<"import logging\nlogging.getLogger('suite.bad').warning('still here')">>),
    {warning, <<"still here">>, _} = next_record(<<"suite.bad">>),
    %% Without the application: not_started.
    ok = application:stop(erlang_python),
    {error, not_started} = py:configure_logging(#{level => info}),
    {ok, _} = application:ensure_all_started(erlang_python).

level_none_gives_python_its_own_handling_back(_Config) ->
    1 = our_handlers(),
    ok = py:configure_logging(#{level => none}),
    0 = our_handlers(),
    %% Python's last resort handler writes it to stderr; nothing comes here.
    ok = py:exec(<<"import logging\nlogging.getLogger('suite.none').warning('to stderr')">>),
    ok = py:configure_logging(#{level => warning}),
    1 = our_handlers(),
    ok = py:exec(<<"logging.getLogger('suite.none').warning('back')">>),
    {warning, <<"back">>, _} = next_record(<<"suite.none">>).

application_restarts_leave_one_handler(_Config) ->
    [py_test_lib:restart_app() || _ <- lists:seq(1, 3)],
    1 = our_handlers(),
    ok = py:exec(<<"import logging\nlogging.getLogger('suite.restart').warning('once')">>),
    {warning, <<"once">>, _} = next_record(<<"suite.restart">>),
    %% Stopped, the handler is gone: Python's own handling applies.
    ok = application:stop(erlang_python),
    0 = our_handlers(),
    {ok, _} = application:ensure_all_started(erlang_python),
    1 = our_handlers(),
    no_more_records(<<"suite.restart">>).

killed_forwarder_is_restarted_with_one_handler(_Config) ->
    kill_and_await_logger(),
    1 = our_handlers(),
    ok = py:exec(<<"import logging\nlogging.getLogger('suite.killed').warning('after')">>),
    {warning, <<"after">>, _} = next_record(<<"suite.killed">>).

logging_env_is_applied_at_start_and_a_bad_one_is_logged(_Config) ->
    try
        py_test_lib:restart_with(logging, #{level => error}),
        {ok, 40} = py:eval(<<"__import__('logging').getLogger().level">>),
        ok = py:exec(<<"import logging\nl = logging.getLogger('suite.env')\n"
                       "l.warning('quiet'); l.error('loud')">>),
        {error, <<"loud">>, _} = next_record(<<"suite.env">>),
        %% A bad value: a warning from the application, and the default.
        py_test_lib:restart_with(logging, #{level => shouting}),
        {warning, Warning} = next_own_warning(),
        {match, _} = re:run(Warning, "logging .*shouting.* not valid"),
        {ok, 30} = py:eval(<<"__import__('logging').getLogger().level">>),
        py_test_lib:restart_with(logging, #{level => none}),
        0 = our_handlers()
    after
        py_test_lib:restart_without(logging)
    end,
    1 = our_handlers().

bad_records_do_not_stop_the_ones_after(_Config) ->
    %% A message whose arguments do not fit: logging's handleError reports
    %% it on stderr, and nothing reaches logger for it.
    ok = py:exec(<<"import logging\nl = logging.getLogger('suite.badrec')\n"
                   "l.warning('%d', 'not a number')\n"
                   "l.warning(['not', 'a', 'string'])\n"
                   "l.warning('fine')">>),
    {warning, <<"['not', 'a', 'string']">>, _} = next_record(<<"suite.badrec">>),
    {warning, <<"fine">>, _} = next_record(<<"suite.badrec">>),
    %% Text that cannot be UTF-8 (a lone surrogate) cannot be sent: the same.
    ok = py:exec(<<"l.warning('\\udcff lone surrogate')\nl.warning('after the surrogate')">>),
    {warning, <<"after the surrogate">>, _} = next_record(<<"suite.badrec">>).

many_records_from_many_threads_all_arrive(_Config) ->
    Threads = 4,
    Each = 2500,
    ok = py:exec(iolist_to_binary(
                   ["import logging, threading\n"
                    "def logging_suite_many(t):\n"
                    "    l = logging.getLogger('suite.many')\n"
                    "    for i in range(", integer_to_list(Each), "):\n"
                    "        l.warning('%d %d', t, i)\n"
                    "ts = [threading.Thread(target=logging_suite_many, args=(t,))\n"
                    "      for t in range(", integer_to_list(Threads), ")]\n"
                    "for t in ts: t.start()\n"
                    "for t in ts: t.join()\n"])),
    Got = [begin
               {warning, Text, _} = next_record(<<"suite.many">>),
               [T, I] = binary:split(Text, <<" ">>),
               {binary_to_integer(T), binary_to_integer(I)}
           end || _ <- lists:seq(1, Threads * Each)],
    %% Each thread's in its order.
    [?assertEqual(lists:seq(0, Each - 1), [I || {T2, I} <- Got, T2 =:= T])
     || T <- lists:seq(0, Threads - 1)],
    no_more_records(<<"suite.many">>).

%% py_logger held up (suspended) while Python logs 30 000 records: once it
%% runs again it keeps 10 000 waiting at most, drops the rest and says how
%% many; none goes missing unaccounted.
flood_past_the_queue_limit_is_dropped_and_counted(_Config) ->
    Total = 30000,
    ok = sys:suspend(py_logger),
    try
        ok = py:exec(iolist_to_binary(["import logging\nl = logging.getLogger('suite.flood')\n"
                                       "for i in range(", integer_to_list(Total), "): "
                                       "l.warning('%d', i)\n"]))
    after
        ok = sys:resume(py_logger)
    end,
    Dropped = receive
                  {logged, #{level := warning, msg := {Format, Args},
                             meta := #{domain := [erlang_python]}}} ->
                      Text = unicode:characters_to_binary(io_lib:format(Format, Args)),
                      case re:run(Text, "^erlang_python: (\\d+) Python log records dropped",
                                  [{capture, all_but_first, binary}]) of
                          {match, [N]} -> binary_to_integer(N);
                          nomatch -> ct:fail({unexpected_warning, Text})
                      end
              after py_test_lib:scaled(30000) ->
                  ct:fail(no_drop_warning)
              end,
    Kept = count_records(<<"suite.flood">>, 0),
    ct:log("~b records: ~b kept, ~b dropped", [Total, Kept, Dropped]),
    ?assertEqual(Total, Kept + Dropped),
    ?assert(Dropped > 0 andalso Kept >= 10000, {Kept, Dropped}).

count_records(Name, N) ->
    receive
        {logged, #{meta := #{domain := [python], python_logger := Name}}} ->
            count_records(Name, N + 1)
    after py_test_lib:scaled(2000) ->
        N
    end.

%%% Helpers

%% Kills py_logger and returns once its successor has run its init.
kill_and_await_logger() ->
    Old = whereis(py_logger),
    exit(Old, kill),
    New = py_test_lib:wait_for(fun() ->
                                       case whereis(py_logger) of
                                           undefined -> false;
                                           Old -> false;
                                           Pid -> Pid
                                       end
                               end, 10000),
    %% Registered before its init has run: answering, it has.
    _ = sys:get_state(New),
    ok.

%% The next record logged under Name: {Level, Text, Metadata}; fails the
%% case if none comes within 5 s (scaled).
next_record(Name) ->
    receive
        {logged, #{level := Level, msg := {Format, Args},
                   meta := #{domain := [python], python_logger := Name} = Meta}} ->
            {Level, unicode:characters_to_binary(io_lib:format(Format, Args)), Meta}
    after py_test_lib:scaled(5000) ->
        ct:fail({no_record_from, Name, erlang:process_info(self(), messages)})
    end.

%% No record under Name waits here now, after a record of a marker logger
%% that was logged after them has arrived.
no_more_records(Name) ->
    ok = py:exec(<<"import logging\nlogging.getLogger('suite.marker').warning('marker')">>),
    {warning, <<"marker">>, _} = next_record(<<"suite.marker">>),
    receive
        {logged, #{meta := #{python_logger := Name}} = Event} -> ct:fail({unexpected, Event})
    after 0 -> ok
    end.

%% erlang_python's own next warning, as text.
next_own_warning() ->
    receive
        {logged, #{level := warning, msg := {Format, Args},
                   meta := #{domain := [erlang_python]}}} ->
            {warning, unicode:characters_to_binary(io_lib:format(Format, Args))}
    after py_test_lib:scaled(5000) ->
        ct:fail(no_warning_from_erlang_python)
    end.

%% How many handlers of erlang_python's are on Python's root logger.
our_handlers() ->
    {ok, N} = py:eval(<<"sum(type(h).__name__ == 'ErlangHandler' "
                        "for h in __import__('logging').getLogger().handlers)">>),
    N.
