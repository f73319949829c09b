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
-module(py).

-export([call/3, call/4, call/5]).
-export([eval/1, eval/2, eval/3, exec/1, exec/2]).
-export([register_function/2, register_function/3, unregister_function/1]).
-export([last_traceback/0, stats/0, thread_stats/0]).
-export([configure/0]).

-export_type([name/0, code/0, py_error/0]).

-type name() :: atom() | binary().
-type code() :: iodata() | unicode:chardata().
-type py_error() ::
    {error, {ExceptionType :: atom() | binary(), Message :: binary()}}
    | {error, timeout}
    | {error, {badarg, atom()}}.

-define(TRACEBACK_KEY, '$py_last_traceback').
-define(DEPTH_KEY, '$py_depth').
-define(DEFAULT_TIMEOUT_KEY, {?MODULE, default_timeout}).
-define(DEFAULT_TIMEOUT, 30000).

%% @equiv call(Module, Function, Args, #{})
-spec call(name(), name(), list()) -> {ok, term()} | py_error().
call(Module, Function, Args) ->
    call(Module, Function, Args, #{}).

%% @equiv call(Module, Function, Args, Kwargs, DefaultTimeout)
-spec call(name(), name(), list(), map()) -> {ok, term()} | py_error().
call(Module, Function, Args, Kwargs) ->
    call(Module, Function, Args, Kwargs, default_timeout()).

%% @doc Calls `Module.Function(*Args, **Kwargs)' and returns its result.
%% Kwargs keys are atoms or binaries. Timeout is in milliseconds or
%% `infinity'.
-spec call(name(), name(), list(), map(), timeout()) -> {ok, term()} | py_error().
call(Module, Function, Args, Kwargs, Timeout) ->
    finish(py_nif:call(Module, Function, Args, Kwargs, Timeout, depth()), Timeout).

%% @equiv eval(Code, #{})
-spec eval(code()) -> {ok, term()} | py_error().
eval(Code) ->
    eval(Code, #{}).

%% @equiv eval(Code, Locals, DefaultTimeout)
-spec eval(code(), map()) -> {ok, term()} | py_error().
eval(Code, Locals) ->
    eval(Code, Locals, default_timeout()).

%% @doc Evaluates a Python expression. Globals are the interpreter's shared
%% `__main__' namespace; `Locals' (keys atoms or binaries) are local names
%% for this evaluation only.
-spec eval(code(), map(), timeout()) -> {ok, term()} | py_error().
eval(Code, Locals, Timeout) ->
    with_code(Code, fun(Source) -> finish(py_nif:eval(Source, Locals, Timeout, depth()), Timeout) end).

%% @equiv exec(Code, DefaultTimeout)
-spec exec(code()) -> ok | py_error().
exec(Code) ->
    exec(Code, default_timeout()).

%% @doc Executes Python statements in the shared `__main__' namespace, so
%% that what they define is visible to later calls from any process.
-spec exec(code(), timeout()) -> ok | py_error().
exec(Code, Timeout) ->
    with_code(Code, fun(Source) -> finish(py_nif:exec(Source, Timeout, depth()), Timeout) end).

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

%% @private Applies the application environment; called at application
%% start.
-spec configure() -> ok.
configure() ->
    Timeout = application:get_env(erlang_python, default_timeout, ?DEFAULT_TIMEOUT),
    persistent_term:put(?DEFAULT_TIMEOUT_KEY, Timeout),
    %% One dirty I/O scheduler always stays free to admit new calls.
    Max = erlang:system_info(dirty_io_schedulers) - 1,
    Limit = case application:get_env(erlang_python, dirty_call_limit, Max) of
        N when is_integer(N), N >= 0, N =< Max ->
            N;
        Other ->
            logger:warning("erlang_python: dirty_call_limit ~p is not an integer "
                           "from 0 to ~b; using ~b", [Other, Max, Max]),
            Max
    end,
    ok = py_nif:set_dirty_limit(Limit),
    Depth = application:get_env(erlang_python, max_callback_depth, 64),
    py_nif:set_max_depth(Depth).

%% Internals

%% How deep in Python -> Erlang -> Python nesting this process is: a
%% handler running a function for Python sets it.
depth() ->
    case get(?DEPTH_KEY) of
        undefined -> 0;
        Depth -> Depth
    end.

with_name(Name, Run) when is_atom(Name) ->
    Run(atom_to_binary(Name, utf8));
with_name(Name, Run) when is_binary(Name), Name =/= <<>> ->
    case unicode:characters_to_binary(Name) of
        Name -> Run(Name);
        _ -> {error, {badarg, name}}
    end;
with_name(_Name, _Run) ->
    {error, {badarg, name}}.

default_timeout() ->
    persistent_term:get(?DEFAULT_TIMEOUT_KEY, ?DEFAULT_TIMEOUT).

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
