/* gcbench.c - garbage-collector benchmarks, gort against Boehm GC (the twin
 * of gcbench.go).
 *
 * Built twice from this one file: with -DUSE_BOEHM it allocates through
 * Boehm GC (GC_MALLOC for nodes, GC_MALLOC_ATOMIC for the array of doubles),
 * without it through gort (gort_gc_alloc / gort_gc_alloc_noscan). The gort
 * build calls the allocator straight from main, on a plain thread: no
 * gort_main, no goroutines, so both collectors serve one mutator thread.
 *
 *   gcbench gcbench [S]       GCBench (Boehm's classic) with a stretch tree
 *                             of depth S (default 18); the long-lived tree
 *                             and the deepest short-lived trees have depth
 *                             S-2, the shallowest 4; the long-lived array
 *                             holds 500,000 doubles.
 *   gcbench binary-trees [D]  the benchmarks-game binary-trees at depth D
 *                             (default 20), single-threaded.
 *
 * The last stdout line is
 *   RESULT workload=<w> impl=<gort|boehm> elapsed_ms=<> max_pause_us=<>
 *          total_pause_ms=<> num_gc=<>
 * (one line); the program's own output and details go to stderr. A wrong
 * check value or a damaged long-lived structure exits with status 1.
 *
 * Pauses. gort: after the run, gort_read_memstats's pause_ns ring (the last
 * 256 cycles, as Go's MemStats.PauseNs), pause_total_ns and num_gc. Boehm:
 * a collection-event callback stamps the clock when the world is about to
 * be stopped and when it has been restarted; each such window is one pause.
 * The callback also times whole collections (GC_EVENT_START to _END), which
 * is how long the one mutator thread waits, since Boehm collects on the
 * allocating thread; that is reported on stderr only.
 *
 * gcbench.go does the same steps in the same order; keep the two in step
 * when editing.
 */
#ifdef USE_BOEHM
#define GC_THREADS 1 /* declares GC_get_parallel; no threads are started */
#include <gc.h>
#define IMPL "boehm"
#define gc_new(n) GC_MALLOC(n)
#define gc_new_noscan(n) GC_MALLOC_ATOMIC(n)
#else
#include <gort.h>
#define IMPL "gort"
#define gc_new(n) gort_gc_alloc(n)
#define gc_new_noscan(n) gort_gc_alloc_noscan(n)
#endif

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gcbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- pause accounting ----------------------------------------------------- */

struct gcstats {
    uint64_t num_gc;
    uint64_t max_pause_ns;
    uint64_t total_pause_ns;
    uint64_t ring_entries; /* how many cycles max_pause_ns looked at */
};

#ifdef USE_BOEHM
/* Written by the collection-event callback, which Boehm calls with its lock
 * held from the collecting thread: no other synchronisation needed. */
static int64_t stop_begin, collect_begin;
static uint64_t stw_count, stw_max, stw_total;
static uint64_t collect_count, collect_max, collect_total;
static uint64_t gc_no_at_start;

static void on_gc_event(GC_EventType e)
{
    int64_t t = now_ns();
    uint64_t d;
    switch (e) {
    case GC_EVENT_PRE_STOP_WORLD:
        stop_begin = t;
        break;
    case GC_EVENT_POST_START_WORLD:
        d = (uint64_t)(t - stop_begin);
        stw_count++;
        stw_total += d;
        if (d > stw_max)
            stw_max = d;
        break;
    case GC_EVENT_START:
        collect_begin = t;
        break;
    case GC_EVENT_END:
        d = (uint64_t)(t - collect_begin);
        collect_count++;
        collect_total += d;
        if (d > collect_max)
            collect_max = d;
        break;
    default:
        break;
    }
}

static void gc_setup(void)
{
    GC_INIT();
    GC_start_mark_threads();
    gc_no_at_start = GC_get_gc_no(); /* GC_INIT may already have collected */
    GC_set_on_collection_event(on_gc_event);
    fprintf(stderr, "boehm %d.%d.%d, %d marker thread(s) besides the collecting one (GC_MARKERS=%s)\n",
            GC_VERSION_MAJOR, GC_VERSION_MINOR, GC_VERSION_MICRO, GC_get_parallel(),
            getenv("GC_MARKERS") ? getenv("GC_MARKERS") : "unset");
}

