/* test_gc_basic.c - the collector's contract, seen from a program.
 *
 * gort.h: a finalizer runs once, after a cycle finds its object unreachable
 * (on a thread of its own outside gort_main); gort_gc_set_finalizer(obj,
 * NULL) removes it; gort_gc_free frees at once, and a stale pointer does
 * not bring the object back; GOGC (gort_gc_set_percent) off stops the
 * cycles, 100 keeps the heap near twice the live data; a memory limit below
 * the live heap makes cycles frequent, not fatal; runtime.MemStats' GC
 * fields; GORT_DEBUG=gctrace=1 prints Go's line per cycle; the mark walks a
 * 10-million-node list without recursion and scans a 256 MiB array;
 * gort_free_os_memory gives freed memory back (RSS falls); the collector
 * works for plain pthreads that never call gort_main, and for goroutines.
 *
 * Everything but the last case runs before gort_main, on plain threads.
 * Run with the argument "gctrace", the program is the child of the gctrace
 * case: a few forced cycles with GORT_DEBUG=gctrace=1, output on stderr.
 *
 * GORT_TEST_SCALE (default 1; a tenth under valgrind and TSan) scales the
 * list, the array, the RSS case and the trees; under GORT_DEBUG=gcstress
 * the list, the array and the trees are a hundredth of that, and GOGC=off
 * is not checked (gcstress collects whatever GOGC says). The GOGC case
 * always allocates 64 MiB: its bound is relative to the 4 MiB minimum heap
 * goal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"
#include "gort_test.h"
#include "gc_test.h"

#define MiB ((long)1 << 20)

/* The cases that build millions of objects: with gcstress a cycle comes
 * every few hundred allocations, each marking all of them, so they are a
 * hundredth of the size there. */
static long heavy(long n)
{
    long v = scaled(n) / (gcstress_on() ? 100 : 1);
    return v < 1 ? 1 : v;
}

static gort_memstats ms;   /* large: not on the stack */

