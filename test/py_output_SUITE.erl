%% Where Python's print() and sys.stderr go, as a user sees it: to the
%% group leader of the process that made the call (by default, and with
%% `output => group_leader'), including a process of another node, as a
%% remote shell is; to the OS process's stdout with `output => terminal'
%% or from a thread that runs no call. A group leader of the suite's own
%% captures what reaches it.
%%
%% That something did not reach a group leader is shown by a marker
%% printed after it, in the same call or a later one, that did: a group
%% leader gets one caller's writes in order.
-module(py_output_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([print_in_a_call_goes_to_the_callers_group_leader/1,
         output_terminal_keeps_it_off_the_group_leader/1,
         threads_that_run_no_call_write_to_the_terminal/1,
         call_from_another_node_prints_on_that_node/1,
         nested_calls_print_where_the_outer_call_does/1,
         dead_group_leader_sends_output_to_the_terminal/1,
         stuck_group_leader_does_not_hold_a_call_past_its_timeout/1,
         output_env_sets_the_default_and_a_bad_one_is_logged/1,
         bad_output_option_is_rejected/1,
         contexts_print_to_the_callers_group_leader/1,
         many_lines_arrive_whole_and_in_order/1,
         streams_keep_their_other_attributes/1,
         print_while_a_call_converts_goes_to_the_terminal/1]).
%% Run in a peer, and as a group leader.
-export([print_from_here/2, capture/1]).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [print_in_a_call_goes_to_the_callers_group_leader, output_terminal_keeps_it_off_the_group_leader,
     threads_that_run_no_call_write_to_the_terminal, call_from_another_node_prints_on_that_node,
     nested_calls_print_where_the_outer_call_does,
     dead_group_leader_sends_output_to_the_terminal,
     stuck_group_leader_does_not_hold_a_call_past_its_timeout,
     output_env_sets_the_default_and_a_bad_one_is_logged, bad_output_option_is_rejected,
     contexts_print_to_the_callers_group_leader, many_lines_arrive_whole_and_in_order,
     streams_keep_their_other_attributes, print_while_a_call_converts_goes_to_the_terminal].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = py:register_function(output_suite_print, fun([Text]) ->
                                                          py:call(builtins, print, [Text])
                                                  end),
    Config.

end_per_suite(_Config) ->
    ok = py:unregister_function(output_suite_print).

%% Each case has a capturing group leader of its own, for the processes
%% it makes its calls from (as_caller/2: CT's own output goes through the
%% case process's group leader, which stays CT's).
init_per_testcase(_Case, Config) ->
    [{capture, spawn_link(?MODULE, capture, [[]])} | Config].

end_per_testcase(_Case, _Config) ->
    ok.

%%% Cases

print_in_a_call_goes_to_the_callers_group_leader(Config) ->
    as_caller(Config, fun() ->
        {ok, none} = py:call(builtins, print, [<<"hello">>]),
        ok = py:exec(<<"import sys\nprint('to', 'stderr', file=sys.stderr)\n"
                       "print('caf\\u00e9', 42, sep='|', end='!\\n')">>),
        {ok, none} = py:eval(<<"print('from eval')">>),
        {ok, none} = py:call(builtins, print, [<<"explicit">>], #{}, #{output => group_leader}),
        ok = py:exec(<<"import asyncio\n"
                       "async def output_suite_task():\n"
                       "    await asyncio.sleep(0)\n"
                       "    print('from a task')\n"
                       "asyncio.run(output_suite_task())">>)
    end),
    ?assertEqual(<<"hello\nto stderr\ncaf", 16#e9/utf8, "|42!\nfrom eval\nexplicit\nfrom a task\n">>,
                 captured(Config, <<"from a task\n">>)).

output_terminal_keeps_it_off_the_group_leader(Config) ->
    as_caller(Config, fun() ->
        {ok, none} = py:call(builtins, print, [<<"terminal 1">>], #{}, #{output => terminal}),
        ok = py:exec(<<"print('terminal 2')">>, #{output => terminal}),
        {ok, none} = py:eval(<<"print('terminal 3')">>, #{}, #{output => terminal}),
        ok = py:exec(<<"print('marker')">>)
    end),
    ?assertEqual(<<"marker\n">>, captured(Config, <<"marker\n">>)).

threads_that_run_no_call_write_to_the_terminal(Config) ->
    as_caller(Config, fun() ->
        %% Started and joined in a call: the thread runs no call.
        ok = py:exec(<<"import threading\n"
                       "t = threading.Thread(target=lambda: print('thread 1'))\n"
                       "t.start(); t.join()">>),
        %% Still running after the call that started it returned.
        ok = py:exec(<<"output_suite_go = threading.Event()\n"
                       "def output_suite_late():\n"
                       "    output_suite_go.wait()\n"
                       "    print('thread 2')\n"
                       "output_suite_t = threading.Thread(target=output_suite_late)\n"
                       "output_suite_t.start()">>),
        ok = py:exec(<<"output_suite_go.set(); output_suite_t.join()">>, #{output => terminal}),
        ok = py:exec(<<"print('marker')">>)
    end),
    ?assertEqual(<<"marker\n">>, captured(Config, <<"marker\n">>)).

%% As from a remote shell: the calling process is on another node, and so
%% is its group leader, which gets the output there.
call_from_another_node_prints_on_that_node(_Config) ->
    Made = py_test_lib:make_distributed("py_output_origin"),
    try
        Paths = lists:append([["-pa", filename:dirname(code:which(M))] || M <- [py, ?MODULE]]),
        {ok, Peer, Node} = peer:start_link(#{name => peer:random_name(), args => Paths}),
        try
            Printed = erpc:call(Node, ?MODULE, print_from_here, [node(), <<"from afar">>], 30000),
            ?assertEqual({{ok, none}, <<"from afar\n">>}, Printed)
        after
            peer:stop(Peer)
        end
    after
        py_test_lib:undo_distributed(Made)
    end.

%% On the peer: a process whose group leader captures, calling py:call on
%% Origin; what the call returned, and what its group leader got.
print_from_here(Origin, Text) ->
    Capture = spawn(?MODULE, capture, [[]]),
    Self = self(),
    spawn(fun() ->
                  group_leader(Capture, self()),
                  Self ! {printed, catch erpc:call(Origin, py, call, [builtins, print, [Text]])}
          end),
    receive {printed, Result} -> ok end,
    Capture ! {get, self()},
    receive {captured, Got} -> {Result, Got} end.

nested_calls_print_where_the_outer_call_does(Config) ->
    %% Python -> Erlang (a handler process) -> Python: the inner print
    %% goes to the caller's group leader, not the handler's.
    as_caller(Config, fun() ->
        ok = py:exec(<<"import erlang\nerlang.call('output_suite_print', 'nested')\n"
                       "print('outer')">>)
    end),
    ?assertEqual(<<"nested\nouter\n">>, captured(Config, <<"outer\n">>)),
    %% With output => terminal outside, the inner call follows.
    as_caller(Config, fun() ->
        ok = py:exec(<<"erlang.call('output_suite_print', 'quiet')">>, #{output => terminal}),
        ok = py:exec(<<"print('marker')">>)
    end),
    ?assertEqual(<<"marker\n">>, captured(Config, <<"marker\n">>)).

dead_group_leader_sends_output_to_the_terminal(Config) ->
    Dead = spawn(fun() -> ok end),
    py_test_lib:await_down(Dead, 5000),
    Self = self(),
    spawn_link(fun() ->
                       group_leader(Dead, self()),
                       Self ! {done, py:call(builtins, print, [<<"to nobody">>])}
               end),
    receive {done, Result} -> {ok, none} = Result end,
    as_caller(Config, fun() -> ok = py:exec(<<"print('marker')">>) end),
    ?assertEqual(<<"marker\n">>, captured(Config, <<"marker\n">>)).

stuck_group_leader_does_not_hold_a_call_past_its_timeout(_Config) ->
    Stuck = spawn_link(fun() -> receive stop -> ok end end),
    Self = self(),
    spawn_link(fun() ->
                       group_leader(Stuck, self()),
                       T0 = erlang:monotonic_time(millisecond),
                       R = py:call(builtins, print, [<<"held">>], #{}, #{timeout => 300}),
                       Self ! {done, R, erlang:monotonic_time(millisecond) - T0}
               end),
    receive
        {done, Result, Ms} ->
            {error, timeout} = Result,
            ?assert(Ms < py_test_lib:scaled(2000), Ms)
    after py_test_lib:scaled(10000) ->
        ct:fail(call_held_by_its_group_leader)
    end,
    Stuck ! stop,
    py_test_lib:wait_calls_done(10000).

output_env_sets_the_default_and_a_bad_one_is_logged(Config) ->
    try
        py_test_lib:restart_with(output, terminal),
        as_caller(Config, fun() ->
            ok = py:exec(<<"print('off by default')">>),
            ok = py:exec(<<"print('marker 1')">>, #{output => group_leader})
        end),
        ?assertEqual(<<"marker 1\n">>, captured(Config, <<"marker 1\n">>)),
        Warning = py_test_lib:warning_of(fun() -> py_test_lib:restart_with(output, loudly) end),
        {match, _} = re:run(Warning, "output loudly"),
        as_caller(Config, fun() -> ok = py:exec(<<"print('marker 2')">>) end),
        ?assertEqual(<<"marker 2\n">>, captured(Config, <<"marker 2\n">>))
    after
        py_test_lib:restart_without(output)
    end.

bad_output_option_is_rejected(_Config) ->
    [{error, {badarg, opts}} = R
     || R <- [py:call(builtins, print, [<<"x">>], #{}, #{output => loudly}),
              py:eval(<<"1">>, #{}, #{output => stdout}),
              py:exec(<<"pass">>, #{output => "terminal"}),
              py:exec(<<"pass">>, #{return => ref})]].

contexts_print_to_the_callers_group_leader(Config) ->
    {ok, Worker} = py_context:new(#{mode => worker}),
    as_caller(Config, fun() ->
        {ok, none} = py:call(Worker, builtins, print, [<<"worker">>]),
        ok = py:exec(Worker, <<"print('worker exec')">>, #{output => terminal})
    end),
    ok = py_context:stop(Worker),
    case py:subinterp_supported() of
        true ->
            {ok, Own} = py_context:new(#{mode => owngil}),
            as_caller(Config, fun() -> {ok, none} = py:call(Own, builtins, print, [<<"owngil">>]) end),
            ok = py_context:stop(Own),
            ?assertEqual(<<"worker\nowngil\n">>, captured(Config, <<"owngil\n">>));
        false ->
            ?assertEqual(<<"worker\n">>, captured(Config, <<"worker\n">>))
    end.

many_lines_arrive_whole_and_in_order(Config) ->
    as_caller(Config, fun() -> ok = py:exec(<<"for i in range(2000): print('line', i)">>) end),
    Expected = iolist_to_binary([io_lib:format("line ~b~n", [I]) || I <- lists:seq(0, 1999)]),
    ?assertEqual(Expected, captured(Config, <<"line 1999\n">>)).

streams_keep_their_other_attributes(Config) ->
    {ok, {<<"utf-8">>, 1, 2, true}} =
        py:eval(<<"(__import__('sys').stdout.encoding.lower(), __import__('sys').stdout.fileno(), "
                  "__import__('sys').stderr.fileno(), __import__('sys').stdout.writable())">>),
    as_caller(Config, fun() ->
        ok = py:exec(<<"import sys\nsys.stdout.flush(); sys.stderr.flush()\n"
                       "sys.stdout.writelines(['a', 'b\\n'])">>),
        {error, {'TypeError', _}} = py:exec(<<"sys.stdout.write(b'bytes')">>)
    end),
    ?assertEqual(<<"ab\n">>, captured(Config, <<"ab\n">>)).

%% Python code that runs while a call to Erlang converts its values (an
%% __index__ here; a __del__ during a collection the same) may print: the
%% text goes to the terminal, since the thread's channel to Erlang is busy
%% with the conversion, and the conversion goes on unharmed. An
%% erlang.call made there is refused with a RuntimeError.
print_while_a_call_converts_goes_to_the_terminal(Config) ->
    ok = py:register_function(output_suite_echo, fun([X]) -> X end),
    as_caller(Config, fun() ->
        ok = py:exec(<<"import erlang\n"
                       "class OutputSuiteNoisy:\n"
                       "    def __index__(self):\n"
                       "        print('during a conversion')\n"
                       "        return 7\n"
                       "class OutputSuiteCalling:\n"
                       "    def __index__(self):\n"
                       "        return erlang.call('output_suite_echo', 1)\n">>),
        {ok, [7, 8]} = py:eval(<<"erlang.call('output_suite_echo', [OutputSuiteNoisy(), 8])">>),
        {error, {_, Why}} =
            py:eval(<<"erlang.call('output_suite_echo', [OutputSuiteCalling()])">>),
        {match, _} = re:run(Why, "__index__"),
        ok = py:exec(<<"print('marker')">>)
    end),
    ?assertEqual(<<"marker\n">>, captured(Config, <<"marker\n">>)).

%%% Helpers

%% Runs Fun in a process whose group leader is the case's capture; fails
%% the case with what Fun raised, or if it takes more than 30 s (scaled).
as_caller(Config, Fun) ->
    Self = self(),
    Tag = make_ref(),
    {Pid, Monitor} =
        spawn_monitor(fun() ->
                              group_leader(?config(capture, Config), self()),
                              Self ! {Tag, try {ok, Fun()} catch C:R:S -> {raised, C, R, S} end}
                      end),
    receive
        {Tag, {ok, Result}} ->
            demonitor(Monitor, [flush]),
            Result;
        {Tag, Raised} ->
            ct:fail(Raised);
        {'DOWN', Monitor, process, Pid, Reason} ->
            ct:fail({caller_died, Reason})
    after py_test_lib:scaled(30000) ->
        ct:fail({caller_hangs, erlang:process_info(Pid, current_stacktrace)})
    end.

%% A group leader that keeps what is written to it and answers every
%% request at once; {get, Pid} sends Pid what it kept, and forgets it.
capture(Acc) ->
    receive
        {io_request, From, ReplyAs, Request} ->
            {Reply, Text} = io_request(Request),
            From ! {io_reply, ReplyAs, Reply},
            capture([Acc, Text]);
        {get, Pid} ->
            Pid ! {captured, iolist_to_binary(Acc)},
            capture([])
    end.

io_request({put_chars, unicode, Chars}) ->
    {ok, unicode:characters_to_binary(Chars)};
io_request({put_chars, unicode, M, F, A}) ->
    {ok, unicode:characters_to_binary(apply(M, F, A))};
io_request(_Other) ->
    {{error, enotsup}, <<>>}.

%% What the case's group leader got, once it ends with Last; fails the case
%% with what it got if that takes more than 5 s (scaled).
captured(Config, Last) ->
    Capture = ?config(capture, Config),
    Deadline = erlang:monotonic_time(millisecond) + py_test_lib:scaled(5000),
    captured(Capture, Last, Deadline, <<>>).

captured(Capture, Last, Deadline, Got) ->
    Capture ! {get, self()},
    All = receive {captured, More} -> <<Got/binary, More/binary>> end,
    case binary:longest_common_suffix([All, Last]) =:= byte_size(Last) of
        true ->
            All;
        false ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> ct:fail({not_captured, Last, All});
                false -> timer:sleep(10), captured(Capture, Last, Deadline, All)
            end
    end.