static struct gcstats gc_report(void)
{
    struct gcstats s = { GC_get_gc_no() - gc_no_at_start, stw_max, stw_total, stw_count };
    fprintf(stderr, "boehm: %llu collections, %llu stop-the-world windows; "
                    "whole collections (GC_EVENT_START..END): max %.1f us, total %.3f ms; heap %zu KiB\n",
            (unsigned long long)collect_count, (unsigned long long)stw_count, collect_max / 1e3,
            collect_total / 1e6, GC_get_heap_size() / 1024);
    return s;
}
#else
static void gc_setup(void) {}

static struct gcstats gc_report(void)
{
    static gort_memstats m; /* large (per-class tables): keep it off the stack */
    gort_read_memstats(&m);
    struct gcstats s = { m.num_gc, 0, m.pause_total_ns, m.num_gc < 256 ? m.num_gc : 256 };
    /* Cycle k (1-based) is at pause_ns[(k + 255) % 256]; the ring holds the
     * last 256, so the max is over those. */
    for (uint64_t k = m.num_gc; k > m.num_gc - s.ring_entries; k--) {
        uint64_t p = m.pause_ns[(k + 255) % 256];
        if (p > s.max_pause_ns)
            s.max_pause_ns = p;
    }
    fprintf(stderr, "gort: %u cycles (%u forced), heap_sys %llu KiB, total_alloc %llu KiB%s\n",
            m.num_gc, m.num_forced_gc, (unsigned long long)(m.heap_sys / 1024),
            (unsigned long long)(m.total_alloc / 1024),
            m.num_gc > 256 ? "; max pause is over the last 256 cycles only" : "");
    return s;
}
#endif

/* ---- GCBench ---------------------------------------------------------------
 * Builds complete binary trees two ways, top-down (allocate a node, then
 * fill in its children) and bottom-up (children first, then the parent),
 * while a long-lived tree and a long-lived pointer-free array stay reachable
 * the whole time, so each collection has a fixed live set to trace and a
 * stream of short-lived garbage to discard. */

enum {
    GCB_MIN_DEPTH = 4,
    GCB_ARRAY_SIZE = 500000,
};

typedef struct gnode {
    struct gnode *left, *right;
    int32_t i, j;
} gnode;

static gnode *gnode_new(gnode *l, gnode *r)
{
    gnode *n = gc_new(sizeof(gnode));
    n->left = l;
    n->right = r;
    return n;
}

/* Nodes in a complete tree of depth d. */
static int64_t tree_size(int d) { return ((int64_t)1 << (d + 1)) - 1; }

/* Trees of depth d that allocate as much as two stretch trees. */
static int64_t num_iters(int d, int stretch) { return 2 * tree_size(stretch) / tree_size(d); }

/* Top-down: n exists; give it two children and recurse. */
static void populate(int d, gnode *n)
{
    if (d <= 0)
        return;
    d--;
    n->left = gnode_new(NULL, NULL);
    n->right = gnode_new(NULL, NULL);
    populate(d, n->left);
    populate(d, n->right);
}

/* Bottom-up: the children exist before their parent. */
static gnode *make_tree(int d)
{
    if (d <= 0)
        return gnode_new(NULL, NULL);
    return gnode_new(make_tree(d - 1), make_tree(d - 1));
}

static int64_t count_nodes(const gnode *n)
{
    if (n == NULL)
        return 0;
    return 1 + count_nodes(n->left) + count_nodes(n->right);
}

static void time_construction(int d, int stretch)
{
    int64_t iters = num_iters(d, stretch);
    fprintf(stderr, "creating %lld trees of depth %d\n", (long long)iters, d);

    int64_t t0 = now_ns();
    for (int64_t i = 0; i < iters; i++) {
        gnode *tmp = gnode_new(NULL, NULL);
        populate(d, tmp);
        tmp = NULL;
    }
    int64_t t1 = now_ns();
    fprintf(stderr, "\ttop-down construction: %.1f ms\n", (t1 - t0) / 1e6);

    for (int64_t i = 0; i < iters; i++) {
        gnode *tmp = make_tree(d);
        tmp = NULL;
        (void)tmp;
    }
    int64_t t2 = now_ns();
    fprintf(stderr, "\tbottom-up construction: %.1f ms\n", (t2 - t1) / 1e6);
}