static void read_stats(void)
{
    gort_read_memstats(&ms);
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* Garbage: n bytes in objects of `size` bytes, each touched once. */
static NOINLINE void garbage(long n, size_t size)
{
    for (long done = 0; done < n; done += (long)size) {
        char *p = gort_gc_alloc(size);
        REQUIRE(p);
        p[0] = 1;
        p[size - 1] = 2;
    }
}

/* ---- finalizers ----------------------------------------------------------------- */

#define NF 256
typedef struct fobj {
    uint64_t idx;
    uint64_t magic;
} fobj;
#define FMAGIC 0xF1A1F1A1F1A1F1A1ull

static void *volatile fobjs[NF];
static atomic_int fruns[NF];
static atomic_int fdropped[NF];     /* set just before the reference is dropped */
static atomic_int f_early, f_bad;
static int f_argval;

static void fin_once(void *obj, void *arg)
{
    fobj *o = obj;
    if (arg != &f_argval || o->magic != FMAGIC || o->idx >= NF) {
        atomic_fetch_add(&f_bad, 1);
        return;
    }
    if (!atomic_load(&fdropped[o->idx]))
        atomic_fetch_add(&f_early, 1);
    atomic_fetch_add(&fruns[o->idx], 1);
}

static NOINLINE void make_fobjs(void)
{
    for (int i = 0; i < NF; i++) {
        fobj *o = gort_gc_alloc(sizeof *o);
        REQUIRE(o);
        o->idx = (uint64_t)i;
        o->magic = FMAGIC;
        gort_gc_set_finalizer(o, fin_once, &f_argval);
        fobjs[i] = o;
    }
}

static NOINLINE void check_fobjs(void)
{
    for (int i = 0; i < NF; i++)
        if (((fobj *)fobjs[i])->magic != FMAGIC || ((fobj *)fobjs[i])->idx != (uint64_t)i) {
            CHECK_MSG(0, "object %d with a finalizer changed while reachable", i);
            break;
        }
}

static NOINLINE void drop_fobjs(void)
{
    for (int i = 0; i < NF; i++) {
        atomic_store(&fdropped[i], 1);
        fobjs[i] = NULL;
    }
}

static int count_runs(int *dup)
{
    int ran = 0;
    *dup = 0;
    for (int i = 0; i < NF; i++) {
        int r = atomic_load(&fruns[i]);
        ran += r > 0;
        *dup += r > 1;
    }
    return ran;
}

/* Resurrection: the finalizer stores its object where the program sees it. */
#define NR 32
static void *volatile resurrected[NR];
static atomic_int rruns[NR];

static void fin_resurrect(void *obj, void *arg)
{
    int i = (int)(uintptr_t)arg;
    resurrected[i] = obj;
    atomic_fetch_add(&rruns[i], 1);
}

static NOINLINE void make_resurrectable(void)
{
    for (int i = 0; i < NR; i++) {
        leaf *l = new_leaf(NULL);
        gort_gc_set_finalizer(l, fin_resurrect, (void *)(uintptr_t)i);
    }
}

static NOINLINE void check_resurrected(void)
{
    int bad = 0;
    for (int i = 0; i < NR; i++)
        if (resurrected[i] && !leaf_ok(resurrected[i]))
            bad++;
    CHECK_MSG(bad == 0, "%d resurrected objects were freed", bad);
}

/* Removed finalizers never run. */
static probe p_removed = {.name = "finalizers removed with fn NULL"};

static NOINLINE void make_removed(void)
{
    for (int i = 0; i < 64; i++) {
        leaf *l = new_leaf(&p_removed);
        gort_gc_set_finalizer(l, NULL, NULL);
    }
}

/* A finalizer may allocate and set finalizers. */
static probe p_gen2 = {.name = "finalizers set by finalizers"};
static probe p_gen1 = {.name = "finalizers that allocate"};

static void fin_gen1(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    new_leaf(&p_gen2);
    atomic_fetch_add(&p_gen1.finalized, 1);
}

static NOINLINE void make_gen1(void)
{
    for (int i = 0; i < 64; i++) {
        leaf *l = new_leaf(NULL);
        gort_gc_set_finalizer(l, fin_gen1, NULL);
    }
}

/* Objects waiting in the finalizer queue stay alive: a finalizer blocks
 * the queue while cycles run, and those queued behind it then find their
 * objects intact. Several candidates: the first one to run blocks. */
static probe p_queued = {.name = "objects waiting in the finalizer queue"};
static atomic_int blocker_state;   /* 0 none yet, 1 one is blocking, 2 released */

static void fin_blocker(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    int zero = 0;
    if (!atomic_compare_exchange_strong(&blocker_state, &zero, 1))
        return;
    while (atomic_load(&blocker_state) == 1) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
}

static NOINLINE void make_blockers(void)
{
    for (int i = 0; i < 16; i++) {
        void *p = gort_gc_alloc(32);
        REQUIRE(p);
        gort_gc_set_finalizer(p, fin_blocker, NULL);
    }
}

static NOINLINE void make_queued(void)
{
    for (int i = 0; i < 64; i++)
        new_leaf(&p_queued);
}

static void test_finalizer_queue(void)
{
    make_blockers();
    scrub_stack();
    int64_t deadline = gort_nanotime() + 60 * SEC;
    while (atomic_load(&blocker_state) == 0 && gort_nanotime() < deadline) {
        gort_gc_collect();
        nap();
    }
    REQUIRE(atomic_load(&blocker_state) == 1);
    make_queued();
    scrub_stack();
    gort_gc_collect();   /* queues them behind the blocked finalizer */
    for (int c = 0; c < 4; c++) {
        churn();
        gort_gc_collect();
    }
    CHECK_MSG(atomic_load(&p_queued.finalized) == 0, "%s: finalizers ran while the queue "
              "was blocked", p_queued.name);
    atomic_store(&blocker_state, 2);
    expect_collected(&p_queued, 64);
}

static void test_finalizers(void)
{
    make_fobjs();
    scrub_stack();
    for (int c = 0; c < 3; c++) {
        churn();
        gort_gc_collect();
    }
    finalizer_barrier();
    int dup, ran = count_runs(&dup);
    CHECK_MSG(ran == 0, "%d finalizers ran while their objects were reachable", ran);
    check_fobjs();
    drop_fobjs();
    scrub_stack();
    gort_gc_collect();
    finalizer_barrier();
    ran = count_runs(&dup);
    CHECK_MSG(ran >= NF - NF / 4, "%d of %d finalizers ran after their objects became "
              "unreachable", ran, NF);
    /* many more cycles: none runs again */
    for (int c = 0; c < 5; c++)
        gort_gc_collect();
    finalizer_barrier();
    int ran2 = count_runs(&dup);
    CHECK_MSG(dup == 0, "%d finalizers ran more than once", dup);
    CHECK_MSG(ran2 >= ran, "finalizer run counts went down");
    CHECK_MSG(atomic_load(&f_early) == 0, "%d finalizers ran before the object was dropped",
              atomic_load(&f_early));
    CHECK_MSG(atomic_load(&f_bad) == 0, "%d finalizers got a wrong object or argument",
              atomic_load(&f_bad));

    /* a resurrected object lives on, and its finalizer does not run again */
    make_resurrectable();
    scrub_stack();
    gort_gc_collect();
    finalizer_barrier();
    int nres = 0;
    for (int i = 0; i < NR; i++)
        nres += resurrected[i] != NULL;
    CHECK_MSG(nres >= NR - NR / 4, "%d of %d resurrecting finalizers ran", nres, NR);
    for (int c = 0; c < 3; c++) {
        churn();
        gort_gc_collect();
    }
    check_resurrected();
    for (int i = 0; i < NR; i++)
        resurrected[i] = NULL;
    scrub_stack();
    for (int c = 0; c < 3; c++)
        gort_gc_collect();
    finalizer_barrier();
    for (int i = 0; i < NR; i++)
        CHECK_MSG(atomic_load(&rruns[i]) <= 1, "resurrected object %d finalized %d times", i,
                  atomic_load(&rruns[i]));

    /* removed finalizers never run */
    make_removed();
    scrub_stack();
    for (int c = 0; c < 3; c++)
        gort_gc_collect();
    finalizer_barrier();
    CHECK_MSG(atomic_load(&p_removed.finalized) == 0, "%s: %d ran", p_removed.name,
              atomic_load(&p_removed.finalized));

    /* finalizers that allocate and set finalizers */
    make_gen1();
    scrub_stack();
    gort_gc_collect();
    finalizer_barrier();
    CHECK_MSG(atomic_load(&p_gen1.finalized) >= 48, "%s: %d of 64 ran", p_gen1.name,
              atomic_load(&p_gen1.finalized));
    expect_collected(&p_gen2, atomic_load(&p_gen1.finalized));
}

/* ---- gort_gc_free ---------------------------------------------------------------- */

static probe p_freed = {.name = "finalizers of objects freed with gort_gc_free"};
static void *volatile *free_slots;   /* a GC object: scanned, and kept by this global */

static void test_gc_free(void)
{
    /* no cycle but the forced ones: heap_alloc moves only with what this does */
    int pct = gort_gc_set_percent(-1);
    long n = scaled(20000);
    free_slots = gort_gc_alloc((size_t)n * sizeof(void *));
    REQUIRE(free_slots);
    gort_gc_collect();
    read_stats();
    uint64_t frees0 = ms.frees, alloc0 = ms.heap_alloc;
    for (long i = 0; i < n; i++) {
        char *p = gort_gc_alloc(64);
        REQUIRE(p);
        CHECK(gort_gc_size(p) >= 64);
        memset(p, 0xEE, 64);
        free_slots[i] = p;
    }
    read_stats();
    uint64_t inuse_peak = ms.heap_inuse;
    /* (an eighth of slack: under gcstress a cycle may free some garbage
     * left by the finalizer cases meanwhile) */
    CHECK_MSG(ms.heap_alloc >= alloc0 + (uint64_t)n * 64 * 7 / 8, "heap_alloc %" PRIu64 " did "
              "not grow by the %ld objects", ms.heap_alloc, n);
    /* freed while the (scanned) slots still point to them: the stale
     * pointers must not bring them back */
    for (long i = 0; i < n; i++)
        gort_gc_free(free_slots[i]);
    gort_gc_collect();
    read_stats();
    CHECK_MSG(ms.frees >= frees0 + (uint64_t)n, "frees grew by %" PRIu64 ", want >= %ld",
              ms.frees - frees0, n);
    CHECK_MSG(ms.heap_alloc <= alloc0 + (uint64_t)n * 64 / 4,
              "heap_alloc %" PRIu64 " after freeing %ld objects (was %" PRIu64 " before them)",
              ms.heap_alloc, n, alloc0);
    /* the space is reused, and handed out zeroed */
    long nonzero = 0;
    for (long i = 0; i < n; i++) {
        uint64_t *p = gort_gc_alloc(64);
        REQUIRE(p);
        for (int j = 0; j < 8; j++)
            nonzero += p[j] != 0;
        free_slots[i] = p;
    }
    read_stats();
    CHECK_MSG(nonzero == 0, "%ld words of reused objects not zero", nonzero);
    CHECK_MSG(ms.heap_inuse <= inuse_peak + (uint64_t)n * 64 / 4,
              "heap_inuse %" PRIu64 " after reallocating, %" PRIu64 " before the frees: "
              "freed space not reused", ms.heap_inuse, inuse_peak);
    free_slots = NULL;

    /* a large object goes back at once */
    gort_gc_collect();
    read_stats();
    uint64_t before = ms.heap_alloc;
    char *big = gort_gc_alloc(8 * MiB);
    REQUIRE(big);
    read_stats();
    CHECK(ms.heap_alloc >= before + 7 * MiB);
    gort_gc_free(big);
    read_stats();
    CHECK_MSG(ms.heap_alloc <= before, "heap_alloc %" PRIu64 " after freeing a large object, "
              "%" PRIu64 " before it", ms.heap_alloc, before);

    /* a freed object's finalizer never runs */
    for (int i = 0; i < 64; i++)
        gort_gc_free(new_leaf(&p_freed));
    for (int c = 0; c < 3; c++)
        gort_gc_collect();
    finalizer_barrier();
    CHECK_MSG(atomic_load(&p_freed.finalized) == 0, "%s: %d ran", p_freed.name,
              atomic_load(&p_freed.finalized));
    gort_gc_set_percent(pct);
}

/* ---- lists ----------------------------------------------------------------------- */

typedef struct lnode {
    struct lnode *next;
    uint64_t val;
} lnode;

static lnode *volatile live_list;

static uint64_t lval(long i)
{
    return ((uint64_t)i * 0x9E3779B97F4A7C15ull) | 0x8000000000000000ull;
}

static NOINLINE lnode *make_list(long n, size_t size)
{
    lnode *head = NULL;
    for (long i = n - 1; i >= 0; i--) {
        lnode *x = gort_gc_alloc(size);
        REQUIRE(x);
        x->next = head;
        x->val = lval(i);
        head = x;
    }
    return head;
}

/* -1 if intact and n long, else the index of the first bad node */
static NOINLINE long list_check(const lnode *x, long n)
{
    long i = 0;
    for (; x && i < n; x = x->next, i++)
        if (x->val != lval(i))
            return i;
    return x || i != n ? i : -1;
}

/* ---- GOGC ------------------------------------------------------------------------ */

static void test_gogc(void)
{
    const char *env = getenv("GOGC");
    int old = gort_gc_set_percent(-1);
    if (!env)
        CHECK_MSG(old == 100, "default GOGC %d, want 100", old);
    gort_gc_collect();
    read_stats();
    uint32_t n0 = ms.num_gc;
    garbage(64 * MiB, 4096);
    read_stats();
    if (!gcstress_on()) {   /* gcstress collects whatever GOGC says */
        CHECK_MSG(ms.num_gc == n0, "GOGC off: %u cycles ran while allocating 64 MiB",
                  ms.num_gc - n0);
        CHECK_MSG(ms.heap_alloc >= 60 * (uint64_t)MiB, "GOGC off: heap_alloc %" PRIu64
                  " after 64 MiB of garbage", ms.heap_alloc);
    }

    CHECK(gort_gc_set_percent(100) == -1);
    gort_gc_collect();
    read_stats();
    uint64_t live = ms.heap_alloc;
    CHECK_MSG(live < 8 * (uint64_t)MiB, "heap_alloc %" PRIu64 " after a cycle freed 64 MiB "
              "of garbage", live);
    n0 = ms.num_gc;
    uint64_t peak = 0;
    for (int i = 0; i < 64; i++) {
        garbage(MiB, 4096);
        read_stats();
        if (ms.heap_alloc > peak)
            peak = ms.heap_alloc;
    }
    /* goal: twice the live heap, at least 4 MiB */
    uint64_t goal = live * 2 > 4 * (uint64_t)MiB ? live * 2 : 4 * (uint64_t)MiB;
    CHECK_MSG(ms.num_gc >= n0 + 64 * (uint64_t)MiB / goal / 2,
              "GOGC=100: %u cycles while allocating 64 MiB with a %" PRIu64 " MiB goal",
              ms.num_gc - n0, goal >> 20);
    CHECK_MSG(peak < 32 * (uint64_t)MiB, "GOGC=100: heap_alloc reached %" PRIu64 " MiB "
              "allocating 64 MiB of garbage in 1 MiB steps", peak >> 20);

    /* with a live heap above the minimum the goal is twice the live heap */
    long n = 16 * MiB / 64;
    live_list = make_list(n, 64);
    gort_gc_collect();
    read_stats();
    live = ms.heap_alloc;
    n0 = ms.num_gc;
    peak = 0;
    for (int i = 0; i < 64; i++) {
        garbage(MiB, 4096);
        read_stats();
        if (ms.heap_alloc > peak)
            peak = ms.heap_alloc;
    }
    CHECK_MSG(ms.num_gc >= n0 + 64 * (uint64_t)MiB / live / 2,
              "GOGC=100: %u cycles while allocating 64 MiB over a %" PRIu64 " MiB live heap",
              ms.num_gc - n0, live >> 20);
    CHECK_MSG(peak < 2 * live + 16 * (uint64_t)MiB, "GOGC=100: heap_alloc reached %" PRIu64
              " MiB over a %" PRIu64 " MiB live heap", peak >> 20, live >> 20);
    long bad = list_check(live_list, n);
    CHECK_MSG(bad < 0, "GOGC=100: the live list is broken at node %ld", bad);
    live_list = NULL;
    if (old != 100)
        gort_gc_set_percent(old);
}

/* ---- memory limit below the live heap ------------------------------------------- */

static void test_memory_limit(void)
{
    const char *env = getenv("GOMEMLIMIT");
    long n = 16 * MiB / 64;
    live_list = make_list(n, 64);
    gort_gc_collect();
    read_stats();
    uint32_t n0 = ms.num_gc;
    int64_t old = gort_gc_set_memory_limit(4 * MiB);
    if (!env)
        CHECK_MSG(old == INT64_MAX, "default memory limit %" PRId64 ", want none (INT64_MAX)",
                  old);
    CHECK(gort_gc_set_memory_limit(-1) == 4 * MiB);
    garbage(scaled(64 * MiB), 1024);
    read_stats();
    CHECK_MSG(ms.num_gc >= n0 + 4, "memory limit below the live heap: %u cycles while "
              "allocating %ld MiB", ms.num_gc - n0, scaled(64 * MiB) >> 20);
    long bad = list_check(live_list, n);
    CHECK_MSG(bad < 0, "memory limit: the live list is broken at node %ld", bad);
    CHECK(gort_gc_set_memory_limit(old) == 4 * MiB);
    live_list = NULL;
}

/* ---- memstats -------------------------------------------------------------------- */

static void test_memstats(void)
{
    read_stats();
    uint32_t n0 = ms.num_gc, f0 = ms.num_forced_gc;
    int64_t t0 = wall_ns();
    for (int i = 0; i < 3; i++)
        gort_gc_collect();
    int64_t t1 = wall_ns();
    read_stats();
    CHECK_MSG(ms.num_gc >= n0 + 3, "num_gc %u -> %u after 3 cycles", n0, ms.num_gc);
    CHECK_MSG(ms.num_forced_gc >= f0 + 3, "num_forced_gc %u -> %u after 3 forced cycles", f0,
              ms.num_forced_gc);
    CHECK(ms.num_forced_gc <= ms.num_gc);
    /* last_gc is wall-clock time (a second of slack for clock steps) */
    CHECK_MSG((int64_t)ms.last_gc >= t0 - SEC && (int64_t)ms.last_gc <= t1 + SEC,
              "last_gc %" PRIu64 " outside [%" PRId64 ", %" PRId64 "]", ms.last_gc, t0, t1);
    uint32_t last = (ms.num_gc + 255) % 256;
    CHECK_MSG(ms.pause_end[last] == ms.last_gc, "pause_end[%u] %" PRIu64 " != last_gc %" PRIu64,
              last, ms.pause_end[last], ms.last_gc);
    CHECK_MSG(ms.pause_ns[last] > 0, "pause_ns[%u] is 0", last);
    uint64_t sum = 0;
    uint32_t filled = ms.num_gc < 256 ? ms.num_gc : 256;
    for (uint32_t i = 0; i < filled; i++) {
        CHECK_MSG(ms.pause_ns[i] > 0, "pause_ns[%u] is 0", i);
        CHECK_MSG(ms.pause_end[i] > 0, "pause_end[%u] is 0", i);
        sum += ms.pause_ns[i];
    }
    for (uint32_t i = filled; i < 256; i++)
        CHECK_MSG(ms.pause_ns[i] == 0, "pause_ns[%u] set with only %u cycles", i, ms.num_gc);
    if (ms.num_gc <= 256)
        CHECK_MSG(sum == ms.pause_total_ns, "pause_total_ns %" PRIu64 ", the pauses add up to %"
                  PRIu64, ms.pause_total_ns, sum);
    else
        CHECK(ms.pause_total_ns >= sum);
    CHECK_MSG(ms.next_gc >= 4 * (uint64_t)MiB, "next_gc %" PRIu64 " below the 4 MiB minimum",
              ms.next_gc);
    /* (at most 1 in Go; gort's estimate counts wall time, which a loaded
     * machine stretches, so only the sign is certain) */
    CHECK_MSG(ms.gc_cpu_fraction >= 0, "gc_cpu_fraction %f", ms.gc_cpu_fraction);
}

/* ---- gctrace ---------------------------------------------------------------------- */

static int gctrace_child(void)
{
    for (int i = 0; i < 3; i++) {
        garbage(MiB, 256);
        gort_gc_collect();
    }
    return 0;
}

static char self_path[4096];

static void test_gctrace(void)
{
    const char *mode = getenv("GORT_TEST_MODE");
    if (mode && strcmp(mode, "qemu") == 0) {
        printf("gctrace: skipped under qemu (the program re-executes itself)\n");
        return;
    }
    /* the child's environment: ours with GORT_DEBUG=gctrace=1 (built
     * before the fork: the child of a threaded program may not allocate) */
    extern char **environ;
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **envp = calloc(nenv + 2, sizeof *envp);
    REQUIRE(envp);
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "GORT_DEBUG=", 11) != 0)
            envp[k++] = environ[i];
    envp[k++] = "GORT_DEBUG=gctrace=1";
    envp[k] = NULL;
    FILE *err = tmpfile();
    REQUIRE(err);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fileno(err), 2);
        execle(self_path, self_path, "gctrace", (char *)NULL, envp);
        _exit(127);
    }
    free(envp);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    static char buf[65536];
    rewind(err);
    size_t len = fread(buf, 1, sizeof buf - 1, err);
    buf[len] = 0;
    fclose(err);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "gctrace child: status %#x; stderr:\n%s",
              st, buf);

    /* Go: gc 1 @0.012s 2%: 0.026+0.39+0.10 ms clock, 0.21+0.17/0.33/0.50+0.84 ms cpu,
     * 4->4->0 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 8 P */
    regex_t re;
    REQUIRE(regcomp(&re,
                    "^gc ([0-9]+) @[0-9]+\\.[0-9]+s [0-9]+%: "
                    "[0-9.]+\\+[0-9.]+\\+[0-9.]+ ms clock, "
                    "[0-9.]+\\+[0-9.]+/[0-9.]+/[0-9.]+\\+[0-9.]+ ms cpu, "
                    "[0-9]+->[0-9]+->[0-9]+ MB, [0-9]+ MB goal, [0-9]+ MB stacks, "
                    "[0-9]+ MB globals, [0-9]+ P( \\(forced\\))?$",
                    REG_EXTENDED | REG_NEWLINE) == 0);
    int lines = 0, forced = 0, bad = 0;
    long prev = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "gc ", 3) != 0)
            continue;
        regmatch_t m[3];
        if (regexec(&re, line, 3, m, 0) != 0) {
            CHECK_MSG(0, "gctrace line not in Go's format: %s", line);
            bad++;
            continue;
        }
        long num = strtol(line + m[1].rm_so, NULL, 10);
        CHECK_MSG(num == prev + 1, "gctrace: cycle %ld after %ld", num, prev);
        prev = num;
        lines++;
        forced += m[2].rm_so >= 0;
    }
    regfree(&re);
    CHECK_MSG(lines >= 3 && bad == 0, "gctrace: %d lines in Go's format, want >= 3", lines);
    CHECK_MSG(forced >= 3, "gctrace: %d lines marked (forced), want >= 3", forced);
}

