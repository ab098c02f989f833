#!/bin/sh
# preload_programs.sh BUILD_DIR - real programs under LD_PRELOAD=libgort-malloc.so.
#
# Each program runs once with gort's malloc preloaded and once without; the
# outputs must be the same (and the preloaded run must succeed). A program
# that is not installed is skipped. Exit 0: pass, 1: fail, 77: skipped (no
# shim, a sanitizer build of the shim, or none of the programs installed).
set -u

B=${1:?usage: preload_programs.sh BUILD_DIR}
SO=$(cd "$B" 2>/dev/null && pwd) || SO=$B
SO=$SO/libgort-malloc.so
if [ ! -f "$SO" ]; then
    echo "skip: $SO not built"
    exit 77
fi
# A shim built with ASan/TSan cannot be preloaded into ordinary programs.
if grep -qa -e 'libasan\.so' -e 'libtsan\.so' "$SO"; then
    echo "skip: $SO is a sanitizer build"
    exit 77
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/gort-preload.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
unset LD_PRELOAD
TO=""
command -v timeout >/dev/null 2>&1 && TO="timeout 50"

failed=0
ran=0

pre() { LD_PRELOAD="$SO" $TO "$@"; }
plain() { $TO "$@"; }
have() { command -v "$1" >/dev/null 2>&1; }
fail() { echo "FAIL: $*"; failed=1; }
START=$(date +%s)
pass() { echo "ok:   $* ($(($(date +%s) - START)) s)"; ran=$((ran + 1)); }
skip() { echo "skip: $*"; }

# Compares two files; on a difference shows the start of it.
same() {
    if cmp -s "$1" "$2"; then return 0; fi
    echo "--- $1 vs $2:"
    diff "$1" "$2" | head -20
    return 1
}

# ---- the shim is really in use -------------------------------------------
if have grep; then
    if LD_PRELOAD="$SO" grep -q 'libgort-malloc' /proc/self/maps; then
        pass "libgort-malloc.so is mapped into a preloaded process"
    else
        fail "libgort-malloc.so does not show up in a preloaded process's maps"
    fi
fi

# ---- python3: a big dict, sort, json round trip, threads -----------------
if have python3; then
    cat > "$T/work.py" <<'EOF'
import hashlib, json, random, threading
random.seed(20240601)
d = {}
for i in range(1000000):
    k = "key%07d" % ((i * 7919) % 1000003)
    d[k] = i if i % 10 else [i, str(i * i)]
items = sorted(d.items(), key=lambda kv: kv[0][::-1])
s = json.dumps(items[::3])
back = json.loads(s)
assert len(back) == len(items[::3]) and json.dumps(back) == s
h = hashlib.sha256(s.encode()).hexdigest()
# deletions, growing strings, big buffers
for k in list(d)[::3]:
    del d[k]
parts = [("x" * (i % 300)) + str(i) for i in range(200000)]
blob = "".join(parts[::2])
big = [bytearray(random.randrange(1, 3 << 20)) for _ in range(40)]
for b in big:
    b[-1] = 7
# objects made in threads, freed in the main thread
out = {}
def work(n):
    r = random.Random(n)
    out[n] = sorted((r.random(), str(j)) for j in range(50000))
ts = [threading.Thread(target=work, args=(n,)) for n in range(4)]
for t in ts: t.start()
for t in ts: t.join()
tsum = sum(len(v) for v in out.values())
del out, big, back
print(len(d), h, len(blob), hashlib.md5(blob.encode()).hexdigest(), tsum)
EOF
    if pre python3 "$T/work.py" > "$T/py.pre" 2> "$T/py.err" &&
        plain python3 "$T/work.py" > "$T/py.plain" && same "$T/py.pre" "$T/py.plain"; then
        pass "python3"
    else
        fail "python3"; cat "$T/py.err"
    fi
else
    skip "python3 not installed"
fi

# ---- gcc: compile (preloaded) and run a program that uses every entry point
if have gcc; then
    cat > "$T/prog.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int bad;
static volatile size_t huge = SIZE_MAX / 2; /* hidden from the compiler */
#define EXPECT(c) do { if (!(c)) { printf("failed: %s (line %d)\n", #c, __LINE__); bad = 1; } } while (0)