/* Returns the elapsed nanoseconds; the checks after the clock stops. */
static int64_t bench_gcbench(int stretch)
{
    int long_lived = stretch - 2, max_depth = stretch - 2;
    fprintf(stderr, "GCBench: stretch depth %d, long-lived tree depth %d, array of %d doubles, "
                    "trees of depth %d..%d\n",
            stretch, long_lived, GCB_ARRAY_SIZE, GCB_MIN_DEPTH, max_depth);

    int64_t t0 = now_ns();

    gnode *tmp = make_tree(stretch);
    tmp = NULL;
    (void)tmp;

    gnode *long_tree = gnode_new(NULL, NULL);
    populate(long_lived, long_tree);

    double *array = gc_new_noscan(GCB_ARRAY_SIZE * sizeof(double));
    for (int i = 1; i < GCB_ARRAY_SIZE / 2; i++)
        array[i] = 1.0 / i;

    for (int d = GCB_MIN_DEPTH; d <= max_depth; d += 2)
        time_construction(d, stretch);

    int64_t elapsed = now_ns() - t0;

    if (long_tree == NULL || array[1000] != 1.0 / 1000)
        fail("GCBench: the long-lived array or tree was lost");
    int64_t nodes = count_nodes(long_tree);
    if (nodes != tree_size(long_lived))
        fail("GCBench: long-lived tree has %lld nodes, want %lld", (long long)nodes,
             (long long)tree_size(long_lived));
    for (int i = 1; i < GCB_ARRAY_SIZE / 2; i++)
        if (array[i] != 1.0 / i)
            fail("GCBench: long-lived array damaged at %d", i);
    return elapsed;
}

/* ---- binary-trees ----------------------------------------------------------
 * The benchmarks-game program without its worker parallelism: allocate
 * complete trees bottom-up, walk each once and drop it, while one tree of
 * the maximum depth lives to the end. */

enum { BT_MIN_DEPTH = 4 };

typedef struct bnode {
    struct bnode *left, *right;
} bnode;

static bnode *bottom_up_tree(int d)
{
    bnode *n = gc_new(sizeof(bnode));
    if (d > 0) {
        n->left = bottom_up_tree(d - 1);
        n->right = bottom_up_tree(d - 1);
    }
    return n;
}

static int64_t item_check(const bnode *n)
{
    if (n->left == NULL)
        return 1;
    return 1 + item_check(n->left) + item_check(n->right);
}

static void want_check(int64_t got, int64_t want, const char *what)
{
    if (got != want)
        fail("binary-trees: %s check %lld, want %lld", what, (long long)got, (long long)want);
}

static int64_t bench_binary_trees(int n)
{
    int max_depth = n > BT_MIN_DEPTH + 2 ? n : BT_MIN_DEPTH + 2;
    int stretch = max_depth + 1;

    int64_t t0 = now_ns();

    int64_t check = item_check(bottom_up_tree(stretch));
    fprintf(stderr, "stretch tree of depth %d\t check: %lld\n", stretch, (long long)check);
    want_check(check, tree_size(stretch), "stretch tree");

    bnode *long_lived = bottom_up_tree(max_depth);

    for (int d = BT_MIN_DEPTH; d <= max_depth; d += 2) {
        int64_t iters = (int64_t)1 << (max_depth - d + BT_MIN_DEPTH);
        check = 0;
        for (int64_t i = 0; i < iters; i++)
            check += item_check(bottom_up_tree(d));
        fprintf(stderr, "%lld\t trees of depth %d\t check: %lld\n", (long long)iters, d, (long long)check);
        want_check(check, iters * tree_size(d), "short-lived trees");
    }

    check = item_check(long_lived);
    fprintf(stderr, "long lived tree of depth %d\t check: %lld\n", max_depth, (long long)check);
    want_check(check, tree_size(max_depth), "long-lived tree");

    return now_ns() - t0;
}

/* ---- main ----------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        fail("usage: gcbench gcbench|binary-trees [depth]");
    const char *w = argv[1];
    int arg = argc == 3 ? atoi(argv[2]) : 0;

    gc_setup();

    int64_t elapsed;
    if (strcmp(w, "gcbench") == 0) {
        if (arg == 0)
            arg = 18;
        if (arg < GCB_MIN_DEPTH + 2 || arg > 30)
            fail("GCBench: stretch depth %d out of range", arg);
        elapsed = bench_gcbench(arg);
    } else if (strcmp(w, "binary-trees") == 0) {
        if (arg == 0)
            arg = 20;
        if (arg < 1 || arg > 30)
            fail("binary-trees: depth %d out of range", arg);
        elapsed = bench_binary_trees(arg);
    } else {
        fail("unknown workload %s", w);
    }

    struct gcstats s = gc_report();
    printf("RESULT workload=%s impl=%s elapsed_ms=%.1f max_pause_us=%.1f total_pause_ms=%.3f num_gc=%llu\n",
           w, IMPL, elapsed / 1e6, s.max_pause_ns / 1e3, s.total_pause_ns / 1e6,
           (unsigned long long)s.num_gc);
    return 0;
}
