%% @private
%% @doc The NIF stubs. Use the `py' module; these functions are its
%% implementation and may change without notice.
%%
%% The library is found in the application's priv directory, or at the path
%% in the environment variable `ERLANG_PYTHON_NIF' (without the `.so'), which
%% is how the test matrix loads builds made for other Pythons.
-module(py_nif).

-export([call/7, eval/5, exec/3, cancel/1, stats/0]).
-export([gc_notice/2]).
-export([call_method/7, getattr/5, to_term/3, release/3, is_ref/1]).
-export([context_new/2, context_stop/2, context_interrupt/1, context_info/1, is_context/1,
         subinterp_supported/0, context_call/8, context_eval/6, context_exec/4]).
-export([channel_new/2, channel_send/2, channel_close/1, channel_info/1, is_channel/1]).
-export([worker_bind/2, worker_handler/1, worker_reply/3, worker_async_reply/3]).
-export([set_dirty_limit/1, set_pool_limit/1, set_max_depth/1, set_none_atom/1,
         set_bytes_tuples/1]).
-export([priv_dir/0]).

-on_load(load/0).

-spec load() -> ok | {error, term()}.
load() ->
    AsyncSource = unicode:characters_to_binary(filename:join(priv_dir(), "erlang_async.py")),
    erlang:load_nif(library_path(), {erlang:system_info(dirty_io_schedulers), AsyncSource}).

library_path() ->
    case os:getenv("ERLANG_PYTHON_NIF") of
        false -> filename:join(priv_dir(), "py_nif");
        Path -> filename:rootname(Path, ".so")
    end.

%% @doc The application's priv directory, also when it is not loaded as an
%% application (a bare code path).
-spec priv_dir() -> file:filename().
priv_dir() ->
    case code:priv_dir(erlang_python) of
        {error, bad_name} ->
            Ebin = filename:dirname(code:which(?MODULE)),
            filename:join(filename:dirname(Ebin), "priv");
        Dir ->
            Dir
    end.

%% Frame: how deep in Python -> Erlang -> Python nesting the caller is,
%% with, when the call's output goes to a group leader, the process whose
%% group leader that is (frame(), c_src/protocol.h).
%% Return: value (the result converted) or ref (a reference to it).

-type frame() :: non_neg_integer() | {non_neg_integer(), pid()}.
-spec call(py:name(), py:name(), list(), map(), timeout(), frame(), value | ref) ->
          term().
call(_Module, _Function, _Args, _Kwargs, _Timeout, _Frame, _Return) ->
    erlang:nif_error(not_loaded).

-spec eval(binary(), map(), timeout(), frame(), value | ref) -> term().
eval(_Code, _Locals, _Timeout, _Frame, _Return) -> erlang:nif_error(not_loaded).

-spec call_method(py:ref(), py:name(), list(), map(), timeout(), frame(),
                  value | ref) -> term().
call_method(_Ref, _Name, _Args, _Kwargs, _Timeout, _Frame, _Return) ->
    erlang:nif_error(not_loaded).

-spec getattr(py:ref(), py:name(), timeout(), frame(), value | ref) -> term().
getattr(_Ref, _Name, _Timeout, _Frame, _Return) -> erlang:nif_error(not_loaded).

-spec to_term(py:ref(), timeout(), frame()) -> term().
to_term(_Ref, _Timeout, _Frame) -> erlang:nif_error(not_loaded).

-spec release(py:ref(), timeout(), frame()) -> term().
release(_Ref, _Timeout, _Frame) -> erlang:nif_error(not_loaded).

-spec is_ref(term()) -> boolean().
is_ref(_Term) -> erlang:nif_error(not_loaded).

-spec context_new(worker | owngil, pid()) -> {ok, py_context:context()} | {error, term()}.
context_new(_Mode, _Owner) -> erlang:nif_error(not_loaded).

-spec context_stop(py_context:context(), reference()) ->
          stopped | stopping | {error, enomem | {badarg, context}}.
context_stop(_Context, _Ref) -> erlang:nif_error(not_loaded).

