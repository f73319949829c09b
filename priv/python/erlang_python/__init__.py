"""erlang_python's own Python code, used by its Erlang side.

The application puts the directory holding this package (priv/python) on
sys.path when it starts. Nothing here is meant to be imported by users.
"""