static int cmp(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "which") == 0) {
        Dl_info di;
        void *f = dlsym(RTLD_DEFAULT, "malloc");
        if (f && dladdr(f, &di) && di.dli_fname)
            puts(di.dli_fname);
        return 0;
    }
    long page = sysconf(_SC_PAGESIZE);
    /* malloc, calloc, realloc, free */
    long *v = NULL;
    size_t n = 0;
    unsigned long sum = 0;
    for (long i = 0; i < 300000; i++) {
        if ((n & (n - 1)) == 0) {
            v = realloc(v, (n ? 2 * n : 1) * sizeof *v);
            EXPECT(v != NULL);
        }
        v[n++] = (i * 2654435761L) % 1000003;
    }
    qsort(v, n, sizeof *v, cmp);
    for (size_t i = 1; i < n; i++) EXPECT(v[i - 1] <= v[i]);
    for (size_t i = 0; i < n; i += 1000) sum += (unsigned long)v[i];
    free(v);
    char **strs = calloc(10000, sizeof *strs);
    EXPECT(strs != NULL);
    for (int i = 0; i < 10000; i++) {
        EXPECT(strs[i] == NULL);
        strs[i] = malloc((size_t)i % 500 + 1);
        memset(strs[i], 'a' + i % 26, (size_t)i % 500);
        strs[i][i % 500] = 0;
    }
    for (int i = 0; i < 10000; i++) { sum += strlen(strs[i]); free(strs[i]); }
    free(strs);
    /* reallocarray */
    int *a = reallocarray(NULL, 1000, sizeof(int));
    EXPECT(a != NULL);
    for (int i = 0; i < 1000; i++) a[i] = i;
    a = reallocarray(a, 5000, sizeof(int));
    EXPECT(a != NULL && a[999] == 999);
    EXPECT(reallocarray(a, huge, 3) == NULL);
    free(a);
    /* the aligned family */
    for (size_t al = 16; al <= 65536; al *= 4) {
        void *p = aligned_alloc(al, 3 * al);
        EXPECT(p && ((uintptr_t)p % al) == 0);
        memset(p, 1, 3 * al);
        free(p);
        void *q = NULL;
        EXPECT(posix_memalign(&q, al, 100) == 0 && ((uintptr_t)q % al) == 0);
        free(q);
        void *m = memalign(al, 1000);
        EXPECT(m && ((uintptr_t)m % al) == 0);
        free(m);
    }
    void *q = NULL;
    EXPECT(posix_memalign(&q, 24, 100) != 0);
    void *pv = valloc(100);
    EXPECT(pv && ((uintptr_t)pv % (uintptr_t)page) == 0);
    free(pv);
    void *pp = pvalloc(100);
    EXPECT(pp && ((uintptr_t)pp % (uintptr_t)page) == 0);
    EXPECT(pp && malloc_usable_size(pp) >= (size_t)page);
    if (pp) memset(pp, 2, (size_t)page);
    free(pp);
    /* malloc_usable_size */
    for (size_t s = 1; s < 100000; s = s * 3 + 1) {
        unsigned char *p = malloc(s);
        size_t u = malloc_usable_size(p);
        EXPECT(u >= s);
        memset(p, 3, u);
        free(p);
    }
    EXPECT(malloc_usable_size(NULL) == 0);
    free(NULL);
    EXPECT(malloc(huge) == NULL);
    EXPECT(calloc(huge, 3) == NULL);
    printf("%s %lu\n", bad ? "FAILED" : "ok", sum);
    return bad;
}
EOF
    # The compiler itself runs preloaded; its output must not depend on it.
    if pre gcc -O2 -c -o "$T/prog.pre.o" "$T/prog.c" 2> "$T/gcc.err" &&
        plain gcc -O2 -c -o "$T/prog.plain.o" "$T/prog.c" &&
        same "$T/prog.pre.o" "$T/prog.plain.o" &&
        pre gcc -o "$T/prog" "$T/prog.pre.o" -ldl 2>> "$T/gcc.err"; then
        pass "gcc (preloaded) compiles, output identical"
        if pre "$T/prog" > "$T/prog.pre" && plain "$T/prog" > "$T/prog.plain" &&
            same "$T/prog.pre" "$T/prog.plain"; then
            pass "program using every malloc entry point"
        else
            fail "program using every malloc entry point"; cat "$T/prog.pre"
        fi
        w=$(pre "$T/prog" which)
        case "$w" in
            *libgort-malloc*) pass "dlsym(malloc) resolves to $w" ;;
            *) fail "dlsym(malloc) resolves to '$w', not libgort-malloc.so" ;;
        esac
    else
        fail "gcc under preload"; cat "$T/gcc.err"
    fi
else
    skip "gcc not installed"
fi

# ---- sort: a large generated file ------------------------------------------
if have sort && have awk; then
    plain awk 'BEGIN { x = 12345; for (i = 0; i < 400000; i++) {
        x = (x * 1103515245 + 12345) % 2147483648;
        printf "%08x %d line-%d %s\n", x, x % 1000, i, substr("abcdefghijklmnopqrstuvwxyz", x % 26 + 1, x % 17) } }' \
        > "$T/big.txt"
    ok=1
    for opts in "" "-n -k2" "-u -k3,3" "-r -S 8M"; do
        # shellcheck disable=SC2086
        pre env LC_ALL=C sort $opts --parallel=4 "$T/big.txt" > "$T/sort.pre" || ok=0
        # shellcheck disable=SC2086
        plain env LC_ALL=C sort $opts "$T/big.txt" > "$T/sort.plain" || ok=0
        same "$T/sort.pre" "$T/sort.plain" || ok=0
    done
    if [ $ok = 1 ]; then pass "sort"; else fail "sort"; fi
