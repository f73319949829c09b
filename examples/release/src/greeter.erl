%% @doc The example release's one module: Erlang functions that call the
%% Python module greeter_py, which the application ships in its
%% priv/python (erlang_python puts that directory on sys.path when it
%% starts).
-module(greeter).

-export([hello/1, greeting/1, python_file/0]).

%% @doc A greeting made in Python; Python also logs it (to logger).
-spec hello(binary()) -> {ok, binary()} | {error, term()}.
hello(Name) ->
    py:call(greeter_py, hello, [Name]).

%% @doc The greeting as a string, for `bin/greeter eval'.
-spec greeting(string()) -> string().
greeting(Name) ->
    {ok, Greeting} = hello(unicode:characters_to_binary(Name)),
    unicode:characters_to_list(Greeting).

%% @doc Where Python found greeter_py: inside this release.
-spec python_file() -> {ok, binary()} | {error, term()}.
python_file() ->
    py:eval(<<"__import__('greeter_py').__file__">>).
