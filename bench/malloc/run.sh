#!/usr/bin/env bash
# run.sh - build mbench and compare gort against glibc, jemalloc, tcmalloc
# and mimalloc.  See README.md in this directory.
#
# Environment knobs:
#   REPEAT=3           runs per (workload, allocator); the median is reported
#   QUICK=1            tiny problem sizes (smoke test, a few seconds in all)
#   WORKLOADS="..."    subset/order of workloads
#   ALLOCATORS="..."   subset of: glibc jemalloc tcmalloc mimalloc gort
#   GORT_MALLOC_SO     gort library (default $ROOT/build/libgort-malloc.so)
#   JEMALLOC_SO TCMALLOC_SO MIMALLOC_SO   override peer library paths
#   BUILD_DIR          where the binary and raw results go
#                      (default bench/malloc/build)
#   TIMEOUT=120        seconds before a single run is killed
#   CC=cc              compiler
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

REPEAT=${REPEAT:-3}
QUICK=${QUICK:-0}
TIMEOUT=${TIMEOUT:-120}
CC=${CC:-cc}
BUILD_DIR=${BUILD_DIR:-$HERE/build}
WORKLOADS=${WORKLOADS:-"st-small window2 xthread larson realloc large bintree"}
ALLOCATORS=${ALLOCATORS:-"glibc jemalloc tcmalloc mimalloc gort"}

LIBDIR=/usr/lib/x86_64-linux-gnu
JEMALLOC_SO=${JEMALLOC_SO:-$LIBDIR/libjemalloc.so.2}
TCMALLOC_SO=${TCMALLOC_SO:-$LIBDIR/libtcmalloc_minimal.so.4}
MIMALLOC_SO=${MIMALLOC_SO:-$LIBDIR/libmimalloc.so.2}
GORT_MALLOC_SO=${GORT_MALLOC_SO:-$ROOT/build/libgort-malloc.so}

TIME_BIN=/usr/bin/time

# Problem size (argument N of mbench) per workload.
size_of() {
    local wl=$1
    if [ "$QUICK" != 0 ]; then
        case $wl in
        st-small) echo 2000000 ;;
        window2) echo 2000000 ;;
        xthread) echo 200000 ;;
        larson) echo 1000000 ;;
        realloc) echo 20000 ;;
        large) echo 1000 ;;
        bintree) echo 14 ;;
        esac
    else
        case $wl in
        st-small) echo 40000000 ;;
        window2) echo 40000000 ;;
        xthread) echo 4000000 ;;
        larson) echo 20000000 ;;
        realloc) echo 400000 ;;
        large) echo 20000 ;;
        bintree) echo 20 ;;
        esac
    fi
}

lib_of() {
    case $1 in
    glibc) echo "" ;;
    jemalloc) echo "$JEMALLOC_SO" ;;
    tcmalloc) echo "$TCMALLOC_SO" ;;
    mimalloc) echo "$MIMALLOC_SO" ;;
    gort) echo "$GORT_MALLOC_SO" ;;
    *) echo "?" ;;
    esac
}

note() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- build
if [ ! -x "$TIME_BIN" ]; then
    note "error: $TIME_BIN not found (Debian package 'time'); needed for peak RSS"
    exit 1
fi
mkdir -p "$BUILD_DIR" || exit 1
BIN=$BUILD_DIR/mbench
CFLAGS=(-O2 -pthread -fno-builtin-malloc -fno-builtin-free -fno-builtin-realloc -fno-builtin-calloc)
# -fno-builtin-*: keep the compiler from eliding or merging malloc/free
# pairs, so every allocator sees exactly the calls written in mbench.c.
if ! "$CC" "${CFLAGS[@]}" -o "$BIN" "$HERE/mbench.c" -ldl; then
    note "error: failed to build $BIN"
    exit 1
fi

# Run one benchmark.  Prints "value rss_kb" or "FAIL why".
RUN_OUT=$BUILD_DIR/run.out
RUN_ERR=$BUILD_DIR/run.err
RUN_RSS=$BUILD_DIR/run.rss
run_one() {
    local alloc=$1 wl=$2 n=$3 lib
    lib=$(lib_of "$alloc")
    local -a envargs=(env -u LD_PRELOAD)
    [ -n "$lib" ] && envargs+=("LD_PRELOAD=$lib")
    : >"$RUN_RSS"
    timeout -k 5 "$TIMEOUT" "$TIME_BIN" -f %M -o "$RUN_RSS" \
        "${envargs[@]}" "$BIN" "$wl" "$n" >"$RUN_OUT" 2>"$RUN_ERR"
    local rc=$?
    local line
    line=$(grep '^MBENCH ' "$RUN_OUT" | tail -n 1)
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        echo "FAIL rc=$rc"
        return
    fi
    local value rss
    value=$(sed -n 's/.* value=\([^ ]*\).*/\1/p' <<<"$line")
    # time -o writes "Command exited..." lines on failure; take the last number
    rss=$(grep -E '^[0-9]+$' "$RUN_RSS" | tail -n 1)
    echo "$value ${rss:-NA}"
}

