%% The Python `erlang' module as a module of the interpreter: built with
%% multi-phase initialisation and a module state, so that it loads in a
%% subinterpreter (with its own GIL from Python 3.12), where Erlang is out
%% of reach but its types work; its types are immutable; a module imported
%% again after `del sys.modules['erlang']' still reaches Erlang, and its
%% atoms, pids and references convert like the first module's.
-module(py_module_SUITE).
-include_lib("common_test/include/ct.hrl").
-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([module_loads_in_a_subinterpreter/1, types_are_immutable/1,
         module_imported_again_reaches_erlang/1]).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [module_loads_in_a_subinterpreter, types_are_immutable,
     module_imported_again_reaches_erlang].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = py:register_function(mod_double, fun([X]) -> 2 * X end),
    {ok, Source} = file:read_file(filename:join(?config(data_dir, Config), "module_checks.py")),
    ok = py:exec(<<Source/binary, "\nimport sys\nsys.modules['module_checks'] = sys.modules['__main__']\n">>),
    Config.

end_per_suite(_Config) ->
    ok = py:unregister_function(mod_double).

%% CPython 3.12+ refuses a single-phase module in an interpreter with its
%% own GIL: importing erlang there is the proof that it is multi-phase.
module_loads_in_a_subinterpreter(_Config) ->
    {ok, OwnGil} = py:eval(<<"own_gil()">>),
    ct:log("subinterpreter with its own GIL: ~p", [OwnGil]),
    {ok, none} = py:eval(<<"import_in_subinterpreter()">>),
    %% The main interpreter's module is untouched.
    {ok, 42} = py:eval(<<"erlang.call('mod_double', 21)">>).

types_are_immutable(_Config) ->
    {ok, [<<"Atom">>, <<"Pid">>, <<"Ref">>]} = py:eval(<<"types_refuse_new_attributes()">>).

module_imported_again_reaches_erlang(_Config) ->
    Ref = make_ref(),
    {ok, {42, 4, fresh, false}} =
        py:call('__main__', reimported_module, [self(), Ref]),
    Self = self(),
    receive
        {<<"from_fresh">>, hello, old, Self, Ref} -> ok
    after 5000 -> ct:fail(no_message_from_the_fresh_module)
    end.
