#!/usr/bin/env bash
# The Python make embeds when PYTHON is not given. python3 on PATH, when it
# can import the packages some suites need (numpy, fastapi, httpx);
# otherwise Debian's /usr/bin/python3, for which scripts/ensure-deps.sh
# installs them (a pyenv python3 first on PATH has none of them, and the
# suites that need them would only be skipped).
#
#   choose-python.sh                 prints the path to embed
#   choose-python.sh --say PATH HOW  prints, for make's log, which Python
#                                    PATH is and why (HOW: chosen, or
#                                    given when PYTHON was set)
set -uo pipefail

packages="numpy fastapi httpx"

has_packages() {
    "$1" -c "
import importlib.util, sys
sys.exit(any(importlib.util.find_spec(m) is None for m in sys.argv[1:]))" $packages 2>/dev/null
}

version_of() {
    "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || echo unknown
}

if [ "${1:-}" = --say ]; then
    python=$2 how=$3
    where=$(command -v "$python" || echo "$python")
    case $how in
        given) why="PYTHON was given" ;;
        *) if [ "$python" = python3 ]; then
               why="python3 on PATH"
           else
               why="python3 on PATH ($(command -v python3 || echo none)) cannot import $packages; set PYTHON to embed another"
           fi ;;
    esac
    echo "make: embedding Python $(version_of "$python") ($where): $why"
    exit 0
fi

if command -v python3 >/dev/null && has_packages python3; then
    echo python3
elif [ -x /usr/bin/python3 ] || [ -f /etc/debian_version ]; then
    echo /usr/bin/python3
else
    echo python3
fi
