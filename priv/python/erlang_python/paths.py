"""Where the interpreter finds Python code (src/py_paths.erl): directories
put in front of sys.path, a virtual environment activated and
deactivated, and a loaded module executed again.

src/py_paths.erl checks its arguments (a directory, a venv of this
Python's version) before it calls here; this module only changes the
interpreter's state, and remembers what activate() changed so that
deactivate() undoes exactly that.
"""

import importlib
import os
import site
import sys
import threading

# What the active venv changed: None, or a dict (see activate).
_active = None
# Held while a venv is activated or deactivated: site.addsitedir reads
# files, letting other threads run, and two activations at once would
# each miss the other's paths.
_changing = threading.Lock()


def add(path):
    """Puts path in front of sys.path; False if it was there already."""
    if path in sys.path:
        return False
    sys.path.insert(0, path)
    importlib.invalidate_caches()
    return True


def activate(venv, site_packages, include_system):
    """Activates the venv whose root is venv: its site_packages (with what
    its .pth files add) in front of sys.path, sys.prefix and
    sys.exec_prefix at its root, VIRTUAL_ENV set; and unless
    include_system, the interpreter's own site-packages directories out of
    sys.path, as a venv's own python would have them. Any venv active
    before is deactivated first."""
    with _changing:
        _activate(venv, site_packages, include_system)


def _activate(venv, site_packages, include_system):
    global _active
    _deactivate()
    before = list(sys.path)
    site.addsitedir(site_packages)
    added = [p for p in sys.path if p not in before]
    for p in added:
        sys.path.remove(p)
    hidden = []
    if not include_system:
        system = set(site.getsitepackages())
        system.add(site.getusersitepackages())
        hidden = [(i, p) for i, p in enumerate(sys.path) if p in system]
        sys.path[:] = [p for p in sys.path if p not in system]
    sys.path[0:0] = added
    _active = {
        'path': venv,
        'site_packages': site_packages,
        'system_site_packages': include_system,
        'added': added,
        'hidden': hidden,
        'prefix': (sys.prefix, sys.exec_prefix),
        'virtual_env': os.environ.get('VIRTUAL_ENV'),
    }
    sys.prefix = sys.exec_prefix = venv
    os.environ['VIRTUAL_ENV'] = venv
    importlib.invalidate_caches()


def deactivate():
    """Undoes what activate() did, if a venv is active. Modules imported
    from it stay imported, as in any Python."""
    with _changing:
        _deactivate()


def _deactivate():
    global _active
    if _active is None:
        return
    active, _active = _active, None
    for p in active['added']:
        if p in sys.path:
            sys.path.remove(p)
    for i, p in active['hidden']:
        if p not in sys.path:
            sys.path.insert(i, p)
    sys.prefix, sys.exec_prefix = active['prefix']
    if active['virtual_env'] is None:
        os.environ.pop('VIRTUAL_ENV', None)
    else:
        os.environ['VIRTUAL_ENV'] = active['virtual_env']
    importlib.invalidate_caches()


def info():
    """The active venv: (path, site_packages, system_site_packages, paths
    added), or None."""
    if _active is None:
        return None
    return (_active['path'], _active['site_packages'], _active['system_site_packages'],
            list(_active['added']))


def reload(name):
    """Executes the loaded module name again (importlib.reload); False if
    no module of that name is loaded."""
    module = sys.modules.get(name)
    if module is None:
        return False
    importlib.reload(module)
    return True
