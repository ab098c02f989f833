#!/usr/bin/env bash
# run.sh - build the network benchmark and compare gort's servers against Go's.
# See README.md here.
#
# Environment knobs:
#   REPEAT=3        runs per (case, implementation); medians are reported
#                   (QUICK=1 makes the default 1)
#   QUICK=1         2-second loads instead of DURATION (smoke run, ~30 s)
#   DURATION=5      seconds of load per run
#   CASES="..."     subset/order of: http-100 http-1000 echo-100 echo-1000
#   PROCS=2         GOMAXPROCS of both servers
#   THREADS=2       client threads (wrk -t, echoload -t)
#   MSG=64          echo message size in bytes
#   TIMEOUT=60      seconds before a client run is killed
#   GORT_BUILD=1    run the (incremental) cmake build of libgort.a first;
#                   0 uses the library as it is
#   GORT_BUILD_DIR  gort's cmake build folder (default <repo>/build)
#   BUILD_DIR       binaries, logs and raw results (default bench/net/build)
#   CC=cc GO=go WRK=wrk
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

QUICK=${QUICK:-0}
if [ "$QUICK" != 0 ]; then
    REPEAT=${REPEAT:-1}
    DURATION=${DURATION:-2}
else
    REPEAT=${REPEAT:-3}
    DURATION=${DURATION:-5}
fi
CASES=${CASES:-"http-100 http-1000 echo-100 echo-1000"}
PROCS=${PROCS:-2}
THREADS=${THREADS:-2}
MSG=${MSG:-64}
TIMEOUT=${TIMEOUT:-60}
GORT_BUILD=${GORT_BUILD:-1}
GORT_BUILD_DIR=${GORT_BUILD_DIR:-$ROOT/build}
BUILD_DIR=${BUILD_DIR:-$HERE/build}
CC=${CC:-cc}
GO=${GO:-go}
WRK=${WRK:-wrk}
LIB=$GORT_BUILD_DIR/libgort.a
BIN=$BUILD_DIR

note() { printf '%s\n' "$*" >&2; }
NOTES=()

load_of() { echo "${1%-*}"; }
conns_of() { echo "${1##*-}"; }

