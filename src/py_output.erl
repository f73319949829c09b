%% @private
%% @doc Where Python's sys.stdout and sys.stderr write (docs/calls.md,
%% "Output").
%%
%% Each call carries, in its frame (c_src/protocol.h, py.erl's frame/1),
%% the process whose group leader its output goes to, if it goes to one:
%% the caller, by default, so that print() in a call made from a remote
%% shell shows in that shell (whose group leader is on the shell's node).
%% install/1 wraps sys.stdout and sys.stderr of an interpreter
%% (priv/python/erlang_python/output.py) so that a write made in such a
%% call is sent here, to put_chars/1, which the thread waits for; every
%% other write goes to the OS process's stdout and stderr as before.
-module(py_output).

-export([install/1, put_chars/1]).

-define(PY, 'erlang_python.output').

%% @doc Wraps sys.stdout and sys.stderr of the main interpreter (`main')
%% or of an own-GIL context; once.
-spec install(main | py_context:context()) -> ok | {error, term()}.
install(main) ->
    done(py:call(?PY, install, [], #{}, #{timeout => infinity, output => terminal}));
install(Context) ->
    done(py:call(Context, ?PY, install, [], #{timeout => infinity, output => terminal})).

%% @doc The Erlang function _erlang_python.put_chars: writes Text to the
%% group leader of Owner and says whether it could (not when Owner or its
%% group leader is gone).
-spec put_chars(list()) -> boolean().
put_chars([Owner, Text]) when is_pid(Owner), is_binary(Text) ->
    case erlang:process_info(Owner, group_leader) of
        {group_leader, Leader} ->
            try io:put_chars(Leader, Text) of
                ok -> true
            catch
                _:_ -> false
            end;
        undefined ->
            false
    end;
put_chars(_Args) ->
    false.

done({ok, _}) -> ok;
done({error, _} = Error) -> Error.
