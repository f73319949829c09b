%% @private
%% @doc No-op NIFs measured as baselines by py_bench.
-module(baseline_nif).
-export([noop/0, dirty_noop/0]).
-on_load(load/0).

load() ->
    erlang:load_nif(filename:join(filename:dirname(code:which(?MODULE)), "baseline_nif"), 0).

-spec noop() -> ok.
noop() -> erlang:nif_error(not_loaded).

-spec dirty_noop() -> ok.
dirty_noop() -> erlang:nif_error(not_loaded).
