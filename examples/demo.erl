%% A short tour of the public API: `make demo' runs it.
-module(demo).
-export([main/0]).

main() ->
    {ok, _} = application:ensure_all_started(erlang_python),
    #{python_version := Version} = py:stats(),
    io:format("erlang_python demo, embedded Python ~s~n~n", [Version]),
    show("py:call(math, sqrt, [16])", py:call(math, sqrt, [16])),
    show("py:call(json, dumps, [#{<<\"a\">> => [1, 2.5, none]}], #{sort_keys => true})",
         py:call(json, dumps, [#{<<"a">> => [1, 2.5, none]}], #{sort_keys => true})),
    show("py:call('os.path', join, [<<\"/a\">>, <<\"b\">>])",
         py:call('os.path', join, [<<"/a">>, <<"b">>])),
    show("py:eval(<<\"sum(range(10))\">>)", py:eval(<<"sum(range(10))">>)),
    show("py:eval(<<\"x * y\">>, #{x => 5, y => 5})", py:eval(<<"x * y">>, #{x => 5, y => 5})),
    show("py:eval(<<\"2 ** 100\">>)  % integers of any size",
         py:eval(<<"2 ** 100">>)),
    show("py:eval(<<\"(erlang.Atom('ok'), b'\\\\xff', {1: 'one'})\">>)",
         py:eval(<<"(erlang.Atom('ok'), b'\\xff', {1: 'one'})">>)),
    show("py:exec(<<\"def greet(name): return 'hello ' + name\">>)",
         py:exec(<<"def greet(name): return 'hello ' + name">>)),
    show("py:call('__main__', greet, [<<\"BEAM\">>])", py:call('__main__', greet, [<<"BEAM">>])),
    show("py:eval(<<\"1/0\">>)", py:eval(<<"1/0">>)),
    io:format("   py:last_traceback() ->~n~s~n", [indent(py:last_traceback())]),
    show("py:eval(<<\"while True: pass\">>, #{}, 100)  % interrupted after 100 ms",
         py:eval(<<"while True: pass">>, #{}, 100)),
    show("py:eval(<<\"object()\">>)", py:eval(<<"object()">>)),
    io:format("~nPython's print() writes to this terminal:~n"),
    ok = py:exec(<<"print('  hello from Python')">>),
    ok.

show(What, Result) ->
    io:format("~s~n   -> ~p~n", [What, Result]).

indent(Text) ->
    [["      ", Line, "\n"] || Line <- string:split(string:trim(Text), "\n", all)].
