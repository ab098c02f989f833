#!/usr/bin/env bash
# run.sh - build the scheduler benchmarks and compare gort against Go (and
# gort's context switch against Boost.Context). See README.md here.
#
# Environment knobs:
#   REPEAT=3        runs per (benchmark, implementation); medians are reported
#   QUICK=1         small sizes (smoke run, a few seconds)
#   CASES="..."     subset/order of: spawn-p1 spawn-p2 yield-p1 parked-100k
#                   parked-1m ctxswitch
#   TIMEOUT=90      seconds before a single run is killed
#   GORT_BUILD=1    run the (incremental) cmake build of libgort.a first;
#                   0 uses the library as it is
#   GORT_BUILD_DIR  gort's cmake build folder (default <repo>/build)
#   BUILD_DIR       binaries, logs and raw results (default bench/sched/build)
#   CC=cc CXX=g++ GO=go
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

REPEAT=${REPEAT:-3}
QUICK=${QUICK:-0}
TIMEOUT=${TIMEOUT:-90}
GORT_BUILD=${GORT_BUILD:-1}
GORT_BUILD_DIR=${GORT_BUILD_DIR:-$ROOT/build}
BUILD_DIR=${BUILD_DIR:-$HERE/build}
CC=${CC:-cc}
CXX=${CXX:-g++}
GO=${GO:-go}
CASES=${CASES:-"spawn-p1 spawn-p2 yield-p1 parked-100k parked-1m ctxswitch"}
TIME_BIN=/usr/bin/time
LIB=$GORT_BUILD_DIR/libgort.a

note() { printf '%s\n' "$*" >&2; }

case $(uname -m) in
x86_64) ARCH=amd64 ;;
aarch64 | arm64) ARCH=arm64 ;;
*) ARCH=unknown ;;
esac

# ------------------------------------------------------------------ cases
# size <case>: the N / K argument
size_of() {
    if [ "$QUICK" != 0 ]; then
        case $1 in
        spawn-p1 | spawn-p2) echo 100000 ;;
        yield-p1) echo 500000 ;;
        parked-100k) echo 10000 ;;
        parked-1m) echo 100000 ;;
        ctxswitch) echo 1000000 ;;
        esac
    else
        case $1 in
        spawn-p1 | spawn-p2) echo 1000000 ;;
        yield-p1) echo 5000000 ;;
        parked-100k) echo 100000 ;;
        parked-1m) echo 1000000 ;;
        ctxswitch) echo 10000000 ;;
        esac
    fi
}
mode_of() {
    case $1 in
    spawn-*) echo spawn ;; yield-*) echo yield ;; parked-*) echo parked ;; *) echo "" ;;
    esac
}
procs_of() {
    case $1 in
    *-p1) echo 1 ;; ctxswitch) echo - ;; *) echo 2 ;;
    esac
}
unit_of() {
    case $1 in
    spawn-*) echo "ns/goroutine" ;; yield-*) echo "ns/yield" ;;
    parked-*) echo "bytes RSS/goroutine" ;; ctxswitch) echo "ns/switch" ;;
    esac
}
peer_of() { if [ "$1" = ctxswitch ]; then echo boost; else echo go; fi; }
human() { # 1000000 -> 1M, 100000 -> 100k
    local n=$1
    if [ $((n % 1000000)) = 0 ]; then echo "$((n / 1000000))M"
    elif [ $((n % 1000)) = 0 ]; then echo "$((n / 1000))k"
    else echo "$n"; fi
}
label_of() {
    local n; n=$(human "$(size_of "$1")")
    case $1 in
    spawn-*) echo "spawn $n" ;;
    yield-*) echo "yield 2×$n" ;;
    parked-*) echo "parked $n" ;;
    ctxswitch) echo "ctxswitch $n round trips" ;;
    esac
}

# ------------------------------------------------------------------ build
if [ ! -x "$TIME_BIN" ]; then
    note "error: $TIME_BIN not found (Debian package 'time'); needed for peak RSS"
    exit 1
