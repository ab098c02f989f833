#!/usr/bin/env bash
# run-carried.sh OUTDIR - run the multi-core scaling benchmark from the
# binaries in bench/scaling/carry/ (made by prepare.sh), on a machine that
# needs no compiler, Go toolchain, network or installed allocator.  See
# README.md here.
#
# Prints markdown tables on stdout and writes them to OUTDIR/scaling.md;
# every run goes to OUTDIR/raw.txt as it finishes, the stderr of failed runs
# to OUTDIR/logs/.  Progress goes to stderr.
#
# Environment knobs:
#   THREADS="1 2 4 8 16"  thread counts (GOMAXPROCS for gort and Go; in the
#                         gc section gort's mark workers, Boehm's markers)
#   MAXP=<nproc>          skip thread counts above this; counts above the
#                         CPUs this process may use are always skipped
#   NCPU=<nproc>          the CPUs this process may use; set it higher only
#                         to try the script's larger thread counts on a
#                         small machine (the numbers then mean nothing)
#   REPEAT=3              rounds; each round runs every case once, and the
#                         tables show medians.  Rounds after the first run
#                         only while they fit in the section's budget
#   BUDGET=350            seconds for the measured runs, all sections
#   SCHED_SHARE=33 GC_SHARE=26 MALLOC_SHARE=41
#                         how BUDGET is split: each section plans on its
#                         share of what is left when it starts (shares of
#                         the sections not run are not counted); the last
#                         section gets all that is left
#   HARD=400              seconds after the start when no run starts any
#                         more (the first round too); keeps the whole script
#                         under 7 minutes
#   TIMEOUT=60            seconds before a single run is killed
#   SECTIONS="sched gc malloc"
#   SCHED_CASES="skynet spawn buffered mutex select4"
#   GC_CASES="gcbench binary-trees"
#   GC_IMPLS="gort boehm go"
#   MALLOC_CASES="window larson xthread bintree"
#   ALLOCATORS="glibc jemalloc tcmalloc mimalloc gort"
#   QUICK=1               about a tenth of the sizes (a check that it works)
#   CARRY                 the carried folder (default bench/scaling/carry)
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CARRY=${CARRY:-$HERE/carry}

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUT=$1
mkdir -p "$OUT/logs" || { echo "cannot create $OUT" >&2; exit 2; }
OUT=$(cd "$OUT" && pwd)

T_START=$(date +%s)
REAL_NCPU=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
NCPU=${NCPU:-$REAL_NCPU}
THREADS=${THREADS:-"1 2 4 8 16"}
MAXP=${MAXP:-$NCPU}
REPEAT=${REPEAT:-3}
BUDGET=${BUDGET:-350}
SCHED_SHARE=${SCHED_SHARE:-33}
GC_SHARE=${GC_SHARE:-26}
MALLOC_SHARE=${MALLOC_SHARE:-41}
HARD=${HARD:-400}
TIMEOUT=${TIMEOUT:-60}
SECTIONS=${SECTIONS:-"sched gc malloc"}
SCHED_CASES=${SCHED_CASES:-"skynet spawn buffered mutex select4"}
GC_CASES=${GC_CASES:-"gcbench binary-trees"}
GC_IMPLS=${GC_IMPLS:-"gort boehm go"}
MALLOC_CASES=${MALLOC_CASES:-"window larson xthread bintree"}
ALLOCATORS=${ALLOCATORS:-"glibc jemalloc tcmalloc mimalloc gort"}
QUICK=${QUICK:-0}

BIN=$CARRY/bin
LIB=$CARRY/lib
LD=$LIB/ld-linux-x86-64.so.2
RAW=$OUT/raw.txt
REPORT=$OUT/scaling.md
NOTES=()

note() { printf '%s\n' "$*" >&2; }
addnote() { NOTES+=("$*"); note "note: $*"; }
now() { date +%s; }
elapsed() { echo $(($(now) - T_START)); }

