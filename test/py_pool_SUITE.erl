%% Pools of peer nodes (py_pool), from the user's side: Python calls
%% routed over Erlang distribution (or, from a node that is not
%% distributed, over peer's standard_io connection) to other nodes running
%% erlang_python, with the pool's name where a context goes.
%%
%% A pool is started, found, described (members, info) and stopped, under
%% a supervisor too, and its peer nodes end with it, killed or stopped; a
%% name in use and every bad option are clear errors that leave nothing
%% running, as is a setup that raises. py:call/eval/exec/spawn_call through
%% a pool give what they give locally (kwargs, locals, Python errors),
%% exec reaches every member, python_path, setup and env reach every
%% member. Calls go to the least loaded member, or by key always to the
%% same one, keys spreading over all. A timeout, a cancel or the caller's
%% death interrupts the Python code on the member (its finally block runs).
%% A member that dies (a segfault, os.abort(), kill -9) ends every call in
%% flight on it with {nodedown, Node} within a second, harms no call on
%% another member, and is restarted with its setup rerun while calls go to
%% the survivor; too many restarts end the pool. References stay on their
%% member, run their methods there, and are dropped there when released,
%% collected or their holder ends (2000 made and dropped leave none), or
%% give {nodedown, Node} once their member died. Two pools keep their own
%% members; a pool over existing nodes skips those that are down and takes
%% them back when they return; everything above but the nodes pools works
%% the same from a node that is not distributed; a member stopped with
%% SIGSTOP holds back no call routed elsewhere, and the calls that went to
%% it end by their timeout; and 10 000 calls while members are killed all
%% get a right answer or a clean error.
%%
%% The test node is made distributed (short names on loopback, with an
%% epmd of its own if none runs) for the suite if it is not already.
%% Cases wait for evidence (a state a fixture leaves on the member, what
%% info says, a node gone), never for time; each starts its own pools,
%% named after the case, and stops them.
-module(py_pool_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(py_test_lib, [wait_until/2, wait_for/2, await_down/2, scaled/1, in_peer/2]).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
%% api
-export([start_members_info_and_stop_describe_a_pool/1,
         child_spec_runs_the_pool_under_a_supervisor_that_restarts_it/1,
         killed_pool_process_takes_its_peer_nodes_with_it/1,
         name_already_registered_is_already_started_and_starts_nothing/1]).
%% bad_input
-export([bad_pool_options_are_rejected_and_start_nothing/1,
         raising_setup_fails_the_start_and_leaves_nothing_running/1,
         bad_call_options_are_rejected/1,
         stopped_or_unknown_pool_is_badarg_context/1]).
%% calls
-export([call_and_eval_run_on_a_member_with_kwargs_and_locals/1,
         exec_runs_on_every_member_and_names_the_first_failure/1,
         python_errors_come_back_as_from_local_calls/1,
         python_path_setup_and_env_reach_every_member/1,
         spawn_call_await_and_cancel_work_through_a_pool/1]).
%% routing
-export([calls_go_to_the_least_loaded_member/1,
         same_key_goes_to_the_same_member_and_keys_spread/1]).
%% interruption
-export([timeout_answers_promptly_and_interrupts_the_member_code/1,
         killed_caller_interrupts_its_python_work_on_the_member/1]).
%% references
-export([refs_from_call_and_eval_are_used_on_their_member/1,
         released_ref_is_badarg_and_releasing_twice_is_ok/1,
         member_drops_the_object_when_its_holder_ends_or_collects_it/1,
         ref_whose_member_died_gives_nodedown/1,
         two_thousand_refs_dropped_leave_no_objects_on_the_member/1,
         ref_call_given_up_on_keeps_nothing_on_the_member/1]).
%% member_death
-export([segfaulting_member_ends_its_calls_with_nodedown_and_is_restarted/1,
         aborting_member_ends_its_calls_with_nodedown_and_is_restarted/1,
         member_killed_with_kill_9_ends_its_calls_within_a_second_and_is_restarted/1,
         too_many_restarts_end_the_pool_with_reached_max_restart_intensity/1]).
%% pools
-export([two_pools_at_once_each_reach_their_own_members/1,
         nodes_pool_skips_missing_nodes_and_takes_a_returning_node_back/1]).
%% standard_io
-export([pool_on_a_non_distributed_node_works_over_standard_io/1]).
%% blocked
-export([stopped_member_holds_back_no_call_routed_elsewhere/1]).
%% load
-export([ten_thousand_calls_while_members_are_killed_all_get_right_answers/1]).
%% Run in the non-distributed peer VM; the supervisor of the child_spec case.
-export([standalone_checks/1, init/1]).

-define(PREFIX, "py_pool_suite_").
%% Setup that lets a case see that it ran on a member, and on which.
-define(SETUP, <<"import os\nsetup_pid = os.getpid()\n">>).

%% A hang fails the case instead of stalling the run.
suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [{group, api}, {group, bad_input}, {group, calls}, {group, routing},
     {group, interruption}, {group, references}, {group, member_death}, {group, pools},
     {group, standard_io}, {group, blocked}, {group, load}].

%% Sequential everywhere: every case starts peer nodes, which are heavy on
%% a small machine, and some count the nodes this node sees.
groups() ->
    [{api, [],
      [start_members_info_and_stop_describe_a_pool,
       child_spec_runs_the_pool_under_a_supervisor_that_restarts_it,
       killed_pool_process_takes_its_peer_nodes_with_it,
       name_already_registered_is_already_started_and_starts_nothing]},
     {bad_input, [],
      [bad_pool_options_are_rejected_and_start_nothing,
       raising_setup_fails_the_start_and_leaves_nothing_running,
       bad_call_options_are_rejected,
       stopped_or_unknown_pool_is_badarg_context]},
     {calls, [],
      [call_and_eval_run_on_a_member_with_kwargs_and_locals,
       exec_runs_on_every_member_and_names_the_first_failure,
       python_errors_come_back_as_from_local_calls,
       python_path_setup_and_env_reach_every_member,
       spawn_call_await_and_cancel_work_through_a_pool]},
     {routing, [],
      [calls_go_to_the_least_loaded_member,
       same_key_goes_to_the_same_member_and_keys_spread]},
     {interruption, [],
      [timeout_answers_promptly_and_interrupts_the_member_code,
       killed_caller_interrupts_its_python_work_on_the_member]},
     {references, [],
      [refs_from_call_and_eval_are_used_on_their_member,
       released_ref_is_badarg_and_releasing_twice_is_ok,
       member_drops_the_object_when_its_holder_ends_or_collects_it,
       ref_whose_member_died_gives_nodedown,
       two_thousand_refs_dropped_leave_no_objects_on_the_member,
       ref_call_given_up_on_keeps_nothing_on_the_member]},
     {member_death, [],
      [segfaulting_member_ends_its_calls_with_nodedown_and_is_restarted,
       aborting_member_ends_its_calls_with_nodedown_and_is_restarted,
       member_killed_with_kill_9_ends_its_calls_within_a_second_and_is_restarted,
       too_many_restarts_end_the_pool_with_reached_max_restart_intensity]},
     {pools, [],
      [two_pools_at_once_each_reach_their_own_members,
       nodes_pool_skips_missing_nodes_and_takes_a_returning_node_back]},
     {standard_io, [], [pool_on_a_non_distributed_node_works_over_standard_io]},
     {blocked, [], [stopped_member_holds_back_no_call_routed_elsewhere]},
     {load, [], [ten_thousand_calls_while_members_are_killed_all_get_right_answers]}].

%% The application, and this node distributed: short names, loopback
%% only, with an epmd of its own if none runs (both stopped again in
%% end_per_suite).
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    [{distributed, py_test_lib:make_distributed("py_pool_origin")} | Config].

end_per_suite(Config) ->
    py_test_lib:undo_distributed(?config(distributed, Config)).

%% Each case's pool is named after it; the nodes this node sees are noted,
%% so that end_per_testcase can wait for every peer of the case to be
%% gone before the next case starts its own.
init_per_testcase(Case, Config) ->
    [{pool, pool_name(Case, "")}, {nodes_before, nodes(connected)} | Config].

end_per_testcase(_Case, Config) ->
    [catch py_pool:stop(Name) || Name <- registered(), lists:prefix(?PREFIX, atom_to_list(Name))],
    Before = ?config(nodes_before, Config),
    wait_until(fun() -> nodes(connected) -- Before =:= [] end, 30000).

%%% api

start_members_info_and_stop_describe_a_pool(Config) ->
    Pool = ?config(pool, Config),
    {error, not_found} = py_pool:members(Pool),
    {error, not_found} = py_pool:info(Pool),
    {error, not_found} = py_pool:stop(Pool),
    {ok, Pid} = py_pool:start_link(Pool, #{peers => 1}),
    Pid = whereis(Pool),
    [Node] = py_pool:members(Pool),
    ?assertNotEqual(node(), Node),
    true = lists:member(Node, nodes(connected)),
    #{transport := distribution,
      members := [#{slot := 1, node := Node, status := up, in_flight := 0, restarts := 0}]} =
        py_pool:info(Pool),
    {ok, 4.0} = py:call(Pool, math, sqrt, [16]),
    ?assertNotEqual(list_to_integer(os:getpid()), os_pid(Node)),
    ok = py_pool:stop(Pool),
    undefined = whereis(Pool),
    {error, not_found} = py_pool:members(Pool),
    {error, not_found} = py_pool:info(Pool),
    {error, not_found} = py_pool:stop(Pool),
    wait_until(fun() -> node_gone(Node) end, 10000),
    %% start/2, unlinked: two members, in slot order.
    Two = pool_name(?FUNCTION_NAME, "two"),
    {ok, TwoPid} = py_pool:start(Two, #{peers => 2}),
    {links, Links} = process_info(self(), links),
    false = lists:member(TwoPid, Links),
    [N1, N2] = py_pool:members(Two),
    ?assertNotEqual(N1, N2),
    #{transport := distribution,
      members := [#{slot := 1, node := N1, status := up}, #{slot := 2, node := N2, status := up}]} =
        py_pool:info(Two),
    ok = py_pool:stop(Two),
    wait_until(fun() -> node_gone(N1) andalso node_gone(N2) end, 10000).

child_spec_runs_the_pool_under_a_supervisor_that_restarts_it(Config) ->
    Pool = ?config(pool, Config),
    Spec = py_pool:child_spec(#{name => Pool, peers => 1}),
    {{py_pool, Pool}, {py_pool, start_link, [Pool, _Opts]}} = spec_id_and_start(Spec),
    {ok, Sup} = supervisor:start_link(?MODULE, {pool_sup, [Spec]}),
    try
        First = wait_for(fun() -> whereis(Pool) =/= undefined andalso whereis(Pool) end, 10000),
        [Node] = py_pool:members(Pool),
        {ok, 4.0} = py:call(Pool, math, sqrt, [16]),
        exit(First, kill),
        Second = wait_for(fun() ->
                                  case whereis(Pool) of
                                      undefined -> false;
                                      First -> false;
                                      Pid -> Pid
                                  end
                          end, 10000),
        wait_until(fun() -> node_gone(Node) end, 10000),
        [New] = wait_members(Pool, 1),
        ?assertNotEqual(Node, New),
        {ok, 4.0} = py:call(Pool, math, sqrt, [16]),
        unlink(Sup),
        exit(Sup, shutdown),
        await_down(Sup, 30000),
        undefined = whereis(Pool),
        false = is_process_alive(Second),
        wait_until(fun() -> node_gone(New) end, 10000)
    after
        is_process_alive(Sup) andalso begin unlink(Sup), exit(Sup, kill) end
    end.

%% The supervisor of the child_spec case.
init({pool_sup, Specs}) ->
    {ok, {#{strategy => one_for_one, intensity => 5, period => 60}, Specs}}.

killed_pool_process_takes_its_peer_nodes_with_it(Config) ->
    Pool = ?config(pool, Config),
    Pid = start_pool(Pool, #{peers => 2}),
    [N1, N2] = wait_members(Pool, 2),
    pong = net_adm:ping(N1),
    exit(Pid, kill),
    await_down(Pid, 5000),
    wait_until(fun() -> node_gone(N1) andalso node_gone(N2) end, 15000),
    undefined = whereis(Pool),
    {error, {badarg, context}} = py:call(Pool, math, sqrt, [16]).

%% By a pool, by a named py_context and by any process: the name's owner
%% is given, and no peer node is left behind.
name_already_registered_is_already_started_and_starts_nothing(Config) ->
    Pool = ?config(pool, Config),
    Pid = start_pool(Pool, #{peers => 1}),
    [Node] = py_pool:members(Pool),
    Nodes = nodes(connected),
    {error, {already_started, Pid}} = py_pool:start(Pool, #{peers => 1}),
    {error, {already_started, Pid}} = py_pool:start_link(Pool, #{peers => 1}),
    Taken = pool_name(?FUNCTION_NAME, "by_a_process"),
    Holder = spawn_link(fun() -> receive stop -> ok end end),
    true = register(Taken, Holder),
    CtxName = pool_name(?FUNCTION_NAME, "by_a_context"),
    {ok, CtxPid} = py_context:start_link(#{name => CtxName}),
    try
        {error, {already_started, Holder}} = py_pool:start(Taken, #{peers => 1}),
        {error, {already_started, Holder}} = py_pool:start_link(Taken, #{peers => 1}),
        {error, {already_started, CtxPid}} = py_pool:start(CtxName, #{peers => 1}),
        Holder = whereis(Taken),
        CtxPid = whereis(CtxName),
        %% The context still answers by its name, the pool by its own.
        {ok, 4.0} = py:call(CtxName, math, sqrt, [16]),
        [Node] = py_pool:members(Pool),
        wait_until(fun() -> lists:sort(nodes(connected)) =:= lists:sort(Nodes) end, 10000)
    after
        unlink(Holder),
        Holder ! stop,
        unlink(CtxPid),
        exit(CtxPid, shutdown),
        await_down(CtxPid, 30000)
    end.

%%% bad_input

bad_pool_options_are_rejected_and_start_nothing(Config) ->
    Pool = ?config(pool, Config),
    Nodes = nodes(connected),
    Someone = node(),
    Cases = [{#{peers => 0}, {badarg, peers}},
             {#{peers => -1}, {badarg, peers}},
             {#{peers => a}, {badarg, peers}},
             {#{peers => 1.0}, {badarg, peers}},
             {#{peers => 1, nodes => [Someone]}, {badarg, members}},
             {#{}, {badarg, members}},
             {#{setup => <<"x = 1">>}, {badarg, members}},
             {#{nodes => []}, {badarg, nodes}},
             {#{nodes => [<<"x">>]}, {badarg, nodes}},
             {#{nodes => Someone}, {badarg, nodes}},
             {#{peers => 1, colour => blue}, {badarg, colour}},
             {#{peers => 1, restart => #{intensity => -1, period => 10}}, {badarg, restart}},
             {#{peers => 1, restart => #{intensity => 1, period => 0}}, {badarg, restart}},
             {#{peers => 1, restart => #{intensity => a, period => 10}}, {badarg, restart}},
             {#{peers => 1, restart => #{intensity => 1, period => 10, colour => blue}},
              {badarg, restart}},
             {#{peers => 1, restart => [{intensity, 1}]}, {badarg, restart}},
             {#{nodes => [Someone], env => [{"PY_POOL_SUITE_VAR", "x"}]}, {badarg, env}},
             {#{peers => 1, setup => 42}, {badarg, setup}},
             {#{peers => 1, python_path => [42]}, {badarg, python_path}},
             {#{peers => 1, start_timeout => -1}, {badarg, start_timeout}}],
    Outcomes = [{Opts, Expected, try py_pool:start(Pool, Opts)
                                 catch Class:Reason -> {raised, Class, Reason}
                                 end}
                || {Opts, Expected} <- Cases],
    Wrong = [{Opts, {expected, {error, Expected}}, {got, Got}}
             || {Opts, Expected, Got} <- Outcomes, Got =/= {error, Expected}],
    ?assertEqual([], Wrong),
    {error, {badarg, peers}} = py_pool:start_link(Pool, #{peers => 0}),
    undefined = whereis(Pool),
    {error, not_found} = py_pool:info(Pool),
    wait_until(fun() -> lists:sort(nodes(connected)) =:= lists:sort(Nodes) end, 10000).

%% A setup that raises at start: the error names the member and the
%% Python exception, the pool is not there, and its peers are gone.
raising_setup_fails_the_start_and_leaves_nothing_running(Config) ->
    Pool = ?config(pool, Config),
    Nodes = nodes(connected),
    [begin
         Result = py_pool:start(Pool, #{peers => Peers, setup => Setup}),
         ct:log("peers => ~b, setup ~p: ~p", [Peers, Setup, Result]),
         case Result of
             {error, {setup, Node, {'ZeroDivisionError', _}}} when is_atom(Node) ->
                 ok;
             Other ->
                 ct:fail({setup_raising_not_reported, Peers, Other})
         end,
         undefined = whereis(Pool),
         wait_until(fun() -> lists:sort(nodes(connected)) =:= lists:sort(Nodes) end, 15000)
     end || {Peers, Setup} <- [{1, <<"1/0">>}, {2, "x = 1\n1/0\n"}]],
    {ok, _} = py_pool:start(Pool, #{peers => 1, setup => <<"x = 1">>}),
    {ok, 1} = py:eval(Pool, <<"x">>).

bad_call_options_are_rejected(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 1})),
    Bad = [#{colour => blue}, #{timeout => 1000, extra => 1}, #{"timeout" => 1000},
           #{<<"key">> => 1}],
    [{error, {badarg, opts}} = py:call(Pool, math, sqrt, [16], Opts) || Opts <- Bad],
    [{error, {badarg, opts}} = py:eval(Pool, <<"1">>, #{}, Opts)
     || Opts <- [#{kwargs => #{}} | Bad]],
    [{error, {badarg, opts}} = py:exec(Pool, <<"bad_opts_ran = True">>, Opts)
     || Opts <- [#{kwargs => #{}}, #{return => ref}, #{key => 1} | Bad]],
    Ref = py:spawn_call(Pool, math, sqrt, [16], #{colour => blue}),
    receive
        {py_response, Ref, {error, {badarg, opts}}} -> ok;
        {py_response, Ref, Other} -> ct:fail({spawn_call_with_bad_opts, Other})
    after scaled(10000) -> ct:fail(spawn_call_with_bad_opts_gave_nothing)
    end,
    %% None of them ran; good options do.
    'NameError' = error_type(py:eval(Pool, <<"bad_opts_ran">>)),
    {ok, 4.0} = py:call(Pool, math, sqrt, [16],
                        #{timeout => 5000, kwargs => #{}, return => value, key => 1}),
    {ok, 1} = py:eval(Pool, <<"1">>, #{}, #{timeout => 5000, key => 1, return => value}),
    ok = py:exec(Pool, <<"good_opts_ran = True">>, #{timeout => 5000}).

%% A stopped pool's name, and a name nothing ever had, are no context.
stopped_or_unknown_pool_is_badarg_context(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, #{peers => 1}),
    {ok, 2} = py:eval(Pool, <<"1 + 1">>),
    [Node] = py_pool:members(Pool),
    ok = py_pool:stop(Pool),
    wait_until(fun() -> node_gone(Node) end, 10000),
    Never = pool_name(?FUNCTION_NAME, "never_started"),
    [begin
         Badarg = {error, {badarg, context}},
         Badarg = py:call(Name, math, sqrt, [16]),
         Badarg = py:call(Name, math, sqrt, [16], #{timeout => 1000}),
         Badarg = py:eval(Name, <<"1">>),
         Badarg = py:eval(Name, <<"x">>, #{x => 1}),
         Badarg = py:eval(Name, <<"x">>, #{x => 1}, #{timeout => 1000}),
         Badarg = py:exec(Name, <<"pass">>),
         Badarg = py:exec(Name, <<"pass">>, #{timeout => 1000}),
         Ref = py:spawn_call(Name, math, sqrt, [16]),
         Badarg = py:await(Ref, scaled(10000))
     end || Name <- [Pool, Never]],
    ok.

%%% calls

call_and_eval_run_on_a_member_with_kwargs_and_locals(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 1})),
    [Node] = py_pool:members(Pool),
    MemberPid = os_pid(Node),
    {ok, MemberPid} = py:call(Pool, os, getpid, []),
    {ok, MemberPid} = py:call(Pool, pool_fixtures, whoami, []),
    {ok, 4.0} = py:call(Pool, math, sqrt, [16]),
    {ok, 255} = py:call(Pool, builtins, int, [<<"ff">>], #{kwargs => #{base => 16}}),
    {ok, 9} = py:call(Pool, pool_fixtures, add, [2, 3], #{kwargs => #{c => 4}}),
    {ok, 9} = py:call(Pool, <<"pool_fixtures">>, <<"add">>, [2, 3],
                      #{kwargs => #{<<"c">> => 4}, timeout => infinity}),
    {ok, <<"a/b">>} = py:call(Pool, 'os.path', join, [<<"a">>, <<"b">>]),
    {ok, 2} = py:eval(Pool, <<"1 + 1">>),
    {ok, 2} = py:eval(Pool, "1 + 1"),
    {ok, 42} = py:eval(Pool, <<"a * b">>, #{a => 6, b => 7}),
    {ok, 42} = py:eval(Pool, <<"a * b">>, #{a => 6, <<"b">> => 7}, #{timeout => 5000}),
    {ok, MemberPid} = py:eval(Pool, <<"__import__('os').getpid()">>),
    %% Terms go there and back as they do locally.
    Term = [1, 2.5, <<"bin">>, {t, [x]}, #{k => [1]}, true, none],
    {ok, Local} = py:call(builtins, list, [Term]),
    {ok, Local} = py:call(Pool, builtins, list, [Term]),
    %% Locals of an eval define nothing on the member.
    'NameError' = error_type(py:eval(Pool, <<"a">>)).

%% exec runs on every member that is up, in parallel; a failure names the
%% first failing member in slot order.
exec_runs_on_every_member_and_names_the_first_failure(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 2})),
    [A, B] = wait_members(Pool, 2),
    KeyA = key_for(Pool, A),
    KeyB = key_for(Pool, B),
    ok = py:exec(Pool, <<"pool_x = 41">>),
    {ok, 42} = py:eval(Pool, <<"pool_x + 1">>, #{}, #{key => KeyA}),
    {ok, 42} = py:eval(Pool, <<"pool_x + 1">>, #{}, #{key => KeyB}),
    ok = py:exec(Pool, "pool_y = 'string code'", #{timeout => 5000}),
    [{ok, <<"string code">>} = py:eval(Pool, <<"pool_y">>, #{}, #{key => K}) || K <- [KeyA, KeyB]],
    %% Both fail: the first in slot order is named.
    {error, {A, {'ZeroDivisionError', _}}} = strip_traceback(py:exec(Pool, <<"1/0">>)),
    %% Only B fails; A ran it all.
    PidB = os_pid(B),
    OnlyB = iolist_to_binary(io_lib:format("import os\nran_here = True\n"
                                           "if os.getpid() == ~b: raise ValueError('only b')\n",
                                           [PidB])),
    {error, {B, {'ValueError', <<"only b">>}}} = strip_traceback(py:exec(Pool, OnlyB)),
    {ok, true} = py:eval(Pool, <<"ran_here">>, #{}, #{key => KeyA}),
    %% In parallel: two members each sleeping 2 s take about 2 s, not 4.
    T0 = erlang:monotonic_time(millisecond),
    ok = py:exec(Pool, <<"import time\ntime.sleep(2)">>),
    Ms = erlang:monotonic_time(millisecond) - T0,
    ct:log("exec of a 2 s sleep on 2 members took ~b ms", [Ms]),
    ?assert(Ms < 2000 + scaled(1500)).

%% Errors have the form, the type and the message the same code gives on
%% this node; the pool goes on.
python_errors_come_back_as_from_local_calls(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 1})),
    [begin
         Local = py:eval(Code),
         Remote = strip_traceback(py:eval(Pool, Code)),
         ct:log("~s: local ~p, pool ~p", [Code, Local, Remote]),
         ?assertEqual(Local, Remote)
     end || Code <- [<<"1 / 0">>, <<"{}['k']">>, <<"undefined_name_here">>, <<"int('x')">>,
                     <<"object()">>]],
    ?assertEqual(py:call(operator, truediv, [1, 0]),
                 strip_traceback(py:call(Pool, operator, truediv, [1, 0]))),
    ?assertEqual(py:call(py_pool_suite_no_such_module, f, []),
                 strip_traceback(py:call(Pool, py_pool_suite_no_such_module, f, []))),
    'AttributeError' = error_type(py:call(Pool, math, no_such_function, [])),
    [Node] = py_pool:members(Pool),
    {error, {Node, {'SyntaxError', _}}} = strip_traceback(py:exec(Pool, <<"def (:">>)),
    %% A class of no builtin: its dotted name as a binary.
    {error, {<<"pool_fixtures.PoolError">>, <<"boom">>}} =
        strip_traceback(py:call(Pool, pool_fixtures, fail, [<<"boom">>])),
    {ok, 2} = py:eval(Pool, <<"1 + 1">>).

python_path_setup_and_env_reach_every_member(Config) ->
    Pool = ?config(pool, Config),
    Priv = ?config(priv_dir, Config),
    Dir = filename:join(Priv, "pool_path_" ++ integer_to_list(erlang:unique_integer([positive]))),
    Dir2 = Dir ++ "_bin",
    ok = file:make_dir(Dir),
    ok = file:make_dir(Dir2),
    ok = file:write_file(filename:join(Dir, "pool_path_mod.py"),
                         <<"import os\nGREETING = 'from the path'\n"
                           "def where():\n    return os.getpid()\n">>),
    ok = file:write_file(filename:join(Dir2, "pool_path_mod2.py"),
                         <<"def hello():\n    return 'from the second path'\n">>),
    %% The setup imports from the path: python_path comes first.
    Setup = <<"import os, pool_path_mod\nsetup_pid = os.getpid()\n"
              "setup_greeting = pool_path_mod.GREETING\n">>,
    Var = "PY_POOL_SUITE_VAR",
    false = os:getenv(Var),
    start_pool(Pool, #{peers => 2, python_path => [Dir, list_to_binary(Dir2)], setup => Setup,
                       env => [{Var, "hello pool"}]}),
    Members = wait_members(Pool, 2),
    DirBin = list_to_binary(Dir),
    Dir2Bin = list_to_binary(Dir2),
    [begin
         Key = key_for(Pool, Node),
         Pid = os_pid(Node),
         Opts = #{key => Key},
         {ok, Pid} = py:eval(Pool, <<"setup_pid">>, #{}, Opts),
         {ok, <<"from the path">>} = py:eval(Pool, <<"setup_greeting">>, #{}, Opts),
         {ok, Pid} = py:call(Pool, pool_path_mod, where, [], Opts),
         {ok, <<"from the second path">>} = py:call(Pool, pool_path_mod2, hello, [], Opts),
         {ok, [DirBin, Dir2Bin]} = py:eval(Pool, <<"__import__('sys').path[:2]">>, #{}, Opts),
         {ok, <<"hello pool">>} =
             py:eval(Pool, <<"__import__('os').environ.get(v)">>, #{v => list_to_binary(Var)},
                     Opts),
         "hello pool" = erpc:call(Node, os, getenv, [Var])
     end || Node <- Members],
    %% Not here.
    false = os:getenv(Var),
    'ModuleNotFoundError' = error_type(py:call(pool_path_mod, where, [])).

spawn_call_await_and_cancel_work_through_a_pool(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 1})),
    [Node] = py_pool:members(Pool),
    MemberPid = os_pid(Node),
    Ref = py:spawn_call(Pool, os, getpid, []),
    true = is_reference(Ref),
    receive
        {py_response, Ref, Result} -> {ok, MemberPid} = Result
    after scaled(10000) -> ct:fail(spawn_call_gave_nothing)
    end,
    Ref2 = py:spawn_call(Pool, builtins, int, [<<"ff">>], #{kwargs => #{base => 16}, key => 1}),
    {ok, 255} = py:await(Ref2),
    Ref3 = py:spawn_call(Pool, operator, truediv, [1, 0]),
    {error, {'ZeroDivisionError', _}} = strip_traceback(py:await(Ref3, scaled(10000))),
    %% Cancelled: the Python code on the member is interrupted.
    Cancelled = py:spawn_call(Pool, pool_fixtures, sleep_noting, [<<"cancelled">>, 30]),
    await_started(Pool, undefined, <<"cancelled">>),
    ok = py:cancel(Cancelled),
    receive
        {py_response, Cancelled, Outcome} -> {error, cancelled} = Outcome
    after scaled(10000) -> ct:fail(cancelled_call_gave_nothing)
    end,
    <<"CallInterrupted">> = await_ended(Pool, undefined, <<"cancelled">>),
    {error, not_found} = py:cancel(Cancelled),
    %% Awaited too briefly: a timeout, the code interrupted, no late answer.
    Awaited = py:spawn_call(Pool, pool_fixtures, sleep_noting, [<<"awaited">>, 30]),
    await_started(Pool, undefined, <<"awaited">>),
    {error, timeout} = py:await(Awaited, 300),
    <<"CallInterrupted">> = await_ended(Pool, undefined, <<"awaited">>),
    {ok, _} = py:call(Pool, math, sqrt, [4]),
    receive
        {py_response, Awaited, Late} -> ct:fail({late_answer_after_await_timeout, Late})
    after 0 -> ok
    end.

%%% routing

%% With one call in flight on a member, calls without a key go to the
%% other, one after the other; the same the other way round.
calls_go_to_the_least_loaded_member(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 2})),
    Members = wait_members(Pool, 2),
    [begin
         [Other] = Members -- [Busy],
         BusyKey = key_for(Pool, Busy),
         OtherPid = os_pid(Other),
         Tag = atom_to_binary(Busy),
         Blocker = spawn(fun() ->
                                 py:call(Pool, pool_fixtures, sleep_noting, [Tag, 30],
                                         #{key => BusyKey, timeout => 60000})
                         end),
         await_started(Pool, BusyKey, Tag),
         BusySlot = slot_of(Pool, Busy),
         wait_until(fun() -> in_flight(Pool, BusySlot) =:= 1 end, 5000),
         Pids = [py:call(Pool, os, getpid, []) || _ <- lists:seq(1, 10)],
         ?assertEqual(lists:duplicate(10, {ok, OtherPid}), Pids),
         exit(Blocker, kill),
         <<"CallInterrupted">> = await_ended(Pool, BusyKey, Tag),
         wait_until(fun() -> in_flight(Pool, BusySlot) =:= 0 end, 5000)
     end || Busy <- Members],
    ok.

%% A key's calls all go to one member, whatever the load; many keys reach
%% both members.
same_key_goes_to_the_same_member_and_keys_spread(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 2})),
    [A, B] = wait_members(Pool, 2),
    Pids = lists:sort([os_pid(A), os_pid(B)]),
    [begin
         Answers = lists:usort([py:call(Pool, os, getpid, [], #{key => Key})
                                || _ <- lists:seq(1, 20)]),
         case Answers of
             [{ok, Pid}] -> true = lists:member(Pid, Pids);
             _ -> ct:fail({one_key_reached, Key, Answers})
         end
     end || Key <- [42, <<"user:7">>, {tenant, "x"}, [a, b], 3.5]],
    Reached = lists:usort([element(2, py:call(Pool, os, getpid, [], #{key => K}))
                           || K <- lists:seq(1, 40)]),
    ?assertEqual(Pids, Reached),
    %% Load does not move a key: with a call in flight on its member, the
    %% key still goes there (while an unkeyed call goes to the other).
    KeyA = key_for(Pool, A),
    PidA = os_pid(A),
    PidB = os_pid(B),
    Blocker = spawn(fun() ->
                            py:call(Pool, pool_fixtures, sleep_noting, [<<"keyed">>, 30],
                                    #{key => KeyA, timeout => 60000})
                    end),
    await_started(Pool, KeyA, <<"keyed">>),
    [{ok, PidA} = py:call(Pool, os, getpid, [], #{key => KeyA}) || _ <- lists:seq(1, 10)],
    {ok, PidB} = py:call(Pool, os, getpid, []),
    exit(Blocker, kill),
    <<"CallInterrupted">> = await_ended(Pool, KeyA, <<"keyed">>).

%%% interruption

timeout_answers_promptly_and_interrupts_the_member_code(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 1})),
    [Node] = py_pool:members(Pool),
    {Slept, Ms} = timed(fun() -> py:call(Pool, time, sleep, [10], #{timeout => 300}) end),
    ct:log("time.sleep(10) with timeout 300 answered ~p after ~b ms", [Slept, Ms]),
    {error, timeout} = Slept,
    ?assert(Ms =< scaled(1000)),
    {error, timeout} = py:call(Pool, pool_fixtures, sleep_noting, [<<"timed_sleep">>, 30],
                               #{timeout => 300}),
    <<"CallInterrupted">> = await_ended(Pool, undefined, <<"timed_sleep">>),
    {error, timeout} = py:call(Pool, pool_fixtures, spin_noting, [<<"timed_spin">>],
                               #{timeout => 300}),
    <<"CallInterrupted">> = await_ended(Pool, undefined, <<"timed_spin">>),
    {EvalResult, EvalMs} = timed(fun() ->
                                         py:eval(Pool, <<"__import__('time').sleep(10)">>, #{},
                                                 #{timeout => 300})
                                 end),
    {error, timeout} = EvalResult,
    ?assert(EvalMs =< scaled(1000)),
    {error, {Node, timeout}} = py:exec(Pool, <<"import time\ntime.sleep(10)">>,
                                       #{timeout => 300}),
    {ok, 2} = py:eval(Pool, <<"1 + 1">>),
    #{members := [#{status := up, in_flight := 0, restarts := 0}]} = py_pool:info(Pool).

killed_caller_interrupts_its_python_work_on_the_member(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 1})),
    [begin
         Caller = spawn(fun() ->
                                py:call(Pool, pool_fixtures, Function, Args,
                                        #{timeout => infinity})
                        end),
         await_started(Pool, undefined, Tag),
         exit(Caller, kill),
         Ended = await_ended(Pool, undefined, Tag),
         ct:log("~s ended on the member with ~s", [Tag, Ended]),
         <<"CallInterrupted">> = Ended
     end || {Tag, Function, Args} <- [{<<"killed_sleep">>, sleep_noting, [<<"killed_sleep">>, 30]},
                                      {<<"killed_spin">>, spin_noting, [<<"killed_spin">>]}]],
    wait_until(fun() -> in_flight(Pool, 1) =:= 0 end, 5000),
    {ok, 2} = py:eval(Pool, <<"1 + 1">>).

%%% references

refs_from_call_and_eval_are_used_on_their_member(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 2})),
    [A, B] = wait_members(Pool, 2),
    KeyA = key_for(Pool, A),
    PidA = os_pid(A),
    PidB = os_pid(B),
    {ok, C} = py:call(Pool, collections, 'Counter', [[a, b, a]], #{return => ref}),
    true = py:is_ref(C),
    ct:log("a pool reference: ~p", [C]),
    {ok, [{a, 2}]} = py:call_method(C, most_common, [1]),
    {ok, #{a := 2, b := 1}} = py:to_term(C),
    {ok, none} = py:call_method(C, update, [[b, b]]),
    {ok, #{a := 2, b := 3}} = py:to_term(C),
    %% Made on A: whatever the load, its methods run on A.
    {ok, Box} = py:call(Pool, pool_fixtures, 'Box', [7], #{return => ref, key => KeyA}),
    true = py:is_ref(Box),
    {ok, PidA} = py:getattr(Box, pid),
    {ok, 7} = py:getattr(Box, <<"value">>),
    {ok, 7} = py:getattr(Box, value, #{timeout => 5000}),
    {ok, 10} = py:call_method(Box, add, [3]),
    {ok, 15} = py:call_method(Box, add, [], #{n => 5}),
    {ok, 16} = py:call_method(Box, <<"add">>, [1], #{}, #{timeout => 5000}),
    [{ok, PidA} = py:call_method(Box, where, []) || _ <- lists:seq(1, 10)],
    {ok, [16, PidA]} = py:call_method(Box, items, []),
    %% A result by reference of a method stays on A too.
    {ok, Items} = py:call_method(Box, items, [], #{}, #{return => ref}),
    true = py:is_ref(Items),
    {ok, [16, PidA]} = py:to_term(Items),
    {ok, 2} = py:call_method(Items, '__len__', []),
    %% No Erlang form: an error; the object lives on.
    'TypeError' = error_type(py:to_term(Box)),
    'AttributeError' = error_type(py:call_method(Box, no_such_method, [])),
    'AttributeError' = error_type(py:getattr(Box, no_such_attribute)),
    {error, timeout} = py:call_method(Box, sleep, [30], #{}, #{timeout => 300}),
    {ok, 16} = py:getattr(Box, value),
    %% By eval.
    {ok, L} = py:eval(Pool, <<"[x * 2 for x in range(n)]">>, #{n => 3}, #{return => ref}),
    true = py:is_ref(L),
    {ok, [0, 2, 4]} = py:to_term(L),
    {ok, none} = py:call_method(L, append, [6]),
    {ok, [0, 2, 4, 6]} = py:to_term(L),
    {ok, E} = py:eval(Pool, <<"__import__('pool_fixtures').Box(1)">>, #{},
                      #{return => ref, key => key_for(Pool, B)}),
    {ok, PidB} = py:call_method(E, where, []),
    %% From another process.
    Self = self(),
    spawn_link(fun() -> Self ! {used_elsewhere, py:call_method(Box, where, [])} end),
    receive {used_elsewhere, Used} -> {ok, PidA} = Used
    after scaled(10000) -> ct:fail(ref_not_used_from_another_process)
    end.

released_ref_is_badarg_and_releasing_twice_is_ok(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 1})),
    [Node] = py_pool:members(Pool),
    Before = objects(Node),
    {ok, R} = py:call(Pool, pool_fixtures, 'Box', [1], #{return => ref}),
    {ok, L} = py:eval(Pool, <<"[1, 2]">>, #{}, #{return => ref}),
    ?assertEqual(Before + 2, objects(Node)),
    ok = py:release(R),
    ?assertEqual(Before + 1, objects(Node)),
    Badarg = {error, {badarg, ref}},
    Badarg = py:call_method(R, where, []),
    Badarg = py:getattr(R, value),
    Badarg = py:to_term(R),
    true = py:is_ref(R),
    ok = py:release(R),
    %% The other is untouched.
    {ok, [1, 2]} = py:to_term(L),
    ok = py:release(L),
    Badarg = py:to_term(L),
    ?assertEqual(Before, objects(Node)).

%% The object on the member lives while a process here holds its
%% reference, and is dropped once that process ends, or once it lets go of
%% the reference and collects its garbage.
member_drops_the_object_when_its_holder_ends_or_collects_it(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 1})),
    [Node] = py_pool:members(Pool),
    Before = objects(Node),
    Ending = start_ref_holder(Pool),
    ?assertEqual(Before + 1, objects(Node)),
    use_holder(Ending),
    true = erlang:garbage_collect(Ending),
    use_holder(Ending),
    ?assertEqual(Before + 1, objects(Node)),
    unlink(Ending),
    Ending ! stop,
    await_down(Ending, 5000),
    wait_until(fun() -> objects(Node) =:= Before end, 5000),
    Dropping = start_ref_holder(Pool),
    ?assertEqual(Before + 1, objects(Node)),
    Dropping ! drop,
    receive {collected, Dropping} -> ok after scaled(5000) -> ct:fail(holder_did_not_collect) end,
    %% Still alive: collected, not ended.
    wait_until(fun() -> objects(Node) =:= Before end, 5000),
    true = is_process_alive(Dropping),
    unlink(Dropping),
    Dropping ! stop.

ref_whose_member_died_gives_nodedown(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 1})),
    [Node] = py_pool:members(Pool),
    {ok, R} = py:call(Pool, pool_fixtures, 'Box', [1], #{return => ref}),
    {ok, 1} = py:getattr(R, value),
    kill_os_process("-9", os_pid(Node)),
    wait_until(fun() -> not lists:member(Node, member_nodes(Pool)) end, 5000),
    Nodedown = {error, {nodedown, Node}},
    Nodedown = py:call_method(R, where, []),
    Nodedown = py:getattr(R, value),
    Nodedown = py:to_term(R),
    {New, 1} = wait_restarted(Pool, 1, Node),
    Nodedown = py:call_method(R, where, []),
    Nodedown = py:getattr(R, value),
    Nodedown = py:to_term(R),
    ct:log("release of a reference whose member died: ~p", [py:release(R)]),
    %% The new member makes references of its own.
    {ok, R2} = py:call(Pool, pool_fixtures, 'Box', [2], #{return => ref}),
    NewPid = os_pid(New),
    {ok, NewPid} = py:call_method(R2, where, []).

two_thousand_refs_dropped_leave_no_objects_on_the_member(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 1})),
    [Node] = py_pool:members(Pool),
    Before = objects(Node),
    Count = 2000,
    T0 = erlang:monotonic_time(millisecond),
    [Peak] = collect(start_all(fun(_) ->
                                       make_and_drop_refs(Pool, Count, Node, 0)
                               end, [maker]), 120000),
    T1 = erlang:monotonic_time(millisecond),
    wait_objects(Pool, Node, Before, 30000),
    T2 = erlang:monotonic_time(millisecond),
    ct:log("~b references made and dropped in ~b ms (at most ~b objects on the member at a "
           "check); back to ~b objects ~b ms later", [Count, T1 - T0, Peak, Before, T2 - T1]).

%% A `return => ref' call to a stopped member times out; its request and
%% the cancel reach the member together when it runs again. Whether the
%% cancel comes before the call begins (which it then refuses), while it
%% runs (killed) or after it ended (the object it kept is dropped), the
%% member keeps nothing, since no reference reached the caller.
ref_call_given_up_on_keeps_nothing_on_the_member(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 1})),
    [Node] = py_pool:members(Pool),
    Pid = os_pid(Node),
    Before = objects(Node),
    Tag = <<"given_up">>,
    kill_os_process("-STOP", Pid),
    Result = try
                 py:call(Pool, pool_fixtures, sleep_noting, [Tag, 0],
                         #{return => ref, timeout => 200})
             after
                 kill_os_process("-CONT", Pid)
             end,
    {error, timeout} = Result,
    %% The cancel came before this over the same connection: handled once
    %% the agent answers.
    _ = erpc:call(Node, sys, get_state, [py_pool_agent]),
    Ended = wait_for(fun() ->
                             Calls = erpc:call(Node, ets, info, [py_pool_calls, size]),
                             case outcome(Pool, undefined, Tag) of
                                 <<"finished">> = O -> O;
                                 <<"none">> = O when Calls =:= 0 -> O;
                                 <<"CallInterrupted">> = O when Calls =:= 0 -> O;
                                 _ -> false
                             end
                     end, 10000),
    ct:log("the given-up call ~s on the member", [Ended]),
    wait_objects(Pool, Node, Before, 10000).

%% Waits until Node keeps Count objects; fails naming how many it keeps,
%% what the pool process has yet to handle and what it sees of Node.
wait_objects(Pool, Node, Count, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + scaled(Ms),
    wait_objects(Pool, Node, Count, Deadline, objects(Node)).

wait_objects(_Pool, _Node, Count, _Deadline, Count) ->
    ok;
wait_objects(Pool, Node, Count, Deadline, Left) ->
    case erlang:monotonic_time(millisecond) >= Deadline of
        true ->
            ct:fail({objects_left, Node, Left, Count,
                     erlang:process_info(whereis(Pool), [message_queue_len, current_stacktrace]),
                     py_pool:info(Pool)});
        false ->
            timer:sleep(20),
            wait_objects(Pool, Node, Count, Deadline, objects(Node))
    end.

make_and_drop_refs(_Pool, 0, _Node, Peak) ->
    Peak;
make_and_drop_refs(Pool, N, Node, Peak) ->
    {ok, R} = py:call(Pool, pool_fixtures, 'Box', [N], #{return => ref}),
    case N rem 100 of
        0 ->
            {ok, N} = py:getattr(R, value),
            make_and_drop_refs(Pool, N - 1, Node, max(Peak, objects(Node)));
        _ ->
            make_and_drop_refs(Pool, N - 1, Node, Peak)
    end.

%%% member_death

segfaulting_member_ends_its_calls_with_nodedown_and_is_restarted(Config) ->
    member_dies(Config, segfault).

aborting_member_ends_its_calls_with_nodedown_and_is_restarted(Config) ->
    member_dies(Config, abort).

member_killed_with_kill_9_ends_its_calls_within_a_second_and_is_restarted(Config) ->
    member_dies(Config, kill_9).

%% Two members; three calls sleep on the victim, two on the survivor; the
%% victim dies by How. Every call in flight on it gives {nodedown, Victim}
%% within a second of the death; those on the survivor finish; while the
%% victim's slot is down its key's calls go to the survivor; the slot comes
%% back with a new node whose setup ran, and the survivor was never
%% restarted.
member_dies(Config, How) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 2, setup => ?SETUP})),
    [Survivor, Victim] = wait_members(Pool, 2),
    VictimSlot = slot_of(Pool, Victim),
    SurvivorSlot = slot_of(Pool, Survivor),
    VictimPid = os_pid(Victim),
    SurvivorPid = os_pid(Survivor),
    VictimKey = key_for(Pool, Victim),
    SurvivorKey = key_for(Pool, Survivor),
    Tag = fun(Where, I) -> iolist_to_binary(io_lib:format("~p_~p_~b", [How, Where, I])) end,
    VictimTags = [Tag(victim, I) || I <- [1, 2, 3]],
    SurvivorTags = [Tag(survivor, I) || I <- [1, 2]],
    OnVictim = start_all(fun(T) ->
                                 timed_end(fun() ->
                                                   py:call(Pool, pool_fixtures, sleep_noting,
                                                           [T, 30],
                                                           #{key => VictimKey, timeout => 60000})
                                           end)
                         end, VictimTags),
    OnSurvivor = start_all(fun(T) ->
                                   py:call(Pool, pool_fixtures, sleep_noting, [T, 5],
                                           #{key => SurvivorKey, timeout => 60000})
                           end, SurvivorTags),
    [await_started(Pool, VictimKey, T) || T <- VictimTags],
    [await_started(Pool, SurvivorKey, T) || T <- SurvivorTags],
    T0 = erlang:monotonic_time(millisecond),
    Crash = case How of
                kill_9 ->
                    kill_os_process("-9", VictimPid),
                    [];
                segfault ->
                    start_all(fun(_) ->
                                      timed_end(fun() ->
                                                        py:call(Pool, ctypes, string_at, [0],
                                                                #{key => VictimKey})
                                                end)
                              end, [segfault]);
                abort ->
                    start_all(fun(_) ->
                                      timed_end(fun() ->
                                                        py:call(Pool, os, abort, [],
                                                                #{key => VictimKey})
                                                end)
                              end, [abort])
            end,
    Ended = collect(OnVictim ++ Crash, 10000),
    Latencies = [End - T0 || {_, End} <- Ended],
    ct:log("~p: the ~b calls in flight on the victim ~p answered ~p, ~w ms after the kill "
           "(the latest ~b ms)",
           [How, length(Ended), Victim, [R || {R, _} <- Ended], Latencies,
            lists:max(Latencies)]),
    Nodedown = {error, {nodedown, Victim}},
    ?assertEqual(lists:duplicate(length(Ended), Nodedown), [R || {R, _} <- Ended]),
    ?assert(lists:max(Latencies) =< scaled(1000)),
    Meanwhile = calls_while_down(Pool, VictimSlot, Victim, VictimKey, SurvivorPid),
    ct:log("~b rounds of calls (the victim's key and no key) answered by the survivor "
           "while the victim's slot was down", [Meanwhile]),
    ?assert(Meanwhile >= 1),
    ?assertEqual(lists:duplicate(2, {ok, SurvivorPid}), collect(OnSurvivor, 15000)),
    {New, 1} = wait_restarted(Pool, VictimSlot, Victim),
    [Survivor, New] = wait_members(Pool, 2),
    NewPid = os_pid(New),
    ?assertNotEqual(VictimPid, NewPid),
    %% Its setup ran again; the key is back on its slot.
    {ok, NewPid} = py:eval(Pool, <<"setup_pid">>, #{}, #{key => VictimKey}),
    {ok, NewPid} = py:call(Pool, os, getpid, [], #{key => VictimKey}),
    {ok, SurvivorPid} = py:eval(Pool, <<"setup_pid">>, #{}, #{key => SurvivorKey}),
    #{restarts := 0, status := up, node := Survivor} = member(Pool, SurvivorSlot),
    wait_until(fun() -> node_gone(Victim) end, 10000).

%% Calls (with the victim's key, and with none) made while info says the
%% victim's slot is not up, before and after the call: the survivor answers
%% them. How many such rounds were made before the slot was up again.
calls_while_down(Pool, Slot, Victim, Key, SurvivorPid) ->
    calls_while_down(Pool, Slot, Victim, Key, SurvivorPid, 0,
                     erlang:monotonic_time(millisecond) + scaled(60000)).

calls_while_down(Pool, Slot, Victim, Key, SurvivorPid, N, Deadline) ->
    Now = erlang:monotonic_time(millisecond),
    Now < Deadline orelse ct:fail({victim_slot_not_back, Slot, member(Pool, Slot)}),
    case slot_state(Pool, Slot, Victim) of
        back ->
            N;
        stale ->
            timer:sleep(10),
            calls_while_down(Pool, Slot, Victim, Key, SurvivorPid, N, Deadline);
        down ->
            Keyed = py:call(Pool, os, getpid, [], #{key => Key}),
            Unkeyed = py:call(Pool, os, getpid, []),
            case slot_state(Pool, Slot, Victim) of
                down ->
                    ?assertEqual({{ok, SurvivorPid}, {ok, SurvivorPid}}, {Keyed, Unkeyed}),
                    calls_while_down(Pool, Slot, Victim, Key, SurvivorPid, N + 1, Deadline);
                _ ->
                    N
            end
    end.

%% back: up with a new node; stale: still up with the victim (the pool has
%% not heard yet); down: anything else.
slot_state(Pool, Slot, Victim) ->
    case member(Pool, Slot) of
        #{status := up, node := Victim} -> stale;
        #{status := up} -> back;
        #{} -> down
    end.

too_many_restarts_end_the_pool_with_reached_max_restart_intensity(Config) ->
    Pool = ?config(pool, Config),
    Nodes = nodes(connected),
    Pid = start_pool(Pool, #{peers => 1, restart => #{intensity => 1, period => 60}}),
    Monitor = monitor(process, Pid),
    [First] = py_pool:members(Pool),
    kill_os_process("-9", os_pid(First)),
    {Second, 1} = wait_restarted(Pool, 1, First),
    {ok, 2} = py:eval(Pool, <<"1 + 1">>),
    kill_os_process("-9", os_pid(Second)),
    receive
        {'DOWN', Monitor, process, Pid, Reason} ->
            ct:log("the pool ended with ~p", [Reason]),
            {shutdown, reached_max_restart_intensity} = Reason
    after scaled(15000) ->
        ct:fail({pool_still_running_after_two_deaths, catch py_pool:info(Pool)})
    end,
    undefined = whereis(Pool),
    {error, {badarg, context}} = py:eval(Pool, <<"1 + 1">>),
    wait_until(fun() -> node_gone(First) andalso node_gone(Second) end, 10000),
    wait_until(fun() -> lists:sort(nodes(connected)) =:= lists:sort(Nodes) end, 15000).

%%% pools

two_pools_at_once_each_reach_their_own_members(_Config) ->
    PoolA = pool_name(?FUNCTION_NAME, "a"),
    PoolB = pool_name(?FUNCTION_NAME, "b"),
    start_pool(PoolA, #{peers => 1, setup => <<"pool_label = 'a'">>}),
    start_pool(PoolB, #{peers => 1, setup => "pool_label = 'b'"}),
    [NA] = py_pool:members(PoolA),
    [NB] = py_pool:members(PoolB),
    ?assertNotEqual(NA, NB),
    PidA = os_pid(NA),
    PidB = os_pid(NB),
    {ok, <<"a">>} = py:eval(PoolA, <<"pool_label">>),
    {ok, <<"b">>} = py:eval(PoolB, <<"pool_label">>),
    Results = collect(start_all(fun(I) ->
                                        Pool = case I rem 2 of 0 -> PoolA; 1 -> PoolB end,
                                        [py:call(Pool, os, getpid, []) || _ <- lists:seq(1, 20)]
                                end, lists:seq(1, 10)),
                      30000),
    ?assertEqual([lists:duplicate(20, {ok, case I rem 2 of 0 -> PidA; 1 -> PidB end})
                  || I <- lists:seq(1, 10)], Results),
    ok = py:exec(PoolA, <<"only_in_a = 1">>),
    'NameError' = error_type(py:eval(PoolB, <<"only_in_a">>)),
    ok = py_pool:stop(PoolA),
    wait_until(fun() -> node_gone(NA) end, 10000),
    {ok, <<"b">>} = py:eval(PoolB, <<"pool_label">>),
    [NB] = py_pool:members(PoolB).

%% Over nodes this case starts: one that does not exist is skipped; a
%% node stopped leaves the other serving every call; started again under
%% its name (without erlang_python: the pool starts it), it is taken back
%% and its setup rerun.
nodes_pool_skips_missing_nodes_and_takes_a_returning_node_back(Config) ->
    Pool = ?config(pool, Config),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Missing = list_to_atom(?PREFIX ++ "missing@" ++ Host),
    Name1 = peer:random_name(),
    Name2 = peer:random_name(),
    {ok, P1, N1} = start_node(Name1),
    {ok, P2, N2} = start_node(Name2),
    Peers = [P1, P2],
    Restarted = try
        [{ok, _} = erpc:call(N, application, ensure_all_started, [erlang_python])
         || N <- [N1, N2]],
        start_pool(Pool, pool_opts(Config, #{nodes => [N1, N2, Missing], setup => ?SETUP,
                                             retry => 200})),
        [N1, N2] = wait_members(Pool, 2),
        #{members := [#{slot := 1, node := N1, status := up},
                      #{slot := 2, node := N2, status := up},
                      #{slot := 3, status := MissingStatus}]} = Info = py_pool:info(Pool),
        ct:log("info with a missing node: ~p", [Info]),
        ?assertNotEqual(up, MissingStatus),
        Pid1 = os_pid(N1),
        Pid2 = os_pid(N2),
        Key2 = key_for(Pool, N2),
        {ok, Pid1} = py:eval(Pool, <<"setup_pid">>, #{}, #{key => key_for(Pool, N1)}),
        {ok, Pid2} = py:eval(Pool, <<"setup_pid">>, #{}, #{key => Key2}),
        {ok, 9} = py:call(Pool, pool_fixtures, add, [2, 3], #{kwargs => #{c => 4}}),
        %% N2 stops: N1 serves everything, N2's key too.
        ok = peer:stop(P2),
        wait_until(fun() -> py_pool:members(Pool) =:= [N1] end, 10000),
        [{ok, Pid1} = py:call(Pool, os, getpid, []) || _ <- lists:seq(1, 10)],
        [{ok, Pid1} = py:call(Pool, os, getpid, [], #{key => Key2}) || _ <- lists:seq(1, 5)],
        %% Back under the same name.
        {ok, P2Again, N2} = start_node(Name2),
        try
            [N1, N2] = wait_for(fun() ->
                                        case py_pool:members(Pool) of
                                            [N1, N2] = Both -> Both;
                                            _ -> false
                                        end
                                end, 30000),
            NewPid2 = os_pid(N2),
            ?assertNotEqual(Pid2, NewPid2),
            {ok, NewPid2} = py:call(Pool, os, getpid, [], #{key => Key2}),
            {ok, NewPid2} = py:eval(Pool, <<"setup_pid">>, #{}, #{key => Key2}),
            true = lists:keymember(erlang_python, 1,
                                   erpc:call(N2, application, which_applications, [])),
            ok = py_pool:stop(Pool),
            ct:log("after the pool's stop, its nodes answer ping: ~p",
                   [[{N, net_adm:ping(N)} || N <- [N1, N2]]]),
            P2Again
        catch
            Class:Reason:Stack ->
                catch peer:stop(P2Again),
                erlang:raise(Class, Reason, Stack)
        end
    after
        catch py_pool:stop(Pool),
        [catch peer:stop(P) || P <- Peers]
    end,
    ok = peer:stop(Restarted).

%% A peer of this case's own, on loopback, that can load the suite and the
%% application.
start_node(Name) ->
    peer:start_link(#{name => Name, args => ["-pa" | code_dirs()] ++
                                               ["-kernel", "inet_dist_use_interface",
                                                "{127,0,0,1}"]}).

%%% standard_io

%% In a VM that is not distributed, a pool of one peer reached over
%% peer's standard_io connection: the same calls, errors, timeouts,
%% references and restarts (standalone_checks/1, run there).
pool_on_a_non_distributed_node_works_over_standard_io(Config) ->
    DataDir = ?config(data_dir, Config),
    Figures = in_peer([], fun(Peer) ->
        nonode@nohost = peer:call(Peer, erlang, node, []),
        {ok, _} = peer:call(Peer, application, ensure_all_started, [erlang_python]),
        peer:call(Peer, ?MODULE, standalone_checks, [DataDir], scaled(150000))
    end),
    ct:log("over standard_io: ~p", [Figures]),
    #{nodedown_ms := NodedownMs, timeout_ms := TimeoutMs} = Figures,
    ?assert(TimeoutMs =< scaled(1000)),
    ?assert(NodedownMs =< scaled(1000)).

%% In the non-distributed peer VM (no ct there: failures raise, and
%% peer:call raises them again in the case). Returns figures to log.
standalone_checks(DataDir) ->
    Pool = list_to_atom(?PREFIX ++ "standalone"),
    {error, not_alive} = py_pool:start(list_to_atom(?PREFIX ++ "standalone_nodes"),
                                       #{nodes => ['py_pool_suite_x@127.0.0.1']}),
    {ok, _} = py_pool:start(Pool, #{peers => 1, python_path => [DataDir], setup => ?SETUP}),
    try
        #{transport := standard_io,
          members := [#{slot := 1, status := up, in_flight := 0, restarts := 0}]} =
            py_pool:info(Pool),
        [_] = py_pool:members(Pool),
        {ok, MemberPid} = py:call(Pool, os, getpid, []),
        true = MemberPid =/= list_to_integer(os:getpid()),
        {ok, MemberPid} = py:eval(Pool, <<"setup_pid">>),
        {ok, 4.0} = py:call(Pool, math, sqrt, [16]),
        {ok, 255} = py:call(Pool, builtins, int, [<<"ff">>], #{kwargs => #{base => 16}}),
        {ok, 42} = py:eval(Pool, <<"a * b">>, #{a => 6, b => 7}),
        ok = py:exec(Pool, <<"standalone_x = 41">>),
        {ok, 42} = py:eval(Pool, <<"standalone_x + 1">>),
        Local = py:eval(<<"1 / 0">>),
        Local = strip_traceback(py:eval(Pool, <<"1 / 0">>)),
        {error, {<<"pool_fixtures.PoolError">>, <<"boom">>}} =
            strip_traceback(py:call(Pool, pool_fixtures, fail, [<<"boom">>])),
        %% A timeout, promptly, and the code on the member interrupted.
        {{error, timeout}, TimeoutMs} =
            timed(fun() ->
                          py:call(Pool, pool_fixtures, sleep_noting, [<<"io_timeout">>, 30],
                                  #{timeout => 300})
                  end),
        <<"CallInterrupted">> = await_ended(Pool, undefined, <<"io_timeout">>),
        %% A killed caller too.
        Caller = spawn(fun() ->
                               py:call(Pool, pool_fixtures, sleep_noting, [<<"io_killed">>, 30],
                                       #{timeout => infinity})
                       end),
        await_started(Pool, undefined, <<"io_killed">>),
        exit(Caller, kill),
        <<"CallInterrupted">> = await_ended(Pool, undefined, <<"io_killed">>),
        %% spawn_call.
        Spawned = py:spawn_call(Pool, math, sqrt, [9]),
        {ok, 3.0} = py:await(Spawned, scaled(10000)),
        %% A reference.
        {ok, C} = py:call(Pool, collections, 'Counter', [[a, b, a]], #{return => ref}),
        true = py:is_ref(C),
        {ok, [{a, 2}]} = py:call_method(C, most_common, [1]),
        {ok, #{a := 2, b := 1}} = py:to_term(C),
        {ok, Box} = py:call(Pool, pool_fixtures, 'Box', [5], #{return => ref}),
        {ok, MemberPid} = py:getattr(Box, pid),
        {ok, 6} = py:call_method(Box, add, [1]),
        ok = py:release(C),
        {error, {badarg, ref}} = py:call_method(C, most_common, [1]),
        ok = py:release(C),
        %% kill -9 of the member with a call in flight on it.
        InFlight = start_all(fun(_) ->
                                     timed_end(fun() ->
                                                       py:call(Pool, pool_fixtures, sleep_noting,
                                                               [<<"io_dying">>, 30],
                                                               #{timeout => 60000})
                                               end)
                             end, [dying]),
        await_started(Pool, undefined, <<"io_dying">>),
        T0 = erlang:monotonic_time(millisecond),
        kill_os_process("-9", MemberPid),
        [{{error, {nodedown, Dead}}, End}] = collect(InFlight, 10000),
        NodedownMs = End - T0,
        {error, {nodedown, Dead}} = py:call_method(Box, where, []),
        wait_until(fun() ->
                           case py_pool:info(Pool) of
                               #{members := [#{status := up, restarts := 1}]} -> true;
                               _ -> false
                           end
                   end, 60000),
        {ok, NewPid} = py:call(Pool, os, getpid, []),
        true = NewPid =/= MemberPid,
        {ok, NewPid} = py:eval(Pool, <<"setup_pid">>),
        {error, {nodedown, Dead}} = py:call_method(Box, where, []),
        #{transport => standard_io, timeout_ms => TimeoutMs, nodedown_ms => NodedownMs,
          dead_member => Dead}
    after
        py_pool:stop(Pool)
    end.

%%% blocked

%% One member stopped with SIGSTOP: calls routed to the other by key all
%% answer promptly, as does info; of unkeyed calls from ten processes at
%% once, every one either answers promptly from the running member or is
%% in flight on the stopped one (info says so), and only those wait; they
%% end with a timeout within their time limit (and a second).
stopped_member_holds_back_no_call_routed_elsewhere(Config) ->
    Pool = ?config(pool, Config),
    start_pool(Pool, pool_opts(Config, #{peers => 2})),
    [Stopped, Running] = wait_members(Pool, 2),
    StoppedSlot = slot_of(Pool, Stopped),
    StoppedPid = os_pid(Stopped),
    RunningPid = os_pid(Running),
    StoppedKey = key_for(Pool, Stopped),
    RunningKey = key_for(Pool, Running),
    Timeout = 2000,
    kill_os_process("-STOP", StoppedPid),
    {Keyed, InfoMs, Concurrent, WaitingOnStopped} =
        try
            K = [timed(fun() -> py:call(Pool, os, getpid, [], #{key => RunningKey,
                                                                 timeout => Timeout})
                       end) || _ <- lists:seq(1, 20)],
            {#{}, IMs} = timed(fun() -> py_pool:info(Pool) end),
            OkCount = counters:new(1, []),
            Started = start_all(fun(_) ->
                                        {R, Ms} = timed(fun() ->
                                                                py:call(Pool, os, getpid, [],
                                                                        #{timeout => Timeout})
                                                        end),
                                        case R of
                                            {ok, _} -> counters:add(OkCount, 1, 1);
                                            _ -> ok
                                        end,
                                        {R, Ms}
                                end, lists:seq(1, 10)),
            %% Every call answered, or waiting on the stopped member.
            Waiting = wait_for(fun() ->
                                       W = in_flight(Pool, StoppedSlot),
                                       counters:get(OkCount, 1) + W =:= 10 andalso W
                               end, Timeout),
            {K, IMs, collect(Started, 20000), Waiting}
        after
            kill_os_process("-CONT", StoppedPid)
        end,
    ct:log("while ~p was stopped: keyed calls to ~p ~p; info in ~b ms; ten unkeyed calls at "
           "once ~p, ~b of them seen in flight on the stopped member",
           [Stopped, Running, Keyed, InfoMs, Concurrent, WaitingOnStopped]),
    ?assertEqual(lists:duplicate(20, {ok, RunningPid}), [R || {R, _} <- Keyed]),
    ?assert(lists:max([Ms || {_, Ms} <- Keyed]) =< scaled(1000)),
    ?assert(InfoMs =< scaled(1000)),
    Answered = [Ms || {{ok, P}, Ms} <- Concurrent, P =:= RunningPid],
    Waited = [Ms || {{error, timeout}, Ms} <- Concurrent],
    ?assertEqual({10, WaitingOnStopped}, {length(Answered) + length(Waited), length(Waited)}),
    ?assert(Answered =:= [] orelse lists:max(Answered) =< scaled(1000)),
    %% Running again: its key answers.
    wait_until(fun() ->
                       py:call(Pool, os, getpid, [], #{key => StoppedKey, timeout => 2000})
                           =:= {ok, StoppedPid}
               end, 20000),
    [_, _] = py_pool:members(Pool),
    %% Last, as it is about the calls that had to wait: a call's timeout
    %% bounds its wait, a stopped member or not.
    case [Ms || Ms <- Waited, Ms > Timeout + scaled(1000)] of
        [] -> ok;
        Late -> ct:fail({timed_out_calls_to_a_stopped_member_waited_past_their_timeout,
                         #{timeout => Timeout, waited_ms => Late}})
    end.

%%% load

%% Ten processes make 1000 calls each through two members while three
%% members, one at a time, are killed with kill -9. The calls go in four
%% phases of 250 per process: kill K lands in phase K - 1, once 500 of its
%% calls have answered, and phase K opens once both members are up again,
%% so that every kill finds calls in flight and a full pool. Every call
%% answers, with the right sum or a clean error, and the members are all
%% back at the end.
ten_thousand_calls_while_members_are_killed_all_get_right_answers(Config) ->
    ct:timetrap({minutes, 5}),
    Pool = ?config(pool, Config),
    start_pool(Pool, #{peers => 2, restart => #{intensity => 50, period => 60}}),
    wait_members(Pool, 2),
    Workers = 10,
    Calls = 1000,
    Kills = 3,
    PhaseCalls = Calls div (Kills + 1),
    Answered = counters:new(1, [write_concurrency]),
    %% The last phase open; the number of kills made.
    Open = atomics:new(1, []),
    Epoch = atomics:new(1, []),
    %% Failed calls by the number of kills before them.
    Failed = counters:new(Kills + 1, [write_concurrency]),
    Load = #{pool => Pool, calls => Calls, phase_calls => PhaseCalls, answered => Answered,
             open => Open, epoch => Epoch, failed => Failed,
             deadline => erlang:monotonic_time(millisecond) + scaled(240000)},
    T0 = erlang:monotonic_time(millisecond),
    Started = start_all(fun(W) -> load_worker(Load, W, 1, #{}) end, lists:seq(1, Workers)),
    Killed = [begin
                  wait_until(fun() ->
                                     counters:get(Answered, 1) >=
                                         (K - 1) * Workers * PhaseCalls + 500
                             end, 60000),
                  [_, _] = Up = py_pool:members(Pool),
                  Node = lists:nth(rand:uniform(2), Up),
                  Pid = os_pid(Node),
                  ok = atomics:put(Epoch, 1, K),
                  kill_os_process("-9", Pid),
                  AtKill = counters:get(Answered, 1),
                  wait_until(fun() ->
                                     Now = member_nodes(Pool),
                                     length(Now) =:= 2 andalso not lists:member(Node, Now)
                             end, 60000),
                  Back = counters:get(Answered, 1),
                  ok = atomics:put(Open, 1, K),
                  #{kill => K, node => Node, answered_at_kill => AtKill,
                    answered_when_back => Back}
              end || K <- lists:seq(1, Kills)],
    Outcomes = collect(Started, 240000),
    T1 = erlang:monotonic_time(millisecond),
    Totals = lists:foldl(fun(O, Acc) ->
                                 maps:fold(fun(Kind, N, A) ->
                                                   maps:update_with(Kind, fun(M) -> M + N end,
                                                                    N, A)
                                           end, Acc, maps:without([down_nodes], O))
                         end, #{}, Outcomes),
    PerKill = [{kill, K, counters:get(Failed, K + 1)} || K <- lists:seq(0, Kills)],
    ct:log("~b calls in ~b ms; kills: ~p~noutcomes: ~p~nfailed calls after each kill: ~p",
           [Workers * Calls, T1 - T0, Killed, Totals, PerKill]),
    ?assertEqual(Workers * Calls, lists:sum(maps:values(maps:with([ok, nodedown, no_members],
                                                                  Totals)))),
    %% Only killed members were ever down, and nothing failed before the
    %% first kill.
    KilledNodes = [N || #{node := N} <- Killed],
    DownNodes = lists:usort(lists:append([maps:get(down_nodes, O, []) || O <- Outcomes])),
    ?assertEqual([], DownNodes -- KilledNodes),
    ?assertEqual({kill, 0, 0}, hd(PerKill)),
    wait_members(Pool, 2),
    #{members := Members} = py_pool:info(Pool),
    ?assertEqual(Kills, lists:sum([R || #{restarts := R} <- Members])),
    {ok, 3} = py:call(Pool, operator, add, [2, 1]).

%% Calls I to Calls of worker W, each once its phase is open.
load_worker(#{calls := Calls}, _W, I, Counts) when I > Calls ->
    Counts;
load_worker(#{pool := Pool, answered := Answered, epoch := Epoch, failed := Failed} = Load, W,
            I, Counts) ->
    ok = phase_open(Load, (I - 1) div maps:get(phase_calls, Load)),
    X = W * 100000 + I,
    Y = X + 1,
    Kind = case py:call(Pool, operator, add, [X, 1]) of
               {ok, Y} ->
                   ok;
               {error, {nodedown, Node}} when is_atom(Node) ->
                   {nodedown, Node};
               {error, no_members} ->
                   no_members;
               Other ->
                   exit({wrong_answer, [X, 1], Other})
           end,
    counters:add(Answered, 1, 1),
    Counts1 = case Kind of
                  ok ->
                      maps:update_with(ok, fun(N) -> N + 1 end, 1, Counts);
                  {nodedown, Down} ->
                      counters:add(Failed, atomics:get(Epoch, 1) + 1, 1),
                      maps:update_with(down_nodes, fun(L) -> lists:usort([Down | L]) end,
                                       [Down],
                                       maps:update_with(nodedown, fun(N) -> N + 1 end, 1,
                                                        Counts));
                  no_members ->
                      counters:add(Failed, atomics:get(Epoch, 1) + 1, 1),
                      maps:update_with(no_members, fun(N) -> N + 1 end, 1, Counts)
              end,
    load_worker(Load, W, I + 1, Counts1).

%% Once Phase is open (polled: the case's process opens it).
phase_open(#{open := Open, deadline := Deadline} = Load, Phase) ->
    case atomics:get(Open, 1) >= Phase of
        true ->
            ok;
        false ->
            erlang:monotonic_time(millisecond) < Deadline
                orelse exit({phase_never_opened, Phase}),
            timer:sleep(2),
            phase_open(Load, Phase)
    end.

%%% helpers

pool_name(Case, "") ->
    list_to_atom(?PREFIX ++ atom_to_list(Case));
pool_name(Case, Suffix) ->
    list_to_atom(?PREFIX ++ atom_to_list(Case) ++ "_" ++ Suffix).

%% Opts with the fixtures' directory on the members' sys.path.
pool_opts(Config, Opts) ->
    maps:merge(#{python_path => [?config(data_dir, Config)]}, Opts).

%% Starts the pool, unlinked (end_per_testcase stops it); fails the case
%% naming the error.
start_pool(Name, Opts) ->
    case py_pool:start(Name, Opts) of
        {ok, Pid} -> Pid;
        Other -> ct:fail({pool_not_started, Name, Opts, Other})
    end.

%% The members once there are N of them.
wait_members(Pool, N) ->
    wait_for(fun() ->
                     case py_pool:members(Pool) of
                         Members when is_list(Members), length(Members) =:= N -> Members;
                         _ -> false
                     end
             end, 60000).

%% The members up now ([] when the pool is not there).
member_nodes(Pool) ->
    case py_pool:members(Pool) of
        Members when is_list(Members) -> Members;
        _ -> []
    end.

%% What info says of Slot.
member(Pool, Slot) ->
    #{members := Members} = py_pool:info(Pool),
    case [M || M = #{slot := S} <- Members, S =:= Slot] of
        [M] -> M;
        _ -> ct:fail({no_slot, Slot, Members})
    end.

slot_of(Pool, Node) ->
    #{members := Members} = py_pool:info(Pool),
    case [S || #{slot := S, node := N} <- Members, N =:= Node] of
        [Slot] -> Slot;
        _ -> ct:fail({not_a_member, Node, Members})
    end.

in_flight(Pool, Slot) ->
    maps:get(in_flight, member(Pool, Slot)).

%% Once Slot is up again on another node than Old: {New, Restarts}.
wait_restarted(Pool, Slot, Old) ->
    wait_for(fun() ->
                     case member(Pool, Slot) of
                         #{status := up, node := New, restarts := Restarts}
                           when New =/= Old, is_atom(New) -> {New, Restarts};
                         _ -> false
                     end
             end, 60000).

%% The OS pid of a node's VM (its Python's os.getpid() too).
os_pid(Node) ->
    list_to_integer(erpc:call(Node, os, getpid, [])).

%% How many objects the member keeps for pools.
objects(Node) ->
    erpc:call(Node, py_pool_agent, objects, []).

node_gone(Node) ->
    not lists:member(Node, nodes(connected)) andalso net_adm:ping(Node) =:= pang.

kill_os_process(Signal, Pid) ->
    case os:cmd("kill " ++ Signal ++ " " ++ integer_to_list(Pid) ++ " 2>&1") of
        "" -> ok;
        Output -> ct:fail({kill_failed, Signal, Pid, Output})
    end.

%% A key whose calls the pool routes to Node.
key_for(Pool, Node) ->
    key_for(Pool, Node, os_pid(Node), 1).

key_for(_Pool, Node, _Pid, K) when K > 200 ->
    ct:fail({no_key_routes_to, Node});
key_for(Pool, Node, Pid, K) ->
    case py:call(Pool, os, getpid, [], #{key => {key, K}}) of
        {ok, Pid} -> {key, K};
        {ok, _} -> key_for(Pool, Node, Pid, K + 1);
        Other -> ct:fail({call_failed_looking_for_a_key, Node, Other})
    end.

key_opts(undefined) -> #{};
key_opts(Key) -> #{key => Key}.

%% How the fixtures' call Tag is on the member of Key: <<"none">>,
%% <<"started">>, <<"finished">> or the name of what ended it.
outcome(Pool, Key, Tag) ->
    case py:call(Pool, pool_fixtures, outcome, [Tag], key_opts(Key)) of
        {ok, Outcome} -> Outcome;
        Other -> ct:fail({outcome_unreadable, Tag, Other})
    end.

await_started(Pool, Key, Tag) ->
    wait_until(fun() -> outcome(Pool, Key, Tag) =:= <<"started">> end, 10000).

%% How the call Tag ended on the member, once it has.
await_ended(Pool, Key, Tag) ->
    wait_for(fun() ->
                     case outcome(Pool, Key, Tag) of
                         <<"started">> -> false;
                         <<"none">> -> false;
                         Outcome -> Outcome
                     end
             end, 10000).

%% {What Fun returned, how many milliseconds it took}.
timed(Fun) ->
    T0 = erlang:monotonic_time(millisecond),
    Result = Fun(),
    {Result, erlang:monotonic_time(millisecond) - T0}.

%% {What Fun returned, the monotonic time, in ms, when it returned}.
timed_end(Fun) ->
    Result = Fun(),
    {Result, erlang:monotonic_time(millisecond)}.

%% A process that makes a Box on the pool and holds its reference (it
%% answers {use, From} with a call of its method) until told drop (then
%% it collects its garbage and says so) or stop.
start_ref_holder(Pool) ->
    Self = self(),
    Holder = spawn_link(fun() ->
                                {ok, R} = py:call(Pool, pool_fixtures, 'Box', [1],
                                                  #{return => ref}),
                                {ok, 1} = py:getattr(R, value),
                                Self ! {holding, self()},
                                hold(R, Self)
                        end),
    receive {holding, Holder} -> Holder
    after scaled(10000) -> ct:fail(ref_holder_made_nothing)
    end.

hold(R, Parent) ->
    receive
        {use, From} ->
            From ! {used, self(), py:getattr(R, value)},
            hold(R, Parent);
        drop ->
            %% A tail call: nothing of this frame, R included, is left.
            dropped(Parent);
        stop ->
            ok
    end.

dropped(Parent) ->
    true = erlang:garbage_collect(),
    Parent ! {collected, self()},
    receive stop -> ok end.

use_holder(Holder) ->
    Holder ! {use, self()},
    receive {used, Holder, Used} -> {ok, 1} = Used
    after scaled(10000) -> ct:fail(ref_holder_did_not_answer)
    end.

%% Fun(Item) for every Item, each in a linked process of its own, all at
%% once; collect/2 takes what they return.
start_all(Fun, Items) ->
    Self = self(),
    [begin
         Tag = make_ref(),
         Pid = spawn_link(fun() ->
                                  Outcome = try {ok, Fun(Item)}
                                            catch Class:Reason:Stack ->
                                                    {raised, Class, Reason, Stack}
                                            end,
                                  Self ! {Tag, Outcome}
                          end),
         {Pid, Tag, Item}
     end || Item <- Items].

%% What the processes of start_all/2 returned, in the order of their
%% items; fails the case naming an item that raised, or that has not
%% returned scaled(Ms) milliseconds from now.
collect(Started, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + scaled(Ms),
    [receive
         {Tag, {ok, Result}} ->
             unlink(Pid),
             Result;
         {Tag, Raised} ->
             ct:fail({process_failed, Item, Raised})
     after max(0, Deadline - erlang:monotonic_time(millisecond)) ->
         ct:fail({no_answer_in_time, Item, erlang:process_info(Pid, current_stacktrace)})
     end || {Pid, Tag, Item} <- Started].

%% The spec's id and start, as a map or as a tuple.
spec_id_and_start(#{id := Id, start := Start}) -> {Id, Start};
spec_id_and_start({Id, Start, _, _, _, _}) -> {Id, Start}.

code_dirs() ->
    [filename:dirname(code:which(M)) || M <- [py, ?MODULE]].

%% A Python error without the traceback the NIF may add.
strip_traceback({error, {Type, Message, _Traceback}}) when is_binary(Message) ->
    {error, {Type, Message}};
strip_traceback({error, {Node, {Type, Message, _Traceback}}}) when is_atom(Node),
                                                                 is_binary(Message) ->
    {error, {Node, {Type, Message}}};
strip_traceback(Other) ->
    Other.

error_type(Result) ->
    case strip_traceback(Result) of
        {error, {Type, Message}} when is_binary(Message) -> Type;
        Other -> ct:fail({not_a_python_error, Other})
    end.
