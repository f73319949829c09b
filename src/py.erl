%% @doc Calling Python from Erlang.
%%
%% One CPython interpreter lives in the VM for as long as the NIF library
%% is loaded. Calls run in the calling process (on a dirty scheduler, or on a
%% NIF-owned thread when many calls are blocked at once), so any number of
%% processes may call at the same time.
%%
%% == Error contract ==
%% <ul>
%% <li>A Python exception gives `{error, {Type, Message}}'. `Type' is an
%%     atom for Python's built-in exception classes (`ZeroDivisionError',
%%     `KeyError'...) and a binary `<<"module.Class">>' for any other class.
%%     The formatted traceback of the most recent failure in the calling
%%     process is returned by {@link last_traceback/0}.</li>
%% <li>A value that has no form on the other side gives
%%     `{error, {TypeError | ValueError, Message}}' naming the type and the
%%     place, e.g. `<<"Python value of type 'object' has no Erlang form (at
%%     result[1])">>'.</li>
%% <li>When the timeout expires the result is `{error, timeout}' and the
%%     Python code of that call is interrupted: `erlang.CallInterrupted' is
%%     raised in it.</li>
%% <li>A caller's mistake (an argument of the wrong type) gives
%%     `{error, {badarg, Which}}', `Which' naming the argument.</li>
%% </ul>
%%
%% Names of modules and functions are atoms or binaries; a dotted module
%% name (`` 'os.path' '') is imported as Python would, and a dotted function
%% name is an attribute path (`<<"Path.home">>').
%%
%% == Calls that return at once ==
%% {@link spawn_call/5} starts a call and returns a reference `Ref' at
%% once; the result comes to the calling process as the message
%% `{py_response, Ref, Result}', `Result' being exactly what {@link call/5}
%% would have returned. {@link await/2} receives it; a gen_server matches
%% it in `handle_info':
%% ```
%% handle_info({py_response, Ref, Result}, State = #{pending := Ref}) ->
%%     {noreply, done(Result, State)};
%% '''
%% The call runs in a process linked to the caller, which unlinks before
%% it answers: the caller's death interrupts the Python work, and a caller
%% that traps exits never gets an `'EXIT'' message from it.
%% {@link cancel/1} interrupts it. {@link cast/4} runs a call nobody waits
%% for and logs its failure. {@link async_call/4} and {@link
%% async_gather/2} do the same for coroutines.
%%
%% == Shared state ==
%% `state_*' keep terms under keys in a table that every process, and
%% Python (`erlang.state_get' and the rest), reads and writes directly.
%% It lives as long as the application runs: a stop of the application
%% empties it. The application environment `max_state_entries' (default
%% 100 000) bounds the number of keys; a new key past it gives
%% `{error, {state_full, Max}}'. While the application is not running the
%% functions give `{error, not_running}'.
-module(py).

-export([call/3, call/4, call/5]).
-export([eval/1, eval/2, eval/3, eval/4, exec/1, exec/2, exec/3]).
-export([interrupt/1, context/0, context/1, start_contexts/0, start_contexts/1,
         contexts_started/0, stop_contexts/0, subinterp_supported/0]).
-export([call_method/3, call_method/4, call_method/5, getattr/2, getattr/3]).
-export([to_term/1, release/1, is_ref/1]).
-export([stream_start/3, stream_start/4, stream_ack/1, stream_ack/2, stream_cancel/1,
         stream/3, stream/4, stream_eval/1]).
-export([register_function/2, register_function/3, unregister_function/1]).
-export([last_traceback/0, stats/0, thread_stats/0, version/0, memory_stats/0, gc/0, gc/1]).
-export([configure/0, configure_logging/1]).
-export([add_path/1, activate_venv/1, deactivate_venv/0, venv_info/0, reload/1]).
-export([bytes/1]).
%% Calls that return at once.
-export([spawn_call/3, spawn_call/4, spawn_call/5, await/1, await/2, cancel/1,
         cast/3, cast/4]).
-export([async_call/3, async_call/4, async_await/1, async_await/2,
         async_gather/1, async_gather/2]).
%% Shared state.
-export([state_store/2, state_fetch/1, state_remove/1, state_keys/0, state_clear/0,
         state_incr/1, state_incr/2, state_decr/1, state_decr/2]).

-export_type([name/0, code/0, py_error/0, ref/0, opts/0, output/0, call_result/0, gather_call/0,
              context/0, context_opts/0]).

-type name() :: atom() | binary().
-type code() :: iodata() | unicode:chardata().
-type py_error() ::
    {error, {ExceptionType :: atom() | binary(), Message :: binary()}}
    | {error, timeout}
    | {error, {badarg, atom()}}
    | {error, {remote_ref, node()}}
    | {error, {nodedown, node()} | no_members}
    | {error, overloaded}
    | {error, interrupted | context_stopped}.
%% A context (py_context), or the name of one started by
%% py_context:start_link/1.
-type context() :: py_context:context() | atom().
%% The options of a call in a context.
-type context_opts() :: #{kwargs => map(), timeout => timeout(), return => value | ref,
                          output => output(), binary => auto | bytes | str}.
%% Where a call's sys.stdout and sys.stderr write: the calling process's
%% group leader, or the OS process's own stdout and stderr (docs/calls.md).
-type output() :: group_leader | terminal.
%% A reference to a Python object (see docs/references.md): an Erlang
%% reference term that keeps the object alive while any term refers to it;
%% or, for an object kept on a pool's member, a term of py_pool's
%% (docs/distributed.md).
-type ref() :: reference() | py_pool:ref().
%% A timeout in milliseconds or `infinity', or a map of options:
%% `timeout' (as before) and `return': `value' (the default) converts the
%% result, `ref' returns a reference to the result instead.
-type opts() :: timeout() | #{timeout => timeout(), return => value | ref, output => output(),
                              binary => auto | bytes | str}.
%% What a spawned call gives: what call/5 would, or that it was cancelled.
-type call_result() :: {ok, term()} | py_error() | {error, cancelled}.
%% One call of async_gather/2.
-type gather_call() :: {name(), name(), list()} | {name(), name(), list(), map()}.

-define(TRACEBACK_KEY, '$py_last_traceback').
-define(FRAME_KEY, '$py_frame').
-define(DEFAULT_TIMEOUT_KEY, {?MODULE, default_timeout}).
-define(DEFAULT_TIMEOUT, 30000).
-define(DEFAULT_OUTPUT_KEY, {?MODULE, default_output}).
-define(DEFAULT_OUTPUT, group_leader).
%% The markers of binaries that must be bytes, or str (c_src/convert.c).
-define(BYTES_MARKER, '$py_bytes').
-define(STR_MARKER, '$py_str').
-define(BYTES_TUPLES_KEY, {?MODULE, bytes_tuples}).
%% As DEFAULT_MAX_THREADS in c_src/pool.c.
-define(MAX_POOL_THREADS, 4096).

%% @equiv call(Module, Function, Args, #{})
-spec call(name(), name(), list()) -> {ok, term()} | py_error().
call(Module, Function, Args) ->
    call(Module, Function, Args, #{}).

%% @doc `call(Module, Function, Args, Kwargs)', with the default timeout;
%% or, when the fourth argument is a list (and the third is no list),
%% `call(Context, Module, Function, Args)': the call in a context, as
%% {@link call/5}.
-spec call(name(), name(), list(), map()) -> {ok, term()} | py_error();
          (context(), name(), name(), list()) -> {ok, term()} | py_error().
call(Context, Module, Function, Args) when is_list(Args), not is_list(Function) ->
    call(Context, Module, Function, Args, #{});
call(Module, Function, Args, Kwargs) ->
    call(Module, Function, Args, Kwargs, default_timeout()).

%% @doc Calls `Module.Function(*Args, **Kwargs)' and returns its result.
%% Kwargs keys are atoms or binaries. `Opts' is a timeout in milliseconds
%% or `infinity', or a map `#{timeout => T, return => value | ref}'; with
%% `return => ref' the result is a reference to the Python object.
%%
%% When the fourth argument is a list (and the third is no list), this is
%% `call(Context, Module, Function, Args, Opts)': the call runs in the context (py_context),
%% with `Opts' a map of `kwargs', `timeout' and `return'. `Module'
%% `__main__' names the context's own namespace.
-spec call(name(), name(), list(), map(), opts()) -> {ok, term()} | py_error();
          (context(), name(), name(), list(), context_opts()) -> {ok, term()} | py_error().
call(Context, Module, Function, Args0, Opts0) when is_list(Args0), not is_list(Function) ->
    with_binaries(Opts0, {Args0, kwargs_of(Opts0)}, fun({Args, Kwargs}, Opts1) ->
        call_in(Context, Module, Function, Args, with_kwargs(Opts1, Kwargs))
    end);
call(Module, Function, Args0, Kwargs0, Opts0) ->
    with_binaries(Opts0, {Args0, Kwargs0}, fun({Args, Kwargs}, Opts) ->
        with_opts(Opts, fun(Timeout, Return, Frame) ->
            finish(py_nif:call(Module, Function, Args, Kwargs, Timeout, Frame, Return), Timeout)
        end)
    end).

call_in(Context, Module, Function, Args, Opts) ->
    case py_pool:route(Context) of
        undefined ->
            with_context_opts(Context, Opts, fun(Ctx, Kwargs, Timeout, Return, Frame) ->
                finish(py_nif:context_call(Ctx, Module, Function, Args, Kwargs, Timeout, Frame,
                                           Return),
                       Timeout)
            end);
        Pool ->
            with_pool_opts(Opts, [kwargs, timeout, return, key], fun(PoolOpts) ->
                finish(py_pool:call(Pool, Context, Module, Function, Args, PoolOpts), 0)
            end)
    end.

%% @equiv eval(Code, #{})
-spec eval(code()) -> {ok, term()} | py_error().
eval(Code) ->
    eval(Code, #{}).

%% @doc `eval(Code, Locals)' with the default timeout; or, when the first
%% argument is a context (or a context's name) and the second no map,
%% `eval(Context, Code)': as {@link eval/4}.
-spec eval(code(), map()) -> {ok, term()} | py_error();
          (context(), code()) -> {ok, term()} | py_error().
eval(Context, Code) when is_reference(Context) orelse is_atom(Context), not is_map(Code) ->
    eval(Context, Code, #{}, #{});
eval(Code, Locals) ->
    eval(Code, Locals, default_timeout()).

%% @doc Evaluates a Python expression. Globals are the interpreter's shared
%% `__main__' namespace; `Locals' (keys atoms or binaries) are local names
%% for this evaluation only. `Opts' as for {@link call/5}. When the first
%% argument is a context (or a context's name) and the second no map, this
%% is `eval(Context, Code, Locals)'.
-spec eval(code(), map(), opts()) -> {ok, term()} | py_error();
          (context(), code(), map()) -> {ok, term()} | py_error().
eval(Context, Code, Locals) when is_reference(Context) orelse is_atom(Context), not is_map(Code) ->
    eval(Context, Code, Locals, #{});
eval(Code, Locals0, Opts0) ->
    with_binaries(Opts0, {[], Locals0}, fun({[], Locals}, Opts) ->
        with_opts(Opts, fun(Timeout, Return, Frame) ->
            with_code(Code, fun(Source) ->
                finish(py_nif:eval(Source, Locals, Timeout, Frame, Return), Timeout)
            end)
        end)
    end).

%% @doc Evaluates a Python expression in the context's namespace, with
%% `Locals' as for {@link eval/3}; `Opts': `timeout', `return'.
-spec eval(context(), code(), map(), context_opts()) -> {ok, term()} | py_error().
eval(Context, Code, Locals0, Opts0) when is_map(Opts0), not is_map_key(kwargs, Opts0) ->
    with_binaries(Opts0, {[], Locals0}, fun({[], Locals}, Opts) ->
        eval_in(Context, Code, Locals, Opts)
    end);
eval(_Context, _Code, _Locals, _Opts) ->
    {error, {badarg, opts}}.

eval_in(Context, Code, Locals, Opts) ->
    case py_pool:route(Context) of
        undefined ->
            with_context_opts(Context, Opts, fun(Ctx, _Kwargs, Timeout, Return, Frame) ->
                with_code(Code, fun(Source) ->
                    finish(py_nif:context_eval(Ctx, Source, Locals, Timeout, Frame, Return),
                           Timeout)
                end)
            end);
        Pool ->
            with_pool_opts(Opts, [timeout, return, key], fun(PoolOpts) ->
                with_code(Code, fun(Source) ->
                    finish(py_pool:eval(Pool, Context, Source, Locals, PoolOpts), 0)
                end)
            end)
    end.

%% @equiv exec(Code, DefaultTimeout)
-spec exec(code()) -> ok | py_error().
exec(Code) ->
    exec(Code, default_timeout()).

%% @doc Executes Python statements in the shared `__main__' namespace, so
%% that what they define is visible to later calls from any process.
%% `Opts': a timeout, or a map of `timeout' and `output'. When the first
%% argument is a context (or a context's name) and the second code, this
%% is `exec(Context, Code)', as {@link exec/3}.
-spec exec(code(), timeout() | #{timeout => timeout(), output => output()}) -> ok | py_error();
          (context(), code()) -> ok | py_error().
exec(Context, Code) when is_reference(Context) orelse is_atom(Context),
                         is_binary(Code) orelse is_list(Code) ->
    exec(Context, Code, #{});
exec(Code, Opts) when is_map(Opts), not is_map_key(return, Opts) ->
    with_opts(Opts, fun(Timeout, _Return, Frame) ->
        with_code(Code, fun(Source) -> finish(py_nif:exec(Source, Timeout, Frame), Timeout) end)
    end);
exec(_Code, Opts) when is_map(Opts) ->
    {error, {badarg, opts}};
exec(Code, Timeout) ->
    with_code(Code, fun(Source) ->
        finish(py_nif:exec(Source, Timeout, frame(default)), Timeout)
    end).

%% @doc Executes Python statements in the context's namespace; `Opts':
%% `timeout'.
-spec exec(context(), code(), #{timeout => timeout()}) -> ok | py_error().
exec(Context, Code, Opts) when is_map(Opts), not is_map_key(kwargs, Opts),
                               not is_map_key(return, Opts) ->
    case py_pool:route(Context) of
        undefined ->
            with_context_opts(Context, Opts, fun(Ctx, _Kwargs, Timeout, _Return, Frame) ->
                with_code(Code, fun(Source) ->
                    finish(py_nif:context_exec(Ctx, Source, Timeout, Frame), Timeout)
                end)
            end);
        Pool ->
            with_pool_opts(Opts, [timeout], fun(#{timeout := Timeout}) ->
                with_code(Code, fun(Source) -> py_pool:exec(Pool, Source, Timeout) end)
            end)
    end;
exec(_Context, _Code, _Opts) ->
    {error, {badarg, opts}}.

%% @doc Interrupts the calls running in the context: each returns
%% `{error, interrupted}'. The context goes on.
-spec interrupt(context()) -> ok | {error, context_stopped | {badarg, context}}.
interrupt(Context) ->
    with_context(Context, fun py_nif:context_interrupt/1).

%% @doc The calling process's context among those of start_contexts/1
%% (started with the defaults if they are not): the same one at every call
%% from a process.
-spec context() -> py_context:context() | {error, term()}.
context() ->
    py_context_pool:context().

%% @doc The Nth (from 1) of the contexts of start_contexts/1.
-spec context(pos_integer()) -> py_context:context() | {error, term()}.
context(N) ->
    py_context_pool:context(N).

%% @equiv start_contexts(#{})
-spec start_contexts() -> {ok, [py_context:context()]} | {error, term()}.
start_contexts() ->
    start_contexts(#{}).

%% @doc Starts the contexts that context/0,1 choose from, unless started
%% (then gives those): `count' (default: the schedulers online) contexts
%% of `mode' (default `worker'), owned by the application.
-spec start_contexts(#{count => pos_integer(), mode => py_context:mode()}) ->
          {ok, [py_context:context()]} | {error, term()}.
start_contexts(Opts) ->
    py_context_pool:start_contexts(Opts).

%% @doc Whether start_contexts/1 has started the contexts.
-spec contexts_started() -> boolean().
contexts_started() ->
    py_context_pool:contexts_started().

%% @doc Stops the contexts of start_contexts/1.
-spec stop_contexts() -> ok.
stop_contexts() ->
    py_context_pool:stop_contexts().

%% @doc Whether this Python has subinterpreters with their own GIL (3.12
%% and later), which `owngil' contexts are.
-spec subinterp_supported() -> boolean().
subinterp_supported() ->
    py_nif:subinterp_supported().

%% @equiv call_method(Ref, Name, Args, #{})
-spec call_method(ref(), name(), list()) -> {ok, term()} | py_error().
call_method(Ref, Name, Args) ->
    call_method(Ref, Name, Args, #{}).

%% @equiv call_method(Ref, Name, Args, Kwargs, DefaultTimeout)
-spec call_method(ref(), name(), list(), map()) -> {ok, term()} | py_error().
call_method(Ref, Name, Args, Kwargs) ->
    call_method(Ref, Name, Args, Kwargs, default_timeout()).

%% @doc Calls the method `Name' of the object `Ref' refers to:
%% `obj.Name(*Args, **Kwargs)'. `Opts' as for {@link call/5}. A `Ref'
%% that is no reference, or was released, gives `{error, {badarg, ref}}';
%% a reference made on another node gives `{error, {remote_ref, Node}}'.
-spec call_method(ref(), name(), list(), map(), opts()) -> {ok, term()} | py_error().
call_method(Ref, Name, Args, Kwargs, Opts) when is_tuple(Ref) ->
    with_pool_ref(Ref, Opts, fun(PoolOpts) ->
        finish(py_pool:call_method(Ref, Name, Args, Kwargs, PoolOpts), 0)
    end);
call_method(Ref, Name, Args0, Kwargs0, Opts0) ->
    with_binaries(Opts0, {Args0, Kwargs0}, fun({Args, Kwargs}, Opts) ->
        with_opts(Opts, fun(Timeout, Return, Frame) ->
            on_ref(Ref, finish(py_nif:call_method(Ref, Name, Args, Kwargs, Timeout, Frame, Return),
                               Timeout))
        end)
    end).

%% @equiv getattr(Ref, Name, DefaultTimeout)
-spec getattr(ref(), name()) -> {ok, term()} | py_error().
getattr(Ref, Name) ->
    getattr(Ref, Name, default_timeout()).

%% @doc The attribute `Name' of the object `Ref' refers to. `Opts' as for
%% {@link call/5}; errors as for {@link call_method/5}.
-spec getattr(ref(), name(), opts()) -> {ok, term()} | py_error().
getattr(Ref, Name, Opts) when is_tuple(Ref) ->
    with_pool_ref(Ref, Opts, fun(PoolOpts) -> finish(py_pool:getattr(Ref, Name, PoolOpts), 0) end);
getattr(Ref, Name, Opts) ->
    with_opts(Opts, fun(Timeout, Return, Frame) ->
        on_ref(Ref, finish(py_nif:getattr(Ref, Name, Timeout, Frame, Return), Timeout))
    end).

%% @doc The value of the object `Ref' refers to, converted as a result is.
-spec to_term(ref()) -> {ok, term()} | py_error().
to_term(Ref) when is_tuple(Ref) ->
    with_pool_ref(Ref, #{}, fun(#{timeout := Timeout}) ->
        finish(py_pool:to_term(Ref, Timeout), 0)
    end);
to_term(Ref) ->
    Timeout = default_timeout(),
    on_ref(Ref, finish(py_nif:to_term(Ref, Timeout, frame(default)), Timeout)).

%% @doc Lets go of the object now, rather than when the last term referring
%% to it is garbage-collected; every later use of `Ref' gives
%% `{error, {badarg, ref}}'. Releasing a reference again is `ok'.
-spec release(ref()) -> ok | py_error().
release(Ref) when is_tuple(Ref) ->
    with_pool_ref(Ref, #{}, fun(_) -> py_pool:release(Ref) end);
release(Ref) ->
    Timeout = default_timeout(),
    case on_ref(Ref, finish(py_nif:release(Ref, Timeout, frame(default)), Timeout)) of
        {error, {badarg, ref}} -> released_or_badarg(Ref);
        Result -> Result
    end.

%% @doc Whether `Term' is a reference to a Python object made on this node
%% (released or not).
-spec is_ref(term()) -> boolean().
is_ref(Term) when is_tuple(Term) ->
    py_pool:is_ref(Term);
is_ref(Term) ->
    py_nif:is_ref(Term).

%% @equiv stream_start(Module, Function, Args, #{})
-spec stream_start(name(), name(), list()) -> {ok, reference()} | {error, term()}.
stream_start(Module, Function, Args) ->
    stream_start(Module, Function, Args, #{}).

%% @doc Streams the items of `Module.Function(*Args, **Kwargs)', any
%% iterable, sync or async (a generator, an async generator), to the
%% owner as messages:
%% <ul>
%% <li>`{py_stream, Ref, {data, Item}}' for each item, in order;</li>
%% <li>then `{py_stream, Ref, done}', or `{py_stream, Ref, {error, Reason}}'
%%     with the `Reason' of a failed {@link call/5} (the iterable raised).</li>
%% </ul>
%% `Opts': `owner' (the receiving process, default the caller), `kwargs'
%% (default `#{}'), `window' (default `infinity'): with a window of N, at
%% most N items are sent and not yet acknowledged by {@link stream_ack/2};
%% the iterable is not asked for more until they are, and meanwhile no
%% thread or scheduler is held. The stream ends early when the owner dies
%% or {@link stream_cancel/1} is called; the iterable is closed then (its
%% `finally' blocks run).
-spec stream_start(name(), name(), list(),
                   #{owner => pid(), kwargs => map(), window => pos_integer() | infinity}) ->
          {ok, reference()} | {error, term()}.
stream_start(Module, Function, Args, Opts) when is_map(Opts) ->
    Defaults = #{owner => self(), kwargs => #{}, window => infinity},
    case maps:merge(Defaults, Opts) of
        #{owner := Owner, kwargs := Kwargs, window := Window} = All
          when map_size(All) =:= 3, is_pid(Owner), is_map(Kwargs), is_list(Args),
               Window =:= infinity orelse (is_integer(Window) andalso Window > 0) ->
            py_stream:start(Module, Function, Args, Kwargs, #{owner => Owner, window => Window});
        _ ->
            {error, {badarg, opts}}
    end;
stream_start(_Module, _Function, _Args, _Opts) ->
    {error, {badarg, opts}}.

%% @equiv stream_ack(Ref, 1)
-spec stream_ack(reference()) -> ok | {error, {badarg, atom()}}.
stream_ack(Ref) ->
    stream_ack(Ref, 1).

%% @doc Acknowledges `Count' more items of the stream `Ref', making room in
%% its window. Acknowledging more items than are unacknowledged counts as
%% acknowledging those there are; a stream that has ended ignores it.
-spec stream_ack(reference(), pos_integer()) -> ok | {error, {badarg, atom()}}.
stream_ack(Ref, Count) when is_reference(Ref), is_integer(Count), Count > 0 ->
    py_stream:ack(Ref, Count);
stream_ack(Ref, _Count) when is_reference(Ref) ->
    {error, {badarg, count}};
stream_ack(_Ref, _Count) ->
    {error, {badarg, ref}}.

%% @doc Ends the stream `Ref' now: its iterable is closed (its `finally'
%% blocks run) before this returns, and the caller's mailbox is left with
%% no message of the stream. Ending a stream that has ended is `ok'.
-spec stream_cancel(reference()) -> ok | {error, {badarg, ref}}.
stream_cancel(Ref) when is_reference(Ref) ->
    ok = py_stream:cancel(Ref),
    flush_stream(Ref);
stream_cancel(_Ref) ->
    {error, {badarg, ref}}.

flush_stream(Ref) ->
    receive {py_stream, Ref, _} -> flush_stream(Ref)
    after 0 -> ok
    end.

%% @equiv stream(Module, Function, Args, #{})
-spec stream(name(), name(), list()) -> {ok, list()} | py_error().
stream(Module, Function, Args) ->
    stream(Module, Function, Args, #{}).

%% @doc Every item of `Module.Function(*Args, **Kwargs)', an iterable, sync
%% or async, as one list.
-spec stream(name(), name(), list(), map()) -> {ok, list()} | py_error().
stream(Module, Function, Args, Kwargs) ->
    collect(call(Module, Function, Args, Kwargs, #{return => ref})).

%% @doc Every item of the iterable that the Python expression `Code'
%% evaluates to, as one list.
-spec stream_eval(code()) -> {ok, list()} | py_error().
stream_eval(Code) ->
    collect(eval(Code, #{}, #{return => ref})).

%% Every item of an iterable a call gave by reference, as one list.
collect({ok, Iterable}) ->
    try call('erlang_python.streams', collect, [Iterable])
    after release(Iterable)
    end;
collect(Error) ->
    Error.

%% @doc Makes `Fun' callable from Python as `erlang.call(Name, *Args)',
%% `erlang.Name(*Args)' or `from erlang import Name'. `Fun' gets the
%% argument list. Registering a name again replaces its function. Needs the
%% application to be running.
-spec register_function(name(), fun((list()) -> term())) -> ok | {error, {badarg, atom()}}.
register_function(Name, Fun) when is_function(Fun, 1) ->
    with_name(Name, fun(Key) -> py_registry:register(Key, Fun) end);
register_function(_Name, _Fun) ->
    {error, {badarg, function}}.

%% @doc As {@link register_function/2}, calling `Module:Function(Args)'.
-spec register_function(name(), module(), atom()) -> ok | {error, {badarg, atom()}}.
register_function(Name, Module, Function) when is_atom(Module), is_atom(Function) ->
    with_name(Name, fun(Key) -> py_registry:register(Key, {Module, Function}) end);
register_function(_Name, _Module, _Function) ->
    {error, {badarg, function}}.

%% @doc Removes a registered name; calls already running finish normally.
-spec unregister_function(name()) -> ok | {error, {badarg, atom()}}.
unregister_function(Name) ->
    with_name(Name, fun py_registry:unregister/1).

%% @doc The formatted Python traceback of the most recent call from this
%% process that failed with a Python exception, or `undefined'. It is kept
%% until the next such failure.
-spec last_traceback() -> binary() | undefined.
last_traceback() ->
    get(?TRACEBACK_KEY).

%% @doc Counters of the execution machinery: calls run on dirty schedulers
%% and on the pool, threads of the pool, the Python version.
-spec stats() -> #{atom() => term()}.
stats() ->
    py_nif:stats().

%% @doc The machinery behind erlang.call from Python threads:
%% `workers_live', workers bound to live threads; `workers_pooled', workers
%% of threads that have exited, kept for reuse; `handlers', handler
%% processes alive; `erlang_calls', calls answered since the NIF loaded.
-spec thread_stats() -> #{workers_live | workers_pooled | handlers | erlang_calls =>
                              non_neg_integer()}.
thread_stats() ->
    Stats = py_nif:stats(),
    (maps:with([workers_live, workers_pooled, erlang_calls], Stats))#{
        handlers => py_coordinator:handler_count()}.

%% @doc Sets how Python's `logging' reaches `logger' (docs/logging.md),
%% in the main interpreter and every own-GIL context: `#{level => L}',
%% where `L' is a logger level (records of it and above go to logger, and
%% Python's root logger is set to it), `all', or `none' (Python's own
%% default handling applies again). The application environment's
%% `logging' (default `#{level => warning}') is applied at start.
-spec configure_logging(py_logger:options()) ->
          ok | {error, {badarg, term()} | not_started | term()}.
configure_logging(Opts) ->
    py_logger:configure(Opts).

%% @doc `Data' (a binary or iodata) marked to arrive in Python as `bytes'
%% wherever it is passed (an argument, inside a list or map, a local of
%% eval), even when it happens to be UTF-8 text, which would otherwise
%% arrive as `str' (docs/types.md). Raises `badarg' if `Data' is not iodata.
-spec bytes(iodata()) -> {'$py_bytes', binary()}.
bytes(Data) ->
    {?BYTES_MARKER, iolist_to_binary(Data)}.

%% @doc Puts the directory `Path' in front of Python's `sys.path' (in
%% the main interpreter, so in worker contexts too; own-GIL contexts copy
%% it when they are made), unless it is there already
%% (docs/environments.md). `{error, {not_a_directory, Path}}' otherwise.
-spec add_path(file:filename_all()) -> ok | {error, term()}.
add_path(Path) ->
    py_paths:add_path(Path).

%% @doc Activates the virtual environment whose root is `Path', made with
%% `python -m venv' by a Python of the embedded one's version: its
%% packages become importable, ahead of the interpreter's own, which it
%% hides unless it was made with `--system-site-packages'. A venv active
%% before is deactivated first. Errors: `{error, {not_a_venv, Path}}',
%% `{error, {python_version, VenvVersion, EmbeddedVersion}}'.
-spec activate_venv(file:filename_all()) -> ok | {error, term()}.
activate_venv(Path) ->
    py_paths:activate_venv(Path).

%% @doc Undoes {@link activate_venv/1}; modules imported from the venv
%% stay loaded. `ok' when none is active.
-spec deactivate_venv() -> ok | {error, term()}.
deactivate_venv() ->
    py_paths:deactivate_venv().

%% @doc The active virtual environment, `none' if there is none.
-spec venv_info() -> py_paths:venv_info() | none | {error, term()}.
venv_info() ->
    py_paths:venv_info().

%% @doc Executes the loaded Python module `Module' (`json',
%% `'package.module'') again, as `importlib.reload' does: later calls see
%% its new source. `{error, {not_loaded, Module}}' if it is not loaded; a
%% module whose new source fails gives that error and stays as it was
%% before the failing statement.
-spec reload(atom() | unicode:chardata()) -> ok | {error, term()}.
reload(Module) ->
    py_paths:reload(Module).

%% @doc The version of the Python this node embeds, `<<"3.11.2">>'.
-spec version() -> binary().
version() ->
    maps:get(python_version, py_nif:stats()).

%% @doc Memory, as Python and the OS see it, in one map:
%% `python_allocated_blocks' (`sys.getallocatedblocks()': blocks Python's
%% allocator has handed out and not taken back), `gc_counts' (objects
%% waiting in each collector generation), `gc_collections' (collections
%% of each generation so far), `tracemalloc' (`#{current, peak}' in bytes
%% while `tracemalloc' traces, else `not_tracing'), and, where the OS
%% tells (Linux), `rss_bytes' and `rss_peak_bytes' of this OS process,
%% which holds the VM and Python both; `erlang_total_bytes' is
%% `erlang:memory(total)'.
-spec memory_stats() -> {ok, #{atom() => term()}} | py_error().
memory_stats() ->
    Code = <<"(__import__('sys').getallocatedblocks(), list(__import__('gc').get_count()), "
             "[g['collections'] for g in __import__('gc').get_stats()], "
             "__import__('tracemalloc').get_traced_memory() "
             "if __import__('tracemalloc').is_tracing() else None)">>,
    case eval(Code) of
        {ok, {Blocks, Counts, Collections, Traced}} ->
            Python = #{python_allocated_blocks => Blocks, gc_counts => Counts,
                       gc_collections => Collections,
                       tracemalloc => case Traced of
                                          {Current, Peak} -> #{current => Current, peak => Peak};
                                          _None -> not_tracing
                                      end},
            {ok, maps:merge(Python#{erlang_total_bytes => erlang:memory(total)}, os_memory())};
        Error ->
            Error
    end.

%% VmRSS and VmHWM of this OS process, where /proc tells them.
os_memory() ->
    case file:read_file("/proc/self/status") of
        {ok, Status} ->
            maps:from_list([{Key, binary_to_integer(Kib) * 1024}
                            || {Key, Field} <- [{rss_bytes, "VmRSS"}, {rss_peak_bytes, "VmHWM"}],
                               {match, [Kib]} <- [re:run(Status, Field ++ ":\\s+(\\d+) kB",
                                                         [{capture, all_but_first, binary}])]]);
        {error, _} ->
            #{}
    end.

%% @doc Runs Python's garbage collector over every generation and returns
%% how many unreachable objects it found (`gc.collect()').
-spec gc() -> {ok, non_neg_integer()} | py_error().
gc() ->
    call(gc, collect, []).

%% @doc `gc.collect(Generation)': generations 0 to `Generation' only.
-spec gc(0..2) -> {ok, non_neg_integer()} | py_error().
gc(Generation) when Generation =:= 0; Generation =:= 1; Generation =:= 2 ->
    call(gc, collect, [Generation]);
gc(_Generation) ->
    {error, {badarg, generation}}.

%%% Calls that return at once

%% @equiv spawn_call(Module, Function, Args, #{})
-spec spawn_call(name(), name(), list()) -> reference().
spawn_call(Module, Function, Args) ->
    spawn_call(Module, Function, Args, #{}).

%% @doc `spawn_call(Module, Function, Args, Kwargs)' with the default
%% timeout; or, when the fourth argument is a list (and the third is no
%% list), `spawn_call(Pool, Module, Function, Args)': the call/4 of a pool
%% or a context, spawned.
-spec spawn_call(name(), name(), list(), map()) -> reference();
                (context() | atom(), name(), name(), list()) -> reference().
spawn_call(Target, Module, Function, Args) when is_list(Args), not is_list(Function) ->
    spawn_call(Target, Module, Function, Args, #{});
spawn_call(Module, Function, Args, Kwargs) ->
    spawn_call(Module, Function, Args, Kwargs, default_timeout()).

%% @doc Starts {@link call/5} with the same arguments and returns at once.
%% Its result comes to the caller as `{py_response, Ref, Result}', once,
%% with `Result' exactly what `call/5' returns (bad arguments included: the
%% error comes in the message), or `{error, cancelled}' after {@link
%% cancel/1}. The call runs in a process linked to the caller: the
%% caller's death interrupts its Python work. That process unlinks before
%% it answers, so a caller that traps exits gets no `'EXIT'' message.
%% {@link last_traceback/0} is not set by spawned calls.
%% When the fourth argument is a list (and the third is no list), this is
%% `spawn_call(Pool, Module, Function, Args, Opts)', {@link call/5}'s form
%% for a pool or a context, spawned.
-spec spawn_call(name(), name(), list(), map(), opts()) -> reference();
                (context() | atom(), name(), name(), list(), map()) -> reference().
spawn_call(Target, Module, Function, Args, Opts) when is_list(Args), not is_list(Function) ->
    py_calls:spawn_run(fun() -> call(Target, Module, Function, Args, Opts) end);
spawn_call(Module, Function, Args, Kwargs, Opts) ->
    py_calls:spawn_call(Module, Function, Args, Kwargs, Opts).

%% @equiv await(Ref, DefaultTimeout)
-spec await(reference()) -> call_result().
await(Ref) ->
    await(Ref, default_timeout()).

%% @doc Waits for the result of the call `Ref' that this process spawned,
%% and returns it (taking its `py_response' message). When `Timeout'
%% passes first the call is cancelled, its Python work interrupted, and
%% the result is `{error, timeout}'; no message for `Ref' comes afterwards.
%% For a reference that is no call of this process (unknown, or already
%% awaited) the result is `{error, timeout}' once `Timeout' has passed.
-spec await(reference(), timeout()) -> call_result().
await(Ref, Timeout) ->
    py_calls:await(Ref, Timeout).

%% @doc Cancels the call `Ref' that this process spawned and that is still
%% running: its Python work is interrupted and its result is
%% `{error, cancelled}' (the one `py_response' message for it). Gives
%% `{error, not_found}', and changes nothing, when `Ref' is no running call
%% of this process: unknown, spawned by another process, cancelled
%% already, or finished (its result comes, or came, as usual).
-spec cancel(reference()) -> ok | {error, not_found}.
cancel(Ref) ->
    py_calls:cancel(Ref).

%% @equiv cast(Module, Function, Args, #{})
-spec cast(name(), name(), list()) -> ok.
cast(Module, Function, Args) ->
    cast(Module, Function, Args, #{}).

%% @doc Runs {@link call/4} in a process of its own and returns at once.
%% Nobody gets the result; the call outlives the caller. A failure (a
%% Python exception, a timeout, a bad argument) is logged with
%% `logger:error', with the metadata `domain => [erlang_python]',
%% `py_cast => {Module, Function}' and `py_error => Reason'.
-spec cast(name(), name(), list(), map()) -> ok.
cast(Module, Function, Args, Kwargs) ->
    py_calls:cast(Module, Function, Args, Kwargs).

%% @equiv async_call(Module, Function, Args, #{})
-spec async_call(name(), name(), list()) -> reference().
async_call(Module, Function, Args) ->
    async_call(Module, Function, Args, #{}).

%% @doc {@link spawn_call/4} of a coroutine function (`async def'): a
%% call of one runs the coroutine to its end in a new event loop.
-spec async_call(name(), name(), list(), map()) -> reference().
async_call(Module, Function, Args, Kwargs) ->
    spawn_call(Module, Function, Args, Kwargs).

%% @equiv await(Ref)
-spec async_await(reference()) -> call_result().
async_await(Ref) ->
    await(Ref).

%% @equiv await(Ref, Timeout)
-spec async_await(reference(), timeout()) -> call_result().
async_await(Ref, Timeout) ->
    await(Ref, Timeout).

%% @equiv async_gather(Calls, DefaultTimeout)
-spec async_gather([gather_call()]) -> {ok, [term()]} | py_error().
async_gather(Calls) ->
    async_gather(Calls, default_timeout()).

%% @doc Calls every `{Module, Function, Args}' (or `{Module, Function,
%% Args, Kwargs}') of `Calls' and runs the coroutines they return together
%% on one new event loop (`asyncio.gather'); returns their results in the
%% order of `Calls'. A function that returns no awaitable gives its value.
%% The first exception raised fails the whole: `{error, {Type, Message}}'
%% as from {@link call/5}, and the coroutines still running are cancelled.
%% `Timeout' bounds the whole, and interrupts it as for `call/5'. A `Calls'
%% that is no such list gives `{error, {badarg, calls}}'.
-spec async_gather([gather_call()], timeout()) -> {ok, [term()]} | py_error().
async_gather(Calls, Timeout) ->
    case gather_items(Calls) of
        {ok, Items} -> call(erlang, '_gather', [Items], #{}, Timeout);
        error -> {error, {badarg, calls}}
    end.

%%% Shared state

%% @doc Keeps `Value' under `Key' (any terms), replacing what was there.
-spec state_store(term(), term()) -> ok | py_state:error().
state_store(Key, Value) ->
    py_state:store(Key, Value).

%% @doc The value kept under `Key'.
-spec state_fetch(term()) -> {ok, term()} | {error, not_found} | py_state:error().
state_fetch(Key) ->
    py_state:fetch(Key).

%% @doc Removes `Key'; `ok' also when it was not there.
-spec state_remove(term()) -> ok | py_state:error().
state_remove(Key) ->
    py_state:remove(Key).

%% @doc Every key, in no particular order.
-spec state_keys() -> [term()] | py_state:error().
state_keys() ->
    py_state:keys().

%% @doc Removes every key.
-spec state_clear() -> ok | py_state:error().
state_clear() ->
    py_state:clear().

%% @equiv state_incr(Key, 1)
-spec state_incr(term()) -> integer() | {error, not_an_integer} | py_state:error().
state_incr(Key) ->
    state_incr(Key, 1).

%% @doc Adds `N' to the integer kept under `Key' and returns the new value,
%% atomically: concurrent increments are never lost. A missing key counts
%% from 0. A value that is no integer is left alone and gives
%% `{error, not_an_integer}'; an `N' that is no integer gives
%% `{error, {badarg, increment}}'.
-spec state_incr(term(), integer()) ->
          integer() | {error, not_an_integer | {badarg, increment}} | py_state:error().
state_incr(Key, N) when is_integer(N) ->
    py_state:incr(Key, N);
state_incr(_Key, _N) ->
    {error, {badarg, increment}}.

%% @equiv state_decr(Key, 1)
-spec state_decr(term()) -> integer() | {error, not_an_integer} | py_state:error().
state_decr(Key) ->
    state_decr(Key, 1).

%% @doc {@link state_incr/2} with `-N'.
-spec state_decr(term(), integer()) ->
          integer() | {error, not_an_integer | {badarg, increment}} | py_state:error().
state_decr(Key, N) when is_integer(N) ->
    py_state:incr(Key, -N);
state_decr(_Key, _N) ->
    {error, {badarg, increment}}.

%% @private Applies the application environment; called at application
%% start.
-spec configure() -> ok.
configure() ->
    Timeout = application:get_env(erlang_python, default_timeout, ?DEFAULT_TIMEOUT),
    persistent_term:put(?DEFAULT_TIMEOUT_KEY, Timeout),
    persistent_term:put(?DEFAULT_OUTPUT_KEY,
                        choice_env(output, [group_leader, terminal], ?DEFAULT_OUTPUT)),
    %% One dirty I/O scheduler always stays free to admit new calls.
    Max = erlang:system_info(dirty_io_schedulers) - 1,
    ok = py_nif:set_dirty_limit(integer_env(dirty_call_limit, 0, Max, Max)),
    ok = py_nif:set_pool_limit(integer_env(max_pool_threads, 1, infinity, ?MAX_POOL_THREADS)),
    Depth = application:get_env(erlang_python, max_callback_depth, 64),
    ok = py_nif:set_max_depth(Depth),
    BytesTuples = choice_env(bytes_tuples, [false, true], false),
    ok = py_nif:set_bytes_tuples(BytesTuples),
    persistent_term:put(?BYTES_TUPLES_KEY, BytesTuples),
    ok = py_nif:set_none_atom(choice_env(none_atom, [none, nil, undefined], none)),
    add_own_python_path(),
    ok = py_output:install(main),
    py_paths:apply_env().

%% The application environment's Key if it is an integer from Min to Max
%% (`infinity': no bound), else Default, with a warning.
integer_env(Key, Min, Max, Default) ->
    case application:get_env(erlang_python, Key, Default) of
        N when is_integer(N), N >= Min, Max =:= infinity orelse N =< Max ->
            N;
        Other ->
            logger:warning("erlang_python: ~p ~p is not an integer from ~b to ~p; using ~b",
                           [Key, Other, Min, Max, Default]),
            Default
    end.

%% The application environment's Key if it is one of Choices, else
%% Default, with a warning.
choice_env(Key, Choices, Default) ->
    Value = application:get_env(erlang_python, Key, Default),
    case lists:member(Value, Choices) of
        true ->
            Value;
        false ->
            logger:warning("erlang_python: ~p ~0p is none of ~0p; using ~p",
                           [Key, Value, Choices, Default], #{domain => [erlang_python]}),
            Default
    end.

%% priv/python, where the Python code of the application's own features
%% lives (erlang_python.streams), on sys.path once. Without a timeout: the
%% configured one may be short, and the application must not fail to
%% start because the interpreter is busy.
add_own_python_path() ->
    Dir = unicode:characters_to_binary(filename:join(py_nif:priv_dir(), "python")),
    {ok, _} = eval(<<"__import__('sys').path.insert(0, d) "
                     "if d not in __import__('sys').path else None">>, #{d => Dir}, infinity),
    ok.

%% Internals

%% The frame of a call this process makes (c_src/protocol.h): how deep in
%% Python -> Erlang -> Python nesting it is, and, when its sys.stdout and
%% sys.stderr write to a group leader, the process whose group leader that
%% is (this one: local, where its group leader may be of another node, as
%% a remote shell's is). A handler running a function for Python has the
%% frame of the call that function runs in (py_handler): a call it makes
%% is one deeper, and its output goes where that call's goes unless it
%% says otherwise.
frame(Output) ->
    {Depth, Inherited} = case get(?FRAME_KEY) of
                             undefined -> {0, undefined};
                             {D, Caller} -> {D, Caller};
                             D -> {D, undefined}
                         end,
    case output_to(Output, Inherited) of
        undefined -> Depth;
        Owner -> {Depth, Owner}
    end.

%% The frame an options map asks for: {ok, Frame}, or error for an
%% output that is none.
opts_frame(#{output := Output}) when Output =:= group_leader; Output =:= terminal ->
    {ok, frame(Output)};
opts_frame(#{output := _}) ->
    error;
opts_frame(_Opts) ->
    {ok, frame(default)}.

output_to(terminal, _Inherited) -> undefined;
output_to(group_leader, undefined) -> self();
output_to(group_leader, Inherited) -> Inherited;
output_to(default, undefined) -> output_to(default_output(), undefined);
output_to(default, Inherited) -> Inherited.

%% A name for register_function/2: not one of the application's own.
with_name(Name, Run) ->
    case to_name(Name) of
        {ok, Key} ->
            case py_registry:is_reserved(Key) of
                false -> Run(Key);
                true -> {error, {badarg, name}}
            end;
        error ->
            {error, {badarg, name}}
    end.

to_name(Name) when is_atom(Name) ->
    {ok, atom_to_binary(Name, utf8)};
to_name(Name) when is_binary(Name), Name =/= <<>> ->
    case unicode:characters_to_binary(Name) of
        Name -> {ok, Name};
        _ -> error
    end;
to_name(_Name) ->
    error.

%% async_gather's calls as Python's erlang._gather takes them:
%% [Module, Function, Args, Kwargs], names as binaries.
gather_items(Calls) ->
    gather_items(Calls, []).

gather_items([Call | Calls], Items) ->
    case gather_item(Call) of
        {ok, Item} -> gather_items(Calls, [Item | Items]);
        error -> error
    end;
gather_items([], Items) ->
    {ok, lists:reverse(Items)};
gather_items(_NotAList, _Items) ->
    error.

gather_item({Module, Function, Args}) ->
    gather_item({Module, Function, Args, #{}});
gather_item({Module, Function, Args, Kwargs}) when is_list(Args), is_map(Kwargs) ->
    case {to_name(Module), to_name(Function)} of
        {{ok, M}, {ok, F}} -> {ok, [M, F, Args, Kwargs]};
        _ -> error
    end;
gather_item(_Call) ->
    error.

%% Opts: a timeout, or a map of options.
with_opts(Opts, Run) when is_map(Opts) ->
    case {maps:size(maps:without([timeout, return, output], Opts)), opts_frame(Opts)} of
        {0, {ok, Frame}} ->
            Run(maps:get(timeout, Opts, default_timeout()), maps:get(return, Opts, value), Frame);
        _ ->
            {error, {badarg, opts}}
    end;
with_opts(Timeout, Run) ->
    Run(Timeout, value, frame(default)).

%% A context's options: kwargs, timeout, return and output.
with_context_opts(Context, Opts, Run) when is_map(Opts) ->
    case {maps:size(maps:without([kwargs, timeout, return, output], Opts)), opts_frame(Opts)} of
        {0, {ok, Frame}} ->
            with_context(Context, fun(Ctx) ->
                Run(Ctx, maps:get(kwargs, Opts, #{}), maps:get(timeout, Opts, default_timeout()),
                    maps:get(return, Opts, value), Frame)
            end);
        _ ->
            {error, {badarg, opts}}
    end;
with_context_opts(_Context, _Opts, _Run) ->
    {error, {badarg, opts}}.

%% A pool's options: those allowed, with their defaults, checked here
%% where they are used here (the member checks the rest).
with_pool_opts(Opts, Allowed, Run) when is_map(Opts) ->
    case maps:size(maps:without(Allowed, Opts)) of
        0 ->
            Full = maps:merge(#{kwargs => #{}, timeout => default_timeout(), return => value}, Opts),
            case Full of
                #{timeout := T} when not (T =:= infinity orelse (is_integer(T) andalso T >= 0)) ->
                    {error, {badarg, timeout}};
                #{return := R} when R =/= value, R =/= ref ->
                    {error, {badarg, opts}};
                _ ->
                    Run(Full)
            end;
        _ ->
            {error, {badarg, opts}}
    end;
with_pool_opts(_Opts, _Allowed, _Run) ->
    {error, {badarg, opts}}.

%% A reference to an object on a pool's member; any other tuple is none.
with_pool_ref(Ref, Opts, Run) ->
    case py_pool:is_ref(Ref) of
        true when is_map(Opts) -> with_pool_opts(Opts, [timeout, return], Run);
        true -> with_pool_opts(#{timeout => Opts}, [timeout], Run);
        false -> {error, {badarg, ref}}
    end.

%% `binary => bytes | str | auto' (taken out of Opts): every binary of the
%% arguments (Args deep, the values of Kwargs or Locals deep) marked to
%% become bytes, or str (c_src/convert.c), or left to become str when it is
%% UTF-8 text and bytes otherwise.
with_binaries(Opts, {Args, Named}, Run) when is_map(Opts) ->
    case maps:take(binary, Opts) of
        error -> Run({Args, Named}, Opts);
        {auto, Rest} -> Run({Args, Named}, Rest);
        {bytes, Rest} -> Run({mark(?BYTES_MARKER, Args), mark_values(?BYTES_MARKER, Named)}, Rest);
        {str, Rest} -> Run({mark(?STR_MARKER, Args), mark_values(?STR_MARKER, Named)}, Rest);
        {_, _} -> {error, {badarg, opts}}
    end;
with_binaries(Opts, Terms, Run) ->
    Run(Terms, Opts).

mark(Marker, Binary) when is_binary(Binary) ->
    {Marker, Binary};
mark(Marker, {bytes, Binary} = Tuple) when is_binary(Binary) ->
    %% bytes already when the application honours these tuples; else a
    %% tuple whose binary is a binary like any.
    case persistent_term:get(?BYTES_TUPLES_KEY, false) of
        true -> Tuple;
        false -> {bytes, mark(Marker, Binary)}
    end;
mark(_Marker, {M, Binary} = Marked) when (M =:= ?BYTES_MARKER orelse M =:= ?STR_MARKER),
                                         is_binary(Binary) ->
    Marked;
mark(Marker, List) when is_list(List) ->
    mark_list(Marker, List);
mark(Marker, Tuple) when is_tuple(Tuple) ->
    list_to_tuple([mark(Marker, E) || E <- tuple_to_list(Tuple)]);
mark(Marker, Map) when is_map(Map) ->
    maps:from_list([{mark(Marker, K), mark(Marker, V)} || {K, V} <- maps:to_list(Map)]);
mark(_Marker, Term) ->
    Term.

%% An improper list keeps its tail, for the conversion to refuse.
mark_list(Marker, [H | T]) -> [mark(Marker, H) | mark_list(Marker, T)];
mark_list(_Marker, Tail) -> Tail.

mark_values(Marker, Map) when is_map(Map) ->
    maps:map(fun(_Name, V) -> mark(Marker, V) end, Map);
mark_values(_Marker, Other) ->
    Other.

kwargs_of(#{kwargs := Kwargs}) -> Kwargs;
kwargs_of(_Opts) -> #{}.

with_kwargs(#{kwargs := _} = Opts, Kwargs) -> Opts#{kwargs := Kwargs};
with_kwargs(Opts, _Kwargs) -> Opts.

%% A context's name stands for the context.
with_context(Name, Run) when is_atom(Name) ->
    case py_context:whereis(Name) of
        undefined -> {error, {badarg, context}};
        Context -> Run(Context)
    end;
with_context(Context, Run) ->
    Run(Context).

%% A reference made on another node is a plain reference here: say so.
on_ref(Ref, {error, {badarg, ref}}) when is_reference(Ref), node(Ref) =/= node() ->
    {error, {remote_ref, node(Ref)}};
on_ref(_Ref, Result) ->
    Result.

%% Releasing again is ok; anything that is no reference is not.
released_or_badarg(Ref) ->
    case is_ref(Ref) of
        true -> ok;
        false -> {error, {badarg, ref}}
    end.

default_timeout() ->
    persistent_term:get(?DEFAULT_TIMEOUT_KEY, ?DEFAULT_TIMEOUT).

default_output() ->
    persistent_term:get(?DEFAULT_OUTPUT_KEY, ?DEFAULT_OUTPUT).

with_code(Code, Run) when is_binary(Code) ->
    Run(Code);
with_code(Code, Run) ->
    try unicode:characters_to_binary(Code) of
        Source when is_binary(Source) -> Run(Source);
        _ -> {error, {badarg, code}}
    catch
        error:badarg -> {error, {badarg, code}}
    end.

finish({ok, _} = Ok, _Timeout) ->
    Ok;
finish(ok, _Timeout) ->
    ok;
finish({error, Exception, Traceback}, _Timeout) ->
    put(?TRACEBACK_KEY, Traceback),
    {error, Exception};
finish({queued, Ref, Job}, Timeout) ->
    %% Run by a pool thread, which sends {Ref, Result}.
    receive
        {Ref, Result} -> finish(Result, Timeout)
    after Timeout ->
        case py_nif:cancel(Job) of
            cancelled ->
                {error, timeout};
            sent ->
                receive
                    {Ref, Result} -> finish(Result, Timeout)
                end
        end
    end;
finish({error, _} = Error, _Timeout) ->
    Error.