# Transfers do not always keep the executable bit; put it back.
chmod u+x "$BIN"/* "$LD" 2>/dev/null

for sec in $SECTIONS; do
    case $sec in sched | gc | malloc) ;; *) note "error: unknown section '$sec' in SECTIONS"; exit 2 ;; esac
done
[ "$NCPU" = "$REAL_NCPU" ] || addnote "NCPU=$NCPU set by hand; this process may use $REAL_NCPU CPUs, so the counts above $REAL_NCPU measure nothing"

# ------------------------------------------------------------------ cases
# Sizes: each run takes 0.2-3 s at one thread on a current x86-64 core
# (Go's binary-trees about 4 s).
size_of() { # <case>
    local n
    case $1 in
    skynet) n=1000000 ;; spawn) n=1000000 ;; buffered) n=20000000 ;;
    mutex) n=40000000 ;; select4) n=2000000 ;;
    window) n=30000000 ;; larson) n=15000000 ;; xthread) n=4000000 ;;
    bintree) n=18 ;;
    gcbench) n=18 ;; binary-trees) n=18 ;;
    esac
    if [ "$QUICK" != 0 ]; then
        case $1 in
        skynet) n=100000 ;; bintree) n=15 ;; gcbench) n=15 ;; binary-trees) n=15 ;;
        *) n=$((n / 10)) ;;
        esac
    fi
    echo "$n"
}
prog_of() { # <case>: the benchmark program and its mode
    case $1 in
    spawn) echo "sbench spawn" ;;
    skynet | buffered | mutex | select4) echo "cbench $1" ;;
    gcbench | binary-trees) echo "gcbench $1" ;;
    *) echo "mbench $1" ;;
    esac
}
unit_of() {
    case $1 in
    skynet) echo "ms total" ;; spawn) echo "ns/goroutine" ;; buffered) echo "ns/item" ;;
    mutex) echo "ns/lock+unlock" ;; select4) echo "ns/msg" ;;
    window | larson) echo "ns/op" ;; xthread) echo "ns/obj" ;; bintree) echo "s total" ;;
    gcbench | binary-trees) echo "ms elapsed" ;;
    esac
}
human() { # 1000000 -> 1M, 100000 -> 100k
    local n=$1
    if [ $((n % 1000000)) = 0 ]; then echo "$((n / 1000000))M"
    elif [ $((n % 1000)) = 0 ]; then echo "$((n / 1000))k"
    else echo "$n"; fi
}
describe() { # <case>: one line for the table heading
    local n; n=$(human "$(size_of "$1")")
    case $1 in
    skynet) echo "skynet: a tree of goroutines, 10 children per node, $n leaves; each node sums its children's numbers received on a fresh unbuffered channel. Fixed work." ;;
    spawn) echo "spawn: main starts $n goroutines that each do one atomic add, then yields until all have run. Fixed work." ;;
    buffered) echo "buffered: one producer, one consumer, $n items through a channel of capacity 1024. Two goroutines: more Ps can only add overhead." ;;
    mutex) echo "mutex: 8 goroutines lock, increment, unlock one shared mutex, $n times in all. Contention grows with GOMAXPROCS up to 8." ;;
    select4) echo "select4: 4 producers on 4 unbuffered channels, main selects over them; $n messages. Five goroutines." ;;
    window) echo "window: every thread keeps its own FIFO of 1000 objects of 16..256 B and replaces the oldest, $n times per thread. Work grows with T (weak scaling): ideal is a flat wall time, value ÷ T." ;;
    larson) echo "larson: T lineages of threads, each owning 4000 slots; a thread replaces 10000 random slots (16..1024 B) and hands the slots to a new thread; $n ops per lineage (weak scaling)." ;;
    xthread) echo "xthread: T/2 producer→consumer pairs; every object is freed by a thread other than the one that allocated it; $n objects per pair (weak scaling). Speedup is against 2 threads." ;;
    bintree) echo "bintree: binary-trees of depth $n, one malloc per 16 B node; the trees of each depth are split over T threads (the first two trees are built by one thread). Fixed work." ;;
    gcbench) echo "GCBench (bench/gc): a stretch tree of depth $n, a long-lived tree of depth $((n - 2)) and a pointer-free array of 500,000 doubles live to the end, and trees of depth 4..$((n - 2)) built top-down and bottom-up and dropped; 24 B nodes. One mutator thread, N collector threads. Fixed work." ;;
    binary-trees) echo "binary-trees (bench/gc): depth $n, single-threaded: a stretch tree of depth $((n + 1)), a long-lived tree of depth $n, and 2^($n − d + 4) trees of each depth d = 4, 6, .., $n built, walked and dropped; 16 B nodes. One mutator thread, N collector threads. Fixed work." ;;
    esac
}
impls_of() { # <section>
    case $1 in sched) echo "gort go" ;; gc) echo "$GC_IMPLS" ;; *) echo "$ALLOCATORS" ;; esac
}
cases_of() {
    case $1 in sched) echo "$SCHED_CASES" ;; gc) echo "$GC_CASES" ;; *) echo "$MALLOC_CASES" ;; esac
}
share_of() {
    case $1 in sched) echo "$SCHED_SHARE" ;; gc) echo "$GC_SHARE" ;; *) echo "$MALLOC_SHARE" ;; esac
}
impl_name() { # column heading
    case $1 in gort) echo gort ;; go) echo Go ;; boehm) echo Boehm ;; *) echo "$1" ;; esac
}
preload_of() { # <allocator>: the library to preload, "" for glibc
    case $1 in
    glibc) echo "" ;; gort) echo "$LIB/libgort-malloc.so" ;;
    jemalloc) echo "$LIB/libjemalloc.so.2" ;; tcmalloc) echo "$LIB/libtcmalloc_minimal.so.4" ;;
    mimalloc) echo "$LIB/libmimalloc.so.2" ;; *) echo "?" ;;
    esac
}
base_threads() { # <case>: the thread count speedups are measured against
    if [ "$1" = xthread ]; then echo 2; else echo 1; fi
}

# ------------------------------------------------------------ thread counts
LIMIT=$MAXP
if [ "$LIMIT" -gt "$NCPU" ]; then LIMIT=$NCPU; fi
TLIST=""
for t in $THREADS; do
    if [ "$t" -le "$LIMIT" ]; then TLIST="$TLIST $t"
    else addnote "T=$t skipped: above $([ "$LIMIT" = "$NCPU" ] && echo "the $NCPU CPUs available" || echo "MAXP=$MAXP")"; fi
done
TLIST=${TLIST# }
[ -n "$TLIST" ] || { note "error: no thread count left to run"; exit 2; }
threads_for() { # <case>: the thread counts that case runs at
    local t out=""
    for t in $TLIST; do
        if [ "$1" = xthread ] && [ $((t % 2)) = 1 ]; then continue; fi
        out="$out $t"
    done
    echo "${out# }"
}

# ------------------------------------------------------------------ one run
# gc_run <impl> <T> <timeout> <stderr file> <rss file> <workload> <depth>:
# one collector benchmark run, with T collector threads: gort's mark workers
# (GORT_DEBUG=gcworkers; the program is plain C on one thread, without
# gort_main), Boehm's markers (GC_MARKERS, the collecting thread included),
# Go's GOMAXPROCS.  Every other tuning variable is cleared, so each runs
# with its defaults.  Boehm goes through the carried loader like mbench.
# The peak RSS (KiB) goes to the rss file when bin/maxrss is there.
# GC_TRACE=1 adds gort's gctrace (for the smoke check only).
gc_run() {
    local impl=$1 t=$2 to=$3 err=$4 rssf=$5
    local -a cmd=("$BIN/gcbench_$impl" "$6" "$7") e=()
    case $impl in
    gort) e=("GORT_DEBUG=${GC_TRACE:+gctrace=1,}gcworkers=$t") ;;
    boehm) e=("GC_MARKERS=$t")
        [ -x "$LD" ] && cmd=("$LD" --library-path "$LIB" "${cmd[@]}") ;;
    go) e=("GOMAXPROCS=$t") ;;
    esac
    rm -f "$rssf"
    [ -x "$BIN/maxrss" ] && cmd=("$BIN/maxrss" "$rssf" "${cmd[@]}")
    env -u LD_PRELOAD -u LD_LIBRARY_PATH -u GOMAXPROCS -u GOGC -u GOMEMLIMIT -u GODEBUG \
        -u GORT_DEBUG -u GC_MARKERS -u GC_NPROCS "${e[@]}" timeout -k 5 "$to" "${cmd[@]}" 2>"$err"
}

# run_cmd <section> <case> <impl> <threads> <timeout> <stderr file> <rss file>:
# runs the benchmark, prints its stdout.
run_cmd() {
    local sec=$1 c=$2 impl=$3 t=$4 to=$5 err=$6 prog mode n lib
    read -r prog mode <<<"$(prog_of "$c")"
    n=$(size_of "$c")
    if [ "$sec" = sched ]; then
        env -u LD_PRELOAD GOMAXPROCS="$t" timeout -k 5 "$to" "$BIN/${prog}_$impl" "$mode" "$n" 2>"$err"
    elif [ "$sec" = gc ]; then
        gc_run "$impl" "$t" "$to" "$err" "$7" "$mode" "$n"
    else
        lib=$(preload_of "$impl")
        local -a pre=()
        [ -n "$lib" ] && pre=(--preload "$lib")
        if [ -x "$LD" ]; then
            env -u LD_PRELOAD -u LD_LIBRARY_PATH timeout -k 5 "$to" "$LD" --library-path "$LIB" \
                "${pre[@]+"${pre[@]}"}" "$BIN/mbench" "$mode" "$n" "$t" 2>"$err"
        else
            # no carried loader: the machine's own, with LD_PRELOAD
            local -a ep=(-u LD_PRELOAD)
            [ -n "$lib" ] && ep=("LD_PRELOAD=$lib")
            env "${ep[@]}" timeout -k 5 "$to" "$BIN/mbench" "$mode" "$n" "$t" 2>"$err"
        fi
    fi
}
expected_lib() { # <allocator>: what mbench must report as malloc_lib
    local lib; lib=$(preload_of "$1")
    if [ -z "$lib" ]; then echo libc.so.6; else basename "$lib"; fi
}
# parse <section> <impl> <stdout>: prints "value" or nothing
parse() {
    if [ "$1" = sched ]; then
        printf '%s\n' "$3" | awk '$1 == "result" { v = $2 } END { if (v != "") print v }'
    elif [ "$1" = gc ]; then
        printf '%s\n' "$3" | awk -v want="impl=$2" '$1 == "RESULT" && $3 == want {
            v = ""; for (i = 4; i <= NF; i++) if (index($i, "elapsed_ms=") == 1) v = substr($i, 12) }
            END { if (v != "") print v }'
    else
        local line got
        line=$(printf '%s\n' "$3" | grep '^MBENCH ' | tail -n 1)
        got=$(sed -n 's/.* malloc_lib=\([^ ]*\).*/\1/p' <<<"$line")
        [ "$got" = "$(expected_lib "$2")" ] || return 0
        sed -n 's/.* value=\([^ ]*\).*/\1/p' <<<"$line"
    fi
}

