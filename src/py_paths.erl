%% @private
%% @doc Where the embedded Python finds code (docs/environments.md):
%% directories put in front of `sys.path', a virtual environment activated
%% and deactivated, a loaded module executed again; and, at application
%% start, the environment's `venv', `python_path' and `preload', with the
%% `priv/python' directory of every loaded application.
%%
%% Arguments are checked here, on the Erlang side, so that each bad one
%% has an error of its own; priv/python/erlang_python/paths.py makes the
%% changes to the interpreter and remembers what a venv changed, since the
%% interpreter, not the application, is what lives on across restarts.
-module(py_paths).

-export([add_path/1, activate_venv/1, deactivate_venv/0, venv_info/0, reload/1]).
-export([apply_env/0, preload/0]).

-export_type([venv_info/0]).

-define(PY, 'erlang_python.paths').

-type venv_info() :: #{path := binary(), site_packages := binary(),
                       system_site_packages := boolean(), paths := [binary()]}.

%% @doc Puts the directory `Path' in front of `sys.path', unless it is
%% on it already.
-spec add_path(file:filename_all()) ->
          ok | {error, {not_a_directory, binary()} | {badarg, path} | term()}.
add_path(Path) ->
    add_path(Path, default).

%% @doc Activates the virtual environment whose root is `Path' (made by
%% `python -m venv' for this Python's version).
-spec activate_venv(file:filename_all()) ->
          ok | {error, {not_a_venv, binary()} | {python_version, binary(), binary()}
                | {badarg, path} | term()}.
activate_venv(Path) ->
    case directory(Path) of
        {ok, Root} ->
            case venv(Root) of
                {ok, SitePackages, IncludeSystem} ->
                    done(call(activate, [Root, SitePackages, IncludeSystem], default));
                not_a_venv ->
                    {error, {not_a_venv, unicode:characters_to_binary(Path)}};
                {error, _} = Error ->
                    Error
            end;
        {error, {not_a_directory, Given}} ->
            {error, {not_a_venv, Given}};
        {error, _} = Error ->
            Error
    end.

%% @doc Deactivates the active virtual environment, if there is one.
-spec deactivate_venv() -> ok | {error, term()}.
deactivate_venv() ->
    done(call(deactivate, [], default)).

%% @doc The active virtual environment: its root, its site-packages, whether
%% it sees the interpreter's own site-packages, and the paths it added to
%% `sys.path'; `none' when no venv is active.
-spec venv_info() -> venv_info() | none | {error, term()}.
venv_info() ->
    case call(info, [], default) of
        {ok, {Root, SitePackages, IncludeSystem, Paths}} ->
            #{path => Root, site_packages => SitePackages,
              system_site_packages => IncludeSystem, paths => Paths};
        {ok, _None} ->
            none;
        {error, _} = Error ->
            Error
    end.

%% @doc Executes the loaded module `Module' again (`importlib.reload'), so
%% that its new source takes effect in the main interpreter.
-spec reload(atom() | unicode:chardata()) -> ok | {error, {not_loaded, term()} | term()}.
reload(Module) ->
    case name(Module) of
        {ok, Name} ->
            case call(reload, [Name], default) of
                {ok, true} -> ok;
                {ok, false} -> {error, {not_loaded, Module}};
                {error, _} = Error -> Error
            end;
        error ->
            {error, {badarg, module}}
    end.

%% @doc At application start, before any context: the environment's
%% `venv', then the `priv/python' directory of every loaded application
%% that has one, then the environment's `python_path' (so that, in front
%% of sys.path, they come in the reverse order). A bad entry is logged and
%% skipped: the application starts without it.
-spec apply_env() -> ok.
apply_env() ->
    case application:get_env(erlang_python, venv) of
        {ok, Venv} -> warn_on_error(venv, Venv, activate_venv(Venv));
        undefined -> ok
    end,
    lists:foreach(fun(Dir) -> warn_on_error(priv_python, Dir, add_path(Dir, infinity)) end,
                  application_priv_dirs()),
    Paths = application:get_env(erlang_python, python_path, []),
    case is_list(Paths) andalso lists:all(fun is_path/1, Paths) of
        true ->
            lists:foreach(fun(Path) ->
                                  warn_on_error(python_path, Path, add_path(Path, infinity))
                          end, lists:reverse(Paths));
        false ->
            warn_on_error(python_path, Paths, {error, {badarg, python_path}})
    end.

