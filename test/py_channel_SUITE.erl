%% Channels (py_channel): messages from Erlang into Python, from the user's
%% side. Every kind of term arrives unchanged and in order, a hundred
%% thousand of them too, and each exactly once however many Erlang senders
%% and Python receivers (threads, coroutines, event loops) share a channel;
%% a full channel says busy; closing (from Erlang, from Python, by the
%% owner's death) lets the queued messages be received and then ends every
%% receiver; a receiver waits with the GIL released, for as long as its
%% timeout says, and a py:call timeout or the caller's death ends its wait
%% at once; a Python actor thread answers requests until its channel
%% closes; and bad input gives {error, {badarg, _}} or a Python exception
%% that says what was wrong.
-module(py_channel_SUITE).

-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [wait_until/2, await_down/2, scaled/1, fan_out/2]).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1]).

-export([new_channel_is_open_empty_and_unbounded/1,
         new_takes_a_max_size_and_an_owner/1,
         bad_options_are_rejected/1,
         non_channels_are_badarg/1,
         channel_arrives_in_python_as_a_channel_object/1,
         python_cannot_make_a_channel/1]).
-export([every_kind_of_term_arrives_unchanged_and_in_order/1,
         message_with_no_python_form_raises_and_the_next_one_follows/1,
         hundred_thousand_messages_arrive_in_order/1,
         several_senders_and_receiver_threads_get_each_message_once/1,
         channel_passed_back_to_erlang_is_the_same_term/1]).
-export([send_is_busy_at_max_size_until_python_takes_one/1,
         busy_senders_never_overfill_a_channel_or_lose_a_message/1]).
-export([send_to_a_closed_channel_is_an_error/1,
         close_twice_is_ok/1,
         queued_messages_are_received_after_close_then_channel_closed/1,
         iteration_ends_when_closed_and_drained/1,
         async_iteration_ends_when_closed_and_drained/1,
         close_from_python_wakes_a_receiver_in_another_thread/1,
         owner_killed_closes_the_channel_and_its_messages_still_arrive/1,
         owner_killed_wakes_a_waiting_receiver/1,
         channel_closes_when_the_process_that_made_it_ends/1,
         channel_of_an_owner_already_dead_is_closed/1]).
-export([receiver_thread_waits_without_holding_the_gil/1,
         blocked_py_call_gets_a_message_sent_later/1,
         receive_timeout_raises_timeout_error/1,
         bad_timeouts_are_rejected/1,
         try_receive_on_an_empty_channel_is_none/1]).
-export([py_call_timeout_ends_a_receive_at_once/1,
         killed_caller_ends_its_receive/1,
         py_call_timeout_ends_an_async_receive/1,
         py_call_timeout_ends_an_async_receive_under_asyncio_run/1]).
-export([async_receive_gets_a_message_sent_later/1,
         coroutines_and_a_thread_share_a_channel/1,
         event_loops_in_two_threads_share_a_channel/1]).
-export([python_actor_thread_answers_requests_until_closed/1,
         actor_serves_many_erlang_clients_at_once/1]).
-export([python_keeps_a_channel_erlang_dropped/1,
         channels_survive_a_reload_of_py_nif/1,
         channels_and_references_stay_apart_across_many_reloads/1,
         ending_a_wait_twice_loses_no_wake_up/1,
         an_empty_channel_is_true/1,
         a_forked_child_cannot_use_a_channel/1]).

%% A hang fails the case instead of stalling the run.
suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, making}, {group, messages}, {group, flow_control}, {group, closing},
     {group, waiting}, {group, interruption}, {group, asyncio}, {group, actor},
     {group, lifetime}].

groups() ->
    [{making, [parallel],
      [new_channel_is_open_empty_and_unbounded, new_takes_a_max_size_and_an_owner,
       bad_options_are_rejected, non_channels_are_badarg,
       channel_arrives_in_python_as_a_channel_object, python_cannot_make_a_channel]},
     {messages, [parallel],
      [every_kind_of_term_arrives_unchanged_and_in_order,
       message_with_no_python_form_raises_and_the_next_one_follows,
       hundred_thousand_messages_arrive_in_order,
       several_senders_and_receiver_threads_get_each_message_once,
       channel_passed_back_to_erlang_is_the_same_term]},
     {flow_control, [parallel],
      [send_is_busy_at_max_size_until_python_takes_one,
       busy_senders_never_overfill_a_channel_or_lose_a_message]},
     {closing, [parallel],
      [send_to_a_closed_channel_is_an_error, close_twice_is_ok,
       queued_messages_are_received_after_close_then_channel_closed,
       iteration_ends_when_closed_and_drained, async_iteration_ends_when_closed_and_drained,
       close_from_python_wakes_a_receiver_in_another_thread,
       owner_killed_closes_the_channel_and_its_messages_still_arrive,
       owner_killed_wakes_a_waiting_receiver,
       channel_closes_when_the_process_that_made_it_ends,
       channel_of_an_owner_already_dead_is_closed]},
     {waiting, [parallel],
      [receiver_thread_waits_without_holding_the_gil, blocked_py_call_gets_a_message_sent_later,
       receive_timeout_raises_timeout_error, bad_timeouts_are_rejected,
       try_receive_on_an_empty_channel_is_none]},
     {interruption, [parallel],
      [py_call_timeout_ends_a_receive_at_once, killed_caller_ends_its_receive,
       py_call_timeout_ends_an_async_receive,
       py_call_timeout_ends_an_async_receive_under_asyncio_run]},
     {asyncio, [parallel],
      [async_receive_gets_a_message_sent_later, coroutines_and_a_thread_share_a_channel,
       event_loops_in_two_threads_share_a_channel]},
     {actor, [parallel],
      [python_actor_thread_answers_requests_until_closed,
       actor_serves_many_erlang_clients_at_once]},
     %% Sequential: one case reloads py_nif.
     {lifetime, [],
      [python_keeps_a_channel_erlang_dropped, channels_survive_a_reload_of_py_nif,
       channels_and_references_stay_apart_across_many_reloads,
       ending_a_wait_twice_loses_no_wake_up, an_empty_channel_is_true,
       a_forked_child_cannot_use_a_channel]}].