DEAD=" "   # "sec:case:impl:T " - timed out at T, so T and above are skipped
BAD=" "    # "sec:case:impl " or "sec:*:impl " - failed the smoke test

is_dead() { # <sec> <case> <impl> <T>
    local d
    for d in $DEAD; do
        case $d in "$1:$2:$3:"*) [ "$4" -ge "${d##*:}" ] && return 0 ;; esac
    done
    return 1
}

# run_one <section> <case> <impl> <T> <rep> <deadline>
run_one() {
    local sec=$1 c=$2 impl=$3 t=$4 rep=$5 deadline=$6 to left err out rc val t0 t1 st ms rssf rss
    left=$((deadline - $(now)))
    if [ "$left" -lt 3 ]; then return 1; fi
    to=$TIMEOUT
    [ "$left" -lt "$to" ] && to=$left
    err=$OUT/logs/$sec-$c-$impl-t$t-r$rep.err
    rssf=$OUT/logs/.maxrss
    t0=$(date +%s%N)
    out=$(run_cmd "$sec" "$c" "$impl" "$t" "$to" "$err" "$rssf")
    rc=$?
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    val=$(parse "$sec" "$impl" "$out")
    if [ $rc = 0 ] && [ -n "$val" ]; then
        st=ok
        rm -f "$err"
    elif { [ $rc = 124 ] || [ $rc = 137 ]; } && [ "$to" -lt "$TIMEOUT" ]; then
        st="cut"
        addnote "$sec $c $impl T=$t was cut off after ${to}s by the time limit"
    elif [ $rc = 124 ] || [ $rc = 137 ]; then
        st=timeout
        DEAD="$DEAD$sec:$c:$impl:$t "
        addnote "$sec $c $impl T=$t timed out after ${to}s; $impl skips T>=$t of $c from now on"
    elif [ $rc = 0 ]; then
        st=badoutput
    else
        st=rc$rc
    fi
    local detail
    detail=$(printf '%s\n' "$out" | grep -E '^(MBENCH|result|RESULT) ' | tail -n 1 | tr '\t' ' ')
    if [ "$sec" = gc ]; then
        # the peak RSS joins the program's line, as one more key=value
        rss=$(grep -E '^[0-9]+$' "$rssf" 2>/dev/null | tail -n 1)
        [ -n "$rss" ] && [ -n "$detail" ] && detail="$detail maxrss_kib=$rss"
        rm -f "$rssf"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sec" "$c" "$impl" "$t" "$rep" "$st" \
        "${val:-}" "$(unit_of "$c")" "$ms" "$detail" >>"$RAW"
    local more=""
    [ "$sec" = gc ] && [ -n "$val" ] &&
        more=", max pause $(sed -n 's/.* max_pause_us=\([^ ]*\).*/\1/p' <<<"$detail") µs, RSS $(sed -n 's/.* maxrss_kib=\([^ ]*\).*/\1/p' <<<"$detail") KiB"
    note "   [$(elapsed)s] $sec $c $impl T=$t #$rep: ${val:-$st} $(unit_of "$c")$more (${ms} ms)"
    return 0
}

