%% @doc Pools of Erlang nodes that run Python for this one: OTP `peer'
%% nodes started on this host (`peers => N'), or nodes of the cluster
%% (`nodes => [Node]'). `py:call(Pool, M, F, Args)' and the other py
%% functions that take a context take a pool's name too; docs/distributed.md
%% has the contract.
%%
%% The pool process starts and watches the members; it is not on the
%% path of a call. It publishes the members that are up in a
%% persistent_term (the route), and a caller picks one there and reaches
%% it directly: over distribution with erpc, or, when this node is not
%% distributed, over the `peer' standard_io connection with peer:call.
%% On the member, py_pool_agent:run/2 makes the call; should the caller
%% die meanwhile, a guard process of the caller's, here, has the member
%% kill the call's process, which interrupts its Python work.
%%
%% Each member's life (from its start, or its return, to its death) has a
%% counter of the calls in flight on it, which routing reads. References to objects kept on a member carry its life's
%% boot term, so a member that died and came back refuses them, and a
%% gc notice (py_nif:gc_notice/2) that tells this process when the last
%% copy is collected, so that it has the member drop the object.
-module(py_pool).
-behaviour(gen_server).

-export([start_link/2, start/2, stop/1, members/1, info/1, child_spec/1]).
-export([route/1, call/6, eval/5, exec/3]).
-export([is_ref/1, call_method/5, getattr/3, to_term/2, release/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([ref/0]).

-define(ROUTE_KEY(Name), {?MODULE, Name}).
-define(GUARD_KEY, '$py_pool_guard').
-define(IN_FLIGHT, py_pool_in_flight).
%% How long past a call's timeout its caller waits for the member's own
%% timeout answer, which normally comes first; a member that cannot answer
%% (stopped, or its connection lost and not yet seen) is told to end the
%% call, and the caller has its `{error, timeout}' as promptly as locally.
-define(WAIT_GRACE_MS, 100).
-define(DEFAULT_OPTS, #{setup => undefined, python_path => [], env => [],
                        restart => #{intensity => 5, period => 10},
                        start_timeout => 30000, retry => 1000}).

%% One life of a member, as callers see it.
-record(life, {slot :: pos_integer(),
               node :: node(),
               conn :: node() | pid(),       % the node (distribution) or its peer process
               boot :: reference(),          % the member's boot term
               load :: counters:counters_ref()}).
%% What callers read: the pool process, how members are reached, and the
%% lives of the members that are up, in slot order.
-record(route, {pool :: pid(),
                transport :: distribution | standard_io,
                lives :: tuple(),
                turn :: atomics:atomics_ref()}).  % whose turn it is on ties
%% A reference to an object kept on a member.
-record(py_pool_ref, {pool :: atom(),
                      slot :: pos_integer(),
                      node :: node(),
                      boot :: reference(),
                      id :: integer(),
                      notice :: reference()}).

-opaque ref() :: #py_pool_ref{}.

%% A member as the pool process keeps it.
-record(member, {slot :: pos_integer(),
                 node :: node() | undefined,
                 peer :: pid() | undefined,
                 status = down :: starting | up | down,
                 tag :: reference() | undefined,  % of the start or join in progress
                 life :: #life{} | undefined,
                 restarts = 0 :: non_neg_integer()}).

%%% Starting and stopping

