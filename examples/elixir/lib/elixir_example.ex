defmodule ElixirExample do
  @moduledoc """
  A small Elixir wrapper over erlang_python's `:py`, as an application
  might write one: Python errors as exceptions, results unwrapped.
  """

  defmodule PythonError do
    defexception [:type, :message]
  end

  @doc "Calls `module.function(*args, **kwargs)`; raises PythonError on a Python exception."
  def call!(module, function, args, kwargs \\ %{}) do
    case :py.call(module, function, args, kwargs) do
      {:ok, value} -> value
      {:error, {type, message}} -> raise PythonError, type: type, message: message
      {:error, reason} -> raise PythonError, type: :error, message: inspect(reason)
    end
  end

  @doc "Registers `fun` (one argument: the list of Python's arguments) under `name`."
  def register(name, fun) when is_function(fun, 1), do: :py.register_function(name, fun)
end