# ------------------------------------------------------------------ report
fmt() { awk -v v="$1" 'BEGIN { a = v < 0 ? -v : v
    if (a >= 100) printf "%.0f", v; else if (a >= 10) printf "%.1f", v
    else if (a >= 1) printf "%.2f", v; else printf "%.3f", v }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.2f", a / b }'; }

declare -A MED NOK NALL LAST
load_medians() {
    MED=() NOK=() NALL=() LAST=()
    local k m ok all last
    while IFS=$'\t' read -r k m ok all last; do
        [ "$m" = - ] && m=""
        MED[$k]=$m NOK[$k]=$ok NALL[$k]=$all LAST[$k]=$last
    done < <(awk -F'\t' '
        /^#/ || NF < 6 { next }
        { k = $1 ":" $2 ":" $3 ":" $4; seen[k] = 1 }
        # a skipped run is not a try: it counts only when nothing else ran
        $6 == "skipped" { if (!(k in last)) last[k] = $6; next }
        { all[k]++; if (last[k] == "" || last[k] == "skipped" || $6 != "ok") last[k] = $6 }
        $6 == "ok" { n = ++ok[k]; v[k, n] = $7 + 0 }
        # gc runs: the medians of the other numbers in the RESULT line too,
        # under <key>:<name> (max_pause_us, total_pause_ms, num_gc, maxrss_kib)
        $6 == "ok" && $1 == "gc" {
            nf = split($10, f, " ")
            for (i = 1; i <= nf; i++) {
                e = index(f[i], "=")
                if (e == 0) continue
                name = substr(f[i], 1, e - 1)
                if (name != "max_pause_us" && name != "total_pause_ms" && name != "num_gc" && name != "maxrss_kib") continue
                mk = k ":" name
                seen[mk] = 1; all[mk]++; last[mk] = "ok"
                n = ++ok[mk]; v[mk, n] = substr(f[i], e + 1) + 0
            }
        }
        END {
            for (k in seen) {
                n = ok[k] + 0; m = ""
                if (n > 0) {
                    for (i = 1; i <= n; i++) s[i] = v[k, i]
                    for (i = 2; i <= n; i++) {       # insertion sort (no asort in mawk)
                        x = s[i]; j = i - 1
                        while (j >= 1 && s[j] > x) { s[j + 1] = s[j]; j-- }
                        s[j + 1] = x
                    }
                    m = (n % 2) ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
                }
                # no empty fields: read would merge the tabs around them
                printf "%s\t%s\t%d\t%d\t%s\n", k, (m == "" ? "-" : m), n, all[k], last[k]
            }
        }' "$RAW")
}
med() { echo "${MED[$1]:-}"; }
# cell <key>: the median, marked when some runs failed; why, when none ran
cell() {
    local k=$1
    if [ -z "${NALL[$k]:-}" ]; then
        echo "–"
    elif [ -z "${MED[$k]}" ]; then
        echo "${LAST[$k]}"
    elif [ "${NOK[$k]}" != "${NALL[$k]}" ]; then
        echo "$(fmt "${MED[$k]}") (${NOK[$k]}/${NALL[$k]} ok)"
    else
        fmt "${MED[$k]}"
    fi
}
speedup() { # <section> <case> <impl> <T>: value at the base count / value at T
    local b; b=$(base_threads "$2")
    div "$(med "$1:$2:$3:$b")" "$(med "$1:$2:$3:$4")"
}
x() { [ -n "$1" ] && echo "$1×" || echo "–"; }
fmt_pause() { # µs -> "850 µs" / "12.3 ms"
    awk -v v="$1" 'BEGIN { if (v >= 1000) { v /= 1000; u = "ms" } else u = "µs"
        if (v >= 100) printf "%.0f %s", v, u; else if (v >= 10) printf "%.1f %s", v, u; else printf "%.2f %s", v, u }'
}
# mcell <key> <metric> <format function>: a gc median other than elapsed
mcell() {
    local v; v=$(med "$1:$2")
    if [ -z "$v" ]; then echo "–"; else "$3" "$v"; fi
}
fmt_mib() { fmt "$(awk -v k="$1" 'BEGIN { print k / 1024 }')"; }
fmt_n() { awk -v v="$1" 'BEGIN { if (v == int(v)) printf "%d", v; else printf "%.1f", v }'; }