# ---------------------------------------------------- select allocators
# Snapshot the gort library so a rebuild during the suite cannot mix two
# versions into one table (the copy keeps the file name, which the
# malloc-provider check below relies on).
GORT_SRC=$GORT_MALLOC_SO
if [ -f "$GORT_MALLOC_SO" ]; then
    mkdir -p "$BUILD_DIR/gort-snapshot"
    if cp -p "$GORT_MALLOC_SO" "$BUILD_DIR/gort-snapshot/"; then
        GORT_MALLOC_SO=$BUILD_DIR/gort-snapshot/$(basename "$GORT_MALLOC_SO")
    fi
fi

ACTIVE=()
NOTES=()
for a in $ALLOCATORS; do
    lib=$(lib_of "$a")
    if [ "$lib" = "?" ]; then
        NOTES+=("$a: unknown allocator name, ignored")
        continue
    fi
    if [ -n "$lib" ] && [ ! -f "$lib" ]; then
        NOTES+=("$a: skipped, library not found: $lib")
        continue
    fi
    # smoke test: it must run, and malloc must really come from $lib
    res=$(run_one "$a" st-small 10000)
    if [ "${res%% *}" = FAIL ]; then
        NOTES+=("$a: skipped, smoke test failed ($res): $(head -c 300 "$RUN_ERR" | tr '\n' ' ')")
        continue
    fi
    got=$(sed -n 's/.* malloc_lib=\([^ ]*\).*/\1/p' "$RUN_OUT")
    want=libc.so.6
    [ -n "$lib" ] && want=$(basename "$lib")
    if [ "$got" != "$want" ]; then
        NOTES+=("$a: skipped, malloc resolves to '$got', expected '$want'")
        continue
    fi
    ACTIVE+=("$a")
done

for n in "${NOTES[@]}"; do note "note: $n"; done
if [ ${#ACTIVE[@]} -eq 0 ]; then
    note "error: no usable allocator"
    exit 1
fi

# ------------------------------------------------------------- run
RAW=$BUILD_DIR/results.tsv
printf 'workload\tallocator\trepeat\tvalue\tunit\trss_kb\n' >"$RAW"

unit_of() {
    case $1 in
    bintree) echo "s" ;;
    xthread) echo "ns/obj" ;;
    realloc) echo "ns/realloc" ;;
    *) echo "ns/op" ;;
    esac
}