mkdir -p "$BUILD_DIR/logs"
rm -f "$BUILD_DIR"/logs/*.log "$BUILD_DIR"/logs/*.txt

# ------------------------------------------------------------ fd limit
# A run holds every connection twice (client and server side, separate
# processes) plus a few; ask for the hard limit, which is plenty here.
max_conns=0
for c in $CASES; do [ "$(conns_of "$c")" -gt "$max_conns" ] && max_conns=$(conns_of "$c"); done
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((max_conns + 100)) ]; then
    note "warning: fd limit $(ulimit -n) is below $((max_conns + 100)); runs with many connections may fail"
    NOTES+=("fd limit $(ulimit -n) (hard limit too low for $max_conns connections)")
fi

# ----------------------------------------------------------------- wrk
HAVE_WRK=1
if ! command -v "$WRK" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        note "== installing wrk (apt-get)"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >"$BUILD_DIR/logs/apt.txt" 2>&1; then
            DEBIAN_FRONTEND=noninteractive apt-get update >>"$BUILD_DIR/logs/apt.txt" 2>&1
            DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >>"$BUILD_DIR/logs/apt.txt" 2>&1
        fi
    fi
    if ! command -v "$WRK" >/dev/null 2>&1; then
        HAVE_WRK=0
        note "warning: wrk is not installed (Debian package 'wrk'; needs root to install); HTTP cases skipped"
        NOTES+=("wrk not installed (apt-get install wrk, as root): the HTTP cases were skipped")
    fi
fi

# --------------------------------------------------------------- build
if [ "$GORT_BUILD" != 0 ]; then
    note "== building libgort.a ($GORT_BUILD_DIR)"
    if [ ! -f "$GORT_BUILD_DIR/CMakeCache.txt" ]; then
        cmake -S "$ROOT" -B "$GORT_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$BUILD_DIR/logs/cmake.txt" 2>&1
    fi
    if ! cmake --build "$GORT_BUILD_DIR" --target gort_static -j2 >>"$BUILD_DIR/logs/cmake.txt" 2>&1; then
        note "warning: libgort build failed (see $BUILD_DIR/logs/cmake.txt); using libgort.a as it is"
        NOTES+=("libgort build failed; the existing libgort.a was used")
    fi
fi

rm -f "$BIN/hello_gort" "$BIN/echo_gort" "$BIN/hello_go" "$BIN/echo_go" "$BIN/echoload"
note "== building the servers and the echo client"
build_c() { # <output> <source> [libs...]
    local out=$1 src=$2; shift 2
    if ! $CC -std=gnu11 -O2 -Wall -Wextra -I"$ROOT/include" -o "$BIN/$out" "$src" "$@" \
        >"$BUILD_DIR/logs/build-$out.txt" 2>&1; then
        rm -f "$BIN/$out"
        note "warning: $out did not build (see $BUILD_DIR/logs/build-$out.txt)"
        NOTES+=("$out did not build")
    fi
}
if [ -f "$LIB" ]; then
    build_c hello_gort "$ROOT/examples/http_hello.c" "$LIB" -lpthread -ldl
    build_c echo_gort "$ROOT/examples/echo_server.c" "$LIB" -lpthread -ldl
else
    note "warning: $LIB not found"
    NOTES+=("libgort.a not found")
fi
build_c echoload "$HERE/echoload.c" -lpthread

GOTMP=$BUILD_DIR/go-tmp
mkdir -p "$GOTMP/path" "$GOTMP/cache"
for prog in hello echo; do
    if ! (cd "$GOTMP" && GOPATH="$GOTMP/path" GOCACHE="$GOTMP/cache" GO111MODULE=off GOFLAGS= \
        GOPROXY=off "$GO" build -o "$BIN/${prog}_go" "$HERE/$prog.go") >"$BUILD_DIR/logs/build-${prog}_go.txt" 2>&1; then
        note "warning: ${prog}_go did not build (see $BUILD_DIR/logs/build-${prog}_go.txt)"
        NOTES+=("${prog}_go did not build")
    fi
done

# ------------------------------------------------------------- servers
# free_port: a port in 20000-32767 (below Linux's default ephemeral range)
# that no TCP socket on this machine uses.
free_port() {
    local p hex
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 12768))
        hex=$(printf '%04X' "$p")
        if ! awk -v h=":$hex" 'NR > 1 && substr($2, length($2) - 4) == h { found = 1 } END { exit !found }' \
            /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

SERVER_PID=
# start_server <binary> <port> <log>: start it and wait until it accepts.
start_server() {
    GOMAXPROCS=$PROCS "$1" "$2" >"$3" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
# stop_server: sets SERVER_RSS to the server's peak RSS in KiB (VmHWM) and
# SERVER_CPU to the CPU seconds it used (user + system), and returns 1 if the server had already exited (a crash: it never exits by
# itself). An exited child stays a zombie until waited for, so its state is
# read from /proc, not probed with kill -0.
SERVER_RSS=
SERVER_CPU=
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
stop_server() {
    local alive=0 state
    SERVER_RSS=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null)
    SERVER_CPU=$(awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
        "/proc/$SERVER_PID/stat" 2>/dev/null)
    state=$(awk '/^State:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ] && alive=1
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
    [ $alive = 1 ]
}
trap '[ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null' EXIT

server_of() { # <case> <impl>
    case $(load_of "$1") in
    http) echo "$BIN/hello_$2" ;;
    echo) echo "$BIN/echo_$2" ;;
    esac
}

# Smoke checks, so that a broken server costs seconds: an HTTP server must
# answer two pipelined requests with exactly two expected responses, an echo
# server must pass a short echoload run with a few connections.
EXPECT='HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!'
http_check() { # <port>
    local want got
    want=$(printf "$EXPECT$EXPECT" | od -An -c)
    got=$(timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n" >&3
        head -c "$2" <&3' _ "$1" "$(printf "$EXPECT$EXPECT" | wc -c)" | od -An -c)
    [ "$got" = "$want" ]
}
BAD=" "
for impl in gort go; do
    for load in http echo; do
        b=$(server_of "$load-1" "$impl")
        [ -x "$b" ] || continue
        [ "$load" = http ] && [ $HAVE_WRK = 0 ] && continue
        port=$(free_port)
        log=$BUILD_DIR/logs/smoke-$load-$impl.log
        ok=0
        if start_server "$b" "$port" "$log"; then
            if [ "$load" = http ]; then
                http_check "$port" && ok=1
            else
                timeout 10 "$BIN/echoload" -c 4 -t 1 -d 0.3 -s "$MSG" 127.0.0.1 "$port" \
                    >>"$log" 2>&1 && ok=1
            fi
        fi
        stop_server || ok=0
        if [ $ok = 0 ]; then
            BAD="$BAD$load-$impl "
            note "warning: smoke check of the $impl $load server failed (see $log); skipped"
            NOTES+=("the $impl $load server failed its smoke check (log: $log); its runs were skipped")
        fi
    done
done

runnable() { # <case> <impl>
    [ -x "$(server_of "$1" "$2")" ] || return 1
    case $BAD in *" $(load_of "$1")-$2 "*) return 1 ;; esac
    case $(load_of "$1") in
    http) [ $HAVE_WRK = 1 ] ;;
    echo) [ -x "$BIN/echoload" ] ;;
    esac
}

# ------------------------------------------------------------------ runs
# to_us <wrk latency>: 850.12us, 1.23ms, 2.01s -> microseconds
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1e6
        else if (u == "m") m = 6e7; else m = -1
        if (m < 0) print ""; else printf "%.1f", n * m }'
}

# Other work on the machine: the CPU time all processes used during a run
# (/proc/stat) less what the server and the client used, as a share of the
# CPUs' time. Near 0 on a quiet machine (loopback softirq work the kernel
# does not charge to a process shows up here as a few percent).
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# child_secs: sets CHILD_SECS to the user + system seconds of this shell's
# waited-for children (not in a $(...) subshell, which has its own).
CHILD_SECS=
child_secs() {
    times >"$BUILD_DIR/logs/times.txt"
    CHILD_SECS=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } print s }' \
        "$BUILD_DIR/logs/times.txt")
}
NCPU=$(nproc)

RAW=$BUILD_DIR/results.tsv
printf 'case\timpl\trep\treq_per_s\tp50_us\tp99_us\terrors\tserver_rss_kib\tstatus\tserver_cpu_us_per_req\tother_cpu_pct\n' >"$RAW"

run_one() { # <case> <impl> <rep>
    local c=$1 impl=$2 rep=$3 load conns port slog clog out rc rps p50 p99 errs rss cpu status
    load=$(load_of "$c"); conns=$(conns_of "$c")
    slog=$BUILD_DIR/logs/$c.$impl.$rep.server.log
    clog=$BUILD_DIR/logs/$c.$impl.$rep.client.log
    port=$(free_port)
    if ! start_server "$(server_of "$c" "$impl")" "$port" "$slog"; then
        stop_server
        printf '%s\t%s\t%s\t\t\t\t\t\tno-start\n' "$c" "$impl" "$rep" >>"$RAW"
        note "   $c $impl #$rep: FAILED (the server did not start, log $slog)"
        return
    fi
    local b0 c0 t0 b1 c1 t1 other
    b0=$(busy_ticks); child_secs; c0=$CHILD_SECS; t0=$(date +%s%N)
    if [ "$load" = http ]; then
        timeout -k 5 "$TIMEOUT" "$WRK" -t"$THREADS" -c"$conns" -d"${DURATION}s" --latency \
            "http://127.0.0.1:$port/" >"$clog" 2>&1
        rc=$?
        rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$clog")
        p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$clog")")
        p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$clog")")
        errs=$(awk '/Socket errors:/ { gsub(/,/, ""); s += $4 + $6 + $8 + $10 }
                    /Non-2xx or 3xx responses:/ { s += $NF } END { print s + 0 }' "$clog")
    else
        out=$(timeout -k 5 "$TIMEOUT" "$BIN/echoload" -c "$conns" -t "$THREADS" -d "$DURATION" \
            -s "$MSG" 127.0.0.1 "$port" 2>"$clog")
        rc=$?
        printf '%s\n' "$out" >>"$clog"
        read -r rps p50 p99 errs <<<"$(printf '%s\n' "$out" | awk '$1 == "result" { print $2, $3, $4, $6 }')"
        [ $rc = 1 ] && [ -n "${rps:-}" ] && rc=0   # errors are counted below
    fi
    b1=$(busy_ticks); child_secs; c1=$CHILD_SECS; t1=$(date +%s%N)
    status=ok
    if ! stop_server; then
        status=server-died
    elif [ $rc != 0 ] || [ -z "${rps:-}" ] || [ -z "${p99:-}" ]; then
        status=rc=$rc
    fi
    rss=$SERVER_RSS
    cpu=
    [ -n "$SERVER_CPU" ] && [ -n "${rps:-}" ] && cpu=$(awk -v s="$SERVER_CPU" -v r="$rps" -v d="$DURATION" \
        'BEGIN { if (r > 0) printf "%.2f", s * 1e6 / (r * d) }')
    other=$(awk -v b="$((b1 - b0))" -v hz="$CLK_TCK" -v s="${SERVER_CPU:-0}" -v c="$c1" -v c0="$c0" \
        -v w="$((t1 - t0))" -v n="$NCPU" 'BEGIN { o = (b / hz - s - (c - c0)) / (w / 1e9 * n) * 100
            printf "%.0f", o < 0 ? 0 : o }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$impl" "$rep" "${rps:-}" "${p50:-}" "${p99:-}" \
        "${errs:-}" "${rss:-}" "$status" "$cpu" "$other" >>"$RAW"
    if [ $status = ok ]; then
        note "   $c $impl #$rep: ${rps} req/s, p50 ${p50} us, p99 ${p99} us, ${errs:-0} errors, server ${cpu:-?} CPU us/req, peak RSS ${rss:-?} KiB, other work ${other}% CPU"
    else
        note "   $c $impl #$rep: FAILED ($status; client log $clog, server log $slog)"
    fi
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
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
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
# median <case> <impl> <column>: median of the ok runs; "" when none
median() {
    awk -F'\t' -v c="$1" -v i="$2" -v col="$3" \
        'NR > 1 && $1 == c && $2 == i && $9 == "ok" && $col != "" { print $col }' "$RAW" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) exit
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
count() { # <case> <impl> [ok]
    awk -F'\t' -v c="$1" -v i="$2" -v ok="${3:-}" \
        'NR > 1 && $1 == c && $2 == i && (ok == "" || $9 == "ok")' "$RAW" | wc -l
}
errors_of() { # total client-reported errors over the ok runs
    awk -F'\t' -v c="$1" -v i="$2" 'NR > 1 && $1 == c && $2 == i && $9 == "ok" { s += $7 } END { print s + 0 }' "$RAW"
}
fmt_cpu() { awk -v v="$1" 'BEGIN { printf "%.1f µs", v }'; }
fmt_rps() { awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
fmt_us() { awk -v v="$1" 'BEGIN { if (v >= 10000) printf "%.1f ms", v / 1000; else if (v >= 1000) printf "%.2f ms", v / 1000; else printf "%.0f µs", v }'; }
cell() { # <case> <impl> <column> <formatter>
    local m ok all e s
    all=$(count "$1" "$2"); ok=$(count "$1" "$2" ok)
    [ "$all" = 0 ] && { echo "n/a"; return; }
    m=$(median "$1" "$2" "$3")
    [ -z "$m" ] && { echo "failed ($all/$all)"; return; }
    s=$("$4" "$m")
    [ "$ok" != "$all" ] && s="$s ($ok/$all ok)"
    e=$(errors_of "$1" "$2")
    [ "$3" = 4 ] && [ "$e" != 0 ] && s="$s ($e errors)"
    echo "$s"
}
ratio() { # <case> <column>
    local a b; a=$(median "$1" gort "$2"); b=$(median "$1" go "$2")
    if [ -z "$a" ] || [ -z "$b" ]; then echo "–"; else awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "–"; else printf "%.2f", a / b }'; fi
}
rss_cell() {
    local m; m=$(median "$1" "$2" 8)
    if [ -z "$m" ]; then echo "–"; else awk -v k="$m" 'BEGIN { printf "%.1f MiB", k / 1024 }'; fi
}
label_of() {
    case $(load_of "$1") in
    http) echo "HTTP hello, wrk" ;;
    echo) echo "echo ${MSG} B, echoload" ;;
    esac
}

REPORT=$BUILD_DIR/results.md
{
    echo "Network benchmark: medians of $REPEAT interleaved runs of ${DURATION} s$([ "$QUICK" != 0 ] && echo ' (QUICK)'), servers at GOMAXPROCS=$PROCS, clients with $THREADS threads."
    echo "$(nproc) CPUs shared by client and server, $(uname -m), $("$GO" version 2>/dev/null | awk '{print $3}'), $([ $HAVE_WRK = 1 ] && "$WRK" -v 2>&1 | awk 'NR == 1 { print $1, $2 }' || echo "no wrk"), $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "Requests/s: higher is better (gort ÷ Go above 1.00: gort serves more); p99: lower is better (gort ÷ Go below 1.00: gort's tail is shorter)."
    echo
    echo "| load | conns | gort req/s | Go req/s | gort ÷ Go | gort p99 | Go p99 | gort ÷ Go | gort p50 | Go p50 | gort CPU/req | Go CPU/req | gort RSS | Go RSS |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for c in $CASES; do
        echo "| $(label_of "$c") | $(conns_of "$c") | $(cell "$c" gort 4 fmt_rps) | $(cell "$c" go 4 fmt_rps) | $(ratio "$c" 4) | $(cell "$c" gort 6 fmt_us) | $(cell "$c" go 6 fmt_us) | $(ratio "$c" 6) | $(cell "$c" gort 5 fmt_us) | $(cell "$c" go 5 fmt_us) | $(cell "$c" gort 10 fmt_cpu) | $(cell "$c" go 10 fmt_cpu) | $(rss_cell "$c" gort) | $(rss_cell "$c" go) |"
    done
    busy=$(awk -F'\t' 'NR > 1 && $11 != "" && $11 > 10 { printf "%s%s %s #%s (%s%%)", sep, $1, $2, $3, $11; sep = ", " }' "$RAW")
    [ -n "$busy" ] && NOTES+=("runs that shared the CPUs with other work (more than 10% of the CPUs' time): $busy; rerun on a quiet machine")
    if [ ${#NOTES[@]} -gt 0 ]; then
        echo
        for n in "${NOTES[@]}"; do echo "- note: $n"; done
    fi
    echo
    echo "Load average before the runs: $LOAD0; after: $LOAD1 (the benchmark's own threads count in it; the"
    echo "other-work column of the raw runs is the measure of interference). Raw runs: $RAW;"
    echo "client and server output per run: $BUILD_DIR/logs/. Wall time of the runs: $((T1 - T0)) s."
} >"$REPORT"
cat "$REPORT"
