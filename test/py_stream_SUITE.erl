%% Streams from Python iterables (py:stream_start/3,4 and friends), from the
%% user's side: items arrive in order as messages, a window holds the
%% iterable back until items are acknowledged, cancelling or the owner's
%% death closes the iterable, errors arrive in py:call's shape, and open
%% streams hold no threads.
-module(py_stream_SUITE).

-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([generator_items_arrive_in_order_then_done/1,
         tokens_stream_to_another_owner/1, async_generator_streams_too/1,
         any_iterable_streams/1, stream_collects_a_list/1, stream_eval_collects_a_list/1,
         items_arrive_while_the_generator_blocks_after_them/1]).
-export([window_holds_the_generator_back/1, ack_of_several_items_at_once/1,
         ack_beyond_the_window_counts_what_is_unacknowledged/1,
         acks_that_overtake_the_batch_report_are_counted/1,
         waiting_streams_hold_no_threads/1]).
-export([cancel_closes_the_generator_and_leaves_no_message/1,
         cancel_twice_or_after_the_end_is_ok/1,
         cancel_of_a_generator_blocked_in_python_interrupts_it/1,
         owner_killed_while_waiting_for_acks_closes_the_generator/1,
         owner_killed_while_python_runs_interrupts_it/1,
         async_generator_cancelled_runs_its_finally/1]).
-export([generator_raising_at_once_is_an_error/1, items_before_an_error_are_kept/1,
         async_generator_raising_is_an_error/1,
         async_generator_whose_loop_stops_is_an_error_and_runs_its_finally/1,
         async_generator_awaiting_a_closed_loop_is_an_error/1, missing_module_is_an_error/1,
         result_that_is_not_iterable_is_an_error/1, bad_options_are_rejected/1]).
-export([streams_survive_a_reload_of_py_nif/1]).

-import(py_test_lib, [wait_until/2, scaled/1]).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, items}, {group, flow_control}, {group, ending}, {group, errors},
     {group, module}].

groups() ->
    [{items, [parallel],
      [generator_items_arrive_in_order_then_done, tokens_stream_to_another_owner,
       async_generator_streams_too, any_iterable_streams, stream_collects_a_list,
       stream_eval_collects_a_list, items_arrive_while_the_generator_blocks_after_them]},
     {flow_control, [parallel],
      [window_holds_the_generator_back, ack_of_several_items_at_once,
       ack_beyond_the_window_counts_what_is_unacknowledged,
       acks_that_overtake_the_batch_report_are_counted]},
     %% Alone: counts threads.
     {threads, [], [waiting_streams_hold_no_threads]},
     {ending, [parallel],
      [cancel_closes_the_generator_and_leaves_no_message, cancel_twice_or_after_the_end_is_ok,
       cancel_of_a_generator_blocked_in_python_interrupts_it,
       owner_killed_while_waiting_for_acks_closes_the_generator,
       owner_killed_while_python_runs_interrupts_it,
       async_generator_cancelled_runs_its_finally]},
     {errors, [parallel],
      [generator_raising_at_once_is_an_error, items_before_an_error_are_kept,
       async_generator_raising_is_an_error,
       async_generator_whose_loop_stops_is_an_error_and_runs_its_finally,
       async_generator_awaiting_a_closed_loop_is_an_error, missing_module_is_an_error,
       result_that_is_not_iterable_is_an_error, bad_options_are_rejected]},
     {module, [], [{group, threads}, streams_survive_a_reload_of_py_nif]}].

init_per_suite(Config) ->
    ok = py_test_lib:start_with_fixtures(Config),
    Config.

end_per_suite(_Config) ->
    ok.

%%% items

%% A burst of items, then a long wait in the generator: the items of the
%% burst have all arrived while it waits, none held back for a later one.
items_arrive_while_the_generator_blocks_after_them(_Config) ->
    {ok, Ref} = py:stream_start('__main__', burst_then_block, [burst, 3000]),
    Burst = [receive_data(Ref) || _ <- lists:seq(1, 3000)],
    Burst = lists:seq(0, 2999),
    {ok, false} = py:eval(<<"gate['burst'].is_set()">>),
    {ok, none} = py:eval(<<"gate['burst'].set()">>),
    {[<<"after">>], done} = collect(Ref).

generator_items_arrive_in_order_then_done(_Config) ->
    {ok, Ref} = py:stream_start('__main__', counted, [in_order, 2500]),
    {Items, done} = collect(Ref),
    Items = lists:seq(0, 2499),
    wait_until(fun() -> ended(in_order) end, 5000).

