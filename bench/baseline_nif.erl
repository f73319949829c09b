%% @private
%% @doc The baselines py_bench measures next to Python: no-op NIF calls,
%% and round trips and copies timed by C threads (bench/baseline_nif.c).
%%
%% The timed functions return a reference at once; a C thread then sends
%% `{Ref, Samples}', one duration in nanoseconds per round after `Warmup'
%% untimed rounds, or `{Ref, {error, Reason}}'. Bad arguments raise
%% `badarg'.
-module(baseline_nif).
-export([noop/0, dirty_noop/0]).
-export([round_trips/5, pong/1, ping_pongs/2, memcpys/3]).
-export_type([channel/0]).
-on_load(load/0).

-opaque channel() :: reference().

load() ->
    erlang:load_nif(filename:join(filename:dirname(code:which(?MODULE)), "baseline_nif"), 0).

%% @doc Does nothing, on a normal scheduler.
-spec noop() -> ok.
noop() -> erlang:nif_error(not_loaded).

%% @doc Does nothing, on a dirty I/O scheduler.
-spec dirty_noop() -> ok.
dirty_noop() -> erlang:nif_error(not_loaded).

%% @doc A C thread sends `{baseline_ping, Channel}' to `Echo', which must
%% answer with `pong(Channel)'; the thread waits on a condition variable,
%% or on an eventfd after spinning up to `SpinNs'. Each round is one
%% message and one wake-up.
-spec round_trips(pid(), condvar | eventfd, non_neg_integer(), non_neg_integer(),
                  pos_integer()) -> reference().
round_trips(_Echo, _Wait, _SpinNs, _Warmup, _N) -> erlang:nif_error(not_loaded).

%% @doc The echo process's answer to a ping: wakes the waiting C thread.
-spec pong(channel()) -> ok.
pong(_Channel) -> erlang:nif_error(not_loaded).

%% @doc Two C threads pass a turn to each other and back through a mutex
%% and two condition variables; each round is one such exchange.
-spec ping_pongs(non_neg_integer(), pos_integer()) -> reference().
ping_pongs(_Warmup, _N) -> erlang:nif_error(not_loaded).

%% @doc `memcpy' of a `Bytes'-byte buffer into another, once per round.
-spec memcpys(pos_integer(), non_neg_integer(), pos_integer()) -> reference().
memcpys(_Bytes, _Warmup, _N) -> erlang:nif_error(not_loaded).
