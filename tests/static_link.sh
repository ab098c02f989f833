#!/usr/bin/env bash
# static_link.sh - a fully static program (-static) links against
# libgort.a and runs: libc.a defines some of the names transparent mode
# interposes (getaddrinfo, accept4, usleep, the _FORTIFY_SOURCE entries)
# as strong symbols, so gort's must give way there instead of clashing.
# The program is examples/fetch_many.c (goroutines, sockets, getaddrinfo).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:?build dir}
lib=$build/libgort.a
[[ -f $lib ]] || exit 77
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# no static libc here: nothing to check
printf 'int main(void){return 0;}\n' >"$tmp/t.c"
"$cc" -static "$tmp/t.c" -o "$tmp/t" 2>/dev/null || exit 77
"$cc" -O2 -static -I"$root/include" "$root/examples/fetch_many.c" "$lib" -lpthread -ldl \
    -o "$tmp/fetch_many" 2>"$tmp/log" || { cat "$tmp/log"; echo "static link failed"; exit 1; }
out=$("$tmp/fetch_many" 200)
[[ $out == "fetch_many: 200 of 200 fetches answered (8800 bytes), GOMAXPROCS="* ]] ||
    { echo "static fetch_many: $out"; exit 1; }
echo "static link ok"