%% @doc At application start, once its processes run: the environment's
%% `preload', Python statements run in `__main__'. A failure is logged
%% with its traceback; the application starts anyway.
-spec preload() -> ok.
preload() ->
    case application:get_env(erlang_python, preload) of
        {ok, Code} ->
            case py:exec(Code, infinity) of
                ok ->
                    ok;
                {error, Reason} ->
                    logger:error("erlang_python: preload failed: ~0p~n~ts",
                                 [Reason, case py:last_traceback() of
                                              undefined -> "";
                                              Traceback -> Traceback
                                          end],
                                 #{domain => [erlang_python]})
            end;
        undefined ->
            ok
    end.

%%% Internals

add_path(Path, Timeout) ->
    case directory(Path) of
        {ok, Dir} -> done(call(add, [Dir], Timeout));
        {error, _} = Error -> Error
    end.

warn_on_error(Key, What, {error, Reason}) ->
    logger:warning("erlang_python: ~p ~0p not used: ~0p", [Key, What, Reason],
                   #{domain => [erlang_python]});
warn_on_error(_Key, _What, _Result) ->
    ok.

%% The priv/python directories of the loaded applications but this one
%% (whose own is put on sys.path by py:configure/0).
application_priv_dirs() ->
    [Dir || {App, _, _} <- application:loaded_applications(), App =/= erlang_python,
            Priv <- [code:priv_dir(App)], is_list(Priv),
            Dir <- [unicode:characters_to_binary(filename:join(Priv, "python"))],
            filelib:is_dir(Dir)].

%% The root's site-packages for this Python, and whether the venv sees the
%% interpreter's own, from its pyvenv.cfg; or why it is no venv for us.
venv(Root) ->
    case file:read_file(filename:join(Root, "pyvenv.cfg")) of
        {ok, Config} ->
            Settings = settings(Config),
            Ours = major_minor(py:version()),
            Theirs = major_minor(maps:get(<<"version">>, Settings,
                                          maps:get(<<"version_info">>, Settings, <<>>))),
            SitePackages = filename:join([Root, "lib", <<"python", Ours/binary>>,
                                          "site-packages"]),
            case {Theirs, filelib:is_dir(SitePackages)} of
                {Ours, true} ->
                    {ok, SitePackages,
                     maps:get(<<"include-system-site-packages">>, Settings, <<"false">>)
                         =:= <<"true">>};
                {Ours, false} ->
                    not_a_venv;
                _ ->
                    {error, {python_version, Theirs, Ours}}
            end;
        {error, _} ->
            not_a_venv
    end.

%% "key = value" lines, keys and values trimmed; the rest ignored.
settings(Config) ->
    maps:from_list([{string:trim(K), string:lowercase(string:trim(V))}
                    || Line <- binary:split(Config, [<<"\n">>, <<"\r\n">>], [global]),
                       [K, V] <- [binary:split(Line, <<"=">>)]]).

%% <<"3.11">> of <<"3.11.2">> (or <<"3.11.2.final.0">>).
major_minor(Version) ->
    case binary:split(Version, <<".">>, [global]) of
        [Major, Minor | _] -> <<Major/binary, ".", Minor/binary>>;
        _ -> Version
    end.

%% An absolute directory as a binary, or why not.
directory(Path) ->
    case is_path(Path) of
        true ->
            Given = unicode:characters_to_binary(Path),
            Dir = filename:absname(Given),
            case filelib:is_dir(Dir) of
                true -> {ok, Dir};
                false -> {error, {not_a_directory, Given}}
            end;
        false ->
            {error, {badarg, path}}
    end.

is_path(Path) when is_binary(Path); is_list(Path) ->
    try unicode:characters_to_binary(Path) of
        Text when is_binary(Text), Text =/= <<>> -> true;
        _ -> false
    catch
        error:_ -> false
    end;
is_path(_Path) ->
    false.

name(Module) when is_atom(Module) ->
    {ok, atom_to_binary(Module, utf8)};
name(Module) ->
    case is_path(Module) of
        true -> {ok, unicode:characters_to_binary(Module)};
        false -> error
    end.

call(Function, Args, default) ->
    py:call(?PY, Function, Args);
call(Function, Args, Timeout) ->
    py:call(?PY, Function, Args, #{}, Timeout).

done({ok, _}) -> ok;
done({error, _} = Error) -> Error.
