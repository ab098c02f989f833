#!/usr/bin/env bash
# install.sh - `cmake --install` gives a user what the README promises: a
# CMake package (find_package(gort)) and a pkg-config file that each build
# and link a program using goroutines and the allocator.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v cmake >/dev/null || exit 77
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake -S "$root" -B "$tmp/b" -DCMAKE_BUILD_TYPE=Release -DGORT_TESTS=OFF \
    -DCMAKE_INSTALL_PREFIX="$tmp/prefix" >"$tmp/log" 2>&1
cmake --build "$tmp/b" -j2 >>"$tmp/log" 2>&1
cmake --install "$tmp/b" >>"$tmp/log" 2>&1
mkdir "$tmp/app"
cat >"$tmp/app/app.c" <<'C'
#include <gort.h>
#include <stdio.h>
static void body(void *arg)
{
    (void)arg;
    char *p = gort_malloc(32);
    gort_free(p);
    printf("goroutine %lld\n", (long long)gort_goid());
}
int main(void) { return gort_main(body, NULL); }
C
cat >"$tmp/app/CMakeLists.txt" <<'C'
cmake_minimum_required(VERSION 3.16)
project(app C)
find_package(gort REQUIRED)
add_executable(app app.c)
target_link_libraries(app gort::gort_static)
C
cmake -S "$tmp/app" -B "$tmp/app/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" >>"$tmp/log" 2>&1
cmake --build "$tmp/app/b" >>"$tmp/log" 2>&1
out=$("$tmp/app/b/app")
[[ $out == "goroutine 1" ]] || { echo "find_package build printed: $out"; exit 1; }
flags=$(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --cflags --libs gort 2>/dev/null ||
        echo "-I$tmp/prefix/include -L$tmp/prefix/lib -lgort")
# shellcheck disable=SC2086
cc "$tmp/app/app.c" $flags -Wl,-rpath,"$tmp/prefix/lib" -o "$tmp/app/app2"
out=$("$tmp/app/app2")
[[ $out == "goroutine 1" ]] || { echo "pkg-config build printed: $out"; exit 1; }
for f in include/gort.h lib/libgort.a lib/libgort.so lib/libgort-malloc.so \
         lib/pkgconfig/gort.pc lib/cmake/gort/gortConfig.cmake; do
    [[ -e $tmp/prefix/$f ]] || { echo "not installed: $f"; exit 1; }
done
echo "installed package builds with find_package and pkg-config"
