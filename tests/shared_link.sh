#!/usr/bin/env bash
# shared_link.sh - transparent mode through libgort.so: a program linked
# against the shared library gets gort's read, accept, connect... ahead of
# libc's (the dynamic linker binds to the first definition in load order).
# examples/fetch_many.c's server and clients use only libc's names; on
# GOMAXPROCS=1 they finish only if those calls park goroutines instead of
# blocking the one thread.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:?build dir}
[[ -f $build/libgort.so ]] || exit 77
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cc" -O2 -I"$root/include" "$root/examples/fetch_many.c" -L"$build" -lgort -lpthread \
    -o "$tmp/fetch_many" 2>"$tmp/log" || { cat "$tmp/log"; echo "link against libgort.so failed"; exit 1; }
out=$(LD_LIBRARY_PATH=$build GOMAXPROCS=1 timeout 60 "$tmp/fetch_many" 300)
[[ $out == "fetch_many: 300 of 300 fetches answered (13200 bytes), GOMAXPROCS=1,"* ]] ||
    { echo "shared fetch_many: $out"; exit 1; }
echo "shared link ok"
