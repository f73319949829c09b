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
    io:format("~nPython calling Erlang:~n"),
    show("py:register_function(double_it, fun([X]) -> X * 2 end)",
         py:register_function(double_it, fun([X]) -> X * 2 end)),
    show("py:eval(<<\"erlang.double_it(21)\">>)", py:eval(<<"erlang.double_it(21)">>)),
    ok = py:exec(<<"from concurrent.futures import ThreadPoolExecutor\n"
                   "def doubled_in_threads(n):\n"
                   "    with ThreadPoolExecutor(4) as pool:\n"
                   "        return list(pool.map(erlang.double_it, range(n)))\n">>),
    show("py:call('__main__', doubled_in_threads, [8])  % erlang.call from 4 threads",
         py:call('__main__', doubled_in_threads, [8])),
    show("py:register_function(double_via_python, ...)  % Erlang calling Python again",
         py:register_function(double_via_python,
                              fun([X]) -> {ok, R} = py:call('__main__', double, [X]), R end)),
    ok = py:exec(<<"def double(x): return x * 2\n"
                   "def process(x): return erlang.call('double_via_python', x) + 1\n">>),
    show("py:call('__main__', process, [10])", py:call('__main__', process, [10])),
    io:format("~nPython's print() writes to this terminal:~n"),
    ok = py:exec(<<"print('  hello from Python')">>),
    ok.

show(What, Result) ->
    io:format("~s~n   -> ~p~n", [What, Result]).

indent(Text) ->
    [["      ", Line, "\n"] || Line <- string:split(string:trim(Text), "\n", all)].
