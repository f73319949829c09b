%% Where the embedded Python finds code, as a user arranges it: virtual
%% environments made by `python -m venv' with a package installed by pip
%% from a local wheel (never the network), directories added to sys.path,
%% modules reloaded after their source changed, and the application
%% environment's venv, python_path and preload, with the priv/python
%% directory of every loaded application, applied at start.
%%
%% Bad input gets an error of its own from the API, and a warning (or, for
%% a failing preload, an error with its traceback) from a start that goes
%% on without it.
-module(py_paths_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([venv_packages_import_while_it_is_active_and_not_after/1,
         system_site_packages_venv_keeps_the_interpreters_packages/1,
         activating_a_second_venv_replaces_the_first/1,
         concurrent_activations_leave_no_paths_behind/1,
         bad_venvs_are_rejected_and_change_nothing/1,
         add_path_puts_a_directory_in_front_once/1,
         reload_runs_a_changed_module_again/1,
         python_path_env_is_applied_in_order_and_bad_entries_are_logged/1,
         priv_python_of_loaded_applications_is_on_the_path/1,
         venv_env_is_activated_at_start_and_a_bad_one_is_logged/1,
         preload_runs_at_every_start_and_a_failing_one_is_logged/1]).
%% logger handler callback
-export([log/2]).

-define(HANDLER, py_paths_suite).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [venv_packages_import_while_it_is_active_and_not_after,
     system_site_packages_venv_keeps_the_interpreters_packages,
     activating_a_second_venv_replaces_the_first, concurrent_activations_leave_no_paths_behind,
     bad_venvs_are_rejected_and_change_nothing,
     add_path_puts_a_directory_in_front_once, reload_runs_a_changed_module_again,
     python_path_env_is_applied_in_order_and_bad_entries_are_logged,
     priv_python_of_loaded_applications_is_on_the_path,
     venv_env_is_activated_at_start_and_a_bad_one_is_logged,
     preload_runs_at_every_start_and_a_failing_one_is_logged].

%% Two venvs made with the embedded Python: `venv', with pip and a local
%% wheel installed into it, and `system_venv', made with
%% --system-site-packages and no pip.
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Dir = ?config(priv_dir, Config),
    {ok, Exe} = py:eval(<<"__import__('sys').executable">>),
    Venv = filename:join(Dir, "venv"),
    SystemVenv = filename:join(Dir, "system_venv"),
    ok = py_test_lib:command_ok(Exe, ["-m", "venv", Venv], ".", []),
    ok = py_test_lib:command_ok(Exe, ["-m", "venv", "--without-pip", "--system-site-packages",
                                      SystemVenv], ".", []),
    Wheel = make_wheel(Dir),
    ok = py_test_lib:command_ok(filename:join([Venv, "bin", "python"]),
                                ["-m", "pip", "install", "--no-index", "--no-deps",
                                 "--disable-pip-version-check", "--quiet", Wheel], ".", []),
    {ok, SysPath} = py:eval(<<"list(__import__('sys').path)">>),
    [{venv, list_to_binary(Venv)}, {system_venv, list_to_binary(SystemVenv)},
     {sys_path, SysPath} | Config].

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    ok = logger:add_handler(?HANDLER, ?MODULE,
                            #{config => #{pid => self()}, filter_default => stop,
                              filters => [{ours, {fun logger_filters:domain/2,
                                                  {log, sub, [erlang_python]}}}]}),
    Config.

%% No venv stays active, and sys.path is as the suite found it.
end_per_testcase(_Case, Config) ->
    _ = logger:remove_handler(?HANDLER),
    case whereis(py_logger) of
        undefined -> {ok, _} = application:ensure_all_started(erlang_python);
        _ -> ok
    end,
    ok = py:deactivate_venv(),
    {ok, none} = py:eval(<<"__import__('sys').path.__setitem__(slice(None), p)">>,
                         #{p => ?config(sys_path, Config)}),
    ok.

log(Event, #{config := #{pid := Pid}}) ->
    Pid ! {logged, Event},
    ok.

%%% Cases

venv_packages_import_while_it_is_active_and_not_after(Config) ->
    Venv = ?config(venv, Config),
    SitePackages = site_packages(Venv),
    Before = sys_path(),
    none = py:venv_info(),
    {error, {'ModuleNotFoundError', _}} = py:call(vpkg_demo, hello, []),
    ok = py:activate_venv(Venv),
    Extra = filename:join(SitePackages, "vpkg_extra"),
    #{path := Venv, site_packages := SitePackages, system_site_packages := false,
      paths := Added} = py:venv_info(),
    %% The site-packages, and what the wheel's .pth file adds, first.
    ?assertEqual([SitePackages, Extra], Added),
    [SitePackages, Extra | _] = sys_path(),
    {ok, <<"hello from the venv">>} = py:call(vpkg_demo, hello, []),
    {ok, <<"by the .pth file">>} = py:call(vpkg_extra_mod, where, []),
    {ok, Venv} = py:eval(<<"__import__('sys').prefix">>),
    {ok, Venv} = py:eval(<<"__import__('os').environ['VIRTUAL_ENV']">>),
    %% Its own python would not see the interpreter's site-packages.
    {ok, []} = py:eval(<<"[p for p in __import__('site').getsitepackages([__import__('sys').base_prefix]) "
                         "if p in __import__('sys').path]">>),
    ok = py:deactivate_venv(),
    none = py:venv_info(),
    ?assertEqual(Before, sys_path()),
    {ok, false} = py:eval(<<"'VIRTUAL_ENV' in __import__('os').environ">>),
    {ok, Prefix} = py:eval(<<"__import__('sys').base_prefix">>),
    {ok, Prefix} = py:eval(<<"__import__('sys').prefix">>),
    %% What was imported stays; what was not cannot be any more.
    {ok, <<"hello from the venv">>} = py:call(vpkg_demo, hello, []),
    {error, {'ModuleNotFoundError', _}} = py:call(vpkg_late, hello, []),
    %% Deactivating with none active is nothing.
    ok = py:deactivate_venv().

system_site_packages_venv_keeps_the_interpreters_packages(Config) ->
    Venv = ?config(system_venv, Config),
    ok = py:activate_venv(Venv),
    #{system_site_packages := true, site_packages := SitePackages} = py:venv_info(),
    [SitePackages | _] = sys_path(),
    {ok, []} = py:eval(<<"[p for p in __import__('site').getsitepackages([__import__('sys').base_prefix]) "
                         "if p not in __import__('sys').path and __import__('os').path.isdir(p)]">>),
    {ok, <<"[1]">>} = py:eval(<<"__import__('json').dumps([1])">>).

activating_a_second_venv_replaces_the_first(Config) ->
    Before = sys_path(),
    ok = py:activate_venv(?config(venv, Config)),
    ok = py:activate_venv(?config(system_venv, Config)),
    #{path := Second, paths := [SecondSite]} = py:venv_info(),
    ?assertEqual(?config(system_venv, Config), Second),
    ?assertEqual([SecondSite | Before], sys_path()),
    ok = py:deactivate_venv(),
    ?assertEqual(Before, sys_path()).

%% Eight processes activating the two venvs at once, twenty times each:
%% one venv is active at the end, with its own paths only, and
%% deactivating it gives sys.path back as it was.
concurrent_activations_leave_no_paths_behind(Config) ->
    Before = sys_path(),
    Venvs = [?config(venv, Config), ?config(system_venv, Config)],
    py_test_lib:fan_out(fun(I) ->
                                [ok = py:activate_venv(lists:nth((I + J) rem 2 + 1, Venvs))
                                 || J <- lists:seq(1, 20)]
                        end, lists:seq(1, 8)),
    #{path := Active, paths := Paths} = py:venv_info(),
    [Other] = Venvs -- [Active],
    Now = sys_path(),
    ?assertEqual(Paths, lists:sublist(Now, length(Paths))),
    ?assertEqual([], [P || P <- Now, binary:longest_common_prefix([P, Other]) =:= byte_size(Other)]),
    ok = py:deactivate_venv(),
    ?assertEqual(Before, sys_path()).

bad_venvs_are_rejected_and_change_nothing(Config) ->
    Dir = list_to_binary(?config(priv_dir, Config)),
    Missing = <<Dir/binary, "/no_such_venv">>,
    {error, {not_a_venv, Missing}} = py:activate_venv(Missing),
    %% A directory with no pyvenv.cfg.
    NoConfig = <<Dir/binary, "/not_a_venv">>,
    ok = file:make_dir(NoConfig),
    {error, {not_a_venv, NoConfig}} = py:activate_venv(NoConfig),
    %% A venv of another Python.
    Other = <<Dir/binary, "/py27_venv">>,
    ok = filelib:ensure_dir(<<Other/binary, "/lib/python2.7/site-packages/">>),
    ok = file:write_file(<<Other/binary, "/pyvenv.cfg">>,
                         <<"home = /usr/bin\ninclude-system-site-packages = false\n"
                           "version = 2.7.18\n">>),
    Ours = major_minor(py:version()),
    {error, {python_version, <<"2.7">>, Ours}} = py:activate_venv(Other),
    %% A file, and no path at all.
    File = <<Dir/binary, "/a_file">>,
    ok = file:write_file(File, <<>>),
    {error, {not_a_venv, File}} = py:activate_venv(File),
    [{error, {badarg, path}} = py:activate_venv(Bad) || Bad <- [123, <<>>, "", [foo], #{}]],
    %% None of it touched the venv active before.
    ok = py:activate_venv(?config(venv, Config)),
    Active = py:venv_info(),
    Path = sys_path(),
    {error, {not_a_venv, Missing}} = py:activate_venv(Missing),
    {error, {python_version, _, _}} = py:activate_venv(Other),
    ?assertEqual(Active, py:venv_info()),
    ?assertEqual(Path, sys_path()).

add_path_puts_a_directory_in_front_once(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "added"),
    ok = file:make_dir(Dir),
    ok = file:write_file(filename:join(Dir, "paths_suite_added.py"), <<"def f(): return 7\n">>),
    {error, {'ModuleNotFoundError', _}} = py:call(paths_suite_added, f, []),
    ok = py:add_path(Dir),
    Bin = list_to_binary(Dir),
    [Bin | Rest] = sys_path(),
    {ok, 7} = py:call(paths_suite_added, f, []),
    %% Again: not twice; a binary and a relative path name the same.
    ok = py:add_path(Bin),
    {ok, Cwd} = file:get_cwd(),
    {ok, Relative} = relative(Dir, Cwd),
    ok = py:add_path(Relative),
    [Bin | Rest] = sys_path(),
    %% Bad paths.
    File = filename:join(Dir, "paths_suite_added.py"),
    FileBin = list_to_binary(File),
    {error, {not_a_directory, FileBin}} = py:add_path(File),
    {error, {not_a_directory, <<"/no/such/dir">>}} = py:add_path(<<"/no/such/dir">>),
    [{error, {badarg, path}} = py:add_path(Bad) || Bad <- [123, <<>>, [foo], {a}]],
    [Bin | Rest] = sys_path().

reload_runs_a_changed_module_again(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "reloaded"),
    ok = file:make_dir(Dir),
    Module = filename:join(Dir, "paths_suite_reloaded.py"),
    ok = file:write_file(Module, <<"def version(): return 1\n">>),
    ok = py:add_path(Dir),
    {error, {not_loaded, paths_suite_reloaded}} = py:reload(paths_suite_reloaded),
    {ok, 1} = py:call(paths_suite_reloaded, version, []),
    %% Python checks a source's mtime in seconds: the new source is newer.
    ok = file:write_file(Module, <<"def version(): return 2\n">>),
    ok = file:change_time(Module, calendar:gregorian_seconds_to_datetime(
                                    calendar:datetime_to_gregorian_seconds(
                                      calendar:local_time()) + 5)),
    {ok, 1} = py:call(paths_suite_reloaded, version, []),
    ok = py:reload(paths_suite_reloaded),
    {ok, 2} = py:call(paths_suite_reloaded, version, []),
    %% A broken source: the error, and the module as it was.
    ok = file:write_file(Module, <<"def version(:\n">>),
    ok = file:change_time(Module, calendar:gregorian_seconds_to_datetime(
                                    calendar:datetime_to_gregorian_seconds(
                                      calendar:local_time()) + 10)),
    {error, {'SyntaxError', _}} = py:reload(<<"paths_suite_reloaded">>),
    {ok, 2} = py:call(paths_suite_reloaded, version, []),
    %% A dotted name, given as a string.
    ok = py:exec(<<"import email.mime.text">>),
    ok = py:reload("email.mime.text"),
    {error, {not_loaded, <<"no.such.module">>}} = py:reload(<<"no.such.module">>),
    [{error, {badarg, module}} = py:reload(Bad) || Bad <- [123, <<>>, [foo]]].

python_path_env_is_applied_in_order_and_bad_entries_are_logged(Config) ->
    Base = ?config(priv_dir, Config),
    [A, B] = [filename:join(Base, D) || D <- ["env_a", "env_b"]],
    [ok = file:make_dir(D) || D <- [A, B]],
    ok = file:write_file(filename:join(A, "paths_suite_env.py"), <<"where = 'a'\n">>),
    ok = file:write_file(filename:join(B, "paths_suite_env.py"), <<"where = 'b'\n">>),
    try
        py_test_lib:restart_with(python_path, [A, list_to_binary(B)]),
        [BinA, BinB | _] = sys_path(),
        ?assertEqual({list_to_binary(A), list_to_binary(B)}, {BinA, BinB}),
        {ok, <<"a">>} = py:eval(<<"__import__('paths_suite_env').where">>),
        %% A restart adds them no second time.
        py_test_lib:restart_app(),
        [BinA, BinB | _] = sys_path(),
        1 = length([P || P <- sys_path(), P =:= BinA]),
        %% Bad entries: each a warning; the good one is still added.
        ok = py:exec(<<"import sys\nsys.path[:] = [p for p in sys.path if not p.endswith('/env_b')]">>),
        py_test_lib:restart_with(python_path, ["/no/such/dir", 123, B]),
        {match, _} = re:run(next_warning(), "python_path .*badarg"),
        py_test_lib:restart_with(python_path, ["/no/such/dir", B]),
        {match, _} = re:run(next_warning(), "python_path \"/no/such/dir\" not used: .*not_a_directory"),
        [BinB | _] = sys_path(),
        py_test_lib:restart_with(python_path, not_a_list),
        {match, _} = re:run(next_warning(), "python_path not_a_list not used")
    after
        py_test_lib:restart_without(python_path)
    end.

priv_python_of_loaded_applications_is_on_the_path(Config) ->
    Root = filename:join(?config(priv_dir, Config), "paths_suite_app"),
    Ebin = filename:join(Root, "ebin"),
    PrivPython = filename:join([Root, "priv", "python"]),
    ok = filelib:ensure_dir(filename:join(Ebin, "x")),
    ok = filelib:ensure_dir(filename:join(PrivPython, "x")),
    ok = file:write_file(filename:join(Ebin, "paths_suite_app.app"),
                         <<"{application, paths_suite_app, [{vsn, \"1\"}, {modules, []}, "
                           "{registered, []}, {applications, [kernel, stdlib]}]}.\n">>),
    ok = file:write_file(filename:join(PrivPython, "paths_suite_app_py.py"),
                         <<"def name(): return 'from priv/python'\n">>),
    true = code:add_patha(Ebin),
    try
        ok = application:load(paths_suite_app),
        py_test_lib:restart_app(),
        Bin = list_to_binary(PrivPython),
        true = lists:member(Bin, sys_path()),
        {ok, <<"from priv/python">>} = py:call(paths_suite_app_py, name, [])
    after
        application:unload(paths_suite_app),
        code:del_path(Ebin)
    end.

venv_env_is_activated_at_start_and_a_bad_one_is_logged(Config) ->
    Venv = ?config(venv, Config),
    try
        py_test_lib:restart_with(venv, Venv),
        #{path := Venv} = py:venv_info(),
        {ok, <<"hello from the venv">>} = py:call(vpkg_demo, hello, []),
        py_test_lib:restart_with(venv, "/no/such/venv"),
        {match, _} = re:run(next_warning(), "venv \"/no/such/venv\" not used: .*not_a_venv"),
        %% The application started: calls work.
        {ok, 4.0} = py:call(math, sqrt, [16])
    after
        py_test_lib:restart_without(venv)
    end.

preload_runs_at_every_start_and_a_failing_one_is_logged(_Config) ->
    try
        py_test_lib:restart_with(preload, <<"paths_suite_starts = globals().get('paths_suite_starts', 0) + 1\n"
                                            "import logging\n"
                                            "logging.getLogger('paths_suite').warning('preloaded')">>),
        {ok, N} = py:eval(<<"paths_suite_starts">>),
        py_test_lib:restart_app(),
        {ok, M} = py:eval(<<"paths_suite_starts">>),
        ?assertEqual(N + 1, M),
        %% It runs once the application's processes do: its logging reaches
        %% logger (py_logger) rather than stderr.
        ok = logger:add_handler_filter(?HANDLER, python, {fun logger_filters:domain/2,
                                                          {log, sub, [python]}}),
        py_test_lib:restart_app(),
        receive
            {logged, #{meta := #{domain := [python], python_logger := <<"paths_suite">>}}} -> ok
        after py_test_lib:scaled(5000) -> ct:fail(preload_logging_not_in_logger)
        end,
        %% Raising: logged with its traceback; the application is up.
        py_test_lib:restart_with(preload, <<"def paths_suite_bad():\n"
                                            "    raise RuntimeError('no preload today')\n"
                                            "paths_suite_bad()\n">>),
        Error = next_error(),
        {match, _} = re:run(Error, "preload failed: .*RuntimeError.*no preload today"),
        {match, _} = re:run(Error, "Traceback .*paths_suite_bad", [dotall]),
        {ok, 4.0} = py:call(math, sqrt, [16]),
        py_test_lib:restart_with(preload, 123),
        {match, _} = re:run(next_error(), "preload failed: .*badarg"),
        {ok, 4.0} = py:call(math, sqrt, [16])
    after
        py_test_lib:restart_without(preload)
    end.

%%% Helpers

%% A wheel of the package vpkg_demo, written by hand (a wheel is a zip
%% file), so that pip installs it with nothing to build: vpkg_demo, a
%% module vpkg_late that nothing imports while the venv is active, and a
%% .pth file that puts vpkg_extra/ of the site-packages on sys.path.
make_wheel(Dir) ->
    Info = "vpkg_demo-1.0.dist-info/",
    Files = [{"vpkg_demo/__init__.py", <<"def hello(): return 'hello from the venv'\n">>},
             {"vpkg_late.py", <<"def hello(): return 'late'\n">>},
             {"vpkg_extra/vpkg_extra_mod.py", <<"def where(): return 'by the .pth file'\n">>},
             {"vpkg_demo.pth", <<"vpkg_extra\n">>},
             {Info ++ "METADATA", <<"Metadata-Version: 2.1\nName: vpkg-demo\nVersion: 1.0\n">>},
             {Info ++ "WHEEL", <<"Wheel-Version: 1.0\nGenerator: py_paths_SUITE\n"
                                 "Root-Is-Purelib: true\nTag: py3-none-any\n">>}],
    Record = [[Name, ",,\n"] || {Name, _} <- Files] ++ [Info, "RECORD,,\n"],
    Wheel = filename:join(Dir, "vpkg_demo-1.0-py3-none-any.whl"),
    {ok, _} = zip:create(Wheel, [{Name, Data} || {Name, Data} <- Files]
                                ++ [{Info ++ "RECORD", iolist_to_binary(Record)}]),
    Wheel.

site_packages(Venv) ->
    iolist_to_binary([Venv, "/lib/python", major_minor(py:version()), "/site-packages"]).

major_minor(Version) ->
    [Major, Minor | _] = binary:split(Version, <<".">>, [global]),
    <<Major/binary, ".", Minor/binary>>.

sys_path() ->
    {ok, Path} = py:eval(<<"list(__import__('sys').path)">>),
    Path.

relative(Dir, Cwd) ->
    case lists:prefix(Cwd ++ "/", Dir) of
        true -> {ok, lists:nthtail(length(Cwd) + 1, Dir)};
        false -> {ok, Dir}
    end.

%% erlang_python's next warning or error, as text.
next_warning() ->
    next_logged(warning).

next_error() ->
    next_logged(error).

next_logged(Level) ->
    receive
        {logged, #{level := Level, msg := {Format, Args}, meta := #{domain := [erlang_python]}}} ->
            unicode:characters_to_binary(io_lib:format(Format, Args))
    after py_test_lib:scaled(5000) ->
        ct:fail({nothing_logged_at, Level, erlang:process_info(self(), messages)})
    end.