%% @doc Starts the pool `Name', linked to the caller, and returns once its
%% members have started (peers) or been tried (nodes).
-spec start_link(atom(), map()) -> {ok, pid()} | {error, term()}.
start_link(Name, Opts) ->
    start(start_link, Name, Opts).

%% @doc As {@link start_link/2}, not linked.
-spec start(atom(), map()) -> {ok, pid()} | {error, term()}.
start(Name, Opts) ->
    start(start, Name, Opts).

start(How, Name, Opts) when is_atom(Name), is_map(Opts) ->
    case whereis(py_pool_agent) =/= undefined andalso options(Opts) of
        false -> {error, {not_started, erlang_python}};
        {ok, Config} -> gen_server:How({local, Name}, ?MODULE, {Name, Config}, [{timeout, infinity}]);
        Error -> Error
    end;
start(_How, _Name, Opts) when is_map(Opts) ->
    {error, {badarg, name}};
start(_How, _Name, _Opts) ->
    {error, {badarg, opts}}.

%% @doc A child spec for a supervisor: `#{name := Name}' and the options
%% of {@link start_link/2}.
-spec child_spec(#{name := atom(), atom() => term()}) -> supervisor:child_spec().
child_spec(#{name := Name} = Opts) ->
    #{id => {?MODULE, Name}, start => {?MODULE, start_link, [Name, maps:remove(name, Opts)]},
      shutdown => 30000}.

%% @doc Stops the pool; its peer nodes stop, its calls in flight on them
%% return `{error, {nodedown, Node}}'.
-spec stop(atom()) -> ok | {error, not_found}.
stop(Name) ->
    case route(Name) of
        #route{pool = Pool} ->
            try gen_server:stop(Pool, normal, infinity)
            catch exit:_ -> ok
            end;
        undefined ->
            {error, not_found}
    end.

%% @doc The members that are up, in slot order.
-spec members(atom()) -> [node()] | {error, not_found}.
members(Name) ->
    case route(Name) of
        #route{lives = Lives} -> [N || #life{node = N} <- tuple_to_list(Lives)];
        undefined -> {error, not_found}
    end.

%% @doc How the pool reaches its members, and each member's slot, node,
%% status, calls in flight from this node, and restarts.
-spec info(atom()) -> map() | {error, not_found}.
info(Name) ->
    case route(Name) of
        #route{pool = Pool} ->
            try gen_server:call(Pool, info, infinity)
            catch exit:_ -> {error, not_found}
            end;
        undefined ->
            {error, not_found}
    end.

%% @private
%% @doc The route of the pool `Name', if it runs.
-spec route(term()) -> #route{} | undefined.
route(Name) when is_atom(Name) ->
    case persistent_term:get(?ROUTE_KEY(Name), undefined) of
        #route{pool = Pool} = Route ->
            case is_process_alive(Pool) of
                true -> Route;
                false -> undefined
            end;
        undefined ->
            undefined
    end;
route(_Name) ->
    undefined.

%%% Calls (py's pool forms; options checked there)

%% @private
-spec call(#route{}, atom(), py:name(), py:name(), list(), map()) -> term().
call(Route, Name, Module, Function, Args, Opts) ->
    #{kwargs := Kwargs, timeout := Timeout, return := Return} = Opts,
    routed(Route, Name, Opts, Timeout, fun(Owner) ->
        {call, Module, Function, Args, Kwargs, Timeout, Return, Owner}
    end).

%% @private
-spec eval(#route{}, atom(), binary(), map(), map()) -> term().
eval(Route, Name, Code, Locals, Opts) ->
    #{timeout := Timeout, return := Return} = Opts,
    routed(Route, Name, Opts, Timeout, fun(Owner) ->
        {eval, Code, Locals, Timeout, Return, Owner}
    end).

%% @private
%% @doc Runs `Code' on every member that is up, at once.
-spec exec(#route{}, binary(), timeout()) -> term().
exec(#route{lives = {}}, _Code, _Timeout) ->
    {error, no_members};
exec(#route{lives = Lives} = Route, Code, Timeout) ->
    Caller = self(),
    %% Linked, so that the caller's death ends them (and their calls);
    %% each unlinks before it answers, so that a caller trapping exits
    %% gets no 'EXIT' message.
    Runs = [{L, spawn_link(fun() ->
                                   Result = request(Route, L, {exec, Code, Timeout}, Timeout),
                                   unlink(Caller),
                                   Caller ! {self(), Result}
                           end)}
            || L <- tuple_to_list(Lives)],
    first_failure([{Node, receive {Pid, Result} -> Result end} || {#life{node = Node}, Pid} <- Runs]).

first_failure([]) ->
    ok;
first_failure([{_Node, ok} | Rest]) ->
    first_failure(Rest);
first_failure([{Node, {error, Reason, _Traceback}} | _]) ->
    {error, {Node, Reason}};
first_failure([{Node, {error, Reason}} | _]) ->
    {error, {Node, Reason}}.

routed(#route{lives = Lives, turn = Turn} = Route, Name, Opts, Timeout, Op) ->
    case pick(Lives, maps:find(key, Opts), Turn) of
        {ok, Life} ->
            kept(request(Route, Life, Op(owner(Route)), Timeout), Route, Name, Life);
        none ->
            {error, no_members}
    end.

%% The member with the fewest calls in flight (looking from the next
%% member in turn, so that callers spread on ties); with a key,
%% the member whose slot scores highest with it (rendezvous hashing: a
%% key keeps its member while that member is up).
pick({}, _Key, _Turn) ->
    none;
pick({Only}, _Key, _Turn) ->
    {ok, Only};
pick(Lives, {ok, Key}, _Turn) ->
    {_, Life} = lists:max([{erlang:phash2({Key, S}), L} || #life{slot = S} = L <- tuple_to_list(Lives)]),
    {ok, Life};
pick(Lives, error, Turn) ->
    N = tuple_size(Lives),
    Start = atomics:add_get(Turn, 1, 1) rem N,
    {ok, least_loaded(Lives, N, Start, 0, element(Start + 1, Lives), infinity)}.

least_loaded(_Lives, N, _Start, N, Best, _BestLoad) ->
    Best;
least_loaded(Lives, N, Start, I, Best, BestLoad) ->
    Life = element((Start + I) rem N + 1, Lives),
    case counters:get(Life#life.load, 1) of
        0 -> Life;
        Load when Load < BestLoad -> least_loaded(Lives, N, Start, I + 1, Life, Load);
        _ -> least_loaded(Lives, N, Start, I + 1, Best, BestLoad)
    end.

%% The owner of the objects kept for the pool: the pool process, whose
%% death members see over distribution; over standard_io they cannot, and
%% end with it anyway.
owner(#route{transport = distribution, pool = Pool}) -> Pool;
owner(#route{transport = standard_io}) -> undefined.

%% A result kept on the member becomes a reference here.
kept({ref, Id}, #route{pool = Pool}, Name, #life{slot = Slot, node = Node, boot = Boot}) ->
    Notice = py_nif:gc_notice(Pool, {py_pool_dropped, Slot, Boot, Id}),
    {ok, #py_pool_ref{pool = Name, slot = Slot, node = Node, boot = Boot, id = Id, notice = Notice}};
kept(Result, _Route, _Name, _Life) ->
    Result.

%% One operation on one member, counted in flight on its life, and listed
%% in the table py_pool_in_flight (owned by py_pool_agent) for the
%% caller's guard while it runs.
request(#route{transport = Transport}, #life{node = Node, conn = Conn, load = Load}, Op, Timeout) ->
    Call = make_ref(),
    ok = guarded(),
    counters:add(Load, 1, 1),
    true = ets:insert(?IN_FLIGHT, {Call, self(), Transport, Conn, Load}),
    try remote(Transport, Conn, Call, Op, Timeout)
    catch
        Class:Reason -> failed(Transport, Class, Reason, Conn, Node, Call)
    after
        ets:delete(?IN_FLIGHT, Call),
        counters:sub(Load, 1, 1)
    end.

remote(distribution, Node, Call, Op, Timeout) ->
    erpc:call(Node, py_pool_agent, run, [Call, Op], wait(Timeout));
remote(standard_io, Peer, Call, Op, Timeout) ->
    peer:call(Peer, py_pool_agent, run, [Call, Op], wait(Timeout)).

failed(distribution, error, {erpc, noconnection}, _Conn, Node, _Call) ->
    {error, {nodedown, Node}};
failed(distribution, error, {erpc, timeout}, Conn, _Node, Call) ->
    to_agent(distribution, Conn, {cancel, Call}),
    {error, timeout};
failed(standard_io, exit, {timeout, _}, Conn, _Node, Call) ->
    to_agent(standard_io, Conn, {cancel, Call}),
    {error, timeout};
failed(standard_io, exit, _Reason, _Conn, Node, _Call) ->
    {error, {nodedown, Node}};
failed(_Transport, Class, Reason, _Conn, Node, _Call) ->
    {error, {member_failed, Node, {Class, Reason}}}.

wait(infinity) -> infinity;
wait(Timeout) -> Timeout + ?WAIT_GRACE_MS.

%% A message for a member's agent, in order after what this process sent
%% it before.
to_agent(distribution, Node, Message) ->
    erlang:send({py_pool_agent, Node}, Message, [noconnect]),
    ok;
to_agent(standard_io, Peer, Message) ->
    peer:send(Peer, py_pool_agent, Message).

%% The calling process's guard: should the caller die during calls, it
%% has their members end them, and stops counting them in flight. One per
%% calling process, for its life, which only waits for that death: a call
%% costs a row in a table, rather than a monitor of the caller from the
%% member (two signals over the wire, and impossible over standard_io) or
%% two messages to the guard (which would wake it at every call).
guarded() ->
    case get(?GUARD_KEY) of
        undefined ->
            Caller = self(),
            Guard = spawn(fun() -> guard(monitor(process, Caller), Caller) end),
            put(?GUARD_KEY, Guard),
            ok;
        _ ->
            ok
    end.

guard(Down, Caller) ->
    receive
        {'DOWN', Down, process, Caller, _} ->
            [begin
                 to_agent(Transport, Conn, {cancel, Call}),
                 counters:sub(Load, 1, 1)
             end || {Call, _, Transport, Conn, Load}
                        <- ets:match_object(?IN_FLIGHT, {'_', Caller, '_', '_', '_'}),
                    ets:take(?IN_FLIGHT, Call) =/= []],
            ok
    end.

%%% References

%% @private
-spec is_ref(term()) -> boolean().
is_ref(Term) ->
    is_record(Term, py_pool_ref).

%% @private
-spec call_method(term(), py:name(), list(), map(), map()) -> term().
call_method(Ref, Name, Args, Kwargs, #{timeout := Timeout, return := Return}) ->
    on_member(Ref, Timeout, fun(Owner, #py_pool_ref{boot = Boot, id = Id}) ->
        {method, Boot, Id, Name, Args, Kwargs, Timeout, Return, Owner}
    end).

%% @private
-spec getattr(term(), py:name(), map()) -> term().
getattr(Ref, Name, #{timeout := Timeout, return := Return}) ->
    on_member(Ref, Timeout, fun(Owner, #py_pool_ref{boot = Boot, id = Id}) ->
        {getattr, Boot, Id, Name, Timeout, Return, Owner}
    end).

%% @private
-spec to_term(term(), timeout()) -> term().
to_term(Ref, Timeout) ->
    on_member(Ref, Timeout, fun(_Owner, #py_pool_ref{boot = Boot, id = Id}) ->
        {to_term, Boot, Id, Timeout}
    end).

%% @private
%% @doc Drops the object now; `ok' too when its member is gone.
-spec release(term()) -> term().
release(Ref) ->
    case on_member(Ref, infinity, fun(_Owner, #py_pool_ref{boot = Boot, id = Id}) ->
                                          {release, Boot, Id}
                                  end) of
        {error, {nodedown, _}} -> ok;
        Result -> Result
    end.

%% Runs an operation on the object's member, if it is still the life
%% that made the reference.
on_member(#py_pool_ref{pool = Name, slot = Slot, node = Node, boot = Boot} = Ref, Timeout, Op) ->
    case route(Name) of
        #route{lives = Lives} = Route ->
            case [L || #life{slot = S, boot = B} = L <- tuple_to_list(Lives), S =:= Slot, B =:= Boot] of
                [Life] ->
                    kept(request(Route, Life, Op(owner(Route), Ref), Timeout), Route, Name, Life);
                [] ->
                    {error, {nodedown, Node}}
            end;
        undefined ->
            {error, {nodedown, Node}}
    end.

%%% Options

options(Opts) ->
    Config = maps:merge(?DEFAULT_OPTS, Opts),
    Known = maps:keys(?DEFAULT_OPTS) ++ [peers, nodes],
    case [K || K <- maps:keys(Opts), not lists:member(K, Known)] of
        [Unknown | _] -> {error, {badarg, Unknown}};
        [] -> check(members, Config)
    end.

check(members, #{peers := N} = Config) when not is_map_key(nodes, Config) ->
    case is_integer(N) andalso N > 0 of
        true -> check(env, Config#{kind => peers});
        false -> {error, {badarg, peers}}
    end;
check(members, #{nodes := Nodes} = Config) when not is_map_key(peers, Config) ->
    case {Nodes =/= [] andalso is_list(Nodes) andalso lists:all(fun is_atom/1, Nodes), is_alive()} of
        {true, false} -> {error, not_alive};
        {true, true} -> check(env, Config#{kind => nodes});
        {false, _} -> {error, {badarg, nodes}}
    end;
check(members, _Config) ->
    {error, {badarg, members}};
%% The OS environment is a peer's: a node of the cluster has its own.
check(env, #{kind := nodes, env := Env}) when Env =/= [] ->
    {error, {badarg, env}};
check(env, #{env := Env} = Config) ->
    case is_list(Env) andalso lists:all(fun({K, V}) -> io_lib:char_list(K) andalso io_lib:char_list(V);
                                           (_) -> false
                                        end, Env) of
        true -> check(setup, Config);
        false -> {error, {badarg, env}}
    end;
check(setup, #{setup := undefined} = Config) ->
    check(python_path, Config);
check(setup, #{setup := Setup} = Config) ->
    case code(Setup) of
        {ok, Code} -> check(python_path, Config#{setup := Code});
        error -> {error, {badarg, setup}}
    end;
check(python_path, #{python_path := Paths} = Config) when is_list(Paths) ->
    Binaries = [code(P) || P <- Paths],
    case lists:member(error, Binaries) of
        false -> check(restart, Config#{python_path := [B || {ok, B} <- Binaries]});
        true -> {error, {badarg, python_path}}
    end;
check(python_path, _Config) ->
    {error, {badarg, python_path}};
check(restart, #{restart := Restart}) when not is_map(Restart) ->
    {error, {badarg, restart}};
check(restart, #{restart := Restart} = Config) ->
    case maps:merge(#{intensity => 5, period => 10}, Restart) of
        #{intensity := I, period := P} = R when map_size(R) =:= 2, is_integer(I), I >= 0,
                                                is_integer(P), P > 0 ->
            check(timeouts, Config#{restart := R});
        _ ->
            {error, {badarg, restart}}
    end;
check(timeouts, #{start_timeout := S, retry := R} = Config) ->
    if
        not (is_integer(S) andalso S > 0) -> {error, {badarg, start_timeout}};
        not (is_integer(R) andalso R > 0) -> {error, {badarg, retry}};
        true -> {ok, Config}
    end.

code(Code) when is_binary(Code) ->
    {ok, Code};
code(Code) ->
    try unicode:characters_to_binary(Code) of
        Binary when is_binary(Binary) -> {ok, Binary};
        _ -> error
    catch
        error:badarg -> error
    end.

%%% The pool process

%% @private
init({Name, Config}) ->
    process_flag(trap_exit, true),
    Transport = case is_alive() of
                    true -> distribution;
                    false -> standard_io
                end,
    Slots = case Config of
                #{kind := peers, peers := N} -> lists:seq(1, N);
                #{kind := nodes, nodes := Nodes} -> lists:seq(1, length(Nodes))
            end,
    State0 = #{name => Name, config => Config, transport => Transport, restart_log => [],
               turn => atomics:new(1, []),
               members => maps:from_list([{S, #member{slot = S}} || S <- Slots])},
    publish(State0),
    State = lists:foldl(fun begin_member/2, State0, Slots),
    Deadline = erlang:monotonic_time(millisecond) + maps:get(start_timeout, Config),
    case first_start(State, Deadline) of
        {ok, Started} ->
            publish(Started),
            {ok, Started};
        {error, Reason, Failed} ->
            stop_members(Failed),
            persistent_term:erase(?ROUTE_KEY(Name)),
            {stop, Reason}
    end.

%% Waits for every member's first start; a peer that fails, or a setup
%% that raises, fails the pool.
first_start(#{members := Members} = State, Deadline) ->
    case [M || #member{status = starting} = M <- maps:values(Members)] of
        [] ->
            {ok, State};
        _ ->
            Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
            %% Only what starts members: deaths and retries wait for
            %% handle_info.
            receive
                {Tag, {Kind, _, _}} = Message when is_reference(Tag),
                                                   Kind =:= started orelse Kind =:= boot_failed ->
                    first_step(Message, State, Deadline);
                {joined, _, _} = Message ->
                    first_step(Message, State, Deadline)
            after Left ->
                {error, start_timeout, State}
            end
    end.

first_step(Message, State, Deadline) ->
    case starting(Message, State) of
        {ok, Next} -> first_start(Next, Deadline);
        {failed, Slot, Reason, Next} -> first_failed(Slot, Reason, Next, Deadline);
        ignored -> first_start(State, Deadline)
    end.

first_failed(_Slot, Reason, #{config := #{kind := peers}} = State, _Deadline) ->
    {error, Reason, State};
first_failed(_Slot, {setup, _, _} = Reason, State, _Deadline) ->
    {error, Reason, State};
first_failed(Slot, _Reason, State, Deadline) ->
    first_start(retry_later(Slot, State), Deadline).

%% @private
handle_call(info, _From, #{members := Members, transport := Transport} = State) ->
    Info = [#{slot => S, node => N, status => St, restarts => R,
              in_flight => case L of
                               #life{load = Load} -> counters:get(Load, 1);
                               undefined -> 0
                           end}
            || {_, #member{slot = S, node = N, status = St, restarts = R, life = L}}
                   <- lists:sort(maps:to_list(Members))],
    {reply, #{transport => Transport, members => Info}, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_request}, State}.

%% @private
handle_cast(_Message, State) ->
    {noreply, State}.

%% @private
handle_info({py_pool_dropped, Slot, Boot, Id}, State) ->
    case member_life(Slot, State) of
        #life{boot = Boot, conn = Conn} -> to_agent(maps:get(transport, State), Conn,
                                                    {release, Boot, Id});
        _ -> ok
    end,
    {noreply, State};
handle_info({start_timeout, Slot, Tag}, #{members := Members} = State) ->
    case Members of
        #{Slot := #member{status = starting, tag = Tag}} -> died(Slot, State);
        _ -> {noreply, State}
    end;
handle_info({retry, Slot}, #{members := Members} = State) ->
    case Members of
        #{Slot := #member{status = down}} -> {noreply, begin_member(Slot, State)};
        _ -> {noreply, State}
    end;
handle_info(Message, State) ->
    case starting(Message, State) of
        {ok, Next} ->
            publish(Next),
            {noreply, Next};
        {failed, Slot, _Reason, Next} ->
            died(Slot, Next);
        ignored ->
            case death(Message, State) of
                {died, Slot} -> died(Slot, State);
                ignored -> {noreply, State}
            end
    end.

%% @private
terminate(_Reason, #{name := Name} = State) ->
    persistent_term:erase(?ROUTE_KEY(Name)),
    stop_members(State).

member_life(Slot, #{members := Members}) ->
    case Members of
        #{Slot := #member{status = up, life = Life}} -> Life;
        _ -> undefined
    end.

%%% Members: starting, joining, dying

%% Starts a peer, or tries a node. Peers are hidden nodes: workers of this
%% node, not members of its cluster, so they neither join the cluster's
%% mesh nor show in nodes().
begin_member(Slot, #{config := #{kind := peers} = Config, name := Name, transport := T} = State) ->
    Tag = make_ref(),
    Paths = [P || P <- code:get_path(), not lists:prefix(code:root_dir(), P)],
    PeerOpts0 = #{name => peer:random_name(lists:concat([Name, "_", Slot])),
                  args => ["-hidden", "-pa" | Paths], env => maps:get(env, Config),
                  wait_boot => {self(), Tag}},
    PeerOpts = case T of
                   distribution -> PeerOpts0;
                   standard_io -> PeerOpts0#{connection => standard_io}
               end,
    erlang:send_after(maps:get(start_timeout, Config), self(), {start_timeout, Slot, Tag}),
    case catch peer:start_link(PeerOpts) of
        {ok, Peer} ->
            update(Slot, State, fun(M) -> M#member{peer = Peer, tag = Tag, status = starting,
                                                   node = undefined, life = undefined}
                                end);
        Error ->
            self() ! {Tag, {boot_failed, Error, undefined}},
            update(Slot, State, fun(M) -> M#member{tag = Tag, status = starting} end)
    end;
begin_member(Slot, #{config := #{kind := nodes, nodes := Nodes}} = State) ->
    Node = lists:nth(Slot, Nodes),
    erlang:monitor_node(Node, true),
    join(Slot, Node, undefined, State).

%% Readies a started node for the pool, in a process of its own.
join(Slot, Node, Peer, #{config := Config, transport := Transport} = State) ->
    Tag = make_ref(),
    Pool = self(),
    Args = [maps:with([python_path, setup], Config)],
    Timeout = maps:get(start_timeout, Config),
    spawn_link(fun() ->
                       Result = try
                                    case Transport of
                                        distribution ->
                                            erpc:call(Node, py_pool_agent, join, Args, Timeout);
                                        standard_io ->
                                            peer:call(Peer, py_pool_agent, join, Args, Timeout)
                                    end
                                catch
                                    Class:Reason -> {error, {Class, Reason}}
                                end,
                       Pool ! {joined, Tag, Result}
               end),
    update(Slot, State, fun(M) -> M#member{node = Node, tag = Tag, status = starting} end).

%% A message of a member's start: {ok, State}, {failed, Slot, Reason,
%% State}, or ignored.
starting({Tag, {started, Node, Peer}}, State) when is_reference(Tag) ->
    case slot_of_tag(Tag, State) of
        {ok, Slot} -> {ok, join(Slot, Node, Peer, State)};
        error -> ignored
    end;
starting({Tag, {boot_failed, Reason, _Peer}}, State) when is_reference(Tag) ->
    case slot_of_tag(Tag, State) of
        {ok, Slot} -> {failed, Slot, {peer_failed, Reason}, down(Slot, State)};
        error -> ignored
    end;
starting({joined, Tag, Result}, State) ->
    case slot_of_tag(Tag, State) of
        {ok, Slot} -> joined(Slot, Result, State);
        error -> ignored
    end;
starting(_Message, _State) ->
    ignored.

joined(Slot, {ok, Boot}, State) ->
    {ok, update(Slot, State, fun(#member{node = Node, peer = Peer} = M) ->
                                     Conn = case Peer of
                                                undefined -> Node;
                                                _ when map_get(transport, State) =:= distribution -> Node;
                                                _ -> Peer
                                            end,
                                     Life = #life{slot = Slot, node = Node, conn = Conn, boot = Boot,
                                                  load = counters:new(1, [write_concurrency])},
                                     M#member{status = up, tag = undefined, life = Life}
                             end)};
joined(Slot, {error, Reason}, #{members := Members} = State) ->
    #member{node = Node} = maps:get(Slot, Members),
    Why = case Reason of
              {setup, PyError} -> {setup, Node, PyError};
              _ -> {join_failed, Node, Reason}
          end,
    {failed, Slot, Why, down(Slot, State)}.

slot_of_tag(Tag, #{members := Members}) ->
    case [S || #member{slot = S, tag = T} <- maps:values(Members), T =:= Tag] of
        [Slot] -> {ok, Slot};
        [] -> error
    end.

%% The death of a member's node or peer process: {died, Slot} or ignored.
death({'EXIT', Peer, _Reason}, #{members := Members}) when is_pid(Peer) ->
    case [S || #member{slot = S, peer = P} <- maps:values(Members), P =:= Peer] of
        [Slot] -> {died, Slot};
        [] -> ignored
    end;
death({nodedown, Node}, #{members := Members}) ->
    case [S || #member{slot = S, node = N, status = St} <- maps:values(Members),
               N =:= Node, St =/= down] of
        [Slot | _] -> {died, Slot};
        [] -> ignored
    end;
death(_Message, _State) ->
    ignored.

%% A member died: a peer is restarted within the restart intensity, a
%% node is tried again later.
died(Slot, #{config := #{kind := nodes}} = State) ->
    Next = retry_later(Slot, down(Slot, State)),
    publish(Next),
    {noreply, Next};
died(Slot, #{config := #{restart := #{intensity := I, period := P}}, restart_log := Log} = State) ->
    Down = down(Slot, State),
    publish(Down),
    Now = erlang:monotonic_time(second),
    Recent = [T || T <- [Now | Log], T > Now - P],
    case length(Recent) > I of
        true ->
            logger:error("py_pool ~p: more than ~b member restarts in ~b s; stopping",
                         [maps:get(name, State), I, P], #{domain => [erlang_python]}),
            {stop, {shutdown, reached_max_restart_intensity}, Down#{restart_log := Recent}};
        false ->
            Restarted = update(Slot, Down, fun(M) -> M#member{restarts = M#member.restarts + 1} end),
            {noreply, begin_member(Slot, Restarted#{restart_log := Recent})}
    end.

down(Slot, State) ->
    update(Slot, State, fun(#member{peer = Peer} = M) ->
                                stop_peer(Peer),
                                M#member{status = down, peer = undefined, tag = undefined,
                                         life = undefined}
                        end).

%% A member already down (down/2) is tried again after `retry' ms.
retry_later(Slot, #{config := #{retry := Retry}} = State) ->
    erlang:send_after(Retry, self(), {retry, Slot}),
    State.

stop_members(#{members := Members}) ->
    maps:foreach(fun(_, #member{peer = Peer}) -> stop_peer(Peer) end, Members).

stop_peer(undefined) ->
    ok;
stop_peer(Peer) ->
    unlink(Peer),
    exit(Peer, shutdown),
    ok.

update(Slot, #{members := Members} = State, Change) ->
    State#{members := Members#{Slot := Change(maps:get(Slot, Members))}}.

%% Makes the members that are up the ones callers see.
publish(#{name := Name, transport := Transport, members := Members, turn := Turn}) ->
    Lives = [L || {_, #member{status = up, life = L}} <- lists:sort(maps:to_list(Members))],
    persistent_term:put(?ROUTE_KEY(Name), #route{pool = self(), transport = Transport,
                                                  lives = list_to_tuple(Lives), turn = Turn}).
