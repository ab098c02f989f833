#!/usr/bin/env bash
# run.sh - build the garbage-collector benchmarks and compare gort against
# Boehm GC and Go.  See README.md here.
#
# Environment knobs:
#   REPEAT=3        runs per (workload, implementation); medians are reported
#   QUICK=1         small sizes (smoke run, a few seconds)
#   CASES="..."     subset/order of: gcbench binary-trees
#   IMPLS="..."     subset of: boehm gort go
#   GC_MARKERS=2    Boehm's marker threads (the collecting thread included)
#   TIMEOUT=300     seconds before a single run is killed
#   GORT_BUILD=1    run the (incremental) cmake build of libgort.a first;
#                   0 uses the library as it is
#   GORT_BUILD_DIR  gort's cmake build folder (default <repo>/build)
#   BUILD_DIR       binaries, logs and raw results (default bench/gc/build)
#   CC=cc GO=go
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

REPEAT=${REPEAT:-3}
QUICK=${QUICK:-0}
TIMEOUT=${TIMEOUT:-300}
GC_MARKERS=${GC_MARKERS:-2}
GORT_BUILD=${GORT_BUILD:-1}
GORT_BUILD_DIR=${GORT_BUILD_DIR:-$ROOT/build}
BUILD_DIR=${BUILD_DIR:-$HERE/build}
CC=${CC:-cc}
GO=${GO:-go}
CASES=${CASES:-"gcbench binary-trees"}
IMPLS=${IMPLS:-"boehm gort go"}
TIME_BIN=/usr/bin/time
LIB=$GORT_BUILD_DIR/libgort.a

note() { printf '%s\n' "$*" >&2; }

# ------------------------------------------------------------------ cases
size_of() { # the depth argument
    if [ "$QUICK" != 0 ]; then
        case $1 in gcbench) echo 14 ;; binary-trees) echo 16 ;; esac
    else
        case $1 in gcbench) echo 18 ;; binary-trees) echo 20 ;; esac
    fi
}
label_of() {
    local d; d=$(size_of "$1")
    case $1 in
    gcbench) echo "GCBench, stretch tree depth $d, long-lived tree depth $((d - 2)), trees of depth 4..$((d - 2))" ;;
    binary-trees) echo "binary-trees, depth $d, single-threaded" ;;
    esac
}
name_of() {
    case $1 in boehm) echo "Boehm" ;; gort) echo "gort" ;; go) echo "Go" ;; esac
}

for c in $CASES; do
    case $c in gcbench | binary-trees) ;; *) note "error: unknown case '$c' in CASES"; exit 2 ;; esac
done
for impl in $IMPLS; do
    case $impl in boehm | gort | go) ;; *) note "error: unknown implementation '$impl' in IMPLS"; exit 2 ;; esac
done

# ------------------------------------------------------------------ build
if [ ! -x "$TIME_BIN" ]; then
    note "error: $TIME_BIN not found (Debian package 'time'); needed for peak RSS"
    exit 1
