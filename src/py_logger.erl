%% @private
%% @doc Python's `logging' into Erlang's `logger' (docs/logging.md).
%%
%% This process puts a handler (priv/python/erlang_python/logs.py) on the
%% root logger of the main interpreter when it starts, and of each own-GIL
%% context that py_context adds here (worker contexts share the main
%% interpreter's modules, and so its logging). The handler sends each
%% record that passes its level to this process as a tuple, from whichever
%% Python thread logged it, without waiting; this process logs it with
%% logger:log/4 at the mapped level, with `domain => [python]' and the
%% record's details as metadata. Python never waits for Erlang here, and
%% the logger handlers' own overload protection applies from this process
%% on. OTP's `default' handler drops domains it does not know; this
%% process adds it a filter that lets [python] through, while it runs.
%%
%% The interpreter outlives the application: starting again replaces the
%% handler, so a restart leaves one; stopping removes it (this process
%% traps exits for that), and Python's default applies again. A restart of
%% this process alone puts the handler back in the own-GIL contexts that
%% py_registry knows to be running.
%%
%% Python never waits, so a program logging faster than logger's handlers
%% take it would grow this process's mailbox without end: past ?MAX_QUEUE
%% waiting records, records are dropped, and a warning says how many once
%% the queue is short again.
-module(py_logger).
-behaviour(gen_server).

-export([start_link/0, configure/1, add_context/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([options/0]).

-type level() :: logger:level() | none.
-type options() :: #{level => level()}.

-define(MODULE_PY, 'erlang_python.logs').
-define(DEFAULTS, #{level => warning}).
%% How long stopping waits for each interpreter to drop the handler.
-define(UNINSTALL_TIMEOUT, 2000).
-define(MAX_QUEUE, 10000).

%% @doc Starts the process, registered as py_logger, with the application
%% environment's `logging' options.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Sets the options (py:configure_logging/1) in every interpreter.
-spec configure(term()) -> ok | {error, {badarg, term()} | not_started | term()}.
configure(Opts) ->
    case options(Opts) of
        {ok, Config} ->
            try
                gen_server:call(?MODULE, {configure, Config}, infinity)
            catch
                exit:{noproc, _} -> {error, not_started}
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Puts the handler in a new own-GIL context.
-spec add_context(py_context:context()) -> ok.
add_context(Context) ->
    gen_server:call(?MODULE, {add_context, Context}, infinity).

%% @private
init([]) ->
    process_flag(trap_exit, true),
    Env = application:get_env(erlang_python, logging, #{}),
    Config = case options(Env) of
                 {ok, C} ->
                     C;
                 {error, Reason} ->
                     logger:warning("erlang_python: logging ~0p is not valid (~0p); using ~0p",
                                    [Env, Reason, ?DEFAULTS], #{domain => [erlang_python]}),
                     ?DEFAULTS
             end,
    %% OTP's default handler logs only events of no domain or of OTP's
    %% own: records of [python] get through it too.
    _ = logger:add_handler_filter(default, ?MODULE, {fun logger_filters:domain/2, {log, sub, [python]}}),
    Contexts = case erlang:whereis(py_registry) of
                   undefined -> [];
                   _ -> py_registry:contexts()
               end,
    case apply_config(main, Config) of
        ok -> {ok, #{config => Config, contexts => in_contexts(Contexts, Config), dropped => 0}};
        {error, Reason2} -> {stop, {logging, Reason2}}
    end.

%% @private
handle_call({configure, Config}, _From, #{contexts := Contexts} = State) ->
    Reply = apply_config(main, Config),
    {reply, Reply, State#{config := Config, contexts := in_contexts(Contexts, Config)}};
handle_call({add_context, Context}, _From, #{config := Config, contexts := Contexts} = State) ->
    {reply, ok,
     State#{contexts := in_contexts([Context], Config) ++ py_context:running(Contexts)}};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_request}, State}.

%% @private
handle_cast(_Message, State) ->
    {noreply, State}.

%% @private
handle_info({<<"py_log">>, LevelNo, Name, Message, Module, Function, Line, Path, Thread, Created,
             Exception}, #{dropped := Dropped} = State) ->
    case erlang:process_info(self(), message_queue_len) of
        {message_queue_len, Waiting} when Waiting > ?MAX_QUEUE ->
            {noreply, State#{dropped := Dropped + 1}};
        _ ->
            _ = Dropped > 0 andalso
                logger:warning("erlang_python: ~b Python log records dropped: Python logged them "
                               "faster than logger took them", [Dropped],
                               #{domain => [erlang_python]}),
            log(LevelNo, Name, Message, Module, Function, Line, Path, Thread, Created, Exception),
            {noreply, State#{dropped := 0}}
    end;
handle_info(_Message, State) ->
    {noreply, State}.

%% @private
terminate(_Reason, #{contexts := Contexts}) ->
    _ = [uninstall(Where) || Where <- [main | Contexts]],
    _ = logger:remove_handler_filter(default, ?MODULE),
    ok.

%%% Internals

options(Opts) when is_map(Opts) ->
    Config = maps:merge(?DEFAULTS, Opts),
    case [K || K <- maps:keys(Config), K =/= level] of
        [Unknown | _] ->
            {error, {badarg, Unknown}};
        [] ->
            case python_level(maps:get(level, Config)) of
                error -> {error, {badarg, level}};
                _ -> {ok, Config}
            end
    end;
options(_Opts) ->
    {error, {badarg, options}}.

%% Installs the handler at the level, or removes it (`none').
apply_config(Where, #{level := none}) ->
    uninstall(Where, infinity);
apply_config(Where, #{level := Level}) ->
    done(call(Where, install, [self(), python_level(Level)], infinity)).

%% The contexts still running, the config applied in each.
in_contexts(Contexts, Config) ->
    [C || C <- Contexts, apply_config(C, Config) =/= {error, context_stopped}].

uninstall(Where) ->
    uninstall(Where, ?UNINSTALL_TIMEOUT).

uninstall(Where, Timeout) ->
    done(call(Where, uninstall, [], Timeout)).

done({ok, _}) -> ok;
done({error, _} = Error) -> Error.

call(main, Function, Args, Timeout) ->
    py:call(?MODULE_PY, Function, Args, #{}, Timeout);
call(Context, Function, Args, Timeout) ->
    py:call(Context, ?MODULE_PY, Function, Args, #{timeout => Timeout}).

log(LevelNo, Name, Message, Module, Function, Line, Path, Thread, Created, Exception)
  when is_integer(LevelNo), is_binary(Message) ->
    Meta = #{domain => [python],
             time => round(Created * 1000000),
             python_logger => Name,
             python_module => Module,
             python_function => Function,
             file => text_to_list(Path),
             line => Line,
             thread => Thread},
    case Exception of
        Text when is_binary(Text) ->
            logger:log(erlang_level(LevelNo), "~ts~n~ts", [Message, Text],
                       Meta#{exception => Text});
        _ ->
            logger:log(erlang_level(LevelNo), "~ts", [Message], Meta)
    end;
log(_LevelNo, _Name, _Message, _Module, _Function, _Line, _Path, _Thread, _Created, _Exception) ->
    ok.

text_to_list(Text) when is_binary(Text) -> unicode:characters_to_list(Text);
text_to_list(Other) -> Other.

%% logger's levels as logging's numbers; `all' lets everything through.
python_level(all) -> 1;
python_level(debug) -> 10;
python_level(info) -> 20;
python_level(notice) -> 25;
python_level(warning) -> 30;
python_level(error) -> 40;
python_level(critical) -> 50;
python_level(alert) -> 60;
python_level(emergency) -> 70;
python_level(none) -> none;
python_level(_) -> error.

%% A record's number as logger's level: logging's own levels map to their
%% namesakes, and a custom one to the level of the next lower one.
erlang_level(N) when N < 20 -> debug;
erlang_level(N) when N < 25 -> info;
erlang_level(N) when N < 30 -> notice;
erlang_level(N) when N < 40 -> warning;
erlang_level(N) when N < 50 -> error;
erlang_level(N) when N < 60 -> critical;
erlang_level(N) when N < 70 -> alert;
erlang_level(_) -> emergency.
