%% @doc The member's half of a pool (py_pool): what a node running
%% erlang_python does for the pools of other nodes. Every node running the
%% application has one (a child of its top supervisor), idle until a pool
%% uses the node.
%%
%% A pool's call arrives as run/2, in a process of its own: erpc's process
%% over distribution, or the one `peer' runs a call in over its
%% standard_io connection. That process makes the py call itself, listed
%% under the call's id in the table py_pool_calls while it runs. When the
%% caller dies or gives up waiting, its side of the pool sends this
%% process `{cancel, Id}', and the call's process is killed: the NIF then
%% interrupts its Python work, as it does for any py caller that dies.
%% (The member could watch the caller itself, with a monitor over
%% distribution; that costs two more signals over the wire a call, and
%% cannot be done over standard_io.)
%%
%% It also owns the table py_pool keeps this node's calls to members in,
%% so that the table lives with the application, as the pools do.
%%
%% The objects kept for `return => ref' calls live in the table
%% py_pool_objects, owned by this process: one row per object, with the
%% pool process that owns it and the call that made it. A row goes when
%% the pool says so (release), when the pool dies (this process monitors
%% each owner over distribution), when the call that made it is cancelled
%% (its caller never got the reference), or with this node. The node's
%% boot term, made when this process starts, tells a reference of an
%% earlier life of the node from one of this one.
-module(py_pool_agent).
-behaviour(gen_server).

-export([start_link/0, objects/0]).
-export([boot/0, join/1, run/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-export_type([op/0]).

-define(OBJECTS, py_pool_objects).
-define(CALLS, py_pool_calls).
-define(BOOT_KEY, {?MODULE, boot}).
%% How long a cancelled call that had not begun is kept from beginning.
-define(TOMBSTONE_MS, 300000).

%% What a pool asks of a member.
-type op() ::
    {call, py:name(), py:name(), list(), map(), timeout(), value | ref, owner()}
    | {eval, binary(), map(), timeout(), value | ref, owner()}
    | {exec, binary(), timeout()}
    | {method, reference(), integer(), py:name(), list(), map(), timeout(), value | ref, owner()}
    | {getattr, reference(), integer(), py:name(), timeout(), value | ref, owner()}
    | {to_term, reference(), integer(), timeout()}
    | {release, reference(), integer()}.
%% The pool process that owns the objects a call keeps; `undefined' when
%% the member cannot watch it (standard_io: the member ends with it).
-type owner() :: pid() | undefined.