/* ---- the mark needs no recursion: a 10-million-node list ------------------------ */

static void test_long_list(void)
{
    long n = heavy(10 * 1000 * 1000);
    live_list = make_list(n, sizeof(lnode));
    scrub_stack();
    gort_gc_collect();
    churn();
    gort_gc_collect();
    long bad = list_check(live_list, n);
    CHECK_MSG(bad < 0, "a %ld-node list is broken at node %ld after two cycles", n, bad);
    live_list = NULL;
}

/* ---- a large array of pointers ------------------------------------------------------ */

static probe p_array = {.name = "objects pointed to from a large array"};
static void *volatile *volatile big_array;

static NOINLINE void fill_big_array(long slots, long stride, int targets)
{
    void *volatile *a = gort_gc_alloc((size_t)slots * sizeof(void *));
    REQUIRE(a);
    make_leaves(a, targets - 1, (int)stride, &p_array);
    a[slots - 1] = new_leaf(&p_array);   /* the very last word too */
    big_array = a;
}

static NOINLINE int big_array_bad(long slots, long stride, int targets)
{
    void *volatile *a = big_array;
    return count_bad(a, targets - 1, (int)stride) + count_bad(a + slots - 1, 1, 1);
}

static NOINLINE void clear_big_array(long slots, long stride, int targets)
{
    void *volatile *a = big_array;
    clear_slots(a, targets - 1, (int)stride);
    a[slots - 1] = NULL;
}

