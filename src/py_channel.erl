%% @doc Channels: messages from Erlang into Python.
%%
%% A channel is a queue of Erlang terms that Python code receives, in
%% order, each once (`erlang.Channel`: `receive`, `try_receive`,
%% `async_receive`, `for` and `async for`). Erlang sends with `send/2`,
%% which copies the term and never waits: a channel holding `max_size`
%% messages answers `busy`. The channel is passed to Python as an argument
%% of `py:call` (or inside one) and comes back as the same term.
%%
%% The channel term is a NIF resource (an Erlang reference) that any
%% process may hold; the channel lives while Erlang or Python holds it. Its
%% owner (the process that made it, unless `owner' says otherwise) is
%% monitored: the owner's death closes it, as it would close a port.
%% Closing refuses new messages; those queued are still received, then
%% Python's receive raises `erlang.ChannelClosed'. See docs/channels.md.
-module(py_channel).

-export([new/0, new/1, send/2, close/1, info/1, is_channel/1]).

-export_type([channel/0, info/0]).

-opaque channel() :: reference().
-type info() :: #{size := non_neg_integer(),
                  max_size := pos_integer() | infinity,
                  closed := boolean(),
                  waiting := non_neg_integer()}.

%% @equiv new(#{})
-spec new() -> {ok, channel()}.
new() ->
    new(#{}).

%% @doc A new, open channel. Options: `max_size' (a positive integer, or
%% `infinity', the default): how many messages it holds before `send/2'
%% answers `busy'; `owner' (a local pid, by default the caller): the
%% process whose death closes it.
-spec new(#{max_size => pos_integer() | infinity, owner => pid()}) ->
          {ok, channel()} | {error, {badarg, opts}}.
new(Opts) when is_map(Opts) ->
    Owner = maps:get(owner, Opts, self()),
    case {maps:keys(maps:without([max_size, owner], Opts)),
          max_size(maps:get(max_size, Opts, infinity)), Owner} of
        {[], MaxSize, Pid} when is_integer(MaxSize), is_pid(Pid), node(Pid) =:= node() ->
            {ok, py_nif:channel_new(MaxSize, Pid)};
        _ ->
            {error, {badarg, opts}}
    end;
new(_Opts) ->
    {error, {badarg, opts}}.

%% 0 is the NIF's "no bound".
max_size(infinity) -> 0;
max_size(N) when is_integer(N), N > 0 -> N;
max_size(_) -> bad.

%% @doc Queues a copy of Term for Python: `ok', `busy' if the channel
%% holds `max_size' messages (Term is not queued), or `{error, closed}'.
%% Never waits.
-spec send(channel(), term()) -> ok | busy | {error, closed | {badarg, channel}}.
send(Channel, Term) ->
    py_nif:channel_send(Channel, Term).

%% @doc Closes the channel: later sends answer `{error, closed}'; Python
%% still receives what was queued, then `erlang.ChannelClosed'. Closing a
%% closed channel is `ok'.
-spec close(channel()) -> ok | {error, {badarg, channel}}.
close(Channel) ->
    py_nif:channel_close(Channel).

%% @doc How many messages wait, the bound, whether it is closed, and how
%% many Python receivers (threads and coroutines) wait for a message.
-spec info(channel()) -> info() | {error, {badarg, channel}}.
info(Channel) ->
    py_nif:channel_info(Channel).

%% @doc Whether Term is a channel of this node.
-spec is_channel(term()) -> boolean().
is_channel(Term) ->
    py_nif:is_channel(Term).
