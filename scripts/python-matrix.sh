#!/usr/bin/env bash
# Builds the NIF against every Python >= 3.10 found on this machine other
# than $PYTHON, and runs the core suites with each build. Prints which
# Pythons ran; a version is skipped only when it is not installed.
set -uo pipefail
cd "$(dirname "$0")/.."

core_suites="py_call_SUITE py_convert_SUITE py_callback_SUITE py_async_SUITE py_module_SUITE py_context_SUITE py_logging_SUITE"
main_exe=$(readlink -f "$($PYTHON -c 'import sys; print(sys.executable)')")

candidates() {
    local root
    if command -v pyenv >/dev/null; then
        root=$(pyenv root)
        ls -d "$root"/versions/*/bin/python3 2>/dev/null
    fi
    ls /usr/bin/python3.[0-9]* /usr/local/bin/python3.[0-9]* 2>/dev/null | grep -E 'python3\.[0-9]+$'
}

declare -A seen=()
ran=() failed=()
for exe in $(candidates); do
    real=$(readlink -f "$exe")
    [ -n "${seen[$real]:-}" ] && continue
    seen[$real]=1
    [ "$real" = "$main_exe" ] && continue
    version=$("$exe" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || continue
    "$exe" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || continue
    [ -x "$exe-config" ] || [ -x "$(dirname "$exe")/python3-config" ] || {
        echo "matrix: $exe ($version) has no python3-config; cannot embed it"; failed+=("$version"); continue; }
    tag="$version-$(echo "$real" | md5sum | cut -c1-8)"
    out="$PWD/_build/matrix/$tag/py_nif.so"
    echo "=== matrix: Python $version ($exe)"
    if ! make -s -C c_src PYTHON="$exe" OUT="$out" OBJDIR="$PWD/_build/matrix/$tag/obj" >/dev/null; then
        echo "matrix: build against $exe failed"; failed+=("$version"); continue
    fi
    if RUN_LABEL="Python $version" ERLANG_PYTHON_NIF="$out" SUITES="$core_suites" CT_LOGDIR="_build/matrix/$tag/logs" \
        scripts/run-tests.sh; then
        ran+=("$version")
    else
        failed+=("$version")
    fi
done

echo "matrix: passed with Python ${ran[*]:-none}; failed with ${failed[*]:-none}"
[ ${#failed[@]} -eq 0 ]
