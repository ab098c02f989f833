#!/usr/bin/env bash
# tests/run.sh - run gort's tests against one build directory.
#
#   tests/run.sh BUILD_DIR [--mode MODE] [NAME_PATTERN...]
#
# Runs every test program BUILD_DIR/tests/test_* and every shell test
# tests/*.sh (given the build directory as $1), each as its own process under
# `timeout`, one after another. A test passes on exit 0, is skipped on exit 77
# and fails otherwise; running past its time limit is a failure. Each test
# gets one line (PASS/FAIL/SKIP, name, seconds); a failure also shows the tail
# of the test's output, whose whole is kept in BUILD_DIR/test-logs/MODE/.
# The last line is "N passed, N failed" (", N skipped" when any were); the
# exit status is 1 if any test failed, 2 on a usage or setup error.
#
# Modes (the build must match: tests/run.sh checks GORT_SANITIZE in the cache):
#   release   plain run (default)
#   asan      ASan+UBSan build (-DGORT_SANITIZE=address)
#   tsan      TSan build (-DGORT_SANITIZE=thread); run with ASLR off when
#             setarch allows it, as TSan can't cope with every kernel's layout
#   valgrind  test programs under valgrind memcheck, of a non-sanitizer build
#   gcstress  the release build with GORT_DEBUG=gcstress=N (a collection
#             every N GC allocations, freed objects clobbered): the whole
#             suite as the collector's torture test; N is GORT_GCSTRESS (250)
#   qemu      test programs under the emulator command in $GORT_QEMU, e.g.
#             GORT_QEMU="qemu-aarch64 -L /usr/aarch64-linux-gnu"
# tests/modes.conf lists the tests each mode skips, and why.
#
# NAME_PATTERNs (shell globs such as 'test_mheap' or '*preload*') restrict
# the run to the tests whose names match.
#
# Environment:
#   GORT_TEST_TIMEOUT         seconds per test (default 120); asan doubles it,
#                             tsan triples it, valgrind and qemu multiply by 5
#   GORT_TEST_TIMEOUT_FACTOR  replaces that mode factor
#   GORT_TEST_TAIL            lines of a failed test's output shown (40)
#   GORT_VALGRIND_ARGS        extra valgrind options
#   GORT_TSAN_SETARCH         1 always / 0 never run tsan under setarch -R
#                             (default: when setarch -R works here)
# Tests see GORT_BUILD_DIR, GORT_SOURCE_DIR and GORT_TEST_MODE.

set -uo pipefail  # not -e: failing commands are what this script counts
export LC_ALL=C   # sorted globs, "." in EPOCHREALTIME

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit 2
}

die() {
    echo "tests/run.sh: $*" >&2
    exit 2
}

# ---- arguments ----------------------------------------------------------

mode=release
build=
patterns=()
while (($#)); do
    case $1 in
        --mode) (($# >= 2)) || die "--mode needs a value"; mode=$2; shift ;;
        --mode=*) mode=${1#--mode=} ;;
        -h | --help) usage ;;
        -*) die "unknown option: $1 (see --help)" ;;
        *) if [[ -z $build ]]; then build=$1; else patterns+=("$1"); fi ;;
    esac
    shift
done
[[ -n $build ]] || usage
[[ -d $build ]] || die "no build directory: $build"
build=$(cd "$build" && pwd)
srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---- the mode -----------------------------------------------------------

timeout_base=${GORT_TEST_TIMEOUT:-120}
[[ $timeout_base =~ ^[1-9][0-9]*$ ]] || die "GORT_TEST_TIMEOUT must be a whole number of seconds"
tail_lines=${GORT_TEST_TAIL:-40}
[[ $tail_lines =~ ^[0-9]+$ ]] || die "GORT_TEST_TAIL must be a number"