note "mbench: $BIN"
note "allocators: ${ACTIVE[*]}   repeats: $REPEAT   quick: $QUICK"
note "gort: $GORT_SRC"
START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
nact=${#ACTIVE[@]}
for ((rep = 1; rep <= REPEAT; rep++)); do
    for wl in $WORKLOADS; do
        n=$(size_of "$wl")
        if [ -z "$n" ]; then
            note "unknown workload '$wl', skipped"
            continue
        fi
        # rotate the allocator order every repeat so drift hits all alike
        for ((k = 0; k < nact; k++)); do
            a=${ACTIVE[$(((k + rep - 1) % nact))]}
            res=$(run_one "$a" "$wl" "$n")
            read -r v r <<<"$res"
            if [ "$v" = FAIL ]; then
                note "[$rep/$REPEAT] $wl $a: FAILED ($r) $(head -c 200 "$RUN_ERR" | tr '\n' ' ')"
                v=FAIL
                r=NA
            else
                note "[$rep/$REPEAT] $wl $a: $v $(unit_of "$wl"), peak RSS ${r} KiB"
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$a" "$rep" "$v" \
                "$(unit_of "$wl")" "$r" >>"$RAW"
        done
    done
done
END=$(date +%s)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

# ------------------------------------------------------------- report
REPORT=$BUILD_DIR/results.md
{
    echo "## gort malloc benchmarks"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), $(nproc) CPUs," \
        "median of $REPEAT run(s)$([ "$QUICK" != 0 ] && echo ', QUICK mode')," \
        "suite wall time $((END - START)) s."
    echo "Load average (1/5/15 min) at start: ${LOAD_START:-?}, at end: ${LOAD_END:-?}" \
        "(the suite itself adds up to about 2; more means other processes competed for the CPUs)."
    case " ${ACTIVE[*]} " in
    *" gort "*) echo "gort: $GORT_SRC ($(stat -c '%s bytes, modified %y' "$GORT_MALLOC_SO" | cut -d. -f1))." ;;
    esac
    for n in "${NOTES[@]}"; do echo "Note: $n"; done
    echo
    awk -F'\t' -v allocs="${ACTIVE[*]}" -v wls="$WORKLOADS" '
    function median(list,    a, m, i, j, t) {
        m = split(list, a, " ")
        for (i = 2; i <= m; i++) {          # insertion sort, m is tiny
            t = a[i] + 0
            for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
            a[j + 1] = t
        }
        if (m % 2) return a[(m + 1) / 2] + 0
        return (a[m / 2] + a[m / 2 + 1]) / 2
    }
    function spread(list, med,    a, m, i, lo, hi) {   # (max-min)/median
        m = split(list, a, " ")
        lo = hi = a[1] + 0
        for (i = 2; i <= m; i++) {
            if (a[i] + 0 < lo) lo = a[i] + 0
            if (a[i] + 0 > hi) hi = a[i] + 0
        }
        return med > 0 ? (hi - lo) / med : 0
    }
    function fmt(v) {
        if (v >= 1000) return sprintf("%.0f", v)
        if (v >= 100) return sprintf("%.1f", v)
        if (v >= 10) return sprintf("%.2f", v)
        return sprintf("%.3f", v)
    }
    NR == 1 { next }
    {
        k = $1 SUBSEP $2
        unit[$1] = $5
        if ($4 == "FAIL") failed[k] = 1
        else { vals[k] = vals[k] " " $4 }
        if ($6 != "NA" && $6 != "") rss[k] = rss[k] " " $6
    }
    END {
        na = split(allocs, A, " ")
        nw = split(wls, W, " ")
        hasgort = 0
        for (i = 1; i <= na; i++) if (A[i] == "gort") hasgort = 1

        hdr = "| workload | unit |"; sep = "|---|---|"
        for (i = 1; i <= na; i++) {
            hdr = hdr " " A[i] " | " A[i] " RSS MiB |"; sep = sep "---:|---:|"
        }
        hdr = hdr " gort/best | gort RSS/min |"; sep = sep "---:|---:|"
        print hdr; print sep

        for (w = 1; w <= nw; w++) {
            wl = W[w]
            if (!(wl in unit)) continue
            line = "| " wl " | " unit[wl] " |"
            best_all = ""; best_peer = ""; minrss_peer = ""; gt = ""; gm = ""
            for (i = 1; i <= na; i++) {
                k = wl SUBSEP A[i]
                t[i] = ""; m[i] = ""
                if (!(k in failed) && (k in vals)) t[i] = median(vals[k])
                if (!(k in failed) && (k in rss)) m[i] = median(rss[k]) / 1024
                if (t[i] != "") {
                    if (best_all == "" || t[i] < best_all) best_all = t[i]
                    if (A[i] != "gort" && (best_peer == "" || t[i] < best_peer)) best_peer = t[i]
                }
                if (m[i] != "" && A[i] != "gort" && (minrss_peer == "" || m[i] < minrss_peer)) minrss_peer = m[i]
                if (A[i] == "gort") { gt = t[i]; gm = m[i] }
                mark = ""
                if (t[i] != "" && spread(vals[k], t[i]) > 0.2) { mark = "~"; noisy++ }
                line = line " " (t[i] == "" ? "FAIL" : fmt(t[i]) mark) " | " \
                       (m[i] == "" ? "n/a" : sprintf("%.1f", m[i])) " |"
            }
            if (hasgort && gt != "" && best_peer != "") {
                r = gt / best_peer
                line = line " " sprintf("%.2f", r) " |"
                glog += log(r); gcnt++
            } else line = line " n/a |"
            if (hasgort && gm != "" && minrss_peer != "" && minrss_peer > 0)
                line = line " " sprintf("%.2f", gm / minrss_peer) " |"
            else line = line " n/a |"
            print line
            for (i = 1; i <= na; i++) if (t[i] != "" && best_all > 0) {
                alog[i] += log(t[i] / best_all); acnt[i]++
            }
        }
        print ""
        if (noisy) print "`~` = runs of that cell spread by more than 20% of the median (max-min); treat with care.\n"
        if (hasgort && gcnt > 0)
            printf("**Geomean gort/best-peer time ratio: %.3f** (over %d workloads; < 1 means gort beats every peer)\n\n", exp(glog / gcnt), gcnt)
        else
            print "Geomean gort/best-peer time ratio: n/a (gort not run)\n"
        print "Geomean time relative to the fastest allocator of each row (1.00 = always fastest):"
        print ""
        print "| allocator | geomean vs best | rows |"
        print "|---|---:|---:|"
        for (i = 1; i <= na; i++)
            printf("| %s | %s | %d |\n", A[i], acnt[i] ? sprintf("%.3f", exp(alog[i] / acnt[i])) : "n/a", acnt[i])
    }' "$RAW"
} >"$REPORT"

cat "$REPORT"
note ""
note "raw results: $RAW"
note "report:      $REPORT"
