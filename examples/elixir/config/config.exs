import Config

# Python's None as Elixir's nil, both ways.
config :erlang_python, none_atom: nil
