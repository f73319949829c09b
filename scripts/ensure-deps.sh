#!/usr/bin/env bash
# Installs the Debian packages the project needs, only those missing, with
# apt-get install --no-install-recommends. Runs as root, or through sudo.
# Packages named as arguments are installed instead of the usual list: a
# target that needs a tool of its own asks for it (make valgrind runs
# scripts/ensure-deps.sh valgrind).
set -euo pipefail

packages=(
    gcc make libc6-dev
    erlang-nox erlang-dev rebar3 erlang-common-test erlang-proper erlang-proper-dev
    erlang-tools erlang-dialyzer
    python3-dev python3-venv python3-numpy python3-fastapi python3-httpx
    elixir
)
[ $# -gt 0 ] && packages=("$@")

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    echo "ensure-deps: missing ${missing[*]}; run as root to install them" >&2
    exit 1
fi
echo "ensure-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