fi
mkdir -p "$BUILD_DIR/logs"
rm -f "$BUILD_DIR"/logs/*.log "$BUILD_DIR"/logs/*.time
BIN=$BUILD_DIR
NOTES=()
CFLAGS="-std=gnu11 -O2 -Wall -Wextra"

want_impl() { case " $IMPLS " in *" $1 "*) return 0 ;; esac; return 1; }

if want_impl gort && [ "$GORT_BUILD" != 0 ]; then
    note "== building libgort.a ($GORT_BUILD_DIR)"
    if [ ! -f "$GORT_BUILD_DIR/CMakeCache.txt" ]; then
        cmake -S "$ROOT" -B "$GORT_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$BUILD_DIR/logs/cmake.txt" 2>&1
    fi
    if ! cmake --build "$GORT_BUILD_DIR" -j2 >>"$BUILD_DIR/logs/cmake.txt" 2>&1; then
        note "warning: libgort build failed (see $BUILD_DIR/logs/cmake.txt); using libgort.a as it is"
        NOTES+=("libgort build failed; the existing libgort.a was used")
    fi
fi

for impl in $IMPLS; do rm -f "$BIN/gcbench_$impl"; done
if want_impl boehm; then
    note "== building Boehm benchmark"
    if ! $CC $CFLAGS -DUSE_BOEHM -o "$BIN/gcbench_boehm" "$HERE/gcbench.c" -lgc \
        >"$BUILD_DIR/logs/build-gcbench_boehm.txt" 2>&1; then
        rm -f "$BIN/gcbench_boehm"
        note "warning: gcbench_boehm did not build (see $BUILD_DIR/logs/build-gcbench_boehm.txt)"
        NOTES+=("the Boehm benchmark did not build (Debian package libgc-dev missing?)")
    fi
fi
if want_impl gort; then
    if [ -f "$LIB" ]; then
        note "== building gort benchmark"
        if ! $CC $CFLAGS -I"$ROOT/include" -o "$BIN/gcbench_gort" "$HERE/gcbench.c" \
            "$LIB" -lpthread -ldl >"$BUILD_DIR/logs/build-gcbench_gort.txt" 2>&1; then
            rm -f "$BIN/gcbench_gort"
            note "warning: gcbench_gort did not build/link (see $BUILD_DIR/logs/build-gcbench_gort.txt)"
            NOTES+=("the gort benchmark did not link against libgort.a")
        fi
    else
        note "warning: $LIB not found"
        NOTES+=("libgort.a not found")
    fi
fi
if want_impl go; then
    note "== building Go benchmark"
    GOTMP=$BUILD_DIR/go-tmp
    mkdir -p "$GOTMP/path" "$GOTMP/cache"
    if ! (cd "$GOTMP" && GOPATH="$GOTMP/path" GOCACHE="$GOTMP/cache" GO111MODULE=off GOFLAGS= \
        GOPROXY=off "$GO" build -o "$BIN/gcbench_go" "$HERE/gcbench.go") >"$BUILD_DIR/logs/build-gcbench_go.txt" 2>&1; then
        note "warning: gcbench_go did not build (see $BUILD_DIR/logs/build-gcbench_go.txt)"
        NOTES+=("the Go benchmark did not build")
    fi
fi

binary_of() { echo "$BIN/gcbench_$1"; }
# env_of <impl>: the environment a run gets
env_of() { [ "$1" = boehm ] && echo "GC_MARKERS=$GC_MARKERS"; }

# A short smoke run of every (workload, implementation) at depth 8, so that
# a broken collector costs seconds, not REPEAT x TIMEOUT. A pair that fails
# here is skipped.
BAD=" "
for c in $CASES; do
    for impl in $IMPLS; do
        b=$(binary_of "$impl")
        [ -x "$b" ] || continue
        if ! out=$(env $(env_of "$impl") timeout -k 2 20 "$b" "$c" 8 2>"$BUILD_DIR/logs/smoke-$c-$impl.log") ||
            ! printf '%s\n' "$out" | grep -q '^RESULT '; then
            BAD="$BAD$c/$impl "
        fi
    done
done
if [ "$BAD" != " " ]; then
    note "warning: smoke runs failed for:$BAD(see $BUILD_DIR/logs/smoke-*.log); skipped"
    NOTES+=("smoke run (depth 8) failed for:${BAD}those runs were skipped")
fi

runnable() { # <case> <impl>
    [ -x "$(binary_of "$2")" ] || return 1
    case $BAD in *" $1/$2 "*) return 1 ;; esac
    return 0
}

# -------------------------------------------------------------------- run
RAW=$BUILD_DIR/results.tsv
printf 'case\timpl\trep\telapsed_ms\tmax_pause_us\ttotal_pause_ms\tnum_gc\tmaxrss_kib\tstatus\n' >"$RAW"

field() { # <RESULT line> <key>
    printf '%s\n' "$1" | awk -v k="$2" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2) }'
}

run_one() { # <case> <impl> <rep>
    local c=$1 impl=$2 rep=$3 b log tf out rc line rss el mp tp ng
    b=$(binary_of "$impl")
    log=$BUILD_DIR/logs/$c.$impl.$rep.log
    tf=$BUILD_DIR/logs/$c.$impl.$rep.time
    out=$(env $(env_of "$impl") timeout -k 5 "$TIMEOUT" "$TIME_BIN" -f '%M' -o "$tf" "$b" "$c" "$(size_of "$c")" 2>"$log")
    rc=$?
    line=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -n1)
    rss=$(grep -E '^[0-9]+$' "$tf" 2>/dev/null | tail -n1)
    el=$(field "$line" elapsed_ms); mp=$(field "$line" max_pause_us)
    tp=$(field "$line" total_pause_ms); ng=$(field "$line" num_gc)
    if [ $rc != 0 ] || [ -z "$el" ]; then
        printf '%s\t%s\t%s\t\t\t\t\t%s\trc=%s\n' "$c" "$impl" "$rep" "${rss:-}" "$rc" >>"$RAW"
        note "   $c $impl #$rep: FAILED (rc=$rc, log $log)"
    else
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\n' "$c" "$impl" "$rep" "$el" "$mp" "$tp" "$ng" "${rss:-}" >>"$RAW"
        note "   $c $impl #$rep: $el ms, max pause $mp us, total pause $tp ms, $ng GCs, peak RSS ${rss:-?} KiB"
    fi
}

T0=$(date +%s)
set -- $IMPLS
NIMPL=$#
for rep in $(seq 1 "$REPEAT"); do
    note "== round $rep/$REPEAT"
    # rotate who goes first each round, so that drift on the machine hits all
    set -- $IMPLS
    for k in $(seq 1 $(((rep - 1) % NIMPL))); do set -- "${@:2}" "$1"; done
    order="$*"
    for c in $CASES; do
        for impl in $order; do
            runnable "$c" "$impl" && run_one "$c" "$impl" "$rep"
        done
    done
done
T1=$(date +%s)

# ------------------------------------------------------------------ report
col_of() {
    case $1 in elapsed) echo 4 ;; max_pause) echo 5 ;; total_pause) echo 6 ;; num_gc) echo 7 ;; rss) echo 8 ;; esac
}
# median <case> <impl> <column name>: median of the ok runs; "" when none
median() {
    awk -F'\t' -v c="$1" -v i="$2" -v col="$(col_of "$3")" \
        'NR > 1 && $1 == c && $2 == i && $9 == "ok" && $col != "" { print $col }' "$RAW" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) exit
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
count() { # <case> <impl> [ok]
    awk -F'\t' -v c="$1" -v i="$2" -v ok="${3:-}" \
        'NR > 1 && $1 == c && $2 == i && (ok == "" || $9 == "ok")' "$RAW" | wc -l
}
fmt_ms() { awk -v v="$1" 'BEGIN { if (v >= 100) printf "%.0f", v; else if (v >= 1) printf "%.1f", v; else printf "%.2f", v }'; }
fmt_us() { awk -v v="$1" 'BEGIN { if (v >= 1000) printf "%.1f ms", v / 1000; else printf "%.0f µs", v }'; }
fmt_rss() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
fmt_gc() { awk -v v="$1" 'BEGIN { if (v == int(v)) printf "%d", v; else printf "%.1f", v }'; }
ratio() { # <case> <column> <peer>
    local a b; a=$(median "$1" gort "$2"); b=$(median "$1" "$3" "$2")
    if [ -z "$a" ] || [ -z "$b" ]; then echo "–"; return; fi
    if [ "$2" = max_pause ] && [ "$(fmt_gc "$(median "$1" gort num_gc)")" = 0 ]; then echo "–"; return; fi
    awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "–"; else printf "%.2f", a / b }'
}

REPORT=$BUILD_DIR/results.md
{
    echo "Garbage-collector benchmarks: medians of $REPEAT interleaved runs$([ "$QUICK" != 0 ] && echo ' (QUICK sizes)')."
    echo "$(nproc) CPUs, $(uname -m), $("$GO" version 2>/dev/null | awk '{print $3}'), Boehm GC_MARKERS=$GC_MARKERS, $(date -u '+%Y-%m-%d %H:%M UTC'); lower is better everywhere."
    for c in $CASES; do
        echo
        echo "### $(label_of "$c")"
        echo
        echo "| | elapsed ms | max pause | total pause ms | GCs | peak RSS MiB |"
        echo "|---|---|---|---|---|---|"
        for impl in $IMPLS; do
            all=$(count "$c" "$impl"); ok=$(count "$c" "$impl" ok)
            name=$(name_of "$impl")
            if [ "$all" = 0 ]; then
                echo "| $name | n/a | | | | |"; continue
            elif [ "$ok" = 0 ]; then
                echo "| $name | failed ($all/$all) | | | | |"; continue
            fi
            el=$(fmt_ms "$(median "$c" "$impl" elapsed)")
            [ "$ok" != "$all" ] && el="$el ($ok/$all ok)"
            ng=$(median "$c" "$impl" num_gc)
            rss=$(median "$c" "$impl" rss)
            mp=$(fmt_us "$(median "$c" "$impl" max_pause)")
            [ "$(fmt_gc "$ng")" = 0 ] && mp="– (no GC)"
            echo "| $name | $el | $mp | $(fmt_ms "$(median "$c" "$impl" total_pause)") | $(fmt_gc "$ng") | $([ -n "$rss" ] && fmt_rss "$rss" || echo –) |"
            if [ "$impl" != boehm ] && awk -v n="$ng" 'BEGIN { exit !(n > 256) }'; then
                NOTES+=("$c: $name ran more than 256 cycles; its max pause is over the last 256 (the PauseNs ring)")
            fi
            if [ "$impl" = gort ] && [ "$(fmt_gc "$ng")" = 0 ]; then
                NOTES+=("$c: gort ran no collection (nothing was freed), so it has no pauses and its pause ratios are left out")
            fi
        done
        if want_impl gort; then
            for peer in boehm go; do
                want_impl $peer || continue
                echo "| gort ÷ $(name_of $peer) | $(ratio "$c" elapsed $peer) | $(ratio "$c" max_pause $peer) | | | $(ratio "$c" rss $peer) |"
            done
        fi
    done
    if [ ${#NOTES[@]} -gt 0 ]; then
        echo
        for n in "${NOTES[@]}"; do echo "- note: $n"; done
    fi
    echo
    echo "Raw runs: $RAW; per-run stderr: $BUILD_DIR/logs/. Wall time of the runs: $((T1 - T0)) s."
} >"$REPORT"
cat "$REPORT"