init_per_suite(Config) ->
    ok = py_test_lib:start_with_fixtures(Config),
    Config.

end_per_suite(_Config) ->
    ok.

%%% making

new_channel_is_open_empty_and_unbounded(_Config) ->
    {ok, Ch} = py_channel:new(),
    true = py_channel:is_channel(Ch),
    #{size := 0, max_size := infinity, closed := false, waiting := 0} = Info = py_channel:info(Ch),
    4 = map_size(Info),
    {ok, Same} = py_channel:new(#{}),
    #{size := 0, max_size := infinity, closed := false} = py_channel:info(Same),
    false = Ch =:= Same,
    %% A term like any other: another process may use it.
    [ok] = fan_out(fun(N) -> py_channel:send(Ch, N) end, [1]),
    #{size := 1} = py_channel:info(Ch).

new_takes_a_max_size_and_an_owner(_Config) ->
    Owner = spawn_link(fun() -> receive stop -> ok end end),
    {ok, Ch} = py_channel:new(#{max_size => 5, owner => Owner}),
    #{size := 0, max_size := 5, closed := false} = py_channel:info(Ch),
    {ok, One} = py_channel:new(#{max_size => 1}),
    #{max_size := 1} = py_channel:info(One),
    {ok, Unbounded} = py_channel:new(#{max_size => infinity, owner => self()}),
    #{max_size := infinity} = py_channel:info(Unbounded),
    Owner ! stop.

bad_options_are_rejected(_Config) ->
    [{error, {badarg, opts}} = py_channel:new(Opts)
     || Opts <- [#{colour => blue}, #{max_size => 0}, #{max_size => -1},
                 #{max_size => many}, #{max_size => 1.5}, #{max_size => <<"10">>},
                 #{owner => self}, #{owner => <<"pid">>}, #{max_size => 2, colour => blue},
                 [], [{max_size, 1}], max_size, 10]].

%% Other terms, references and resources included, are no channels:
%% every function says so instead of raising.
non_channels_are_badarg(_Config) ->
    {ok, PyObject} = py:call(builtins, object, [], #{}, #{return => ref}),
    Bad = [make_ref(), an_atom, PyObject, self(), <<"ch">>, {channel}, 42],
    [begin
         {error, {badarg, channel}} = py_channel:send(NotChannel, x),
         {error, {badarg, channel}} = py_channel:close(NotChannel),
         {error, {badarg, channel}} = py_channel:info(NotChannel),
         false = py_channel:is_channel(NotChannel)
     end || NotChannel <- Bad].

channel_arrives_in_python_as_a_channel_object(_Config) ->
    {ok, Ch} = py_channel:new(),
    {ok, true} = py:call('__main__', is_channel, [Ch]),
    %% A plain reference stays an erlang.Ref.
    {ok, false} = py:call('__main__', is_channel, [make_ref()]),
    {ok, {false, 0}} = py:call('__main__', describe, [Ch]),
    ok = py_channel:send(Ch, one),
    ok = py_channel:send(Ch, two),
    {ok, {false, 2}} = py:call('__main__', describe, [Ch]),
    ok = py_channel:close(Ch),
    {ok, {true, 2}} = py:call('__main__', describe, [Ch]),
    {ok, true} = py:eval(<<"issubclass(erlang.ChannelClosed, Exception)">>).

python_cannot_make_a_channel(_Config) ->
    {error, {'TypeError', _}} = py:eval(<<"erlang.Channel()">>),
    {ok, 4.0} = py:call(math, sqrt, [16]).

%%% messages

%% A fun has no Python form: receiving it raises TypeError, naming where,
%% and takes it; the next message is the next one received.
message_with_no_python_form_raises_and_the_next_one_follows(_Config) ->
    {ok, Ch} = py_channel:new(),
    ok = py_channel:send(Ch, [ok, fun() -> ok end]),
    ok = py_channel:send(Ch, next),
    {error, {'TypeError', Message}} = py:call('__main__', receive_one, [Ch]),
    {match, _} = re:run(Message, <<"message\\[1\\]">>),
    {ok, next} = py:call('__main__', receive_one, [Ch]).

every_kind_of_term_arrives_unchanged_and_in_order(_Config) ->
    {ok, Ch} = py_channel:new(),
    {ok, Other} = py_channel:new(),
    Pid = spawn(fun() -> ok end),
    Terms = [0, -1, 42, 1 bsl 100, -(1 bsl 200), 3.5, -0.0, 1.0e300,
             <<"text">>, <<"héllo"/utf8>>, <<255, 0, 1>>, <<>>, binary:copy(<<"x">>, 100000),
             ok, 'with space', true, false, none,
             [], [1, [2, [3]]], "chars", {}, {a, <<"b">>, [1]},
             #{}, #{a => 1, <<"k">> => [x], 3 => {y}},
             self(), Pid, make_ref(), Other],
    [ok = py_channel:send(Ch, Term) || Term <- Terms],
    #{size := Size} = py_channel:info(Ch),
    Size = length(Terms),
    ok = py_channel:close(Ch),
    {ok, {Got, closed}} = py:call('__main__', drain, [Ch]),
    ?assertEqual(Terms, Got).

%% One sender, one receiver running while it sends.
hundred_thousand_messages_arrive_in_order(_Config) ->
    {ok, Ch} = py_channel:new(),
    Receiver = py:spawn_call('__main__', iterate, [Ch], #{}, #{timeout => infinity}),
    Sent = lists:seq(1, 100000),
    T0 = erlang:monotonic_time(millisecond),
    [ok = py_channel:send(Ch, N) || N <- Sent],
    ok = py_channel:close(Ch),
    {ok, Got} = py:await(Receiver, scaled(60000)),
    ct:log("100 000 messages sent and received in ~b ms",
           [erlang:monotonic_time(millisecond) - T0]),
    100000 = length(Got),
    true = Got =:= Sent.

%% Four Erlang processes send 5 000 messages each while four Python
%% threads receive: every message arrives once, and each thread gets each
%% sender's messages in the order they were sent.
several_senders_and_receiver_threads_get_each_message_once(_Config) ->
    {ok, Ch} = py_channel:new(),
    {ok, none} = py:call('__main__', start_receivers, [many_to_many, Ch, 4, self()]),
    await_receiving(many_to_many, 4),
    Senders = lists:seq(1, 4),
    PerSender = 5000,
    fan_out(fun(S) -> [ok = py_channel:send(Ch, {S, I}) || I <- lists:seq(1, PerSender)] end,
            Senders),
    ok = py_channel:close(Ch),
    wait_until(fun() -> finished(many_to_many) end, 60000),
    {ok, [closed, closed, closed, closed]} = py:call('__main__', ends, [many_to_many]),
    {ok, PerThread} = py:call('__main__', received, [many_to_many]),
    ct:log("each thread received ~w", [[length(Got) || Got <- PerThread]]),
    All = lists:append(PerThread),
    ?assertEqual(length(Senders) * PerSender, length(All)),
    ?assertEqual(lists:sort([{S, I} || S <- Senders, I <- lists:seq(1, PerSender)]),
                 lists:sort(All)),
    [true = in_order_per_sender(Got) || Got <- PerThread],
    {ok, none} = py:call('__main__', forget, [many_to_many]).

%% Returned by Python, inside other terms, or sent with erlang.send, a
%% channel comes back as the very term Erlang made, which still works.
channel_passed_back_to_erlang_is_the_same_term(_Config) ->
    {ok, Ch} = py_channel:new(),
    {ok, Back} = py:call('__main__', identity, [Ch]),
    true = Back =:= Ch,
    {ok, Nested} = py:call('__main__', identity, [[{Ch}, #{k => Ch}]]),
    true = Nested =:= [{Ch}, #{k => Ch}],
    {ok, none} = py:call('__main__', send_back, [self(), Ch]),
    Sent = receive {sent, S} -> S after scaled(5000) -> ct:fail(nothing_sent_back) end,
    true = Sent =:= Ch,
    true = py_channel:is_channel(Back),
    ok = py_channel:send(Back, via_back),
    ok = py_channel:send(Sent, via_sent),
    {ok, {got, via_back}} = py:call('__main__', try_take, [Ch]),
    {ok, {got, via_sent}} = py:call('__main__', try_take, [Ch]).

%%% flow control

send_is_busy_at_max_size_until_python_takes_one(_Config) ->
    {ok, Ch} = py_channel:new(#{max_size => 3}),
    [ok = py_channel:send(Ch, N) || N <- [1, 2, 3]],
    busy = py_channel:send(Ch, 4),
    busy = py_channel:send(Ch, 4),
    %% A busy message is not queued.
    #{size := 3, max_size := 3} = py_channel:info(Ch),
    {ok, {got, 1}} = py:call('__main__', try_take, [Ch]),
    ok = py_channel:send(Ch, 4),
    busy = py_channel:send(Ch, 5),
    ok = py_channel:close(Ch),
    {ok, {[2, 3, 4], closed}} = py:call('__main__', drain, [Ch]).

%% Four senders retry on busy (a real producer would back off; these only
%% yield) into a channel of eight while three Python threads receive:
%% the channel never holds more than eight, and nothing is lost or
%% doubled.
busy_senders_never_overfill_a_channel_or_lose_a_message(_Config) ->
    {ok, Ch} = py_channel:new(#{max_size => 8}),
    {ok, none} = py:call('__main__', start_receivers, [bounded, Ch, 3, self()]),
    await_receiving(bounded, 3),
    Senders = lists:seq(1, 4),
    PerSender = 1000,
    Busy = fan_out(fun(S) ->
                           lists:sum([send_retrying(Ch, {S, I}, 0)
                                      || I <- lists:seq(1, PerSender)])
                   end, Senders),
    ct:log("busy answers per sender: ~w", [Busy]),
    ok = py_channel:close(Ch),
    wait_until(fun() -> finished(bounded) end, 30000),
    {ok, [closed, closed, closed]} = py:call('__main__', ends, [bounded]),
    {ok, PerThread} = py:call('__main__', received, [bounded]),
    ?assertEqual(lists:sort([{S, I} || S <- Senders, I <- lists:seq(1, PerSender)]),
                 lists:sort(lists:append(PerThread))),
    [true = in_order_per_sender(Got) || Got <- PerThread],
    {ok, none} = py:call('__main__', forget, [bounded]).

%%% closing

channel_of_an_owner_already_dead_is_closed(_Config) ->
    {Owner, Mon} = spawn_monitor(fun() -> ok end),
    receive {'DOWN', Mon, process, Owner, _} -> ok end,
    {ok, Ch} = py_channel:new(#{owner => Owner}),
    #{closed := true} = py_channel:info(Ch),
    {error, closed} = py_channel:send(Ch, never),
    {ok, 'ChannelClosed'} = py:call('__main__', take, [Ch]).

send_to_a_closed_channel_is_an_error(_Config) ->
    {ok, Ch} = py_channel:new(),
    ok = py_channel:close(Ch),
    {error, closed} = py_channel:send(Ch, late),
    #{size := 0, closed := true} = py_channel:info(Ch),
    {ok, Full} = py_channel:new(#{max_size => 1}),
    ok = py_channel:send(Full, kept),
    ok = py_channel:close(Full),
    {error, closed} = py_channel:send(Full, late),
    {ok, {[kept], closed}} = py:call('__main__', drain, [Full]).

close_twice_is_ok(_Config) ->
    {ok, Ch} = py_channel:new(),
    ok = py_channel:close(Ch),
    ok = py_channel:close(Ch),
    {ok, none} = py:call('__main__', close, [Ch]),
    {ok, FromPython} = py_channel:new(),
    {ok, none} = py:call('__main__', close, [FromPython]),
    {ok, none} = py:call('__main__', close, [FromPython]),
    ok = py_channel:close(FromPython),
    #{closed := true} = py_channel:info(FromPython).

queued_messages_are_received_after_close_then_channel_closed(_Config) ->
    {ok, Ch} = py_channel:new(),
    [ok = py_channel:send(Ch, N) || N <- [1, 2, 3]],
    ok = py_channel:close(Ch),
    #{size := 3, closed := true} = py_channel:info(Ch),
    {ok, {got, 1}} = py:call('__main__', try_take, [Ch]),
    {ok, {got, 2}} = py:call('__main__', take, [Ch]),
    {ok, {[3], closed}} = py:call('__main__', drain, [Ch]),
    %% Closed and empty: every way of receiving says so, none waits.
    {ok, 'ChannelClosed'} = py:call('__main__', take, [Ch]),
    {ok, 'ChannelClosed'} = py:call('__main__', take, [Ch, 0]),
    {ok, 'ChannelClosed'} = py:call('__main__', try_take, [Ch]),
    %% Not caught in Python: the error names the class.
    {error, {<<"erlang.ChannelClosed">>, _}} = py:call('__main__', receive_one, [Ch]).

iteration_ends_when_closed_and_drained(_Config) ->
    {ok, Ch} = py_channel:new(),
    [ok = py_channel:send(Ch, N) || N <- [a, b, c]],
    ok = py_channel:close(Ch),
    {ok, [a, b, c]} = py:call('__main__', iterate, [Ch]),
    {ok, []} = py:call('__main__', iterate, [Ch]).

async_iteration_ends_when_closed_and_drained(_Config) ->
    {ok, Ch} = py_channel:new(),
    [ok = py_channel:send(Ch, N) || N <- [a, b, c]],
    ok = py_channel:close(Ch),
    {ok, [a, b, c]} = py:call('__main__', async_iterate, [Ch]),
    {ok, []} = py:call('__main__', async_iterate, [Ch]).

close_from_python_wakes_a_receiver_in_another_thread(_Config) ->
    {ok, Ch} = py_channel:new(),
    {ok, none} = py:call('__main__', start_receive_noting, [closed_by_python, Ch, self()]),
    await_receiving(closed_by_python, 1),
    {ok, none} = py:call('__main__', close, [Ch]),
    wait_until(fun() -> where(closed_by_python) =:= 'ChannelClosed' end, 5000),
    wait_until(fun() -> finished(closed_by_python) end, 5000),
    #{closed := true} = py_channel:info(Ch),
    {error, closed} = py_channel:send(Ch, late).

%% The owner dies with messages queued: the channel closes, and Python
%% still receives what was queued.
owner_killed_closes_the_channel_and_its_messages_still_arrive(_Config) ->
    Owner = spawn(fun() -> receive never -> ok end end),
    {ok, Ch} = py_channel:new(#{owner => Owner}),
    ok = py_channel:send(Ch, a),
    ok = py_channel:send(Ch, b),
    exit(Owner, kill),
    await_down(Owner, 5000),
    wait_until(fun() -> is_closed(Ch) end, 5000),
    {error, closed} = py_channel:send(Ch, c),
    {ok, {[a, b], closed}} = py:call('__main__', drain, [Ch]).

%% A thread waits in `for msg in ch' after taking what was queued; the
%% owner's death ends its loop.
owner_killed_wakes_a_waiting_receiver(_Config) ->
    Owner = spawn(fun() -> receive never -> ok end end),
    {ok, Ch} = py_channel:new(#{owner => Owner}),
    ok = py_channel:send(Ch, a),
    ok = py_channel:send(Ch, b),
    {ok, none} = py:call('__main__', start_receivers, [orphaned, Ch, 1, self()]),
    await_receiving(orphaned, 1),
    wait_until(fun() -> py:call('__main__', received, [orphaned]) =:= {ok, [[a, b]]} end, 5000),
    exit(Owner, kill),
    wait_until(fun() -> finished(orphaned) end, 5000),
    {ok, [closed]} = py:call('__main__', ends, [orphaned]),
    {ok, [[a, b]]} = py:call('__main__', received, [orphaned]),
    #{closed := true, size := 0} = py_channel:info(Ch),
    {error, closed} = py_channel:send(Ch, c).

%% The default owner is the process that made the channel; it ends
%% normally here, after handing the channel on.
channel_closes_when_the_process_that_made_it_ends(_Config) ->
    Self = self(),
    Maker = spawn(fun() ->
                          {ok, Ch} = py_channel:new(),
                          ok = py_channel:send(Ch, left_behind),
                          Self ! {made, Ch}
                  end),
    Ch = receive {made, Made} -> Made after scaled(5000) -> ct:fail(no_channel_made) end,
    await_down(Maker, 5000),
    wait_until(fun() -> is_closed(Ch) end, 5000),
    {ok, {[left_behind], closed}} = py:call('__main__', drain, [Ch]).

%%% waiting

%% A thread blocked in receive does not hold the GIL: calls keep being
%% answered while it waits, and it gets the message sent afterwards.
receiver_thread_waits_without_holding_the_gil(_Config) ->
    {ok, Ch} = py_channel:new(),
    {ok, none} = py:call('__main__', start_receive_noting, [gil, Ch, self()]),
    await_receiving(gil, 1),
    Squares = [N * N || N <- lists:seq(1, 200)],
    Squares = [begin {ok, Square} = py:eval(<<"n * n">>, #{n => N}, 5000), Square end
               || N <- lists:seq(1, 200)],
    {ok, _} = py:eval(<<"sum(range(100000))">>, #{}, 5000),
    receiving = where(gil),
    ok = py_channel:send(Ch, {hello, self()}),
    Self = self(),
    wait_until(fun() -> where(gil) =:= {got, {hello, Self}} end, 5000),
    wait_until(fun() -> finished(gil) end, 5000).

%% The same, the receiver being a py:call.
blocked_py_call_gets_a_message_sent_later(_Config) ->
    {ok, Ch} = py_channel:new(),
    Waiting = py:spawn_call('__main__', receive_noting, [later, Ch, self()]),
    await_receiving(later, 1),
    [{ok, 4.0} = py:call(math, sqrt, [16], #{}, 5000) || _ <- lists:seq(1, 100)],
    ok = py_channel:send(Ch, {hello, self()}),
    Self = self(),
    {ok, {hello, Self}} = py:await(Waiting, scaled(10000)),
    {got, {hello, Self}} = where(later).

receive_timeout_raises_timeout_error(_Config) ->
    {ok, Ch} = py_channel:new(),
    T0 = erlang:monotonic_time(millisecond),
    {ok, 'TimeoutError'} = py:call('__main__', take, [Ch, 0.05]),
    Waited = erlang:monotonic_time(millisecond) - T0,
    ct:log("receive(timeout=0.05) raised after ~b ms", [Waited]),
    ?assert(Waited >= 45),
    {ok, 'TimeoutError'} = py:call('__main__', take, [Ch, 0]),
    %% A message already there is taken whatever the timeout, an int one
    %% included.
    ok = py_channel:send(Ch, soon),
    {ok, {got, soon}} = py:call('__main__', take, [Ch, 0]),
    ok = py_channel:send(Ch, later),
    {ok, {got, later}} = py:call('__main__', take, [Ch, 1]),
    %% A timed-out receive took nothing: the channel is as it was.
    #{size := 0, closed := false} = py_channel:info(Ch).

bad_timeouts_are_rejected(_Config) ->
    {ok, Ch} = py_channel:new(),
    ok = py_channel:send(Ch, kept),
    {ok, 'ValueError'} = py:call('__main__', take, [Ch, -1]),
    {ok, 'ValueError'} = py:call('__main__', take, [Ch, -0.5]),
    {ok, 'TypeError'} = py:call('__main__', take, [Ch, <<"soon">>]),
    %% None of them took the message.
    {ok, {got, kept}} = py:call('__main__', take, [Ch, 0]).

%% None stands for "nothing there"; a message that becomes None (the
%% atoms none, undefined, nil) is told apart with receive(timeout=0).
try_receive_on_an_empty_channel_is_none(_Config) ->
    {ok, Ch} = py_channel:new(),
    {ok, {got, none}} = py:call('__main__', try_take, [Ch]),
    ok = py_channel:send(Ch, undefined),
    {ok, {got, none}} = py:call('__main__', take, [Ch, 0]),
    {ok, 'TimeoutError'} = py:call('__main__', take, [Ch, 0]),
    ok = py_channel:send(Ch, here),
    {ok, {got, here}} = py:call('__main__', try_take, [Ch]),
    {ok, {got, none}} = py:call('__main__', try_take, [Ch]).

%%% interruption

%% A 200 ms timeout ends a py:call waiting in receive at once, with
%% CallInterrupted in Python; the interrupted receive took nothing, so
%% the next message goes to the next receiver.
py_call_timeout_ends_a_receive_at_once(_Config) ->
    {ok, Ch} = py_channel:new(),
    T0 = erlang:monotonic_time(millisecond),
    {error, timeout} = py:call('__main__', receive_noting, [call_timeout, Ch, self()], #{}, 200),
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    ct:log("py:call with a 200 ms timeout returned after ~b ms", [Elapsed]),
    ?assert(Elapsed < scaled(2000)),
    wait_until(fun() -> where(call_timeout) =:= 'CallInterrupted' end, 5000),
    ok = py_channel:send(Ch, next),
    {ok, next} = py:call('__main__', receive_noting, [call_timeout, Ch, self()], #{}, 5000),
    #{size := 0, closed := false} = py_channel:info(Ch).

killed_caller_ends_its_receive(_Config) ->
    {ok, Ch} = py_channel:new(),
    Self = self(),
    Caller = spawn(fun() ->
                           py:call('__main__', receive_noting, [killed_caller, Ch, Self], #{},
                                   infinity)
                   end),
    await_receiving(killed_caller, 1),
    exit(Caller, kill),
    wait_until(fun() -> where(killed_caller) =:= 'CallInterrupted' end, 5000),
    ok = py_channel:send(Ch, next),
    {ok, {got, next}} = py:call('__main__', take, [Ch, 5]).

%% A coroutine run by py:call, awaiting async_receive, is stopped by the
%% call's timeout as promptly, and leaves no receiver behind.
py_call_timeout_ends_an_async_receive(_Config) ->
    {ok, Ch} = py_channel:new(),
    T0 = erlang:monotonic_time(millisecond),
    {error, timeout} = py:call('__main__', async_receive_one, [async_timeout, Ch, self()], #{},
                               200),
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    ct:log("py:call of a coroutine with a 200 ms timeout returned after ~b ms", [Elapsed]),
    ?assert(Elapsed < scaled(2000)),
    ok = py_channel:send(Ch, next),
    {ok, {got, next}} = py:call('__main__', take, [Ch, 5]).

%% The same, when the coroutine runs under asyncio.run in a plain
%% function: the loop is its own, not py:call's.
py_call_timeout_ends_an_async_receive_under_asyncio_run(_Config) ->
    {ok, Ch} = py_channel:new(),
    T0 = erlang:monotonic_time(millisecond),
    {error, timeout} = py:call('__main__', async_receive_later, [async_run_timeout, Ch, self()],
                               #{}, 200),
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    ct:log("asyncio.run with a 200 ms timeout returned after ~b ms", [Elapsed]),
    ?assert(Elapsed < scaled(2000)),
    ok = py_channel:send(Ch, next),
    {ok, {got, next}} = py:call('__main__', take, [Ch, 5]).

%%% asyncio

async_receive_gets_a_message_sent_later(_Config) ->
    {ok, Ch} = py_channel:new(),
    Waiting = py:spawn_call('__main__', async_receive_later, [async_later, Ch, self()]),
    await_receiving(async_later, 1),
    ok = py_channel:send(Ch, {hello, [1, 2]}),
    {ok, {hello, [1, 2]}} = py:await(Waiting, scaled(10000)).

%% Two coroutines on one loop and a plain thread take from one channel
%% while Erlang sends: together they get every message once, each in the
%% order sent.
coroutines_and_a_thread_share_a_channel(_Config) ->
    {ok, Ch} = py_channel:new(),
    Sharing = py:spawn_call('__main__', coroutines_and_a_thread, [coroutines, Ch, self()], #{},
                            #{timeout => infinity}),
    await_receiving(coroutines, 1),
    Sent = lists:seq(1, 3000),
    [ok = py_channel:send(Ch, N) || N <- Sent],
    ok = py_channel:close(Ch),
    {ok, Parts} = py:await(Sharing, scaled(30000)),
    ct:log("async_receive, async for and the thread got ~w", [[length(P) || P <- Parts]]),
    ?assertEqual(Sent, lists:sort(lists:append(Parts))),
    [true = P =:= lists:sort(P) || P <- Parts].

event_loops_in_two_threads_share_a_channel(_Config) ->
    {ok, Ch} = py_channel:new(),
    Sharing = py:spawn_call('__main__', loops_in_threads, [two_loops, Ch, self(), 2], #{},
                            #{timeout => infinity}),
    await_receiving(two_loops, 1),
    Sent = lists:seq(1, 3000),
    [ok = py_channel:send(Ch, N) || N <- Sent],
    ok = py_channel:close(Ch),
    {ok, Parts} = py:await(Sharing, scaled(30000)),
    ct:log("the two loops got ~w", [[length(P) || P <- Parts]]),
    ?assertEqual(Sent, lists:sort(lists:append(Parts))),
    [true = P =:= lists:sort(P) || P <- Parts].

%%% actor

%% A Python thread serves requests {From, N} with N * 2 until its channel
%% is closed: one at a time, then a thousand in a row, then it ends.
python_actor_thread_answers_requests_until_closed(_Config) ->
    {ok, Ch} = py_channel:new(),
    {ok, none} = py:call('__main__', start_actor, [actor, Ch]),
    [begin
         ok = py_channel:send(Ch, {self(), N}),
         Double = 2 * N,
         receive Double -> ok after scaled(5000) -> ct:fail({no_reply, N}) end
     end || N <- lists:seq(1, 100)],
    [ok = py_channel:send(Ch, {self(), N}) || N <- lists:seq(1, 1000)],
    Replies = [receive R when is_integer(R) -> R after scaled(5000) -> ct:fail(no_reply) end
               || _ <- lists:seq(1, 1000)],
    ?assertEqual([2 * N || N <- lists:seq(1, 1000)], Replies),
    {ok, true} = actor_alive(actor),
    ok = py_channel:close(Ch),
    wait_until(fun() -> actor_alive(actor) =:= {ok, false} end, 5000),
    {messages, []} = process_info(self(), messages).

%% Twenty processes make 200 requests each at once: each gets its own
%% answers, in order.
actor_serves_many_erlang_clients_at_once(_Config) ->
    {ok, Ch} = py_channel:new(),
    {ok, none} = py:call('__main__', start_actor, [shared_actor, Ch]),
    Answers = fan_out(fun(C) ->
                              Requests = [C * 1000 + I || I <- lists:seq(1, 200)],
                              [ok = py_channel:send(Ch, {self(), N}) || N <- Requests],
                              Replies = [receive R -> R after scaled(10000) -> no_reply end
                                         || _ <- Requests],
                              Replies =:= [2 * N || N <- Requests]
                      end, lists:seq(1, 20)),
    [] = [C || {C, false} <- lists:zip(lists:seq(1, 20), Answers)],
    ok = py_channel:close(Ch),
    wait_until(fun() -> actor_alive(shared_actor) =:= {ok, false} end, 5000).

%%% lifetime

%% A process makes a channel (owned by this one, so it stays open),
%% queues three messages, gives it to Python and ends: no Erlang term
%% refers to the channel any more, and Python still receives from it and
%% can give it back.
python_keeps_a_channel_erlang_dropped(_Config) ->
    Self = self(),
    Maker = spawn(fun() ->
                          {ok, Ch} = py_channel:new(#{owner => Self}),
                          [ok = py_channel:send(Ch, N) || N <- [1, 2, 3]],
                          {ok, none} = py:call('__main__', keep, [dropped, Ch]),
                          Self ! kept
                  end),
    receive kept -> ok after scaled(5000) -> ct:fail(not_kept) end,
    await_down(Maker, 5000),
    true = erlang:garbage_collect(),
    {ok, {[1, 2, 3], false, 0}} = py:call('__main__', take_kept, [dropped]),
    {ok, Ch} = py:call('__main__', give_back, [dropped]),
    true = py_channel:is_channel(Ch),
    #{size := 0, closed := false} = py_channel:info(Ch),
    ok = py_channel:send(Ch, 4),
    {ok, {got, 4}} = py:call('__main__', try_take, [Ch]),
    ok = py_channel:close(Ch).

%% A channel made before py_nif is reloaded keeps its messages, its limit
%% and its Python receivers; new channels work too.
channels_survive_a_reload_of_py_nif(_Config) ->
    {ok, Ch} = py_channel:new(#{max_size => 2}),
    ok = py_channel:send(Ch, before),
    {ok, none} = py:call('__main__', start_receivers, [reloaded, Ch, 1, self()]),
    await_receiving(reloaded, 1),
    wait_until(fun() -> py:call('__main__', received, [reloaded]) =:= {ok, [[before]]} end,
               5000),
    ok = py_test_lib:reload_py_nif(),
    true = py_channel:is_channel(Ch),
    #{size := 0, max_size := 2, closed := false} = py_channel:info(Ch),
    ok = py_channel:send(Ch, 'after'),
    wait_until(fun() ->
                       py:call('__main__', received, [reloaded]) =:= {ok, [[before, 'after']]}
               end, 5000),
    {ok, New} = py_channel:new(#{max_size => 1}),
    ok = py_channel:send(New, fresh),
    busy = py_channel:send(New, fresh),
    {ok, {got, fresh}} = py:call('__main__', try_take, [New]),
    ok = py_channel:close(Ch),
    wait_until(fun() -> finished(reloaded) end, 5000),
    {ok, [closed]} = py:call('__main__', ends, [reloaded]).

%% Each delete, purge and load of py_nif makes new resource types; those
%% of a purged library with nothing left are freed, and their addresses
%% may be taken by the next types. Forty reloads, with channels and
%% references kept from some of them: every channel is still a channel,
%% every reference still a reference.
channels_and_references_stay_apart_across_many_reloads(_Config) ->
    Kept = lists:foldl(fun(I, Kept0) ->
                               New = case I rem 4 of
                                         0 -> [new_object_ref()];
                                         1 -> [element(2, py_channel:new())];
                                         _ -> []
                                     end,
                               Kept1 = lists:sublist(New ++ Kept0, 5),
                               true = erlang:garbage_collect(),
                               ok = py_test_lib:unload_and_load_py_nif(),
                               ok = apart(element(2, py_channel:new()), new_object_ref()),
                               Kept1
                       end, [], lists:seq(1, 40)),
    [true = py_channel:is_channel(K) orelse py:is_ref(K) || K <- Kept],
    [ok = apart(C, R) || C <- Kept, py_channel:is_channel(C), R <- Kept, py:is_ref(R)],
    ok.

new_object_ref() ->
    {ok, Ref} = py:call(builtins, object, [], #{}, #{return => ref}),
    Ref.

apart(Ch, Ref) ->
    {true, false} = {py_channel:is_channel(Ch), py:is_ref(Ch)},
    {false, true} = {py_channel:is_channel(Ref), py:is_ref(Ref)},
    {ok, <<"Channel">>} = py:eval(<<"type(c).__name__">>, #{c => Ch}),
    {ok, <<"object">>} = py:eval(<<"type(r).__name__">>, #{r => Ref}),
    {error, {badarg, channel}} = py_channel:send(Ref, hello),
    ok.

%% A coroutine's wait ended twice (a bug in code using the private
%% _take_or_wait) leaves the count of waiters right: a receive that waits
%% next still wakes for a message sent after it began.
ending_a_wait_twice_loses_no_wake_up(_Config) ->
    {ok, Ch} = py_channel:new(),
    Self = self(),
    spawn_link(fun() ->
                       Self ! {took, py:call('__main__', wait_closed_twice_then_take, [Ch, 10])}
               end),
    %% Once the receive waits (and not before: its wait counts).
    wait_until(fun() -> maps:get(waiting, py_channel:info(Ch)) =:= 1 end, 5000),
    T0 = erlang:monotonic_time(millisecond),
    ok = py_channel:send(Ch, wake),
    receive {took, Took} -> {ok, {got, wake}} = Took after scaled(5000) -> ct:fail(no_wake_up) end,
    ?assert(erlang:monotonic_time(millisecond) - T0 < scaled(2000)).

an_empty_channel_is_true(_Config) ->
    {ok, Ch} = py_channel:new(),
    {ok, {true, 0}} = py:call('__main__', truth_of, [Ch]),
    ok = py_channel:send(Ch, x),
    {ok, {true, 1}} = py:call('__main__', truth_of, [Ch]).

%% A child that Python forks cannot reach Erlang: each use of a channel
%% there raises RuntimeError instead of waiting for messages that can never
%% come.
a_forked_child_cannot_use_a_channel(_Config) ->
    {ok, Ch} = py_channel:new(),
    ok = py_channel:send(Ch, for_the_parent),
    {ok, ['RuntimeError', 'RuntimeError', 'RuntimeError']} =
        py:call('__main__', in_forked_child, [Ch]),
    {ok, {got, for_the_parent}} = py:call('__main__', take, [Ch, 5]).

%%% helpers

%% Waits for Count {receiving, Name} messages: Python is about to wait.
await_receiving(Name, Count) ->
    [receive {receiving, Name} -> ok
     after scaled(10000) -> ct:fail({not_receiving, Name})
     end || _ <- lists:seq(1, Count)],
    ok.

%% Sends Message, again after every busy; how many busy answers it got.
send_retrying(Ch, Message, Busy) ->
    case py_channel:send(Ch, Message) of
        ok ->
            Busy;
        busy ->
            #{size := Size, max_size := Max} = py_channel:info(Ch),
            ?assert(Size =< Max),
            erlang:yield(),
            send_retrying(Ch, Message, Busy + 1)
    end.

%% Whether each sender's messages in Got, [{Sender, I}], come in the
%% order they were sent.
in_order_per_sender(Got) ->
    Senders = lists:usort([S || {S, _} <- Got]),
    lists:all(fun(S) ->
                      Seq = [I || {S1, I} <- Got, S1 =:= S],
                      Seq =:= lists:sort(Seq)
              end, Senders).

is_closed(Ch) ->
    #{closed := Closed} = py_channel:info(Ch),
    Closed.

where(Name) ->
    {ok, Where} = py:call('__main__', where, [Name]),
    Where.

finished(Name) ->
    {ok, Finished} = py:call('__main__', finished, [Name]),
    Finished.

actor_alive(Name) ->
    py:eval(<<"threads[name][0].is_alive()">>, #{name => Name}).