# report_gc <case>: the two tables of one collector workload
report_gc() {
    local c=$1 sec=gc t impl hdr sep line v p k
    hdr="| N |"; sep="|---:|"
    for impl in $GC_IMPLS; do hdr="$hdr $(impl_name "$impl") elapsed |"; sep="$sep---:|"; done
    for impl in $GC_IMPLS; do
        [ "$impl" = gort ] && continue
        hdr="$hdr gort ÷ $(impl_name "$impl") |"; sep="$sep---:|"
    done
    for impl in $GC_IMPLS; do hdr="$hdr $(impl_name "$impl") max pause |"; sep="$sep---:|"; done
    for impl in $GC_IMPLS; do
        [ "$impl" = gort ] && continue
        hdr="$hdr pause gort ÷ $(impl_name "$impl") |"; sep="$sep---:|"
    done
    echo "$hdr"
    echo "$sep"
    for t in $(threads_for "$c"); do
        line="| $t |"
        for impl in $GC_IMPLS; do
            k=$sec:$c:$impl:$t
            v=$(cell "$k")
            p=$(speedup "$sec" "$c" "$impl" "$t")
            [ -n "$(med "$k")" ] && [ -n "$p" ] && v="$v (${p}×)"
            line="$line $v |"
        done
        for impl in $GC_IMPLS; do
            [ "$impl" = gort ] && continue
            v=$(div "$(med "$sec:$c:gort:$t")" "$(med "$sec:$c:$impl:$t")")
            line="$line ${v:-–} |"
        done
        for impl in $GC_IMPLS; do
            k=$sec:$c:$impl:$t
            v=$(mcell "$k" max_pause_us fmt_pause)
            p=$(div "$(med "$sec:$c:$impl:1:max_pause_us")" "$(med "$k:max_pause_us")")
            [ "$v" != – ] && [ -n "$p" ] && v="$v (${p}×)"
            line="$line $v |"
        done
        for impl in $GC_IMPLS; do
            [ "$impl" = gort ] && continue
            v=$(div "$(med "$sec:$c:gort:$t:max_pause_us")" "$(med "$sec:$c:$impl:$t:max_pause_us")")
            line="$line ${v:-–} |"
        done
        echo "$line"
    done
    echo
    hdr="| N |"; sep="|---:|"
    for impl in $GC_IMPLS; do hdr="$hdr $(impl_name "$impl") total pause ms |"; sep="$sep---:|"; done
    for impl in $GC_IMPLS; do hdr="$hdr $(impl_name "$impl") GCs |"; sep="$sep---:|"; done
    for impl in $GC_IMPLS; do hdr="$hdr $(impl_name "$impl") peak RSS MiB |"; sep="$sep---:|"; done
    echo "$hdr"
    echo "$sep"
    for t in $(threads_for "$c"); do
        line="| $t |"
        for impl in $GC_IMPLS; do line="$line $(mcell "$sec:$c:$impl:$t" total_pause_ms fmt) |"; done
        for impl in $GC_IMPLS; do line="$line $(mcell "$sec:$c:$impl:$t" num_gc fmt_n) |"; done
        for impl in $GC_IMPLS; do line="$line $(mcell "$sec:$c:$impl:$t" maxrss_kib fmt_mib) |"; done
        echo "$line"
    done
}