wrapper=()           # command put before each test program
shell_wrapper=()     # command put before each shell test
want_sanitize=""     # GORT_SANITIZE the build must have been configured with
case $mode in
    release)
        factor=1 ;;
    gcstress)
        factor=2
        export GORT_DEBUG="gcstress=${GORT_GCSTRESS:-250}${GORT_DEBUG:+,$GORT_DEBUG}"
        ;;
    asan)
        factor=2; want_sanitize=address
        export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
        export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
        ;;
    tsan)
        factor=3; want_sanitize=thread
        # TSan keeps a fiber (and its shadow) per goroutine: a tenth of the
        # work of the release runs covers the same paths in reasonable time.
        export GORT_TEST_SCALE=${GORT_TEST_SCALE:-0.1}
        export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
        # TSan dies with "unexpected memory mapping" on kernels with much
        # ASLR entropy (vm.mmap_rnd_bits > 28); with ASLR off it always runs.
        # setarch -R needs personality(2), which some containers forbid.
        case ${GORT_TSAN_SETARCH:-auto} in
            1) wrapper=(setarch "$(uname -m)" -R) ;;
            0) ;;
            *) if setarch "$(uname -m)" -R true >/dev/null 2>&1; then
                   wrapper=(setarch "$(uname -m)" -R)
               fi ;;
        esac
        shell_wrapper=("${wrapper[@]}")
        ;;
    valgrind)
        factor=5
        export GORT_TEST_SCALE=${GORT_TEST_SCALE:-0.1}
        export GORT_TEST_MODE=valgrind
        command -v valgrind >/dev/null || die "valgrind mode: valgrind is not installed"
        # shellcheck disable=SC2206  # GORT_VALGRIND_ARGS is meant to split
        # --fair-sched=yes: valgrind runs one thread at a time, and its default
        # lock lets a thread spinning in user code (a goroutine loop) starve
        # the others, sysmon among them, for seconds.
        wrapper=(valgrind --error-exitcode=99 --quiet --fair-sched=yes ${GORT_VALGRIND_ARGS:-})
        ;;
    qemu)
        factor=5
        export GORT_TEST_SCALE=${GORT_TEST_SCALE:-0.2}
        [[ -n ${GORT_QEMU:-} ]] || die "qemu mode: set GORT_QEMU to the emulator command, e.g. GORT_QEMU=\"qemu-aarch64 -L /usr/aarch64-linux-gnu\""
        # shellcheck disable=SC2206
        wrapper=($GORT_QEMU)
        ;;
    *)
        die "unknown mode: $mode (release, gcstress, asan, tsan, valgrind, qemu)" ;;
esac
factor=${GORT_TEST_TIMEOUT_FACTOR:-$factor}
[[ $factor =~ ^[1-9][0-9]*$ ]] || die "GORT_TEST_TIMEOUT_FACTOR must be a whole number"
timeout_s=$((timeout_base * factor))