static void test_large_array(void)
{
    long slots = heavy(256 * MiB) / (long)sizeof(void *);
    int targets = 4096;
    long stride = slots / targets;
    fill_big_array(slots, stride, targets);
    scrub_stack();
    expect_alive(&p_array);
    int bad = big_array_bad(slots, stride, targets);
    CHECK_MSG(bad == 0, "%s: %d corrupt", p_array.name, bad);
    clear_big_array(slots, stride, targets);
    scrub_stack();
    expect_collected(&p_array, targets);
    big_array = NULL;
}

/* ---- RSS falls when the live heap shrinks -------------------------------------------- */

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    REQUIRE(f);
    long size = 0, res = 0;
    REQUIRE(fscanf(f, "%ld %ld", &size, &res) == 2);
    fclose(f);
    return res * sysconf(_SC_PAGESIZE);
}

static NOINLINE void fill_rss(void *volatile *slots, long nlarge, long nsmall)
{
    for (long i = 0; i < nlarge; i++) {
        char *p = gort_gc_alloc(MiB);
        REQUIRE(p);
        memset(p, 0xAB, MiB);
        slots[i] = p;
    }
    for (long i = 0; i < nsmall; i++) {
        char *p = gort_gc_alloc(1024);
        REQUIRE(p);
        memset(p, 0xCD, 1024);
        slots[nlarge + i] = p;
    }
}