report() {
    load_medians
    local sec c t impl hdr sep line v g p best bestname r maxt
    echo "# gort multi-core scaling"
    echo
    echo "$NCPU CPUs available ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)), $(uname -sr), $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "Carried set: $(sed -n 's/^gort: *//p' "$CARRY/MANIFEST" 2>/dev/null | head -n 1); $(sed -n 's/^prepared: *//p' "$CARRY/MANIFEST" 2>/dev/null) ($(sed -n 's/^go: *//p' "$CARRY/MANIFEST" 2>/dev/null))."
    local rounds=""
    for sec in $SECTIONS; do rounds="$rounds${rounds:+, }${ROUNDS_DONE[$sec]:-0} ($sec)"; done
    echo "Thread counts: $TLIST. Rounds completed: $rounds of $REPEAT; cells are medians over the rounds$([ "$QUICK" != 0 ] && echo "; QUICK sizes")."
    echo "Every value is a cost: lower is better. **speedup** = value at 1 thread ÷ value at T (xthread: at 2), so T is ideal; **gort ÷ X** below 1.00 means gort is faster at that T."
    for sec in $SECTIONS; do
        echo
        case $sec in
        sched) echo "## Scheduler and channels: gort against Go (GOMAXPROCS = T)" ;;
        gc) echo "## Garbage collectors: gort against Boehm GC and Go (N collector threads)"
            echo
            echo "One program, bench/gc/gcbench.c (gort, Boehm) and gcbench.go, with one mutator thread; N is gort's mark workers (GORT_DEBUG=gcworkers=N), Boehm's markers (GC_MARKERS=N, the collecting thread included) and Go's GOMAXPROCS. Elapsed is measured inside the program; **max pause** is the longest stop of the mutator (gort and Boehm stop the world for the whole mark; Go's pauses are the fences around a concurrent mark, see bench/gc/README.md); in parentheses, the speedup against N = 1 (for max pause: the pause at 1 ÷ the pause at N). Peak RSS is the whole process's (wait4's ru_maxrss)." ;;
        *) echo "## Malloc: gort against glibc, jemalloc, tcmalloc, mimalloc (T threads, one binary, LD_PRELOAD)" ;;
        esac
        for c in $(cases_of "$sec"); do
            echo
            echo "### $c ($(unit_of "$c"))"
            echo
            describe "$c"
            echo
            if [ "$sec" = gc ]; then
                report_gc "$c"
            elif [ "$sec" = sched ]; then
                echo "| T | gort | gort speedup | Go | Go speedup | gort ÷ Go |"
                echo "|---:|---:|---:|---:|---:|---:|"
                for t in $(threads_for "$c"); do
                    echo "| $t | $(cell "$sec:$c:gort:$t") | $(x "$(speedup "$sec" "$c" gort "$t")") | $(cell "$sec:$c:go:$t") | $(x "$(speedup "$sec" "$c" go "$t")") | $(div "$(med "$sec:$c:gort:$t")" "$(med "$sec:$c:go:$t")" | sed 's/^$/–/') |"
                done
            else
                hdr="| T |"; sep="|---:|"
                for impl in $ALLOCATORS; do hdr="$hdr $impl |"; sep="$sep---:|"; done
                for impl in $ALLOCATORS; do
                    [ "$impl" = gort ] && continue
                    hdr="$hdr gort ÷ $impl |"; sep="$sep---:|"
                done
                echo "$hdr gort ÷ best peer |"
                echo "$sep---:|"
                for t in $(threads_for "$c"); do
                    line="| $t |"
                    for impl in $ALLOCATORS; do
                        v=$(cell "$sec:$c:$impl:$t")
                        p=$(speedup "$sec" "$c" "$impl" "$t")
                        [ -n "$(med "$sec:$c:$impl:$t")" ] && [ -n "$p" ] && v="$v (${p}×)"
                        line="$line $v |"
                    done
                    g=$(med "$sec:$c:gort:$t"); best=""
                    for impl in $ALLOCATORS; do
                        [ "$impl" = gort ] && continue
                        p=$(med "$sec:$c:$impl:$t")
                        r=$(div "$g" "$p")
                        line="$line ${r:-–} |"
                        if [ -n "$p" ] && { [ -z "$best" ] || awk -v a="$p" -v b="$best" 'BEGIN { exit !(a < b) }'; }; then
                            best=$p; bestname=$impl
                        fi
                    done
                    r=$(div "$g" "$best")
                    [ -n "$r" ] && r="$r ($bestname)"
                    echo "$line ${r:-–} |"
                done
            fi
        done
    done

    # One line per case at its largest thread count that has numbers.
    echo
    echo "## Summary at the largest T"
    echo
    echo "| benchmark | T | gort speedup | peer speedups | gort ÷ best peer, fewest threads | gort ÷ best peer at T |"
    echo "|---|---:|---:|---|---:|---:|"
    for sec in $SECTIONS; do
        for c in $(cases_of "$sec"); do
            maxt=""
            for t in $(threads_for "$c"); do [ -n "$(med "$sec:$c:gort:$t")" ] && maxt=$t; done
            [ -n "$maxt" ] || { echo "| $c | – | – | – | – | – |"; continue; }
            local ps="" b1="" bt="" base; base=$(base_threads "$c")
            for impl in $(impls_of "$sec"); do
                [ "$impl" = gort ] && continue
                p=$(speedup "$sec" "$c" "$impl" "$maxt")
                ps="$ps${ps:+, }$impl $(x "$p")"
                v=$(med "$sec:$c:$impl:$base")
                if [ -n "$v" ] && { [ -z "$b1" ] || awk -v a="$v" -v b="$b1" 'BEGIN { exit !(a < b) }'; }; then b1=$v; fi
                v=$(med "$sec:$c:$impl:$maxt")
                if [ -n "$v" ] && { [ -z "$bt" ] || awk -v a="$v" -v b="$bt" 'BEGIN { exit !(a < b) }'; }; then bt=$v; fi
            done
            echo "| $c | $maxt | $(x "$(speedup "$sec" "$c" gort "$maxt")") | $ps | $(div "$(med "$sec:$c:gort:$base")" "$b1" | sed 's/^$/–/') | $(div "$(med "$sec:$c:gort:$maxt")" "$bt" | sed 's/^$/–/') |"
        done
    done
    if [ ${#NOTES[@]} -gt 0 ]; then
        echo
        echo "Notes:"
        echo
        local n
        for n in "${NOTES[@]}"; do echo "- $n"; done
    fi
    echo
    echo "Raw runs: raw.txt (one line per run); stderr of failed runs: logs/. Wall time so far: $(elapsed) s."
}

# ------------------------------------------------------------------ start
{
    echo "# gort scaling benchmark raw results, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# host: $NCPU CPUs, $(uname -srm), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)"
    echo "# carried set: $(sed -n 's/^gort: *//p' "$CARRY/MANIFEST" 2>/dev/null | head -n 1)"
    echo "# threads: $TLIST; QUICK=$QUICK; sizes:$(for c in $SCHED_CASES $GC_CASES $MALLOC_CASES; do printf ' %s=%s' "$c" "$(size_of "$c")"; done)"
    echo "# columns: section case impl threads round status value unit wall_ms output_line"
} >"$RAW"

if [ ! -d "$BIN" ]; then
    note "error: $BIN not found; run bench/scaling/prepare.sh on the build machine first"
    exit 2
fi
[ -x "$LD" ] || addnote "the carried loader $LD is missing; mbench runs with this machine's own libc"

# Smoke test: a broken binary or allocator costs seconds, not rounds.
note "== smoke test"
case " $SECTIONS " in *" gc "*)
    [ -x "$BIN/maxrss" ] || addnote "$BIN/maxrss missing: the collectors run without peak RSS" ;;
