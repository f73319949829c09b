%% @private
%% @doc The supervisor of the streams of py:stream_start/4 (py_stream), one
%% process per open stream. Streams are `temporary': a stream that ends or
%% fails is not restarted (its owner got `done' or an error). When this
%% supervisor stops, each stream is asked to stop, which ends its Python
%% iterable (its `finally' blocks run).
-module(py_stream_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

%% @doc Starts the supervisor, registered as py_stream_sup.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc The supervisor's specification (supervisor callback).
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Stream = #{id => py_stream, start => {py_stream, start_link, []},
               restart => temporary, shutdown => 5000, type => worker,
               modules => [py_stream]},
    {ok, {#{strategy => simple_one_for_one}, [Stream]}}.
