/* gc.c - the garbage collector: overview, the cycle and the pacer (Go's mgc.go).
 *
 * gort's collector is a non-moving mark-sweep collector over the GC spans of
 * the allocator's heap: Go's design with the marking done in a pause and
 * the roots found conservatively, since C has no stack maps.
 *
 * A cycle, run by the collector thread (its own pthread, never registered,
 * so it never has to stop itself):
 *
 *   1. finish sweeping the previous cycle (Go's sweep termination), and
 *      list the writable segments of the loaded objects (roots.c);
 *   2. stop the world: every registered thread stops in a signal handler
 *      or is already blocked with its registers saved (suspend.c);
 *   3. take every GC span back from every cache (so none is allocated from
 *      while it is swept), then mark in parallel from the roots, one worker
 *      per P up to the CPU count (mark.c, roots.c), then queue the
 *      finalizers of objects found unreachable (finalizer.c);
 *   4. add 2 to sweepgen: every span becomes unswept; compute the next
 *      heap goal; restart the world;
 *   5. sweep in the background while the program runs (sweep.c); caches
 *      sweep lazily the spans they need.
 *
 * Why the mark is not concurrent as Go's is: a concurrent mark needs a write
 * barrier on every pointer store, which C code does not have; Boehm GC's
 * incremental mode uses page protection instead and loses more than it
 * wins. The pause is the mark: proportional to the live heap and the
 * roots, divided among the workers.
 *
 * Pacing (Go's rule): the next cycle starts when heap_live reaches the goal
 * marked * (1 + GOGC/100), but not below 4 MiB * GOGC/100. heap_live is the
 * bytes marked by the last cycle plus the bytes handed out since, counted
 * per span (mcentral.c). GOMEMLIMIT, a soft limit on the memory the
 * process holds, lowers the goal when the non-GC memory plus the goal would
 * exceed it, but never below the marked bytes plus 1/16: a limit below the
 * live heap makes cycles frequent, not fatal. GOGC=off with no limit
 * disables the collector. An allocation that crosses the goal wakes the
 * collector and waits for the mark to finish (blocked, so the collector
 * need not stop it). The collector also runs a cycle on its own when none
 * ran for 2 minutes (the job sysmon does in Go).
 *
 * Where the program sees it: gort_gc_collect (runtime.GC) runs a full cycle
 * and finishes its sweep; GORT_DEBUG=gctrace=1 prints a line per cycle in
 * Go's format; gcstoptheworld=1 sweeps inside the pause; gcstress=N runs a
 * cycle every N allocations (and clobbers freed objects).
 */
#define _GNU_SOURCE
#include "gc/gc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched/proc.h"
#include "sched/sanitize.h"

gcstate gc;
_Atomic int gc_inited;
extern bool gc_clobberfree;

#define HEAP_MINIMUM ((uint64_t)4 << 20)
#define FORCE_PERIOD_NS ((int64_t)120 * 1000000000)

static rlock initlock;
static rlock cyclelock;                 /* held by the collector for a whole cycle, sweep included */
static _Atomic uint32_t marked_done;    /* cycles whose mark finished (world restarted) */
static _Atomic uint32_t sweep_wanted;   /* the cycle whose sweep the collector thread should finish */
static _Atomic uint32_t swept_done;     /* the last sweep_wanted the collector thread finished */
static _Atomic uint32_t collector_seq;  /* + 1 wakes the collector thread */
static _Atomic bool collector_started;

static void start_collector(void);

static int64_t parse_size(const char *s, bool *ok)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    *ok = end != s && errno == 0 && v >= 0;
    static const struct {
        const char *unit;
        double mul;
    } units[] = {{"", 1}, {"B", 1}, {"KiB", 1024.0}, {"MiB", 1048576.0},
                 {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].unit) == 0) {
            double b = v * units[i].mul;
            return b >= 9.2e18 ? INT64_MAX : (int64_t)b;
        }
    *ok = false;
    return 0;
}

