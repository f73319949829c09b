%% The messages between the C thread workers (c_src/worker.c builds the
%% requests) and the Erlang processes that serve them (py_coordinator,
%% py_handler), and the replies those processes give back through
%% py_nif:worker_reply/3 and py_nif:worker_async_reply/3.
%%
%% Names say what a message means. A "call" here is a call FROM Python TO
%% Erlang (erlang.call), the opposite of py:call. c_src/protocol.h is the
%% same table for the C side: the tags below are atoms made by c_src/atoms.h,
%% and change together with them.
%%
%% Flow: a Python thread sends its request straight to its worker's
%% handler; a worker with no handler yet (or whose handler has died) wraps
%% the request in ?UNBOUND_REQUEST_MSG and sends it to the registered
%% py_coordinator, which starts a handler, binds the worker to it
%% (py_nif:worker_bind/2) and forwards the request.

-ifndef(PY_PROTOCOL_HRL).
-define(PY_PROTOCOL_HRL, true).

%% ---- tags ---------------------------------------------------------------

%% erlang.call from Python: the thread waits for the reply.
-define(ERLANG_CALL, erlang_call).
%% erlang.async_call from Python: any number in flight per thread.
-define(ERLANG_ASYNC_CALL, erlang_async_call).
%% An awaitable of erlang.async_call was cancelled in Python.
-define(ERLANG_ASYNC_CANCEL, erlang_async_cancel).
%% A request from a worker that has no handler, to the coordinator.
-define(UNBOUND_REQUEST, unbound_request).

%% ---- requests (C -> Erlang) ---------------------------------------------

%% Run function Name with Args and answer with worker_reply(Worker, Serial,
%% Reply). Serial numbers the thread's sync requests: a reply to an earlier
%% one (the thread stopped waiting) is refused as stale. Frame (frame()
%% below) is how deep in Python -> Erlang -> Python nesting the request was
%% made, and where the output of the call that made it goes.
-define(ERLANG_CALL_MSG(Worker, Serial, Name, Args, Frame),
        {?ERLANG_CALL, Worker, Serial, Name, Args, Frame}).

%% Run function Name with Args and answer with worker_async_reply(Worker,
%% Id, Reply). Id numbers the thread's async calls.
-define(ERLANG_ASYNC_CALL_MSG(Worker, Id, Name, Args, Frame),
        {?ERLANG_ASYNC_CALL, Worker, Id, Name, Args, Frame}).

%% Stop async call Id if it still runs; no reply. May arrive before the
%% call it cancels (the call went through the coordinator).
-define(ERLANG_ASYNC_CANCEL_MSG(Worker, Id), {?ERLANG_ASYNC_CANCEL, Worker, Id}).

%% Any of the three requests above, sent to py_coordinator because the
%% worker had no handler when the thread sent it.
-define(UNBOUND_REQUEST_MSG(Request), {?UNBOUND_REQUEST, Request}).

%% ---- replies (Erlang -> C, through the worker NIFs) ---------------------

%% The function returned Value.
-define(REPLY_OK(Value), {ok, Value}).
%% The function raised: Class:Reason, Reason as Erlang prints it (Text), and
%% the frames of the function's stacktrace as text (Stack). Python raises
%% erlang.ErlangError.
-define(REPLY_ERROR(Class, Reason, Text, Stack), {error, Class, Reason, Text, Stack}).
%% Nothing is registered under Name. Python raises
%% erlang.UnknownFunctionError.
-define(REPLY_UNKNOWN(Name), {unknown, Name}).
%% Made by the C side, never by Erlang: the handler (or the coordinator
%% holding an unbound request) died before it answered. Python raises
%% erlang.ErlangError.
-define(REPLY_HANDLER_DIED, {error, handler_died}).

%% ---- types ----------------------------------------------------------------

%% A thread worker: the NIF resource through which a reply reaches its thread.
-type worker() :: reference().
%% A registered name as Python gave it: a str, or an erlang.Atom.
-type function_name() :: binary() | atom().
%% The frame of the call a function runs in (c_src/protocol.h): its
%% nesting depth, with the group leader its output goes to, if any.
-type frame() :: non_neg_integer() | {non_neg_integer(), pid()}.

-type erlang_call() :: ?ERLANG_CALL_MSG(worker(), Serial :: pos_integer(), function_name(),
                                         Args :: list(), frame()).
-type erlang_async_call() :: ?ERLANG_ASYNC_CALL_MSG(worker(), Id :: pos_integer(),
                                                    function_name(), Args :: list(), frame()).
-type erlang_async_cancel() :: ?ERLANG_ASYNC_CANCEL_MSG(worker(), Id :: pos_integer()).
-type request() :: erlang_call() | erlang_async_call() | erlang_async_cancel().
-type unbound_request() :: ?UNBOUND_REQUEST_MSG(request()).

%% What a handler answers, to a sync or an async call.
-type reply() :: ?REPLY_OK(Value :: term())
               | ?REPLY_ERROR(Class :: error | exit | throw, Reason :: term(), Text :: binary(),
                              Stack :: [binary()])
               | ?REPLY_UNKNOWN(function_name()).
%% What the C side answers when the handler died.
-type handler_died() :: ?REPLY_HANDLER_DIED.

-endif.