esac
for sec in $SECTIONS; do
    for impl in $(impls_of "$sec"); do
        if [ "$sec" = sched ]; then
            for f in "$BIN/sbench_$impl" "$BIN/cbench_$impl"; do
                [ -x "$f" ] || { BAD="$BAD$sec:*:$impl "; addnote "$(basename "$f") missing: $impl skipped"; }
            done
            case $BAD in *" $sec:*:$impl "*) continue ;; esac
            for c in $SCHED_CASES; do
                read -r prog mode <<<"$(prog_of "$c")"
                if ! GOMAXPROCS=2 timeout -k 2 10 "$BIN/${prog}_$impl" "$mode" 1000 2>"$OUT/logs/smoke-$c-$impl.err" |
                    grep -q '^result '; then
                    BAD="$BAD$sec:$c:$impl "
                    addnote "$impl failed the smoke run of $c (N=1000, GOMAXPROCS=2; logs/smoke-$c-$impl.err): skipped"
                else
                    rm -f "$OUT/logs/smoke-$c-$impl.err"
                fi
            done
        elif [ "$sec" = gc ]; then
            case $impl in gort | boehm | go) ;; *) BAD="$BAD$sec:*:$impl "; addnote "unknown collector $impl"; continue ;; esac
            [ -x "$BIN/gcbench_$impl" ] || { BAD="$BAD$sec:*:$impl "; addnote "gcbench_$impl missing: $impl skipped"; continue; }
            # every workload at a small size, with the most collector
            # threads of the run; gort with gctrace, whose lines name the
            # mark workers ("4 P"), and Boehm's own line its markers
            tmax=${TLIST##* } checked=0
            for c in $GC_CASES; do
                e=$OUT/logs/smoke-$c-$impl.err
                out=$(GC_TRACE=$([ "$impl" = gort ] && echo 1) gc_run "$impl" "$tmax" 20 "$e" "$OUT/logs/.maxrss" "$c" 14)
                if ! printf '%s\n' "$out" | grep -q "^RESULT workload=$c impl=$impl "; then
                    BAD="$BAD$sec:$c:$impl "
                    addnote "$impl failed the smoke run of $c (depth 14, N=$tmax; logs/smoke-$c-$impl.err): skipped"
                    continue
                fi
                [ "$checked" = 1 ] && { rm -f "$e"; continue; }
                checked=1
                case $impl in
                gort) got=$(sed -n 's/^gc [0-9]* @.* \([0-9]*\) P.*/\1/p' "$e" | tail -n 1) ;;
                boehm) got=$(sed -n 's/.*, \([0-9]*\) marker thread.*/\1/p' "$e" | head -n 1)
                    [ -n "$got" ] && got=$((got + 1)) ;;
                go) got=$tmax ;;
                esac
                if [ "$got" != "$tmax" ]; then
                    addnote "$impl: asked for $tmax collector threads, the smoke run of $c used ${got:-an unknown number}"
                    mv "$e" "$OUT/logs/smoke-$c-$impl-threads.err"
                fi
                rm -f "$e" "$OUT/logs/.maxrss"
            done
        else
            lib=$(preload_of "$impl")
            if [ "$lib" = "?" ]; then BAD="$BAD$sec:*:$impl "; addnote "unknown allocator $impl"; continue; fi
            if [ ! -x "$BIN/mbench" ] || { [ -n "$lib" ] && [ ! -f "$lib" ]; }; then
                BAD="$BAD$sec:*:$impl "
                addnote "$impl skipped: ${lib:-$BIN/mbench} missing"
            fi
        fi
    done
