%% What the suites share: a help module, compiled by Common Test with them.
-module(py_test_lib).

-export([wait_until/2]).

%% Polls Done every 20 ms until it returns true; fails the case, naming
%% what it waited for, if Ms milliseconds pass first. Ms grows with the
%% cases' time limits in slow runs (make valgrind multiplies them by ten).
-spec wait_until(fun(() -> boolean()), non_neg_integer()) -> ok.
wait_until(Done, Ms) ->
    poll(Done, erlang:monotonic_time(millisecond) + Ms * time_multiplier()).

poll(Done, Deadline) ->
    case Done() of
        true ->
            ok;
        false ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> ct:fail({not_done_in_time, Done});
                false -> timer:sleep(20), poll(Done, Deadline)
            end
    end.

%% What scripts/run-tests.sh multiplies the time limits by.
time_multiplier() ->
    case string:to_integer(os:getenv("CT_MULTIPLY_TIMETRAPS", "1")) of
        {N, ""} when N > 0 -> N;
        _ -> 1
    end.