# A mode run on the wrong build tests nothing it claims to (an asan run of a
# plain build) or can't work at all (valgrind on an ASan build).
if [[ -f $build/CMakeCache.txt ]]; then
    have_sanitize=$(sed -n 's/^GORT_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")
    if [[ $have_sanitize != "$want_sanitize" ]]; then
        die "mode $mode needs a build configured with GORT_SANITIZE=\"$want_sanitize\"; $build has \"$have_sanitize\""
    fi
fi

export GORT_BUILD_DIR=$build GORT_SOURCE_DIR=$srcdir GORT_TEST_MODE=$mode

# ---- the tests ----------------------------------------------------------

# tests/modes.conf: "MODES TEST REASON...", MODES being a comma list or *.
skip_modes=() skip_tests=() skip_reasons=()
if [[ -f $srcdir/tests/modes.conf ]]; then
    while read -r m t r; do
        [[ -z $m || $m == \#* ]] && continue
        skip_modes+=("$m") skip_tests+=("$t") skip_reasons+=("${r:-no reason given}")
    done <"$srcdir/tests/modes.conf"
fi

# skip_reason NAME: print why this mode skips NAME; fail if it doesn't.
skip_reason() {
    local i
    for i in "${!skip_modes[@]}"; do
        # shellcheck disable=SC2053  # the patterns are globs on purpose
        if [[ ${skip_modes[i]} == "*" || ,${skip_modes[i]}, == *,"$mode",* ]] &&
            [[ $1 == ${skip_tests[i]} ]]; then
            echo "${skip_reasons[i]}"
            return 0
        fi
    done
    return 1
}

selected() {
    local p
    ((${#patterns[@]})) || return 0
    for p in "${patterns[@]}"; do
        # shellcheck disable=SC2053
        [[ $1 == $p ]] && return 0
    done
    return 1
}

names=() paths=() kinds=()
for f in "$build"/tests/test_*; do
    n=${f##*/}
    # Executables only: no CMake droppings, core files or logs.
    [[ -f $f && -x $f && $n != *.* ]] || continue
    selected "$n" || continue
    names+=("$n") paths+=("$f") kinds+=(prog)
done
nprog=${#names[@]}
for f in "$srcdir"/tests/*.sh; do
    n=${f##*/}
    [[ -f $f && $n != run.sh ]] || continue
    selected "$n" || continue
    names+=("$n") paths+=("$f") kinds+=(sh)
done

if ((nprog == 0 && ${#patterns[@]} == 0)); then
    die "no test programs in $build/tests (did the build finish? GORT_TESTS=OFF?)"
fi
((${#names[@]})) || die "no test matches: ${patterns[*]}"

# ---- running ------------------------------------------------------------

logdir=$build/test-logs/$mode
mkdir -p "$logdir" || die "can't create $logdir"

now_us() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        echo "${EPOCHREALTIME/./}"
    else
        date +%s%6N
    fi
}

# A test runs as a background job so that an interrupt can stop it: timeout
# puts it in a process group of its own, out of the terminal's reach.
current=
on_signal() {
    [[ -n $current ]] && kill -TERM "$current" 2>/dev/null
    echo
    echo "tests/run.sh: interrupted"
    exit 130
}
trap on_signal INT TERM HUP

# report STATUS NAME MICROSECONDS [NOTE]
report() {
    local secs
    secs=$(printf '%d.%02d' $(($3 / 1000000)) $(($3 % 1000000 / 10000)))
    printf '%-4s %-36s %7ss%s\n' "$1" "$2" "$secs" "${4:+  ($4)}"
}

# why_failed RC LOG ELAPSED_US: a few words on how a test failed.
why_failed() {
    local rc=$1 log=$2 us=$3 what
    if ((rc == 124 || (rc == 137 && us >= timeout_s * 1000000))); then
        echo "timeout after ${timeout_s}s"
        return
    fi
    if ((rc > 128 && rc < 160)); then
        what="killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    elif [[ $mode == valgrind && $rc == 99 ]]; then
        what="valgrind found errors"
    else
        what="exit $rc"
    fi
    # Name the sanitizer that spoke, if one did.
    local san
    san=$(grep -m1 -oE '(Address|Thread|UndefinedBehavior|Leak|Memory)Sanitizer' "$log" 2>/dev/null)
    [[ -n $san ]] && what+=", $san report"
    echo "$what"
}

passed=0 failed=0 skipped=0 failed_names=()
header="gort tests: mode=$mode build=$build timeout=${timeout_s}s"
((${#wrapper[@]})) && header+=" under: ${wrapper[*]}"
echo "$header"

for i in "${!names[@]}"; do
    name=${names[i]} path=${paths[i]}
    if reason=$(skip_reason "$name"); then
        report SKIP "$name" 0 "$mode: $reason"
        skipped=$((skipped + 1))
        continue
    fi
    log=$logdir/$name.log
    if [[ ${kinds[i]} == prog ]]; then
        cmd=("${wrapper[@]}" "$path")
    else
        cmd=("${shell_wrapper[@]}" bash "$path" "$build")
    fi
    start=$(now_us)
    (cd "$srcdir" && exec timeout --kill-after=10 "$timeout_s" "${cmd[@]}") \
        </dev/null >"$log" 2>&1 &
    current=$!
    # (bash's own "Killed"/"Segmentation fault" notice would only be noise)
    { wait "$current"; } 2>/dev/null
    rc=$?
    current=
    us=$(($(now_us) - start))
    if ((rc == 0)); then
        report PASS "$name" "$us"
        passed=$((passed + 1))
    elif ((rc == 77)); then
        # A test that skips itself says why on its last line.
        report SKIP "$name" "$us" "$(tail -n 1 "$log" | cut -c1-100)"
        skipped=$((skipped + 1))
    else
        report FAIL "$name" "$us" "$(why_failed "$rc" "$log" "$us")"
        failed=$((failed + 1))
        failed_names+=("$name")
        if ((tail_lines > 0)) && [[ -s $log ]]; then
            tail -n "$tail_lines" "$log" | sed 's/^/    | /'
            echo "    (whole output: $log)"
        fi
    fi
done

((failed)) && echo "failed ($mode): ${failed_names[*]}"
summary="$passed passed, $failed failed"
((skipped)) && summary+=", $skipped skipped"
echo "$summary"
((failed == 0))
