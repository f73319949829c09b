{:ok, _} = Application.ensure_all_started(:erlang_python)
ExUnit.start()