static void read_env(void)
{
    const char *s = getenv("GOGC");
    int32_t pct = 100;
    if (s && *s) {
        if (strcmp(s, "off") == 0) {
            pct = -1;
        } else {
            char *end;
            long v = strtol(s, &end, 10);
            if (*end == 0)
                pct = v < 0 ? -1 : v > 1000000 ? 1000000 : (int32_t)v;
        }
    }
    atomic_store(&gc.percent, pct);
    int64_t limit = INT64_MAX;
    s = getenv("GOMEMLIMIT");
    if (s && *s && strcmp(s, "off") != 0) {
        bool ok;
        int64_t v = parse_size(s, &ok);
        if (!ok)
            throwf("GOMEMLIMIT=%s: not a size (use a number with B, KiB, MiB, GiB or TiB)", s);
        limit = v;
    }
    atomic_store(&gc.memlimit, limit);
    gc.trace = (int32_t)debug_int("gctrace", 0);
    gc.stoptheworld_sweep = debug_int("gcstoptheworld", 0) != 0;
    gc.stress = debug_int("gcstress", 0);
    gc_clobberfree = debug_int("clobberfree", gc.stress > 0) != 0;
}

/* Bytes the process holds outside the GC heap (for the memory limit). */
static uint64_t non_gc_bytes(void)
{
    uint64_t sys = atomic_load(&mheap_.sys) + atomic_load(&mheap_.other_sys);
    uint64_t rel = atomic_load(&mheap_.released);
    uint64_t held = sys > rel ? sys - rel : 0;
    uint64_t gcb = atomic_load(&gc.heap_live);
    return held > gcb ? held - gcb : 0;
}

/* The heap goal after a cycle that marked `marked` bytes, with GOGC pct
 * (< 0: off), memory limit `limit` (INT64_MAX: none) and `other` bytes
 * held outside the GC heap. UINT64_MAX: no goal. */
uint64_t gc_heap_goal(uint64_t marked, int32_t pct, int64_t limit, uint64_t other)
{
    uint64_t goal = UINT64_MAX;
    if (pct >= 0) {
        goal = marked + marked / 100 * (uint64_t)pct + (marked % 100) * (uint64_t)pct / 100;
        uint64_t min = HEAP_MINIMUM * (uint64_t)pct / 100;
        if (goal < min)
            goal = min;
    }
    if (limit != INT64_MAX) {
        uint64_t lgoal = (uint64_t)limit > other ? (uint64_t)limit - other : 0;
        uint64_t floor = marked + marked / 16 + (256 << 10);
        if (lgoal < floor)
            lgoal = floor;
        if (lgoal < goal)
            goal = lgoal;
    }
    return goal;
}

static void update_trigger(void)
{
    int64_t limit = atomic_load(&gc.memlimit);
    atomic_store(&gc.trigger, gc_heap_goal(gc.heap_marked, atomic_load(&gc.percent), limit,
                                           limit == INT64_MAX ? 0 : non_gc_bytes()));
}

static int64_t walltime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int nworkers(void)
{
    int n = os_ncpu();
    int64_t want = debug_int("gcworkers", 0);   /* GORT_DEBUG=gcworkers=N: for measurements */
    if (want > 0 && want < n)
        n = (int)want;
    int p = sched_running() ? sched.gomaxprocs : n;
    if (p < n)
        n = p;
    return n < 1 ? 1 : n > 32 ? 32 : n;
}

