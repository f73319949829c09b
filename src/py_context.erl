%% @doc Contexts: where Python code runs apart from the main interpreter's
%% shared `__main__' (see docs/contexts.md).
%%
%% A context is made in one of two modes:
%% <ul>
%% <li>`worker': a namespace of its own (its own globals for `py:eval',
%%     `py:exec' and calls of `__main__') in the main interpreter, whose
%%     modules it shares;</li>
%% <li>`owngil' (Python 3.12 and later): a subinterpreter with its own
%%     GIL and its own modules, whose Python runs in parallel with the
%%     main interpreter's and with other contexts'.</li>
%% </ul>
%% Calls name the context (`py:call(Ctx, M, F, Args)') and run in the
%% calling process's dirty scheduler or pool thread, as plain calls do:
%% a context has no process or thread of its own. The context term can be
%% used from any process.
%%
%% A context belongs to the process that made it and is stopped when that
%% process ends. `start_link/1' (or `child_spec/1', or the application
%% environment's `contexts') makes one owned by a small process of its own
%% under a supervisor, named so that `py:call(Name, ...)' finds it.
%%
%% Stopping a context ends its running calls with
%% `{error, context_stopped}', and so every later call; an `owngil'
%% context's interpreter is then finalised, and its references give
%% `{error, context_stopped}'.
-module(py_context).
-behaviour(gen_server).

-export([new/0, new/1, stop/1, stop/2, is_context/1, info/1, whereis/1]).
-export([start_link/1, child_spec/1]).
-export([running/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([context/0, mode/0]).

%% A context: an Erlang reference term for a NIF resource.
-type context() :: reference().
-type mode() :: worker | owngil.

-define(STOP_TIMEOUT, 5000).
-define(NAME_KEY(Name), {?MODULE, Name}).

%% @equiv new(#{})
-spec new() -> {ok, context()} | {error, term()}.
new() ->
    new(#{}).

%% @doc Makes a context owned by the calling process. `Opts': `mode'
%% (`worker', the default, or `owngil'). Errors:
%% `{error, {not_supported, owngil}}' before Python 3.12,
%% `{error, {badarg, opts}}'.
-spec new(#{mode => mode()}) -> {ok, context()} | {error, term()}.
new(Opts) when is_map(Opts) ->
    case maps:merge(#{mode => worker}, Opts) of
        #{mode := Mode} = All when map_size(All) =:= 1, Mode =:= worker orelse Mode =:= owngil ->
            make(Mode);
        _ ->
            {error, {badarg, opts}}
    end;
new(_Opts) ->
    {error, {badarg, opts}}.

%% @equiv stop(Context, 5000)
-spec stop(context()) -> ok | {error, timeout | {badarg, context}}.
stop(Context) ->
    stop(Context, ?STOP_TIMEOUT).

%% @doc Stops the context and waits, at most `Timeout' ms, until its calls
%% have ended and its interpreter (`owngil') is finalised. Its running
%% calls return `{error, context_stopped}' at once, unless blocked in C
%% code that Python cannot interrupt; a thread started by the context's
%% Python code holds the finalisation back until it ends, which is what
%% `{error, timeout}' then says: the context is stopped all the same, and
%% no later message comes. Stopping a stopped context is `ok'.
-spec stop(context(), timeout()) -> ok | {error, timeout | {badarg, context}}.
stop(Context, Timeout) ->
    %% Waited for in a process of its own, so that an answer that comes
    %% after the timeout dies with it instead of staying in the caller's
    %% mailbox.
    Parent = self(),
    Tag = make_ref(),
    {Pid, Mon} = spawn_monitor(fun() -> Parent ! {Tag, stop_and_wait(Context)} end),
    receive
        {Tag, Result} ->
            erlang:demonitor(Mon, [flush]),
            Result
    after Timeout ->
        exit(Pid, kill),
        receive {'DOWN', Mon, process, Pid, _} -> ok end,
        %% An answer sent just before the kill is here by now.
        receive {Tag, Result} -> Result
        after 0 -> {error, timeout}
        end
    end.

stop_and_wait(Context) ->
    Ref = make_ref(),
    case py_nif:context_stop(Context, Ref) of
        stopped -> ok;
        stopping -> receive {py_context_stopped, Ref} -> ok end;
        {error, _} = Error -> Error
    end.

%% @doc Whether `Term' is a context (stopped or not).
-spec is_context(term()) -> boolean().
is_context(Term) ->
    py_nif:is_context(Term).

%% @doc What the context is: its `mode', its `state' (`running',
%% `stopping' while its calls end, then `stopped'), its `owner' and how
%% many `calls' are running in it.
-spec info(context()) ->
          #{mode := mode(), state := running | stopping | stopped, owner := pid(),
            calls := non_neg_integer()} | {error, {badarg, context}}.
info(Context) ->
    py_nif:context_info(Context).

%% @private
%% @doc Those of Contexts that are not stopped.
-spec running([context()]) -> [context()].
running(Contexts) ->
    [C || C <- Contexts, maps:get(state, info(C)) =/= stopped].

%% @doc The context started under the name `Name' by start_link/1, or
%% `undefined'.
-spec whereis(atom()) -> context() | undefined.
whereis(Name) ->
    %% The term outlives a process killed before it could erase it: the
    %% context counts only while its process is the one of that name.
    case persistent_term:get(?NAME_KEY(Name), undefined) of
        {Pid, Context} ->
            case erlang:whereis(Name) of
                Pid -> Context;
                _ -> undefined
            end;
        undefined ->
            undefined
    end.

%% @doc Starts a process that owns a context named `Name', for a
%% supervision tree: `Opts' as for new/1, with `name'. The process is
%% registered under `Name' too. Its end stops the context.
-spec start_link(#{name := atom(), mode => mode()}) -> {ok, pid()} | {error, term()}.
start_link(#{name := Name} = Opts) when is_atom(Name) ->
    gen_server:start_link({local, Name}, ?MODULE, maps:remove(name, Opts), []);
start_link(_Opts) ->
    {error, {badarg, opts}}.

%% @doc A child specification for start_link/1.
-spec child_spec(#{name := atom(), mode => mode()}) -> supervisor:child_spec().
child_spec(#{name := Name} = Opts) ->
    #{id => {?MODULE, Name}, start => {?MODULE, start_link, [Opts]}, shutdown => ?STOP_TIMEOUT + 1000}.

%% @private
init(Opts) ->
    process_flag(trap_exit, true),
    Name = registered_name(),
    case new(Opts) of
        {ok, Context} ->
            persistent_term:put(?NAME_KEY(Name), {self(), Context}),
            {ok, #{name => Name, context => Context}};
        {error, Reason} ->
            {stop, Reason}
    end.

%% @private
handle_call(context, _From, #{context := Context} = State) ->
    {reply, Context, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
handle_cast(_Request, State) ->
    {noreply, State}.

%% @private
handle_info(_Message, State) ->
    {noreply, State}.

%% @private
terminate(_Reason, #{name := Name, context := Context}) ->
    persistent_term:erase(?NAME_KEY(Name)),
    stop(Context).

%% Internals

make(Mode) ->
    case py_nif:context_new(Mode, self()) of
        {ok, Context} when Mode =:= owngil ->
            %% Its own set of the names registered for Python, and its own
            %% logging into logger, if the application runs (without it,
            %% Python cannot call Erlang); its own sys.stdout and
            %% sys.stderr, which follow the calls' output.
            case erlang:whereis(py_registry) of
                undefined -> ok;
                _ -> ok = py_registry:add_context(Context)
            end,
            case erlang:whereis(py_logger) of
                undefined -> ok;
                _ -> ok = py_logger:add_context(Context)
            end,
            ok = py_output:install(Context),
            {ok, Context};
        Result ->
            Result
    end.

registered_name() ->
    {registered_name, Name} = process_info(self(), registered_name),
    Name.