else
    skip "sort/awk not installed"
fi

# ---- awk: associative arrays ---------------------------------------------
if have awk; then
    prog='{ n[$2]++; s[$2] = s[$2] substr($1, 1, 2) } END {
        for (k in n) { t += n[k]; l += length(s[k]) } ; print t, l, length(n) }'
    if pre awk "$prog" "$T/big.txt" > "$T/awk.pre" 2>/dev/null &&
        plain awk "$prog" "$T/big.txt" > "$T/awk.plain" && same "$T/awk.pre" "$T/awk.plain"; then
        pass "awk"
    else
        fail "awk"
    fi
fi

# ---- perl: hashes, sort, strings --------------------------------------------
if have perl; then
    cat > "$T/work.pl" <<'EOF'
use strict; use warnings; use Digest::MD5 qw(md5_hex);
my %h; my $x = 1;
for my $i (0 .. 299999) { $x = ($x * 69069 + 1) % 4294967296; $h{"k$x"} = $i . ("z" x ($i % 50)); }
my @k = sort keys %h;
my $s = join(",", map { "$_=$h{$_}" } @k[0 .. 9999]);
my @big = map { "b" x (1 << ($_ % 21)) } 0 .. 60;
print scalar(keys %h), " ", md5_hex($s), " ", length(join("", @big)), "\n";
EOF
    if pre perl "$T/work.pl" > "$T/pl.pre" 2> "$T/pl.err" &&
        plain perl "$T/work.pl" > "$T/pl.plain" && same "$T/pl.pre" "$T/pl.plain"; then
        pass "perl"
    else
        fail "perl"; cat "$T/pl.err"
    fi
else
    skip "perl not installed"
fi

# ---- tar: archive a tree preloaded, extract it plainly, compare ------------
if have tar && have diff; then
    mkdir -p "$T/tree"
    i=0
    while [ $i -lt 40 ]; do
        mkdir -p "$T/tree/d$((i % 7))/e$((i % 3))"
        head -c $((i * 4099 + 1)) "$T/big.txt" > "$T/tree/d$((i % 7))/e$((i % 3))/f$i"
        i=$((i + 1))
    done
    mkdir -p "$T/x1" "$T/x2"
    if (cd "$T" && pre tar -cf - tree) > "$T/pre.tar" &&
        (cd "$T/x1" && plain tar -xf "$T/pre.tar") &&
        (cd "$T" && plain tar -cf - tree) | (cd "$T/x2" && pre tar -xf -) &&
        diff -r "$T/tree" "$T/x1/tree" && diff -r "$T/tree" "$T/x2/tree"; then
        pass "tar"
    else
        fail "tar"
    fi
else
    skip "tar not installed"
fi

# ---- git: the same commits, preloaded or not --------------------------------
if have git; then
    gitrun() { # gitrun DIR MODE(pre|plain)
        d=$1; m=$2
        (
            export HOME="$T" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
            export GIT_AUTHOR_NAME=gort GIT_AUTHOR_EMAIL=gort@example.com
            export GIT_COMMITTER_NAME=gort GIT_COMMITTER_EMAIL=gort@example.com
            export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
            mkdir -p "$d" && cd "$d" || exit 1
            $m git init -q -b main . || exit 1
            cp -r "$T/tree" . || exit 1
            $m git add -A && $m git commit -q -m first || exit 1
            for f in tree/d1/e1/*; do echo changed >> "$f"; done
            rm -f tree/d2/e2/f2
            $m git add -A && $m git commit -q -m second || exit 1
            $m git log --stat --format='%H %s' &&
                $m git ls-tree -r HEAD && $m git gc -q && $m git fsck --full 2>&1 &&
                $m git diff --stat HEAD~1 HEAD
        )
    }
    if gitrun "$T/g1" pre > "$T/git.pre" 2>&1 && gitrun "$T/g2" plain > "$T/git.plain" 2>&1 &&
        same "$T/git.pre" "$T/git.plain"; then
        pass "git"
    else
        fail "git"; tail -5 "$T/git.pre"
    fi
else
    skip "git not installed"
fi

# ---- find | sort | md5sum over /usr -----------------------------------------
if have find && have md5sum && [ -d /usr ]; then
    a=$(pre find /usr -xdev 2>/dev/null | pre env LC_ALL=C sort | pre md5sum)
    b=$(plain find /usr -xdev 2>/dev/null | plain env LC_ALL=C sort | plain md5sum)
    if [ -n "$a" ] && [ "$a" = "$b" ]; then pass "find /usr | sort | md5sum"; else fail "find | sort | md5sum ($a vs $b)"; fi
fi

if [ $failed != 0 ]; then
    echo "preload_programs: FAILED"
    exit 1
fi
if [ $ran = 0 ]; then
    echo "preload_programs: nothing to run"
    exit 77
fi
echo "preload_programs: all $ran passed"
exit 0