static void test_rss(void)
{
    long nlarge = scaled(64), nsmall = scaled(32 * 1024);
    long total = nlarge * MiB + nsmall * 1024;
    /* the slots are malloc'd memory made a root, so that no stale copy of
     * one pointer can keep them all */
    void *volatile *slots = calloc((size_t)(nlarge + nsmall), sizeof(void *));
    REQUIRE(slots);
    gort_gc_add_roots((void *)slots, (void *)(slots + nlarge + nsmall));
    gort_free_os_memory();
    long r0 = rss_bytes();
    fill_rss(slots, nlarge, nsmall);
    long r1 = rss_bytes();
    CHECK_MSG(r1 - r0 >= total / 2, "RSS grew by %ld KiB for %ld KiB of objects",
              (r1 - r0) >> 10, total >> 10);
    gort_gc_remove_roots((void *)slots, (void *)(slots + nlarge + nsmall));
    free((void *)slots);
    slots = NULL;
    scrub_stack();
    gort_free_os_memory();
    long r2 = rss_bytes();
    CHECK_MSG(r1 - r2 >= total / 2, "RSS %ld KiB -> %ld KiB after freeing %ld KiB and "
              "gort_free_os_memory", r1 >> 10, r2 >> 10, total >> 10);
}

/* ---- trees from many threads or goroutines ---------------------------------------- */

