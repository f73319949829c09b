defmodule ElixirExample.MixProject do
  # An Elixir project using erlang_python: the dependency is this
  # repository, by path (ERLANG_PYTHON_PATH overrides where it is), built
  # by Debian's rebar3 (MIX_REBAR3), nothing fetched from Hex.
  use Mix.Project

  def project do
    [
      app: :elixir_example,
      version: "0.1.0",
      elixir: "~> 1.14",
      deps: [
        {:erlang_python, path: System.get_env("ERLANG_PYTHON_PATH", "../.."), manager: :rebar3}
      ]
    ]
  end

  def application do
    [extra_applications: [:logger]]
  end
end