static void trace_line(uint32_t n, int64_t start, int64_t stop_ns, int64_t mark_ns,
                       int64_t restart_ns, uint64_t before, uint64_t marked, uint64_t goal,
                       int workers, bool forced)
{
    /* Go: gc # @#s #%: #+#+# ms clock, #+#/#/#+# ms cpu, #->#-># MB, # MB goal,
     * # MB stacks, # MB globals, # P. gort's three clock phases are all in
     * the pause: stopping the world, marking, restarting. */
    int64_t since = start - gc.start_mono;
    uint64_t cpu = atomic_load(&gc.gc_cpu_ns);
    int64_t wall = os_nanotime() - gc.start_mono;
    int pct = wall > 0 ? (int)(cpu * 100 / ((uint64_t)wall * (uint64_t)os_ncpu())) : 0;
    double ms = 1e6;
    char line[400];
    int len = snprintf(line, sizeof line,
                       "gc %u @%.3fs %d%%: %.3f+%.3f+%.3f ms clock, %.3f+0/%.3f/0+%.3f ms cpu, "
                       "%llu->%llu->%llu MB, %llu MB goal, 0 MB stacks, 0 MB globals, %d P%s\n",
                       n, (double)since / 1e9, pct, (double)stop_ns / ms, (double)mark_ns / ms,
                       (double)restart_ns / ms, (double)stop_ns / ms,
                       (double)mark_ns * workers / ms, (double)restart_ns / ms,
                       (unsigned long long)(before >> 20), (unsigned long long)(before >> 20),
                       (unsigned long long)(marked >> 20), (unsigned long long)(goal >> 20),
                       workers, forced ? " (forced)" : "");
    if (len > 0)
        os_write_stderr(line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
}

/* One cycle, on the calling thread with cyclelock held: the thread that
 * asked for it (blocked: the stop does not wait for it and its stack is
 * scanned from where it blocked), or the collector thread. Running it on
 * the thread that needs it saves two wake-ups (of the collector and back),
 * each tens of microseconds to a millisecond on a virtual machine. */
static void run_cycle(bool forced)
{
    int64_t t0 = os_nanotime();
    sweep_all();                        /* the last cycle's sweep is done before the next mark */
    roots_find_globals();
    int workers = nworkers();
    mark_init(workers);
    mark_wake_helpers();

    int64_t tstop = os_nanotime();
    gc_stop_world();
    int64_t tmark = os_nanotime();
    for (mcache *c = mcache_all(); c; c = c->next_all)
        mcache_release_gc(c);
    uint64_t before = atomic_load(&gc.heap_live);
    roots_prepare();
    uint64_t marked = mark_run();
    int64_t tmarked = os_nanotime();
    atomic_fetch_add(&gc.sweepgen, 2);
    gc.heap_marked = marked;
    atomic_store(&gc.heap_live, marked);
    update_trigger();
    if (gc.stoptheworld_sweep)
        sweep_all();
    gc_start_world();
    int64_t tend = os_nanotime();

    uint32_t n = atomic_fetch_add(&gc.num_gc, 1) + 1;
    if (forced)
        atomic_fetch_add(&gc.num_forced_gc, 1);
    uint64_t pause = (uint64_t)(tend - tstop);
    atomic_store(&gc.pause_ns[(n - 1) % 256], pause);
    int64_t wall = walltime_ns();
    atomic_store(&gc.pause_end[(n - 1) % 256], (uint64_t)wall);
    atomic_fetch_add(&gc.pause_total_ns, pause);
    atomic_store(&gc.last_gc, wall);
    atomic_store(&gc.last_gc_mono, tend);
    atomic_fetch_add(&gc.gc_cpu_ns, (uint64_t)(tmarked - tmark) * (uint64_t)workers +
                                        (uint64_t)(tmark - tstop) + (uint64_t)(tend - tmarked));
    atomic_store(&marked_done, n);
    os_futex_wake((uint32_t *)&marked_done, INT32_MAX);
    finalizer_wake();
    if (gc.trace > 0)
        trace_line(n, t0, tmark - tstop, tmarked - tmark, tend - tmarked, before, marked,
                   atomic_load(&gc.trigger), workers, forced);
    /* the sweep runs in the background, on the collector thread */
    start_collector();
    atomic_store(&sweep_wanted, n);
    atomic_fetch_add(&collector_seq, 1);
    os_futex_wake((uint32_t *)&collector_seq, 1);
}

static void background_sweep(void)
{
    int64_t ts = os_nanotime();
    sweep_all();
    atomic_fetch_add(&gc.gc_cpu_ns, (uint64_t)(os_nanotime() - ts));
    /* over the memory limit: give free pages back now, not later */
    int64_t limit = atomic_load(&gc.memlimit);
    if (limit != INT64_MAX) {
        uint64_t held = atomic_load(&mheap_.sys) + atomic_load(&mheap_.other_sys) -
                        atomic_load(&mheap_.released);
        if (held > (uint64_t)limit)
            mheap_scavenge(0, 0);
    }
}

uint32_t gc_marked_done(void)
{
    return atomic_load(&marked_done);
}

void gc_sweep_after_mark(uint32_t done)
{
    for (int spins = 0; atomic_load(&marked_done) == done; spins++) {
        if (spins > 20000)
            return;   /* the collector thread will do it */
        if (spins < 1000)
            cpu_relax();
        else
            os_yield();
    }
    background_sweep();
}

/* The collector thread: background sweeping after each cycle, and a
 * cycle of its own when none ran for two minutes (sysmon's job in Go). */
static void *collector_main(void *arg)
{
    (void)arg;
    san_quiet_thread();
    for (;;) {
        uint32_t seq = atomic_load(&collector_seq);
        uint32_t want = atomic_load(&sweep_wanted);
        if (want != atomic_load(&swept_done)) {
            background_sweep();
            atomic_store(&swept_done, want);
            continue;
        }
        int64_t idle = os_nanotime() - atomic_load(&gc.last_gc_mono);
        if (idle >= FORCE_PERIOD_NS && atomic_load(&gc.enabled) &&
            atomic_load(&gc.trigger) != UINT64_MAX) {
            lock(&cyclelock);
            if (os_nanotime() - atomic_load(&gc.last_gc_mono) >= FORCE_PERIOD_NS)
                run_cycle(true);
            unlock(&cyclelock);
            continue;
        }
        os_futex_wait((uint32_t *)&collector_seq, seq, FORCE_PERIOD_NS - idle);
    }
    return NULL;
}

static void atfork_prepare(void)
{
    /* a fork waits for a cycle in progress, and for the background sweep
     * (their locks must not be copied held) */
    bool b = gcthread_block();
    lock(&cyclelock);
    gcthread_unblock(b);
    for (int k = 0; k < NUM_GC_KINDS; k++)
        for (int c = 0; c < NUM_SIZE_CLASSES; c++)
            lock(&mcentrals[k][c].lock);
}

static void atfork_parent(void)
{
    for (int k = NUM_GC_KINDS - 1; k >= 0; k--)
        for (int c = NUM_SIZE_CLASSES - 1; c >= 0; c--)
            unlock(&mcentrals[k][c].lock);
    unlock(&cyclelock);
}

static void atfork_child(void)
{
    for (int k = 0; k < NUM_GC_KINDS; k++)
        for (int c = 0; c < NUM_SIZE_CLASSES; c++)
            atomic_store(&mcentrals[k][c].lock.key, 0);
    atomic_store(&cyclelock.key, 0);
    tls_nosuspend = 0;
    tls_suspend_pending = 0;
    collector_started = false;   /* the collector thread and helpers are gone */
    gc_atfork_child();
    mark_atfork_child();
    sweep_atfork_child();
}

void gc_init(void)
{
    lock(&initlock);
    if (atomic_load(&gc_inited) == 2) {
        unlock(&initlock);
        return;
    }
    read_env();
    atomic_store(&gc.sweepgen, 4);   /* so that sg-2 never wraps below 0 */
    gc.start_mono = os_nanotime();
    atomic_store(&gc.last_gc_mono, gc.start_mono);
    gc.heap_marked = 0;
    update_trigger();
    gc_suspend_init();
    mcache_get_slow();   /* the allocator's fork handlers first: ours must run before them */
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    atomic_store(&gc.enabled, true);
    atomic_store(&gc_inited, 2);
    unlock(&initlock);
    start_collector();   /* for the two-minute cycle, even if the heap never reaches a goal */
}

static void start_collector(void)
{
    if (collector_started)
        return;
    lock(&initlock);
    if (!collector_started) {
        if (!os_thread_start(collector_main, NULL))
            throw("gc: cannot start the collector thread");
        collector_started = true;
    }
    unlock(&initlock);
}

/* Make sure cycle `target` has marked: run it here if no cycle is running,
 * else help the one that is (or wait). The thread is blocked throughout:
 * the stop does not wait for it, and what it does below its saved stack
 * pointer is not part of its scanned stack. */
static void run_or_wait(uint32_t target, bool forced)
{
    bool b = gcthread_block();
    san_quiet_begin();
    while ((int32_t)(atomic_load(&marked_done) - target) < 0) {
        if (trylock(&cyclelock)) {
            if ((int32_t)(atomic_load(&marked_done) - target) < 0)
                run_cycle(forced);
            unlock(&cyclelock);
            continue;
        }
        if (mark_help())
            continue;
        uint32_t v = atomic_load(&marked_done);
        if ((int32_t)(v - target) < 0)
            os_futex_wait((uint32_t *)&marked_done, v, 200000);   /* 0.2 ms: re-check for a mark to help */
    }
    san_quiet_end();
    gcthread_unblock(b);
}

void gc_trigger(void)
{
    if (tls_nosuspend)
        return;   /* inside the runtime: the next allocation will see it */
    run_or_wait(atomic_load(&marked_done) + 1, false);
}

void gc_alloc_check(void)
{
    if (unlikely(gc.stress > 0)) {
        if (atomic_fetch_add(&gc.stress_count, 1) % gc.stress == 0 && !tls_nosuspend)
            run_or_wait(atomic_load(&marked_done) + 1, false);
        return;
    }
    if (gc_due() && atomic_load(&gc.trigger) != UINT64_MAX)
        gc_trigger();
}

void gort_gc_collect(void)
{
    gc_ensure_init();
    /* runtime.GC: a whole new cycle (not one that began earlier: it may
     * have missed what the caller dropped just now), marked and swept */
    if (tls_nosuspend)
        throw("gort_gc_collect called inside the runtime");
    run_or_wait(atomic_load(&marked_done) + 1 + (atomic_load(&cyclelock.key) != 0), true);
    bool b = gcthread_block();
    sweep_all();
    gcthread_unblock(b);
}

int gort_gc_set_percent(int pct)
{
    gc_ensure_init();
    int old = atomic_exchange(&gc.percent, pct < 0 ? -1 : pct);
    update_trigger();
    if (gc_due() && atomic_load(&gc.trigger) != UINT64_MAX)
        gc_trigger();
    return old;
}

int64_t gort_gc_set_memory_limit(int64_t bytes)
{
    gc_ensure_init();
    if (bytes < 0)
        return atomic_load(&gc.memlimit);   /* as Go: a negative value only queries */
    int64_t old = atomic_exchange(&gc.memlimit, bytes);
    update_trigger();
    if (gc_due() && atomic_load(&gc.trigger) != UINT64_MAX)
        gc_trigger();
    return old;
}

void gort_gc_register_thread(void)
{
    gcthread_register(NULL);
}

void gort_gc_unregister_thread(void)
{
    gcthread_unregister();
}

void gc_fill_memstats(gort_memstats *m)
{
    m->num_gc = atomic_load(&gc.num_gc);
    m->num_forced_gc = atomic_load(&gc.num_forced_gc);
    m->pause_total_ns = atomic_load(&gc.pause_total_ns);
    for (int i = 0; i < 256; i++) {
        m->pause_ns[i] = atomic_load(&gc.pause_ns[i]);
        m->pause_end[i] = atomic_load(&gc.pause_end[i]);
    }
    m->last_gc = (uint64_t)atomic_load(&gc.last_gc);
    uint64_t t = atomic_load(&gc.trigger);
    m->next_gc = t == UINT64_MAX ? 0 : t;
    int64_t wall = os_nanotime() - gc.start_mono;
    double f = wall > 0 ? (double)atomic_load(&gc.gc_cpu_ns) / ((double)wall * os_ncpu()) : 0;
    m->gc_cpu_fraction = f > 1 ? 1 : f;   /* the sums overlap a little (a sweep with the next mark) */
}