typedef struct tnode {
    struct tnode *left, *right;
    uint64_t val;
} tnode;

static uint64_t tval(uint64_t seed, int depth, uint64_t path)
{
    return ((seed * 31 + (uint64_t)depth) * 0x9E3779B97F4A7C15ull ^ path) | 1ull << 63;
}

static tnode *make_tree(uint64_t seed, int depth, uint64_t path)
{
    tnode *t = gort_gc_alloc(sizeof *t);
    REQUIRE(t);
    t->val = tval(seed, depth, path);
    if (depth > 0) {
        t->left = make_tree(seed, depth - 1, path * 2);
        t->right = make_tree(seed, depth - 1, path * 2 + 1);
    }
    return t;
}

/* number of nodes that are wrong */
static long tree_bad(const tnode *t, uint64_t seed, int depth, uint64_t path)
{
    if (!t)
        return 1L << (depth + 1);
    long bad = t->val != tval(seed, depth, path);
    if (depth > 0)
        bad += tree_bad(t->left, seed, depth - 1, path * 2) +
               tree_bad(t->right, seed, depth - 1, path * 2 + 1);
    else
        bad += t->left != NULL || t->right != NULL;
    return bad;
}

typedef struct worker {
    int id;
    long iters;
    long bad;
} worker;

static void tree_work(worker *w)
{
    uint64_t seed = (uint64_t)w->id * 1000003;
    tnode *keep = make_tree(seed, 12, 1);
    for (long i = 0; i < w->iters; i++) {
        uint64_t s = seed + (uint64_t)i + 1;
        int d = 6 + (int)(i % 5);
        tnode *t = make_tree(s, d, 1);
        w->bad += tree_bad(t, s, d, 1);
        if (i % 8 == 0)
            w->bad += tree_bad(keep, seed, 12, 1);
    }
    w->bad += tree_bad(keep, seed, 12, 1);
}

