%% The processes behind erlang.call as OTP processes, seen from the user's
%% side: handlers are supervised, answer sys, drop stray messages and, when
%% killed, fail only the call they were running; the registry drops stray
%% requests and keeps every registration through a crash; an application
%% stop wakes a Python thread blocked in erlang.call.
%%
%% Each case has a Python thread of its own that makes the erlang.calls the
%% case asks of it, one at a time, and sends each outcome back: the thread
%% keeps its worker, and so its handler, from one call to the next. The
%% functions it calls run in the handler, so `sv_self' names the handler.
-module(py_supervision_SUITE).

-include_lib("common_test/include/ct.hrl").

-import(py_test_lib, [wait_until/2]).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([stray_messages_to_a_handler_are_dropped/1, sys_reads_suspends_and_resumes_a_handler/1,
         handlers_are_children_of_the_handler_supervisor/1,
         killed_handler_fails_its_call_and_a_new_one_serves_the_next/1]).
-export([stray_requests_to_the_registry_lose_no_registration/1,
         killed_registry_keeps_every_function_callable/1]).
-export([application_stop_wakes_a_thread_blocked_in_erlang_call/1]).

%% How long an answer from the case's Python thread may take.
-define(ANSWER_MS, 20000).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [{group, handlers}, {group, registry}, {group, stop}].

%% Sequential: the cases kill shared processes or stop the application.
groups() ->
    [{handlers, [],
      [stray_messages_to_a_handler_are_dropped, sys_reads_suspends_and_resumes_a_handler,
       handlers_are_children_of_the_handler_supervisor,
       killed_handler_fails_its_call_and_a_new_one_serves_the_next]},
     {registry, [],
      [stray_requests_to_the_registry_lose_no_registration,
       killed_registry_keeps_every_function_callable]},
     {stop, [], [application_stop_wakes_a_thread_blocked_in_erlang_call]}].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = define_python(),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = register_functions(),
    {ok, none} = py:call('__main__', sv_start, [Case]),
    [{thread, Case} | Config].

end_per_testcase(Case, _Config) ->
    {ok, none} = py:call('__main__', sv_stop, [Case]),
    {ok, _} = application:ensure_all_started(erlang_python),
    ok.

define_python() ->
    py:exec(<<
        "import queue, threading\n"
        "\n"
        "class SvThread:\n"
        "    '''Makes the erlang.calls asked of it, one at a time, and sends\n"
        "    (tag, outcome) to the asker for each.'''\n"
        "    def __init__(self):\n"
        "        self.asks = queue.Queue()\n"
        "        threading.Thread(target=self.serve, daemon=True).start()\n"
        "\n"
        "    def serve(self):\n"
        "        while (ask := self.asks.get()) is not None:\n"
        "            pid, tag, name, args = ask\n"
        "            try:\n"
        "                outcome = ('ok', erlang.call(name, *args))\n"
        "            except Exception as e:\n"
        "                outcome = ('raised', type(e).__name__, str(e))\n"
        "            erlang.send(pid, (tag, outcome))\n"
        "\n"
        "sv_threads = {}\n"
        "\n"
        "def sv_start(key):\n"
        "    sv_threads[key] = SvThread()\n"
        "\n"
        "def sv_ask(key, pid, tag, name, args):\n"
        "    sv_threads[key].asks.put((pid, tag, name, args))\n"
        "\n"
        "def sv_stop(key):\n"
        "    sv_threads.pop(key).asks.put(None)\n"
        "\n"
        "def sv_every_style(name, x):\n"
        "    '''Calls name in the three styles: erlang.call, attribute, import.'''\n"
        "    imported = {}\n"
        "    exec(f'from erlang import {name}', imported)\n"
        "    return (erlang.call(name, x), getattr(erlang, name)(x), imported[name](x))\n"
    >>).

register_functions() ->
    ok = py:register_function(sv_self, fun(_) -> self() end),
    ok = py:register_function(sv_double, fun([X]) -> 2 * X end),
    %% Tells Pid which process runs it, then waits for sv_release.
    ok = py:register_function(sv_hold, fun([Pid]) ->
                                               Pid ! {sv_held, self()},
                                               receive sv_release -> released end
                                       end).

%%% handlers

stray_messages_to_a_handler_are_dropped(Config) ->
    Thread = ?config(thread, Config),
    Call = ask(Thread, sv_hold, [self()]),
    Handler = held(),
    %% Sent while the handler runs a function: they wait in its mailbox
    %% until the function returns.
    Strays = [stray, {stray, make_ref()}, {'$gen_call', {self(), make_ref()}, hello},
              {'$gen_cast', hello}, {'EXIT', self(), normal}],
    [Handler ! Stray || Stray <- Strays],
    Handler ! sv_release,
    {<<"ok">>, released} = answer(Call),
    %% The handler took the strays before the thread's next request, and
    %% serves that request.
    {<<"ok">>, Handler} = call_on(Thread, sv_self, []),
    {messages, []} = process_info(Handler, messages).

sys_reads_suspends_and_resumes_a_handler(Config) ->
    Thread = ?config(thread, Config),
    {<<"ok">>, Handler} = call_on(Thread, sv_self, []),
    State = sys:get_state(Handler),
    true = is_tuple(State),
    {status, Handler, {module, py_handler}, _} = sys:get_status(Handler),
    ok = sys:suspend(Handler),
    Call = ask(Thread, sv_double, [21]),
    %% The request waits, unanswered, in the suspended handler's mailbox.
    wait_until(fun() -> process_info(Handler, message_queue_len) =:= {message_queue_len, 1} end,
               5000),
    receive {Call, Early} -> ct:fail({answered_while_suspended, Early}) after 0 -> ok end,
    ok = sys:resume(Handler),
    {<<"ok">>, 42} = answer(Call),
    {<<"ok">>, Handler} = call_on(Thread, sv_self, []).

handlers_are_children_of_the_handler_supervisor(Config) ->
    Thread = ?config(thread, Config),
    {<<"ok">>, Handler} = call_on(Thread, sv_self, []),
    Supervisor = whereis(py_handler_sup),
    Children = supervisor:which_children(Supervisor),
    true = lists:member(Handler, [Pid || {_Id, Pid, worker, _Modules} <- Children]),
    {links, Links} = process_info(Handler, links),
    true = lists:member(Supervisor, Links),
    true = lists:member(Handler, py_coordinator:handlers()),
    #{handlers := Count} = py:thread_stats(),
    true = Count >= 1.

killed_handler_fails_its_call_and_a_new_one_serves_the_next(Config) ->
    Thread = ?config(thread, Config),
    Call = ask(Thread, sv_hold, [self()]),
    Handler = held(),
    exit(Handler, kill),
    {<<"raised">>, <<"ErlangError">>, Message} = answer(Call),
    {match, _} = re:run(Message, "died"),
    {<<"ok">>, New} = call_on(Thread, sv_self, []),
    true = New =/= Handler,
    true = lists:member(New, py_coordinator:handlers()),
    %% The dead one leaves the supervisor (temporary: not restarted).
    wait_until(fun() -> not lists:member(Handler, py_coordinator:handlers()) end, 5000).

%%% registry

stray_requests_to_the_registry_lose_no_registration(Config) ->
    Thread = ?config(thread, Config),
    Registry = whereis(py_registry),
    ok = gen_server:cast(py_registry, {sv, stray}),
    py_registry ! {sv, stray},
    %% Answered after the cast and the message (one sender: in order).
    {error, unknown_call} = gen_server:call(py_registry, {sv, stray}),
    Registry = whereis(py_registry),
    {<<"ok">>, 42} = call_on(Thread, sv_double, [21]),
    {ok, {42, 42, 42}} = py:call('__main__', sv_every_style, [<<"sv_double">>, 21]).

killed_registry_keeps_every_function_callable(Config) ->
    Thread = ?config(thread, Config),
    ok = py:register_function(sv_sum, lists, sum),
    ok = py:register_function(sv_gone, fun(_) -> gone end),
    ok = py:unregister_function(sv_gone),
    %% A call in flight while the registry dies.
    Call = ask(Thread, sv_hold, [self()]),
    Handler = held(),
    Registry = whereis(py_registry),
    exit(Registry, kill),
    wait_until(fun() -> not lists:member(whereis(py_registry), [undefined, Registry]) end, 5000),
    %% Answered once the new registry has made Python's names those of the
    %% table.
    _ = sys:get_state(py_registry),
    Handler ! sv_release,
    {<<"ok">>, released} = answer(Call),
    {ok, {42, 42, 42}} = py:call('__main__', sv_every_style, [<<"sv_double">>, 21]),
    {ok, {21, 21, 21}} = py:call('__main__', sv_every_style, [<<"sv_sum">>, 21]),
    {<<"ok">>, Handler} = call_on(Thread, sv_self, []),
    {ok, false} = py:eval(<<"hasattr(erlang, 'sv_gone')">>),
    {<<"raised">>, <<"UnknownFunctionError">>, _} = call_on(Thread, sv_gone, []),
    %% And the new registry registers.
    ok = py:register_function(sv_triple, fun([X]) -> 3 * X end),
    {ok, {63, 63, 63}} = py:call('__main__', sv_every_style, [<<"sv_triple">>, 21]).

%%% stop

application_stop_wakes_a_thread_blocked_in_erlang_call(Config) ->
    Thread = ?config(thread, Config),
    Call = ask(Thread, sv_hold, [self()]),
    _Handler = held(),
    try
        %% sv_hold never returns by itself: the stop must kill its handler.
        ok = application:stop(erlang_python),
        {<<"raised">>, <<"ErlangError">>, Message} = answer(Call),
        {match, _} = re:run(Message, "died")
    after
        {ok, _} = application:ensure_all_started(erlang_python),
        ok = register_functions()
    end,
    {<<"ok">>, 42} = call_on(Thread, sv_double, [21]).

%%% helpers

%% Has the case's Python thread call Name(*Args); the outcome comes as
%% {Tag, Outcome}.
ask(Thread, Name, Args) ->
    Tag = make_ref(),
    {ok, none} = py:call('__main__', sv_ask, [Thread, self(), Tag, Name, Args]),
    Tag.

answer(Tag) ->
    receive
        {Tag, Outcome} -> Outcome
    after ?ANSWER_MS ->
        ct:fail(no_answer)
    end.

call_on(Thread, Name, Args) ->
    answer(ask(Thread, Name, Args)).

%% The handler running sv_hold.
held() ->
    receive
        {sv_held, Handler} -> Handler
    after ?ANSWER_MS ->
        ct:fail(not_held)
    end.
