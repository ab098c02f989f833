#!/usr/bin/env bash
# run.sh - build the channel and sync benchmarks and compare gort against Go.
# See README.md here.
#
# Environment knobs:
#   REPEAT=5        runs per (benchmark, implementation); medians are reported
#   QUICK=1         small sizes (smoke run, a few seconds)
#   CASES="..."     subset/order of: pingpong-p1 pingpong-p2 buffered-p1
#                   buffered-p2 select4-p1 select4-p2 skynet-p1 skynet-p2
#                   mutex-p1 mutex-p2
#   TIMEOUT=60      seconds before a single run is killed
#   GORT_BUILD=1    run the (incremental) cmake build of libgort.a first;
#                   0 uses the library as it is
#   GORT_BUILD_DIR  gort's cmake build folder (default <repo>/build)
#   BUILD_DIR       binaries, logs and raw results (default bench/chan/build)
#   CC=cc GO=go
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

REPEAT=${REPEAT:-5}
QUICK=${QUICK:-0}
TIMEOUT=${TIMEOUT:-60}
GORT_BUILD=${GORT_BUILD:-1}
GORT_BUILD_DIR=${GORT_BUILD_DIR:-$ROOT/build}
BUILD_DIR=${BUILD_DIR:-$HERE/build}
CC=${CC:-cc}
GO=${GO:-go}
CASES=${CASES:-"pingpong-p1 pingpong-p2 buffered-p1 buffered-p2 select4-p1 select4-p2 skynet-p1 skynet-p2 mutex-p1 mutex-p2"}
TIME_BIN=/usr/bin/time
LIB=$GORT_BUILD_DIR/libgort.a

note() { printf '%s\n' "$*" >&2; }

# ------------------------------------------------------------------ cases
mode_of() { echo "${1%-p*}"; }
procs_of() { echo "${1##*-p}"; }
# size <case>: the N argument
size_of() {
    if [ "$QUICK" != 0 ]; then
        case $(mode_of "$1") in
        pingpong) echo 100000 ;; buffered) echo 1000000 ;; select4) echo 100000 ;;
        skynet) echo 100000 ;; mutex) echo 1000000 ;;
        esac
    else
        case $(mode_of "$1") in
        pingpong) echo 1000000 ;; buffered) echo 10000000 ;; select4) echo 2000000 ;;
        skynet) echo 1000000 ;; mutex) echo 16000000 ;;
        esac
    fi
}
unit_of() {
    case $(mode_of "$1") in
    pingpong) echo "ns/round trip" ;; buffered) echo "ns/item" ;; select4) echo "ns/msg" ;;
    skynet) echo "ms total" ;; mutex) echo "ns/lock+unlock" ;;
    esac
}
human() { # 1000000 -> 1M, 100000 -> 100k
    local n=$1
    if [ $((n % 1000000)) = 0 ]; then echo "$((n / 1000000))M"
    elif [ $((n % 1000)) = 0 ]; then echo "$((n / 1000))k"
    else echo "$n"; fi
}
label_of() {
    local n; n=$(human "$(size_of "$1")")
    case $(mode_of "$1") in
    pingpong) echo "pingpong $n round trips" ;;
    buffered) echo "buffered $n items, cap 1024" ;;
    select4) echo "select4 $n msgs, 4 unbuffered" ;;
    skynet) echo "skynet $n leaves" ;;
    mutex) echo "mutex 8 × $(human $(($(size_of "$1") / 8)))" ;;
    esac
}

# ------------------------------------------------------------------ build
if [ ! -x "$TIME_BIN" ]; then
    note "error: $TIME_BIN not found (Debian package 'time'); needed for peak RSS"
    exit 1