-spec context_interrupt(py_context:context()) -> ok | {error, context_stopped | {badarg, context}}.
context_interrupt(_Context) -> erlang:nif_error(not_loaded).

-spec context_info(py_context:context()) -> map() | {error, {badarg, context}}.
context_info(_Context) -> erlang:nif_error(not_loaded).

-spec is_context(term()) -> boolean().
is_context(_Term) -> erlang:nif_error(not_loaded).

-spec subinterp_supported() -> boolean().
subinterp_supported() -> erlang:nif_error(not_loaded).

-spec context_call(py_context:context(), py:name(), py:name(), list(), map(), timeout(),
                   frame(), value | ref) -> term().
context_call(_Context, _Module, _Function, _Args, _Kwargs, _Timeout, _Frame, _Return) ->
    erlang:nif_error(not_loaded).

-spec context_eval(py_context:context(), binary(), map(), timeout(), frame(),
                   value | ref) -> term().
context_eval(_Context, _Code, _Locals, _Timeout, _Frame, _Return) -> erlang:nif_error(not_loaded).

-spec context_exec(py_context:context(), binary(), timeout(), frame()) -> term().
context_exec(_Context, _Code, _Timeout, _Frame) -> erlang:nif_error(not_loaded).

-spec channel_new(non_neg_integer(), pid()) -> py_channel:channel() | {error, {badarg, atom()}}.
channel_new(_MaxSize, _Owner) -> erlang:nif_error(not_loaded).

-spec channel_send(term(), term()) -> ok | busy | {error, closed | {badarg, channel}}.
channel_send(_Channel, _Term) -> erlang:nif_error(not_loaded).

-spec channel_close(term()) -> ok | {error, {badarg, channel}}.
channel_close(_Channel) -> erlang:nif_error(not_loaded).

-spec channel_info(term()) -> py_channel:info() | {error, {badarg, channel}}.
channel_info(_Channel) -> erlang:nif_error(not_loaded).

-spec is_channel(term()) -> boolean().
is_channel(_Term) -> erlang:nif_error(not_loaded).

-spec exec(binary(), timeout(), frame()) -> term().
exec(_Code, _Timeout, _Frame) -> erlang:nif_error(not_loaded).

-spec cancel(reference()) -> sent | cancelled.
cancel(_Job) -> erlang:nif_error(not_loaded).

%% A term (a resource) that sends Message to Pid once the garbage
%% collector has freed every copy of it on this node.
-spec gc_notice(pid(), term()) -> reference() | {error, enomem}.
gc_notice(_Pid, _Message) -> erlang:nif_error(not_loaded).

-spec worker_bind(reference(), pid()) -> ok | {error, handler_died}.
worker_bind(_Worker, _Handler) -> erlang:nif_error(not_loaded).

-spec worker_handler(reference()) -> {ok, pid()} | none.
worker_handler(_Worker) -> erlang:nif_error(not_loaded).

-spec worker_reply(reference(), non_neg_integer(), term()) -> ok | stale.
worker_reply(_Worker, _Serial, _Reply) -> erlang:nif_error(not_loaded).

-spec worker_async_reply(reference(), pos_integer(), term()) -> ok.
worker_async_reply(_Worker, _Id, _Reply) -> erlang:nif_error(not_loaded).

-spec set_max_depth(pos_integer()) -> ok.
set_max_depth(_Frame) -> erlang:nif_error(not_loaded).

%% @doc Whether a `{bytes, Bin}' tuple becomes Python bytes.
-spec set_bytes_tuples(boolean()) -> ok.
set_bytes_tuples(_Bool) -> erlang:nif_error(not_loaded).

%% @doc What Python's None becomes: `none', `nil' or `undefined'.
-spec set_none_atom(none | nil | undefined) -> ok.
set_none_atom(_Atom) -> erlang:nif_error(not_loaded).

-spec set_dirty_limit(non_neg_integer()) -> ok.
set_dirty_limit(_Limit) -> erlang:nif_error(not_loaded).

-spec set_pool_limit(pos_integer()) -> ok.
set_pool_limit(_Limit) -> erlang:nif_error(not_loaded).

-spec stats() -> map().
stats() -> erlang:nif_error(not_loaded).