tokens_stream_to_another_owner(_Config) ->
    Self = self(),
    Owner = spawn_link(fun() ->
                               receive {go, Ref} -> Self ! {got, collect(Ref)} end
                       end),
    {ok, Ref} = py:stream_start('__main__', tokens, [], #{owner => Owner,
                                                          kwargs => #{text => <<"a b c">>}}),
    Owner ! {go, Ref},
    receive {got, Got} -> {[<<"a">>, <<"b">>, <<"c">>], done} = Got
    after scaled(10000) -> ct:fail(no_items)
    end,
    {messages, []} = process_info(self(), messages).

async_generator_streams_too(_Config) ->
    {ok, Ref} = py:stream_start('__main__', async_counted, [async_items, 5]),
    {[0, 10, 20, 30, 40], done} = collect(Ref),
    wait_until(fun() -> ended(async_items) end, 5000).

any_iterable_streams(_Config) ->
    {ok, Range} = py:stream_start(builtins, range, [3]),
    {[0, 1, 2], done} = collect(Range),
    {ok, Empty} = py:stream_start(builtins, list, [[]]),
    {[], done} = collect(Empty),
    {ok, Dict} = py:stream_start(builtins, dict, [], #{kwargs => #{a => 1}}),
    %% Keyword names are str, as for py:call.
    {ok, #{<<"a">> := 1}} = py:call(builtins, dict, [], #{a => 1}),
    {[<<"a">>], done} = collect(Dict).

stream_collects_a_list(_Config) ->
    {ok, [0, 1, 2]} = py:stream('__main__', counted, [collected, 3]),
    {ok, [0, 10]} = py:stream('__main__', async_counted, [async_collected, 2]),
    {ok, [<<"x">>, <<"y">>]} = py:stream('__main__', tokens, [], #{text => <<"x y">>}),
    {error, {'KeyError', _}} = py:stream('__main__', raises_after, [2]).

stream_eval_collects_a_list(_Config) ->
    {ok, [0, 1, 4]} = py:stream_eval(<<"(x * x for x in range(3))">>),
    {ok, [0, 10, 20]} = py:stream_eval(<<"async_counted('evaluated', 3)">>),
    {error, {'SyntaxError', _}} = py:stream_eval(<<"(">>),
    {error, {'TypeError', _}} = py:stream_eval(<<"42">>).

%%% flow control

%% With a window of 5, the generator has produced at most 5 items more than
%% were acknowledged, whatever the pace of the owner.
window_holds_the_generator_back(_Config) ->
    {ok, Ref} = py:stream_start('__main__', endless, [windowed], #{window => 5}),
    First = [receive_data(Ref) || _ <- lists:seq(1, 5)],
    [0, 1, 2, 3, 4] = First,
    %% Nothing more comes, and the generator stays where it is.
    nothing_for(Ref, 300),
    ?assert(count(windowed) =< 5 + 1),
    Next = lists:append([begin ok = py:stream_ack(Ref), [receive_data(Ref)] end
                         || _ <- lists:seq(1, 20)]),
    Next = lists:seq(5, 24),
    nothing_for(Ref, 300),
    ?assert(count(windowed) =< 25 + 1),
    ok = py:stream_cancel(Ref),
    wait_until(fun() -> ended(windowed) end, 5000).

ack_of_several_items_at_once(_Config) ->
    {ok, Ref} = py:stream_start('__main__', counted, [several, 100], #{window => 10}),
    Batches = [begin
                   Items = [receive_data(Ref) || _ <- lists:seq(1, 10)],
                   ok = py:stream_ack(Ref, 10),
                   Items
               end || _ <- lists:seq(1, 10)],
    Items = lists:append(Batches),
    Items = lists:seq(0, 99),
    done = receive {py_stream, Ref, Last} -> Last after scaled(5000) -> ct:fail(no_done) end.

%% An ack of more items than are unacknowledged does not widen the window.
ack_beyond_the_window_counts_what_is_unacknowledged(_Config) ->
    {ok, Ref} = py:stream_start('__main__', endless, [over_acked], #{window => 3}),
    [0, 1, 2] = [receive_data(Ref) || _ <- lists:seq(1, 3)],
    ok = py:stream_ack(Ref, 1000),
    [3, 4, 5] = [receive_data(Ref) || _ <- lists:seq(1, 3)],
    nothing_for(Ref, 300),
    {error, {badarg, count}} = py:stream_ack(Ref, 0),
    {error, {badarg, count}} = py:stream_ack(Ref, many),
    {error, {badarg, ref}} = py:stream_ack(not_a_ref, 1),
    ok = py:stream_ack(make_ref(), 1),
    ok = py:stream_cancel(Ref).

%% Items reach the owner as they are produced: many acknowledged at once
%% (each as it comes, while the batch it belongs to is still being taken),
%% and the stream neither stalls nor runs past its window.
acks_that_overtake_the_batch_report_are_counted(_Config) ->
    {ok, Ref} = py:stream_start('__main__', counted, [overtaking_acks, 20000], #{window => 50}),
    {20000, done} = ack_each(Ref, 0),
    wait_until(fun() -> ended(overtaking_acks) end, 5000).

ack_each(Ref, N) ->
    receive
        {py_stream, Ref, {data, N}} -> ok = py:stream_ack(Ref), ack_each(Ref, N + 1);
        {py_stream, Ref, done} -> {N, done};
        {py_stream, Ref, Other} -> ct:fail({unexpected, Other})
    after scaled(10000) ->
        ct:fail({stream_stalled, N})
    end.

%% 500 streams, each waiting for an ack: no pool thread or dirty scheduler
%% is busy, and the only OS threads added are idle pool threads (started
%% while the 500 first batches were taken at once; they exit when idle).
waiting_streams_hold_no_threads(_Config) ->
    Threads0 = py_test_lib:os_thread_count(),
    #{pool_threads := Pool0} = py:stats(),
    Refs = [begin
                {ok, Ref} = py:stream_start('__main__', endless, [{waiting, I}], #{window => 1}),
                Ref
            end || I <- lists:seq(1, 500)],
    [0 = receive_data(Ref) || Ref <- Refs],
    wait_until(fun() ->
                       #{dirty_running := D, pool_idle := I, pool_threads := T} = py:stats(),
                       D =:= 0 andalso I =:= T
               end, 10000),
    Threads = py_test_lib:os_thread_count(),
    #{pool_threads := Pool} = py:stats(),
    ct:log("OS threads: ~b before, ~b with 500 streams waiting, ~b of them idle pool threads "
           "added", [Threads0, Threads, Pool - Pool0]),
    ?assert(Threads - Threads0 =< Pool - Pool0 + 2),
    [ok = py:stream_cancel(Ref) || Ref <- Refs],
    500 = length([I || I <- lists:seq(1, 500), ended({waiting, I})]).

%%% ending

cancel_closes_the_generator_and_leaves_no_message(_Config) ->
    {ok, Ref} = py:stream_start('__main__', endless, [cancelled], #{window => 4}),
    0 = receive_data(Ref),
    ok = py:stream_cancel(Ref),
    true = ended(cancelled),
    nothing_for(Ref, 200).

cancel_twice_or_after_the_end_is_ok(_Config) ->
    {ok, Ref} = py:stream_start('__main__', counted, [twice, 2]),
    {[0, 1], done} = collect(Ref),
    ok = py:stream_cancel(Ref),
    ok = py:stream_cancel(Ref),
    ok = py:stream_cancel(make_ref()),
    {error, {badarg, ref}} = py:stream_cancel(self()).

%% The generator waits in Python (on an event never set): cancelling
%% interrupts it there, and its finally block runs.
cancel_of_a_generator_blocked_in_python_interrupts_it(_Config) ->
    {ok, Ref} = py:stream_start('__main__', blocked, [blocked_cancel]),
    <<"first">> = receive_data(Ref),
    wait_until(fun() -> {ok, true} =:= py:eval(<<"'blocked_cancel' in gate">>) end, 5000),
    ok = py:stream_cancel(Ref),
    wait_until(fun() -> ended(blocked_cancel) end, 5000),
    nothing_for(Ref, 200).

owner_killed_while_waiting_for_acks_closes_the_generator(_Config) ->
    Self = self(),
    Owner = spawn(fun() ->
                          {ok, Ref} = py:stream_start('__main__', endless, [orphan],
                                                      #{window => 2}),
                          Self ! {started, Ref},
                          receive never -> ok end
                  end),
    receive {started, _} -> ok after scaled(5000) -> ct:fail(not_started) end,
    wait_until(fun() -> count(orphan) >= 2 end, 5000),
    exit(Owner, kill),
    wait_until(fun() -> ended(orphan) end, 5000).

owner_killed_while_python_runs_interrupts_it(_Config) ->
    Self = self(),
    Owner = spawn(fun() ->
                          {ok, Ref} = py:stream_start('__main__', blocked, [orphan_blocked]),
                          Self ! {started, Ref},
                          receive never -> ok end
                  end),
    receive {started, _} -> ok after scaled(5000) -> ct:fail(not_started) end,
    wait_until(fun() -> {ok, true} =:= py:eval(<<"'orphan_blocked' in gate">>) end, 5000),
    exit(Owner, kill),
    wait_until(fun() -> ended(orphan_blocked) end, 5000).

async_generator_cancelled_runs_its_finally(_Config) ->
    {ok, Ref} = py:stream_start('__main__', async_counted, [async_cancel, 1000000],
                                #{window => 3}),
    [0, 10, 20] = [receive_data(Ref) || _ <- lists:seq(1, 3)],
    ok = py:stream_cancel(Ref),
    true = ended(async_cancel).

%%% errors

generator_raising_at_once_is_an_error(_Config) ->
    {ok, Ref} = py:stream_start('__main__', raises_at_once, []),
    {[], {error, {'ValueError', <<"at once">>}}} = collect(Ref).

items_before_an_error_are_kept(_Config) ->
    {ok, Ref} = py:stream_start('__main__', raises_after, [3]),
    {[0, 1, 2], {error, {'KeyError', _}}} = collect(Ref).

async_generator_raising_is_an_error(_Config) ->
    {ok, Ref} = py:stream_start('__main__', async_raises, [2]),
    {[0, 1], {error, {'RuntimeError', <<"async boom">>}}} = collect(Ref).

%% The loop the stream runs the generator on stops under it: the item
%% before comes, then the error; the generator is not left half-run (its
%% finally runs), and the stream still ends cleanly.
async_generator_whose_loop_stops_is_an_error_and_runs_its_finally(_Config) ->
    {ok, Ref} = py:stream_start('__main__', async_stops_its_loop, [loop_stopped]),
    {[1], {error, {'RuntimeError', <<"Event loop stopped before Future completed.">>}}} =
        collect(Ref),
    wait_until(fun() -> ended(loop_stopped) end, 5000),
    ok = py:stream_cancel(Ref).

async_generator_awaiting_a_closed_loop_is_an_error(_Config) ->
    {ok, Ref} = py:stream_start('__main__', async_awaits_a_closed_loop, [dead_loop]),
    {[1], {error, {'RuntimeError', <<"Event loop is closed">>}}} = collect(Ref),
    wait_until(fun() -> ended(dead_loop) end, 5000).

missing_module_is_an_error(_Config) ->
    {ok, Ref} = py:stream_start(no_such_module_here, gen, []),
    {[], {error, {'ModuleNotFoundError', _}}} = collect(Ref),
    {ok, Ref2} = py:stream_start('__main__', no_such_function, []),
    {[], {error, {'AttributeError', _}}} = collect(Ref2).

result_that_is_not_iterable_is_an_error(_Config) ->
    {ok, Ref} = py:stream_start('__main__', not_iterable, []),
    {[], {error, {'TypeError', _}}} = collect(Ref).

bad_options_are_rejected(_Config) ->
    [{error, {badarg, opts}} = py:stream_start('__main__', counted, [bad, 1], Opts)
     || Opts <- [#{window => 0}, #{window => -1}, #{window => many}, #{owner => self},
                 #{kwargs => []}, #{colour => blue}, [], window]],
    {error, {badarg, opts}} = py:stream_start('__main__', counted, not_a_list, #{}),
    {ok, 4.0} = py:call(math, sqrt, [16]).

%%% module

%% A stream waiting for an ack goes on after py_nif is reloaded.
streams_survive_a_reload_of_py_nif(_Config) ->
    {ok, Ref} = py:stream_start('__main__', counted, [reloaded, 6], #{window => 2}),
    [0, 1] = [receive_data(Ref) || _ <- [1, 2]],
    ok = py_test_lib:reload_py_nif(),
    ok = py:stream_ack(Ref, 2),
    [2, 3] = [receive_data(Ref) || _ <- [1, 2]],
    ok = py:stream_ack(Ref, 2),
    [4, 5] = [receive_data(Ref) || _ <- [1, 2]],
    ok = py:stream_ack(Ref, 2),
    done = receive {py_stream, Ref, Last} -> Last after scaled(5000) -> ct:fail(no_done) end.

%%% helpers

%% Every item of the stream, and how it ended: done or {error, Reason}.
collect(Ref) ->
    collect(Ref, []).

collect(Ref, Items) ->
    receive
        {py_stream, Ref, {data, Item}} -> collect(Ref, [Item | Items]);
        {py_stream, Ref, done} -> {lists:reverse(Items), done};
        {py_stream, Ref, {error, _} = Error} -> {lists:reverse(Items), Error}
    after scaled(10000) ->
        ct:fail({stream_stalled, lists:reverse(Items)})
    end.

receive_data(Ref) ->
    receive
        {py_stream, Ref, {data, Item}} -> Item;
        {py_stream, Ref, Other} -> ct:fail({expected_data, Other})
    after scaled(10000) ->
        ct:fail(no_data)
    end.

%% Fails if the stream sends anything within Ms.
nothing_for(Ref, Ms) ->
    receive {py_stream, Ref, Message} -> ct:fail({unexpected, Message})
    after Ms -> ok
    end.

ended(Name) ->
    {ok, Ended} = py:call('__main__', ended, [Name]),
    Ended.

count(Name) ->
    {ok, N} = py:call('__main__', count, [Name]),
    N.