static atomic_int threads_running;

static void *tree_thread(void *arg)
{
    tree_work(arg);
    atomic_fetch_sub(&threads_running, 1);
    return NULL;
}

static void test_threads(void)
{
    enum { NT = 4 };
    worker w[NT];
    pthread_t t[NT];
    read_stats();
    uint32_t n0 = ms.num_gc;
    atomic_store(&threads_running, NT);
    for (int i = 0; i < NT; i++) {
        w[i] = (worker){.id = i + 1, .iters = heavy(400 * 10) / 10};
        REQUIRE(pthread_create(&t[i], NULL, tree_thread, &w[i]) == 0);
    }
    /* cycles while they run, besides those their allocation starts */
    while (atomic_load(&threads_running) > 0) {
        gort_gc_collect();
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(t[i], NULL);
        CHECK_MSG(w[i].bad == 0, "thread %d: %ld tree nodes wrong", i, w[i].bad);
    }
    read_stats();
    CHECK(ms.num_gc > n0);
}

static gort_waitgroup tree_wg;
static atomic_int goroutines_running;

static void tree_goroutine(void *arg)
{
    tree_work(arg);
    atomic_fetch_sub(&goroutines_running, 1);
    gort_waitgroup_done(&tree_wg);
}

static void main_goroutine(void *arg)
{
    (void)arg;
    enum { NG = 8 };
    static worker w[NG];
    read_stats();
    uint32_t n0 = ms.num_gc;
    atomic_store(&goroutines_running, NG);
    gort_waitgroup_add(&tree_wg, NG);
    for (int i = 0; i < NG; i++) {
        w[i] = (worker){.id = 100 + i, .iters = heavy(200 * 10) / 10};
        gort_go(tree_goroutine, &w[i]);
    }
    while (atomic_load(&goroutines_running) > 0) {
        gort_gc_collect();
        gort_sleep(MS);
    }
    gort_waitgroup_wait(&tree_wg);
    for (int i = 0; i < NG; i++)
        CHECK_MSG(w[i].bad == 0, "goroutine %d: %ld tree nodes wrong", i, w[i].bad);
    read_stats();
    CHECK(ms.num_gc > n0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "gctrace") == 0)
        return gctrace_child();
    /* /proc/self/exe itself would name valgrind's tool under valgrind */
    ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    REQUIRE(len > 0);
    self_path[len] = 0;

    test_finalizers();
    test_finalizer_queue();
    test_gc_free();
    test_gogc();
    test_memory_limit();
    test_memstats();
    test_gctrace();
    test_long_list();
    test_large_array();
    test_rss();
    test_threads();
    REQUIRE(gort_main(main_goroutine, NULL) == 0);
    return test_done();
}
