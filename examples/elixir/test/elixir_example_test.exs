defmodule ElixirExampleTest do
  use ExUnit.Case
  import ExUnit.CaptureIO

  test "call, eval and exec" do
    assert {:ok, 4.0} = :py.call(:math, :sqrt, [16])
    assert {:ok, 3.14} = :py.call(:builtins, :round, [3.14159], %{ndigits: 2})
    assert {:ok, 3} = :py.eval("x + y", %{x: 1, y: 2})
    assert :ok = :py.exec("elixir_defined = [1, 2]")
    assert {:ok, [1, 2]} = :py.eval("elixir_defined")
    assert 4.0 = ElixirExample.call!(:math, :sqrt, [16])
  end

  test "None is nil, both ways" do
    assert {:ok, nil} = :py.eval("None")
    assert {:ok, true} = :py.eval("x is None", %{x: nil})
    assert {:ok, [nil, %{"k" => nil}, {nil}]} = :py.eval("[None, {'k': None}, (None,)]")
  end

  test "strings are str, charlists are lists of code points" do
    assert {:ok, "str"} = :py.eval("type(x).__name__", %{x: "héllo"})
    assert {:ok, "HÉLLO"} = :py.eval("x.upper()", %{x: "héllo"})
    assert {:ok, [104, 105]} = :py.eval("x", %{x: 'hi'})
    assert {:ok, "list"} = :py.eval("type(x).__name__", %{x: 'hi'})
  end

  test "structs go as dicts and come back as the same struct" do
    :ok = :py.exec("def elixir_ident(x): return x")
    uri = URI.parse("https://example.com:8443/path")
    assert {:ok, "example.com"} = :py.eval("x['host']", %{x: uri})
    # The key and the module name are atoms (erlang.Atom, a str).
    assert {:ok, URI} = :py.eval("x['__struct__']", %{x: uri})
    assert {:ok, "Elixir.URI"} = :py.eval("str(x['__struct__'])", %{x: uri})
    assert {:ok, ^uri} = :py.call(:__main__, :elixir_ident, [uri])
  end

  test "an fn registered for Python" do
    :ok = ElixirExample.register(:ex_double, fn [x] -> x * 2 end)
    assert {:ok, 42} = :py.eval("__import__('erlang').call('ex_double', 21)")
    assert {:ok, 42} = :py.eval("__import__('erlang').ex_double(21)")
    :ok = :py.unregister_function(:ex_double)
  end

  test "errors: Python exceptions, and Elixir exceptions seen from Python" do
    assert {:error, {:ZeroDivisionError, "division by zero"}} = :py.eval("1/0")

    assert_raise ElixirExample.PythonError, ~r/No module named/, fn ->
      ElixirExample.call!(:no_such_module, :f, [])
    end

    :ok = ElixirExample.register(:ex_fail, fn [_] -> raise ArgumentError, "bad from Elixir" end)

    assert :ok =
             :py.exec("""
             import erlang
             try:
                 erlang.call('ex_fail', 1)
                 raise AssertionError('no error')
             except erlang.ErlangError as e:
                 assert 'bad from Elixir' in str(e), str(e)
             """)

    :ok = :py.unregister_function(:ex_fail)
    assert {:error, {:badarg, :opts}} = :py.call(:math, :sqrt, [16], %{}, %{bogus: 1})
  end

  test "print goes where the calling process's output goes" do
    assert capture_io(fn -> {:ok, nil} = :py.call(:builtins, :print, ["from Python"]) end) ==
             "from Python\n"
  end
end