%% @private
-spec start_link() -> {ok, pid()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc How many objects this node keeps for pools.
-spec objects() -> non_neg_integer().
objects() ->
    ets:info(?OBJECTS, size).

%% @private
%% @doc This node's boot term: references made before it changed are of
%% an earlier life.
-spec boot() -> reference().
boot() ->
    persistent_term:get(?BOOT_KEY).

%% @private
%% @doc Readies this node for a pool: erlang_python started, `Paths' at
%% the front of sys.path, `Setup' run. Returns the boot term, or the
%% error (`{setup, PyError}' when the setup raised).
-spec join(#{python_path := [binary()], setup := binary() | undefined}) ->
          {ok, reference()} | {error, term()}.
join(#{python_path := Paths, setup := Setup}) ->
    case application:ensure_all_started(erlang_python) of
        {ok, _} ->
            case add_paths(Paths) of
                ok -> setup(Setup);
                Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

add_paths([]) ->
    ok;
add_paths(Paths) ->
    Code = <<"import importlib, sys\n"
             "for p in reversed(paths):\n"
             "    if p in sys.path: sys.path.remove(p)\n"
             "    sys.path.insert(0, p)\n"
             "importlib.invalidate_caches()\n">>,
    case py:call(builtins, exec, [Code, #{<<"paths">> => Paths}]) of
        {ok, _} -> ok;
        {error, Reason} -> {error, {python_path, Reason}}
    end.

setup(undefined) ->
    {ok, boot()};
setup(Setup) ->
    case py:exec(Setup) of
        ok -> {ok, boot()};
        {error, Reason} -> {error, {setup, Reason}}
    end.

%% @private
%% @doc Runs one operation for a pool, in the calling process (erpc's, or
%% peer's), and returns what the py function gives (a Python failure with
%% its traceback, as the NIF's three-tuple), or `{ref, Id}' for an object
%% kept here. The process is known by `Call' while it runs, so that
%% cancel/1 can end it; a call cancelled before it began does not run.
-spec run(reference(), op()) -> term().
run(Call, Op) ->
    case ets:insert_new(?CALLS, {Call, self()}) of
        true ->
            try
                perform(Call, Op)
            after
                ets:delete(?CALLS, Call)
            end;
        false ->
            ets:delete_object(?CALLS, {Call, cancelled}),
            {error, cancelled}
    end.

%% Ends the call `Call' (its caller died, or gave up waiting): its process
%% is killed, and the NIF interrupts its Python work. An object the call
%% kept goes too, since no reference to it reached the caller: once the
%% process is dead, as it may keep one until it is. A call not running
%% has ended, or has not begun (its request may come after the cancel, from
%% a member that was stopped): a tombstone keeps it from beginning, for
%% ?TOMBSTONE_MS.
cancel(Call) ->
    _ = case ets:insert_new(?CALLS, {Call, cancelled}) of
            true ->
                _ = erlang:send_after(?TOMBSTONE_MS, self(), {forget, Call}),
                drop_kept(Call);
            false ->
                case ets:take(?CALLS, Call) of
                    [{Call, Pid}] when is_pid(Pid) -> spawn(fun() -> end_call(Pid, Call) end);
                    _EndedOrCancelledTwice -> cancel(Call)
                end
        end,
    ok.

end_call(Pid, Call) ->
    Down = monitor(process, Pid),
    exit(Pid, kill),
    receive
        {'DOWN', Down, process, Pid, _} -> drop_kept(Call)
    end.

%% A scan of the table: cancels are rare (timeouts, dead callers).
drop_kept(Call) ->
    ets:match_delete(?OBJECTS, {'_', '_', '_', Call}).

%% Drops the object `Id' kept for a pool, if it is of this life. A pool
%% whose reference was collected sends `{release, Boot, Id}' to this
%% process; py:release/1 runs it as an operation, so that what the caller
%% does next finds it gone.
release(Boot, Id) ->
    _ = Boot =:= boot() andalso ets:delete(?OBJECTS, Id),
    ok.

perform(Call, {call, M, F, Args, Kwargs, Timeout, Return, Owner}) ->
    keep(py:call(M, F, Args, Kwargs, #{timeout => Timeout, return => Return}), Return, Owner, Call);
perform(Call, {eval, Code, Locals, Timeout, Return, Owner}) ->
    keep(py:eval(Code, Locals, #{timeout => Timeout, return => Return}), Return, Owner, Call);
perform(_Call, {exec, Code, Timeout}) ->
    traced(py:exec(Code, Timeout));
perform(Call, {method, Boot, Id, Name, Args, Kwargs, Timeout, Return, Owner}) ->
    with_object(Boot, Id, fun(Ref) ->
        keep(py:call_method(Ref, Name, Args, Kwargs, #{timeout => Timeout, return => Return}),
             Return, Owner, Call)
    end);
perform(Call, {getattr, Boot, Id, Name, Timeout, Return, Owner}) ->
    with_object(Boot, Id, fun(Ref) ->
        keep(py:getattr(Ref, Name, #{timeout => Timeout, return => Return}), Return, Owner, Call)
    end);
perform(_Call, {to_term, Boot, Id, _Timeout}) ->
    with_object(Boot, Id, fun(Ref) -> traced(py:to_term(Ref)) end);
perform(_Call, {release, Boot, Id}) ->
    release(Boot, Id).

with_object(Boot, Id, Run) ->
    case Boot =:= boot() of
        true ->
            case ets:lookup(?OBJECTS, Id) of
                [{Id, _Owner, Ref, _Call}] -> Run(Ref);
                [] -> {error, {badarg, ref}}
            end;
        false ->
            {error, {nodedown, node()}}
    end.

%% A result by reference stays here; the pool gets its id.
keep({ok, Ref}, ref, Owner, Call) ->
    Id = erlang:unique_integer([positive]),
    true = ets:insert(?OBJECTS, {Id, Owner, Ref, Call}),
    _ = is_pid(Owner) andalso gen_server:cast(?MODULE, {owner, Owner}),
    {ref, Id};
keep(Result, _Return, _Owner, _Call) ->
    traced(Result).

%% A Python failure goes back with its traceback, which the caller's
%% py:last_traceback() then gives.
traced({error, {Type, _}} = Error) when is_atom(Type) orelse is_binary(Type) ->
    case py:last_traceback() of
        undefined -> Error;
        Traceback -> {error, element(2, Error), Traceback}
    end;
traced(Result) ->
    Result.

%%% The process: owns the tables, watches the owners of objects.

%% @private
init([]) ->
    _ = ets:new(?OBJECTS, [named_table, public, set, {write_concurrency, true}]),
    _ = ets:new(?CALLS, [named_table, public, set, {write_concurrency, true}]),
    %% The calls this node's processes make to pools' members (py_pool).
    _ = ets:new(py_pool_in_flight, [named_table, public, set, {write_concurrency, true}]),
    persistent_term:put(?BOOT_KEY, make_ref()),
    {ok, #{}}.

%% @private
handle_call(_Request, _From, Owners) ->
    {reply, {error, unknown_request}, Owners}.

%% @private
handle_cast({owner, Owner}, Owners) when is_map_key(Owner, Owners) ->
    {noreply, Owners};
handle_cast({owner, Owner}, Owners) ->
    {noreply, Owners#{Owner => monitor(process, Owner)}};
handle_cast(_Message, Owners) ->
    {noreply, Owners}.

%% @private
handle_info({'DOWN', _, process, Owner, _}, Owners) when is_map_key(Owner, Owners) ->
    ets:match_delete(?OBJECTS, {'_', Owner, '_', '_'}),
    {noreply, maps:remove(Owner, Owners)};
handle_info({release, Boot, Id}, Owners) ->
    ok = release(Boot, Id),
    {noreply, Owners};
handle_info({cancel, Call}, Owners) ->
    ok = cancel(Call),
    {noreply, Owners};
handle_info({forget, Call}, Owners) ->
    ets:delete_object(?CALLS, {Call, cancelled}),
    {noreply, Owners};
handle_info(_Message, Owners) ->
    {noreply, Owners}.
