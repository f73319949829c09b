%% @private
%% @doc The erlang_python application: applies its configuration to the NIF
%% and to Python's paths, starts the supervisor, and runs the configured
%% preload. The interpreter itself belongs to the NIF library and outlives
%% stops and starts of the application.
-module(erlang_python_app).
-behaviour(application).

-export([start/2, stop/1]).

-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    py:configure(),
    case erlang_python_sup:start_link() of
        {ok, _} = Started ->
            ok = py_paths:preload(),
            Started;
        Error ->
            Error
    end.

-spec stop(term()) -> ok.
stop(_State) ->
    ok.