done
# Each allocator runs a tiny window and must be the one malloc comes from.
for impl in $ALLOCATORS; do
    case " $SECTIONS " in *" malloc "*) ;; *) break ;; esac
    case $BAD in *" malloc:*:$impl "*) continue ;; esac
    lib=$(preload_of "$impl")
    pre=()
    [ -n "$lib" ] && pre=(--preload "$lib")
    if [ -x "$LD" ]; then
        out=$(env -u LD_PRELOAD -u LD_LIBRARY_PATH timeout -k 2 10 "$LD" --library-path "$LIB" \
            "${pre[@]+"${pre[@]}"}" "$BIN/mbench" window 10000 2 2>"$OUT/logs/smoke-$impl.err")
    else
        ep=(-u LD_PRELOAD)
        [ -n "$lib" ] && ep=("LD_PRELOAD=$lib")
        out=$(env "${ep[@]}" timeout -k 2 10 "$BIN/mbench" window 10000 2 2>"$OUT/logs/smoke-$impl.err")
    fi
    got=$(printf '%s\n' "$out" | sed -n 's/.* malloc_lib=\([^ ]*\).*/\1/p')
    if [ "$got" != "$(expected_lib "$impl")" ]; then
        BAD="${BAD}malloc:*:$impl "
        addnote "$impl skipped: the smoke run failed or malloc came from '${got:-nothing}' (logs/smoke-$impl.err)"
    else
        rm -f "$OUT/logs/smoke-$impl.err"
    fi
done

runnable() { # <sec> <case> <impl>
    case $BAD in *" $1:*:$3 "* | *" $1:$2:$3 "*) return 1 ;; esac
    return 0
}

# ------------------------------------------------------------------ rounds
# A section runs round after round; a round runs every case at every
# thread count once, the implementations in an order that rotates from one
# round to the next, so slow drift on the machine hits them all alike.  The
# second and later rounds start only if the longest round so far still fits
# in the section's budget; no run starts past the section's hard limit.
declare -A ROUNDS_DONE
run_section() { # <section> <budget s> <hard limit, absolute s>
    local sec=$1 budget=$2 hard=$3 s0 rep c t impl order longest=0 r0 dur n k stopped=0
    s0=$(now)
    note "== $sec: budget ${budget}s, no run after $((hard - T_START))s from the start"
    for rep in $(seq 1 "$REPEAT"); do
        if [ "$rep" -gt 1 ] && [ $(($(now) - s0 + longest)) -gt "$budget" ]; then
            addnote "$sec: $((rep - 1)) of $REPEAT rounds; one more would not fit in its ${budget}s budget"
            break
        fi
        r0=$(now)
        note "== $sec round $rep/$REPEAT"
        # rotate the implementations
        read -r -a order <<<"$(impls_of "$sec")"
        n=${#order[@]}
        k=$(((rep - 1) % n))
        order=("${order[@]:k}" "${order[@]:0:k}")
        for c in $(cases_of "$sec"); do
            for t in $(threads_for "$c"); do
                for impl in "${order[@]}"; do
                    runnable "$sec" "$c" "$impl" || continue
                    if is_dead "$sec" "$c" "$impl" "$t"; then
                        printf '%s\t%s\t%s\t%s\t%s\tskipped\t\t%s\t0\ttimed out at a lower T\n' \
                            "$sec" "$c" "$impl" "$t" "$rep" "$(unit_of "$c")" >>"$RAW"
                        continue
                    fi
                    if ! run_one "$sec" "$c" "$impl" "$t" "$rep" "$hard"; then
                        stopped=1
                        break 4
                    fi
                done
            done
        done
        ROUNDS_DONE[$sec]=$rep
        dur=$(($(now) - r0))
        [ "$dur" -gt "$longest" ] && longest=$dur
    done
    if [ "$stopped" = 1 ]; then
        addnote "$sec: stopped in round $rep at its time limit ($((hard - T_START))s from the start); later runs of that round are missing"
    fi
}

# Each section plans on its share of the budget that is left when it
# starts, among the sections still to run (so time one saves goes to the
# later ones, and time one overspends comes out of them), and stops at 1.5
# times that, so a misbehaving runtime cannot eat the later sections' time.
# The last section gets all that is left, up to HARD.
HARD_AT=$((T_START + HARD))
set -- $SECTIONS
for sec in $SECTIONS; do
    shift
    left=$((BUDGET - $(elapsed)))
    [ "$left" -lt 0 ] && left=0
    if [ $# -gt 0 ]; then
        sum=$(share_of "$sec")
        for other in "$@"; do sum=$((sum + $(share_of "$other"))); done
        [ "$sum" -gt 0 ] || sum=1
        budget=$((left * $(share_of "$sec") / sum))
        limit=$(($(now) + budget * 3 / 2))
        [ "$limit" -gt "$HARD_AT" ] && limit=$HARD_AT
    else
        budget=$left
        limit=$HARD_AT
    fi
    run_section "$sec" "$budget" "$limit"
    # the tables so far, in case the machine is taken away before the end
    [ "$sec" = "${SECTIONS##* }" ] || report >"$REPORT"
done

report >"$REPORT"
cat "$REPORT"
note ""
note "tables: $REPORT"
note "raw:    $RAW"
note "wall time: $(elapsed) s"
