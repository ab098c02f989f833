#!/usr/bin/env bash
# tools/test-all.sh - gort's test command: build it every way, run the tests.
#
#   tools/test-all.sh
#
# From a fresh clone on Debian 12 it installs what's missing (cmake, gcc,
# clang, valgrind, python3, make, time) with apt-get, then runs, in order:
#   release   gcc Release build in build/, tests/run.sh --mode release
#   gcstress  the same build and tests with a collection every 250 GC
#             allocations (GORT_DEBUG=gcstress, tests/run.sh --mode gcstress)
#   clang     clang Release build in build-clang/ (-Werror), same tests
#   asan      ASan+UBSan Debug build in build-asan/, --mode asan
#   tsan      TSan RelWithDebInfo build in build-tsan/, --mode tsan
#   valgrind  the release build's test programs under valgrind
#   arm64     a cross build for arm64 (Debian's aarch64-linux-gnu-gcc), its
#             test programs under qemu-aarch64
# The sanitizer builds use the first of gcc, clang that can build and run a
# sanitized program here. A build that fails counts as one failed test. Each
# stage's lines are prefixed with its name; the last line of all is the
# total, "N passed, N failed" (", N skipped" if any). Exit status 1 if
# anything failed.
#
# Environment:
#   GORT_TEST_QUICK=1   run the release stage only
#   GORT_TEST_MODES     the stages to run, e.g. "release asan" (default all)
#   GORT_JOBS           build parallelism (default 2)
#   GORT_SAN_CC         compilers to try for sanitizer builds ("gcc clang")
#   and tests/run.sh's: GORT_TEST_TIMEOUT, GORT_TEST_TAIL, ...

set -uo pipefail  # not -e: a failing stage is counted, and the rest still run
export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
root=$PWD
jobs=${GORT_JOBS:-2}

all_stages="release gcstress clang asan tsan valgrind arm64"
if [[ ${GORT_TEST_QUICK:-0} == 1 ]]; then
    stages=release
else
    stages=${GORT_TEST_MODES:-$all_stages}
fi

passed=0 failed=0 skipped=0
summaries=()   # one line per stage, repeated at the end

say() { printf '\n==== %s\n' "$*"; }

# fatal MSG: can't go on; still end on a totals line.
fatal() {
    echo "tools/test-all.sh: $*" >&2
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
}

for s in $stages; do
    [[ " $all_stages " == *" $s "* ]] || fatal "unknown stage '$s' in GORT_TEST_MODES (stages: $all_stages)"
done

# ---- tools --------------------------------------------------------------

have() { type -P "$1" >/dev/null; }   # type -P: the time program, not the keyword

cc_links() {   # cc_links CC: can CC build a program here (libc headers too)?
    local d rc
    d=$(mktemp -d) || return 1
    printf '#include <stdio.h>\nint main(void) { return puts("") < 0; }\n' >"$d/t.c"
    "$1" "$d/t.c" -o "$d/t" >/dev/null 2>&1
    rc=$?
    rm -rf "$d"
    return $rc
}

missing_packages() {
    local pkgs=()
    have cmake || pkgs+=(cmake)
    { have gcc && cc_links gcc; } || pkgs+=(build-essential)
    have make || have ninja || pkgs+=(make)
    have clang || pkgs+=(clang libclang-rt-dev)  # the latter: sanitizer runtimes
    have valgrind || pkgs+=(valgrind)
    have python3 || pkgs+=(python3)
    have time || pkgs+=(time)
    have timeout || pkgs+=(coreutils)
    have setarch || pkgs+=(util-linux)
    if [[ " $stages " == *" arm64 "* ]]; then
        have aarch64-linux-gnu-gcc || pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
        have qemu-aarch64 || pkgs+=(qemu-user)
    fi
    echo "${pkgs[*]}"
}

install_tools() {
    local pkgs sudo=()
    pkgs=$(missing_packages)
    [[ -z $pkgs ]] && return 0
    say "installing: $pkgs"
    have apt-get || fatal "missing tools (packages: $pkgs) and no apt-get to install them"
    if [[ $(id -u) != 0 ]]; then
        have sudo || fatal "missing tools (packages: $pkgs); not root and no sudo"
        sudo=(sudo)
    fi
    # shellcheck disable=SC2086  # $pkgs is a list
    if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends $pkgs; } </dev/null; then
        fatal "apt-get could not install: $pkgs"
    fi
    pkgs=$(missing_packages)
    [[ -z $pkgs ]] || fatal "still missing after apt-get: $pkgs"
}

# san_cc FLAGS: the first compiler that builds and runs a -fsanitize=FLAGS
# program here (TSan may need ASLR off, as tests/run.sh arranges).
san_cc() {
    local d cc
    d=$(mktemp -d) || return 1
    cat >"$d/p.c" <<'EOF'
#include <pthread.h>
#include <stdlib.h>
static void *work(void *p) { ((char *)p)[0] = 1; return p; }
int main(void)
{
    pthread_t t;
    char *p = malloc(8);
    if (!p || pthread_create(&t, 0, work, p)) return 1;
    pthread_join(t, 0);
    free(p);
    return 0;
}
EOF
    for cc in ${GORT_SAN_CC:-gcc clang}; do
        have "$cc" || continue
        "$cc" -g -fsanitize="$1" -pthread "$d/p.c" -o "$d/p" >/dev/null 2>&1 || continue
        "$d/p" >/dev/null 2>&1 ||
            setarch "$(uname -m)" -R "$d/p" >/dev/null 2>&1 || continue
        echo "$cc"
        rm -rf "$d"
        return 0
    done
    rm -rf "$d"
    return 1
}