fi
mkdir -p "$BUILD_DIR/logs"
rm -f "$BUILD_DIR"/logs/*.log "$BUILD_DIR"/logs/*.time
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

rm -f "$BIN/cbench_gort" "$BIN/cbench_go"
if [ -f "$LIB" ]; then
    note "== building gort benchmark"
    if ! $CC -std=gnu11 -O2 -Wall -Wextra -I"$ROOT/include" -o "$BIN/cbench_gort" "$HERE/cbench.c" \
        "$LIB" -lpthread >"$BUILD_DIR/logs/build-cbench_gort.txt" 2>&1; then
        rm -f "$BIN/cbench_gort"
        note "warning: cbench_gort did not build/link (see $BUILD_DIR/logs/build-cbench_gort.txt)"
        NOTES+=("the gort benchmark did not link against libgort.a (channels or sync missing?)")
    fi
else
    note "warning: $LIB not found"
    NOTES+=("libgort.a not found")
fi

note "== building Go benchmark"
GOTMP=$BUILD_DIR/go-tmp
mkdir -p "$GOTMP/path" "$GOTMP/cache"
if ! (cd "$GOTMP" && GOPATH="$GOTMP/path" GOCACHE="$GOTMP/cache" GO111MODULE=off GOFLAGS= \
    GOPROXY=off "$GO" build -o "$BIN/cbench_go" "$HERE/cbench.go") >"$BUILD_DIR/logs/build-cbench_go.txt" 2>&1; then
    note "warning: cbench_go did not build (see $BUILD_DIR/logs/build-cbench_go.txt)"
    NOTES+=("the Go benchmark did not build")
fi

# A short smoke run of every gort mode, so that a broken runtime costs
# seconds, not REPEAT x TIMEOUT. A mode that fails here is skipped.
GORT_BAD=" "
if [ -x "$BIN/cbench_gort" ]; then
    for m in pingpong buffered select4 skynet mutex; do
        n=1000
        for p in 1 2; do
            if ! out=$(GOMAXPROCS=$p timeout -k 2 10 "$BIN/cbench_gort" $m $n 2>"$BUILD_DIR/logs/smoke-$m-p$p.log") ||
                ! printf '%s\n' "$out" | grep -q '^result '; then
                case $GORT_BAD in *" $m "*) ;; *) GORT_BAD="$GORT_BAD$m " ;; esac
            fi
        done
    done
    if [ "$GORT_BAD" != " " ]; then
        note "warning: gort smoke runs failed for:$GORT_BAD(see $BUILD_DIR/logs/smoke-*.log); skipped"
        NOTES+=("gort smoke run (N=1000, GOMAXPROCS 1 and 2) failed for:${GORT_BAD}those gort runs were skipped")
    fi
fi

binary_of() { echo "$BIN/cbench_$2"; }
runnable() { # <case> <impl>
    [ -x "$(binary_of "$1" "$2")" ] || return 1
    if [ "$2" = gort ]; then
        case $GORT_BAD in *" $(mode_of "$1") "*) return 1 ;; esac
    fi
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
    out=$(GOMAXPROCS="$procs" timeout -k 5 "$TIMEOUT" "$TIME_BIN" -f '%M' -o "$tf" "$b" "$mode" "$n" 2>"$log")
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
        # alternate who goes first, so that drift on the machine hits both
        if [ $((rep % 2)) = 1 ]; then order="gort go"; else order="go gort"; fi
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
fmt() { awk -v v="$1" 'BEGIN { if (v >= 100 || v <= -100) printf "%.0f", v; else printf "%.1f", v }'; }
cell() { # <case> <impl>: median with "(ok/all)" when some failed
    local m ok all
    m=$(median "$1" "$2" 4); ok=$(count_ok "$1" "$2"); all=$(count_all "$1" "$2")
    if [ "$all" = 0 ]; then echo "n/a"
    elif [ -z "$m" ]; then echo "failed ($all/$all)"
    elif [ "$ok" != "$all" ]; then printf '%s (%s/%s ok)' "$(fmt "$m")" "$ok" "$all"
    else fmt "$m"; fi
}
rss_cell() {
    local m; m=$(median "$1" "$2" 5)
    if [ -z "$m" ]; then echo "–"
    else awk -v k="$m" 'BEGIN { if (k >= 10240) printf "%.0f MiB", k / 1024; else printf "%.1f MiB", k / 1024 }'; fi
}
ratio() {
    local a b; a=$(median "$1" gort 4); b=$(median "$1" go 4)
    if [ -z "$a" ] || [ -z "$b" ]; then echo "–"; else awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "–"; else printf "%.2f", a / b }'; fi
}

REPORT=$BUILD_DIR/results.md
{
    echo "Channel and sync benchmarks: medians of $REPEAT interleaved runs$([ "$QUICK" != 0 ] && echo ' (QUICK sizes)')."
    echo "$(nproc) CPUs, $(uname -m), $("$GO" version 2>/dev/null | awk '{print $3}'), $(date -u '+%Y-%m-%d %H:%M UTC'); lower is better everywhere."
    echo
    echo "| benchmark | GOMAXPROCS | unit | gort | Go | gort ÷ Go | gort peak RSS | Go peak RSS |"
    echo "|---|---|---|---|---|---|---|---|"
    for c in $CASES; do
        echo "| $(label_of "$c") | $(procs_of "$c") | $(unit_of "$c") | $(cell "$c" gort) | $(cell "$c" go) | $(ratio "$c") | $(rss_cell "$c" gort) | $(rss_cell "$c" go) |"
    done
    if [ ${#NOTES[@]} -gt 0 ]; then
        echo
        for n in "${NOTES[@]}"; do echo "- note: $n"; done
    fi
    echo
    echo "Raw runs: $RAW; per-run stderr: $BUILD_DIR/logs/. Wall time of the runs: $((T1 - T0)) s."
} >"$REPORT"
cat "$REPORT"