fi
mkdir -p "$BUILD_DIR/logs"
rm -f "$BUILD_DIR"/logs/*.log
BIN=$BUILD_DIR
NOTES=()

if [ "$GORT_BUILD" != 0 ]; then
    note "== building libgort.a ($GORT_BUILD_DIR)"
    if [ ! -f "$GORT_BUILD_DIR/CMakeCache.txt" ]; then
        cmake -S "$ROOT" -B "$GORT_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$BUILD_DIR/logs/cmake.txt" 2>&1
    fi
    if ! cmake --build "$GORT_BUILD_DIR" -j2 >>"$BUILD_DIR/logs/cmake.txt" 2>&1; then
        note "warning: libgort build failed (see $BUILD_DIR/logs/cmake.txt); using libgort.a as it is"
        NOTES+=("libgort build failed; the existing libgort.a was used")
    fi
fi

rm -f "$BIN/sbench_gort" "$BIN/sbench_go" "$BIN/ctx_gort" "$BIN/ctx_boost"
CTX_GORT_SRC=lib
if [ -f "$LIB" ]; then
    note "== building gort benchmarks"
    if ! $CC -std=gnu11 -O2 -Wall -Wextra -I"$ROOT/include" -o "$BIN/sbench_gort" "$HERE/sbench.c" \
        "$LIB" -lpthread >"$BUILD_DIR/logs/build-sbench_gort.txt" 2>&1; then
        note "warning: sbench_gort did not build/link (see $BUILD_DIR/logs/build-sbench_gort.txt)"
        NOTES+=("gort scheduler benchmarks did not link against libgort.a")
    fi
    if ! $CC -std=gnu11 -O2 -Wall -Wextra -I"$ROOT/src" -o "$BIN/ctx_gort" "$HERE/ctx_gort.c" \
        "$LIB" -lpthread >"$BUILD_DIR/logs/build-ctx_gort.txt" 2>&1; then
        rm -f "$BIN/ctx_gort"
    fi
else
    note "warning: $LIB not found"
    NOTES+=("libgort.a not found")
fi
if [ ! -x "$BIN/ctx_gort" ] && [ -f "$ROOT/src/arch/$ARCH/switch.S" ]; then
    # libgort.a does not carry the switch (yet): build the same sources here.
    if $CC -std=gnu11 -O2 -Wall -Wextra -I"$ROOT/src" -o "$BIN/ctx_gort" "$HERE/ctx_gort.c" \
        "$ROOT/src/arch/$ARCH/ctx.c" "$ROOT/src/arch/$ARCH/switch.S" \
        >>"$BUILD_DIR/logs/build-ctx_gort.txt" 2>&1; then
        CTX_GORT_SRC=src
        NOTES+=("ctx_switch was not in libgort.a; ctx_gort was built from src/arch/$ARCH/{ctx.c,switch.S} directly")
    fi
fi

note "== building Go benchmark"
GOTMP=$BUILD_DIR/go-tmp
mkdir -p "$GOTMP/path" "$GOTMP/cache"
if ! (cd "$GOTMP" && GOPATH="$GOTMP/path" GOCACHE="$GOTMP/cache" GO111MODULE=off GOFLAGS= \
    GOPROXY=off "$GO" build -o "$BIN/sbench_go" "$HERE/sbench.go") >"$BUILD_DIR/logs/build-sbench_go.txt" 2>&1; then
    note "warning: sbench_go did not build (see $BUILD_DIR/logs/build-sbench_go.txt)"
    NOTES+=("the Go benchmark did not build")
fi

note "== building Boost.Context baseline"
if ! $CXX -O2 -Wall -Wextra -o "$BIN/ctx_boost" "$HERE/ctx_boost.cpp" -lboost_context \
    >"$BUILD_DIR/logs/build-ctx_boost.txt" 2>&1; then
    note "warning: ctx_boost did not build (apt-get install libboost-context-dev)"
    NOTES+=("the Boost.Context baseline did not build")
fi

# A short smoke run of the gort binary, so that a broken scheduler costs
# seconds, not REPEAT x TIMEOUT.
GORT_OK=0
if [ -x "$BIN/sbench_gort" ]; then
    if out=$(GOMAXPROCS=2 timeout -k 2 10 "$BIN/sbench_gort" spawn 1000 2>"$BUILD_DIR/logs/smoke-gort.log") &&
        printf '%s\n' "$out" | grep -q '^result '; then
        GORT_OK=1
    else
        note "warning: gort smoke run failed (see $BUILD_DIR/logs/smoke-gort.log); gort scheduler runs skipped"
        NOTES+=("gort smoke run (spawn 1000) failed; gort scheduler runs skipped")
    fi
fi

binary_of() { # <case> <impl>
    case $2 in
    gort) if [ "$1" = ctxswitch ]; then echo "$BIN/ctx_gort"; else echo "$BIN/sbench_gort"; fi ;;
    go) echo "$BIN/sbench_go" ;;
    boost) echo "$BIN/ctx_boost" ;;
    esac
}
runnable() { # <case> <impl>
    local b; b=$(binary_of "$1" "$2")
    [ -x "$b" ] || return 1
    if [ "$2" = gort ] && [ "$1" != ctxswitch ] && [ "$GORT_OK" = 0 ]; then return 1; fi
    return 0
}

# -------------------------------------------------------------------- run
RAW=$BUILD_DIR/results.tsv
printf 'case\timpl\trep\tvalue\tmaxrss_kib\tstatus\n' >"$RAW"

run_one() { # <case> <impl> <rep>
    local c=$1 impl=$2 rep=$3 b mode n procs log tf out rc val rss
    b=$(binary_of "$c" "$impl"); mode=$(mode_of "$c"); n=$(size_of "$c"); procs=$(procs_of "$c")
    log=$BUILD_DIR/logs/$c.$impl.$rep.log
    tf=$BUILD_DIR/logs/$c.$impl.$rep.time
    local -a env_=()
    [ "$procs" != - ] && env_=(GOMAXPROCS="$procs")
    if [ -n "$mode" ]; then
        out=$(env "${env_[@]}" timeout -k 5 "$TIMEOUT" "$TIME_BIN" -f '%M' -o "$tf" "$b" "$mode" "$n" 2>"$log")
    else
        out=$(env "${env_[@]}" timeout -k 5 "$TIMEOUT" "$TIME_BIN" -f '%M' -o "$tf" "$b" "$n" 2>"$log")
    fi
    rc=$?
    val=$(printf '%s\n' "$out" | awk '$1 == "result" { v = $2 } END { print v }')
    rss=$(grep -E '^[0-9]+$' "$tf" 2>/dev/null | tail -n1)
    if [ $rc != 0 ] || [ -z "$val" ]; then
        printf '%s\t%s\t%s\t\t%s\trc=%s\n' "$c" "$impl" "$rep" "${rss:-}" "$rc" >>"$RAW"
        note "   $c $impl #$rep: FAILED (rc=$rc, log $log)"
    else
        printf '%s\t%s\t%s\t%s\t%s\tok\n' "$c" "$impl" "$rep" "$val" "${rss:-}" >>"$RAW"
        note "   $c $impl #$rep: $val $(unit_of "$c")  (peak RSS ${rss:-?} KiB)"
    fi
}

T0=$(date +%s)
for rep in $(seq 1 "$REPEAT"); do
    note "== round $rep/$REPEAT"
    for c in $CASES; do
        peer=$(peer_of "$c")
        # alternate who goes first, so that drift on the machine hits both
        if [ $((rep % 2)) = 1 ]; then order="gort $peer"; else order="$peer gort"; fi
        for impl in $order; do
            runnable "$c" "$impl" && run_one "$c" "$impl" "$rep"
        done
    done
done
T1=$(date +%s)

# ------------------------------------------------------------------ report
# median <case> <impl> <column>: median of the ok runs; "" when none
median() {
    awk -F'\t' -v c="$1" -v i="$2" -v col="$3" \
        'NR > 1 && $1 == c && $2 == i && $6 == "ok" && $col != "" { print $col }' "$RAW" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) exit
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
count_ok() {
    awk -F'\t' -v c="$1" -v i="$2" 'NR > 1 && $1 == c && $2 == i && $6 == "ok"' "$RAW" | wc -l
}
count_all() {
    awk -F'\t' -v c="$1" -v i="$2" 'NR > 1 && $1 == c && $2 == i' "$RAW" | wc -l
}
cell() { # <case> <impl>: median with "(ok/all)" when some failed
    local m ok all
    m=$(median "$1" "$2" 4); ok=$(count_ok "$1" "$2"); all=$(count_all "$1" "$2")
    if [ "$all" = 0 ]; then echo "n/a"
    elif [ -z "$m" ]; then echo "failed ($all/$all)"
    elif [ "$ok" != "$all" ]; then printf '%s (%s/%s ok)' "$(fmt "$m")" "$ok" "$all"
    else fmt "$m"; fi
}
fmt() { awk -v v="$1" 'BEGIN { if (v >= 100 || v <= -100) printf "%.0f", v; else printf "%.1f", v }'; }
rss_cell() {
    local m; m=$(median "$1" "$2" 5)
    if [ -z "$m" ]; then echo "–"; else awk -v k="$m" 'BEGIN { printf "%.0f MiB", k / 1024 }'; fi
}
ratio() {
    local a b; a=$(median "$1" gort 4); b=$(median "$1" "$(peer_of "$1")" 4)
    if [ -z "$a" ] || [ -z "$b" ]; then echo "–"; else awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "–"; else printf "%.2f", a / b }'; fi
}

REPORT=$BUILD_DIR/results.md
{
    echo "Scheduler benchmarks: medians of $REPEAT interleaved runs$([ "$QUICK" != 0 ] && echo ' (QUICK sizes)')."
    echo "$(nproc) CPUs, $(uname -m), $("$GO" version 2>/dev/null | awk '{print $3}'), $(date -u '+%Y-%m-%d %H:%M UTC'); lower is better everywhere."
    echo
    echo "| benchmark | GOMAXPROCS | unit | gort | Go / Boost | gort ÷ peer | gort peak RSS | peer peak RSS |"
    echo "|---|---|---|---|---|---|---|---|"
    for c in $CASES; do
        peer=$(peer_of "$c")
        if [ "$c" = ctxswitch ]; then
            pr="–"; gr="–"
            pcell="$(cell "$c" boost) (Boost)"
        else
            pr=$(rss_cell "$c" go); gr=$(rss_cell "$c" gort)
            pcell="$(cell "$c" go) (Go)"
        fi
        echo "| $(label_of "$c") | $(procs_of "$c") | $(unit_of "$c") | $(cell "$c" gort) | $pcell | $(ratio "$c") | $gr | $pr |"
    done
    if [ ${#NOTES[@]} -gt 0 ]; then
        echo
        for n in "${NOTES[@]}"; do echo "- note: $n"; done
    fi
    echo
    echo "Raw runs: $RAW; per-run stderr: $BUILD_DIR/logs/. Wall time of the runs: $((T1 - T0)) s."
} >"$REPORT"
cat "$REPORT"