# ---- building -----------------------------------------------------------

declare -A build_ok   # build dir -> 0/1, so each is built (and counted) once

# build LABEL DIR CC CMAKE_ARGS...: configure and build; quiet unless it fails.
build() {
    local label=$1 dir=$2 cc=$3 log gen=() start=$SECONDS
    shift 3
    [[ -n ${build_ok[$dir]:-} ]] && return $((1 - build_ok[$dir]))
    cc=$(type -P "$cc")
    mkdir -p "$dir"
    log=$dir/gort-build.log
    # Another compiler than the cached one: CMake would drop the cache and
    # with it our -D options (GORT_SANITIZE...), so start that dir afresh.
    if [[ -f $dir/CMakeCache.txt ]] &&
        ! grep -qx "CMAKE_C_COMPILER:[A-Z]*=$cc" "$dir/CMakeCache.txt"; then
        rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
    fi
    # The generator of an existing build dir can't change: keep it.
    [[ ! -f $dir/CMakeCache.txt ]] && have ninja && gen=(-G Ninja)
    echo "[$label] building $dir/ with ${cc##*/} $* (log: $log)"
    if { cmake -S "$root" -B "$dir" "${gen[@]}" -DCMAKE_C_COMPILER="$cc" "$@" &&
        cmake --build "$dir" -j "$jobs"; } </dev/null >"$log" 2>&1; then
        echo "[$label] build ok ($((SECONDS - start))s)"
        build_ok[$dir]=1
        return 0
    fi
    echo "[$label] BUILD FAILED ($((SECONDS - start))s); the end of its log:"
    tail -n 60 "$log" | sed "s/^/[$label]   | /"
    build_ok[$dir]=0
    failed=$((failed + 1))
    return 1
}

# ---- testing ------------------------------------------------------------

# run_tests LABEL DIR MODE: tests/run.sh, its lines prefixed with the label;
# its closing line is added to the totals.
run_tests() {
    local label=$1 dir=$2 mode=$3 out rc line p f s
    out=$(mktemp) || fatal "mktemp failed"
    bash tests/run.sh "$dir" --mode "$mode" 2>&1 | tee "$out" | sed -u "s/^/[$label] /"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    rm -f "$out"
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
        p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]} s=${BASH_REMATCH[4]:-0}
    else
        p=0 f=0 s=0
    fi
    # The runner broke down (bad setup, no tests found): one failure.
    if ((rc != 0 && f == 0)); then
        f=1
        line="tests/run.sh exited $rc${line:+ after: $line}"
    fi
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    summaries+=("[$label] $line")
}

# stage LABEL DIR MODE CC CMAKE_ARGS...: build, then test if it built.
stage() {
    local label=$1 dir=$2 mode=$3 cc=$4 start=$SECONDS
    shift 4
    if build "$label" "$dir" "$cc" "$@"; then
        run_tests "$label" "$dir" "$mode"
        summaries[-1]+="  ($((SECONDS - start))s)"
    else
        summaries+=("[$label] build of $dir/ failed")
    fi
}

# ---- the run ------------------------------------------------------------

total_start=$SECONDS
install_tools
say "gort test-all: stages: $stages; $(uname -sr); $(nproc 2>/dev/null || echo ?) CPUs"
for t in gcc clang cmake valgrind; do
    have "$t" && echo "  $("$t" --version 2>&1 | head -n 1)"
done

for s in $stages; do
    case $s in
        release)
            say "[release] gcc, Release, build/"
            stage release build release gcc -DCMAKE_BUILD_TYPE=Release ;;
        gcstress)
            say "[gcstress] the release build (build/), a collection every ${GORT_GCSTRESS:-250} GC allocations"
            stage gcstress build gcstress gcc -DCMAKE_BUILD_TYPE=Release ;;
        clang)
            say "[clang] clang, Release, warnings as errors, build-clang/"
            stage clang build-clang release clang -DCMAKE_BUILD_TYPE=Release -DGORT_WERROR=ON ;;
        asan)
            if cc=$(san_cc address,undefined); then
                say "[asan] $cc, Debug, ASan+UBSan, build-asan/"
                stage asan build-asan asan "$cc" -DCMAKE_BUILD_TYPE=Debug -DGORT_SANITIZE=address
            else
                say "[asan] no compiler here builds and runs an ASan+UBSan program"
                failed=$((failed + 1)); summaries+=("[asan] no working ASan compiler")
            fi ;;
        tsan)
            if cc=$(san_cc thread); then
                say "[tsan] $cc, RelWithDebInfo, TSan, build-tsan/"
                stage tsan build-tsan tsan "$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGORT_SANITIZE=thread
            else
                say "[tsan] no compiler here builds and runs a TSan program"
                failed=$((failed + 1)); summaries+=("[tsan] no working TSan compiler")
            fi ;;
        valgrind)
            say "[valgrind] the release build (build/) under valgrind"
            stage valgrind build valgrind gcc -DCMAKE_BUILD_TYPE=Release ;;
        arm64)
            say "[arm64] aarch64-linux-gnu-gcc cross build, tests under qemu-aarch64, build-arm64/"
            GORT_QEMU="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
                stage arm64 build-arm64 qemu aarch64-linux-gnu-gcc -DCMAKE_BUILD_TYPE=Release \
                -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" ;;
    esac
done

say "summary ($((SECONDS - total_start))s)"
printf '%s\n' "${summaries[@]}"
line="$passed passed, $failed failed"
((skipped)) && line+=", $skipped skipped"
echo "$line"
((failed == 0))
