/* showcase.c - what gort does today, on defaults.
 *
 * Spawns a million goroutines and parks a hundred thousand, then runs a few
 * allocation workloads twice in one process, once through gort's manual
 * heap and once through the C library's malloc, prints the times side by
 * side, shows gort's statistics and how freed memory goes back to the
 * operating system. Between the two, goroutines serve and load loopback
 * TCP connections, a goroutine per connection end. Last, goroutines build and drop binary trees in the
 * garbage-collected heap while the collector prints a line per cycle. It
 * grows with each capability of the runtime.
 *
 *   showcase            # default sizes (~3 s)
 *   showcase quick      # smaller (for tests)
 *   showcase gc [quick] # the garbage-collector part alone
 *
 * The collector reads GORT_DEBUG once, when it starts (at gort_main or the
 * first GC allocation), and this process has started it by then with the
 * trace off. So the garbage-collector part runs in a fresh copy of the
 * program ("showcase gc"), which turns GORT_DEBUG=gctrace=1 on before it
 * starts gort, with its stderr (where the trace goes) joined to stdout.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gort.h"

typedef struct allocator {
    const char *name;
    void *(*alloc)(size_t);
    void (*release)(void *);
} allocator;

static const allocator gort = {"gort", gort_malloc, gort_free};
static const allocator libc = {"libc", malloc, free};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static long scale = 1;
static void network(bool quick);

static size_t rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (size_t)res * 4096;
}

/* Single thread: random small sizes, a live set of 4096 slots. */
static double small_objects(const allocator *a)
{
    enum { SLOTS = 4096 };
    void *slot[SLOTS] = {0};
    uint64_t s = 88172645463325252ULL;
    long ops = scale ? 4000000 * scale : 100000;
    double t = now();
    for (long i = 0; i < ops; i++) {
        uint64_t r = rng(&s);
        size_t k = r % SLOTS;
        a->release(slot[k]);
        slot[k] = a->alloc(16 + (r >> 32) % 240);
        *(char *)slot[k] = 1;
    }
    t = now() - t;
    for (int k = 0; k < SLOTS; k++)
        a->release(slot[k]);
    return t / ops * 1e9;
}

/* Producer/consumer: one thread allocates, the other frees. Objects travel
 * in batches of 256 through 8 slots, so the hand-off itself costs little
 * and the allocator's cross-thread free is what is measured. */
enum { BATCH = 256, SLOTS = 8 };
typedef struct handoff {
    void **_Atomic slot[SLOTS];
    const allocator *a;
    long batches;
} handoff;

static void *consumer(void *arg)
{
    handoff *h = arg;
    for (long i = 0; i < h->batches; i++) {
        void **batch;
        while (!(batch = atomic_load_explicit(&h->slot[i % SLOTS], memory_order_acquire)))
            ;
        for (int j = 0; j < BATCH; j++)
            h->a->release(batch[j]);
        atomic_store_explicit(&h->slot[i % SLOTS], NULL, memory_order_release);
    }
    return NULL;
}

static double cross_thread(const allocator *a)
{
    static handoff h;
    static void *store[SLOTS][BATCH];
    memset(&h, 0, sizeof h);
    h.a = a;
    h.batches = (scale ? 8000 * scale : 200);
    pthread_t t;
    double t0 = now();
    pthread_create(&t, NULL, consumer, &h);
    for (long i = 0; i < h.batches; i++) {
        while (atomic_load_explicit(&h.slot[i % SLOTS], memory_order_acquire))
            ;
        void **batch = store[i % SLOTS];
        for (int j = 0; j < BATCH; j++) {
            batch[j] = a->alloc(64);
            *(char *)batch[j] = 1;
        }
        atomic_store_explicit(&h.slot[i % SLOTS], batch, memory_order_release);
    }
    pthread_join(t, NULL);
    return (now() - t0) / (h.batches * BATCH) * 1e9;
}

/* Large blocks freed and allocated again in a loop. */
static double large_blocks(const allocator *a)
{
    long ops = scale ? 20000 * scale : 500;
    double t = now();
    for (long i = 0; i < ops; i++) {
        size_t n = (size_t)(64 + (i * 7919) % 960) << 10;
        char *p = a->alloc(n);
        for (size_t j = 0; j < n; j += 4096)
            p[j] = 1;
        a->release(p);
    }
    return (now() - t) / ops * 1e9;
}


/* ---- goroutines ------------------------------------------------------------ */

static atomic_long done_count;

static void child(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&done_count, 1, memory_order_relaxed);
}

static atomic_long started_count;

static void sleeper(void *arg)
{
    atomic_fetch_add_explicit(&started_count, 1, memory_order_relaxed);
    gort_sleep((int64_t)(intptr_t)arg);
    atomic_fetch_add_explicit(&done_count, 1, memory_order_relaxed);
}

static gort_chan *ping, *pong;

static void ponger(void *arg)
{
    (void)arg;
    long v;
    while (gort_chan_recv(ping, &v)) {
        v++;
        gort_chan_send(pong, &v);
    }
}

static void summer(void *arg)
{
    gort_chan *in = arg;
    long v, sum = 0;
    while (gort_chan_recv(in, &v))
        sum += v;
    gort_chan_send(pong, &sum);
}

static void goroutines(void *arg)
{
    long n = *(long *)arg;
    printf("goroutines (GOMAXPROCS=%d):\n", gort_gomaxprocs(0));
    int64_t t0 = gort_nanotime();
    for (long i = 0; i < n; i++)
        gort_go(child, NULL);
    while (atomic_load(&done_count) < n)
        gort_yield();
    int64_t t1 = gort_nanotime();
    printf("  spawned and finished %ld goroutines: %.0f ns each\n", n, (double)(t1 - t0) / n);

    atomic_store(&done_count, 0);
    long parked = n / 10;
    size_t before = rss();
    for (long i = 0; i < parked; i++)
        gort_go(sleeper, (void *)(intptr_t)(200 * 1000000LL));
    /* wait until each has run to its sleep (on a busy machine the first
     * may wake before the last is spawned, so do not wait for all at once) */
    while (atomic_load(&started_count) < parked)
        gort_sleep(1000000);
    gort_sleep(20 * 1000000);
    size_t during = rss();
    int alive = gort_num_goroutine();
    printf("  %ld goroutines parked in gort_sleep: %d alive, %.0f bytes of RSS each\n", parked,
           alive, (double)(during - before) / (alive > 1 ? alive - 1 : 1));
    while (atomic_load(&done_count) < parked)
        gort_sleep(10 * 1000000);
    printf("  all woke after their 200 ms and finished: %d goroutine left\n",
           gort_num_goroutine());

    /* channels: a ping-pong over two unbuffered channels, then fan-in */
    ping = gort_chan_make(sizeof(long), 0);
    pong = gort_chan_make(sizeof(long), 0);
    gort_go(ponger, NULL);
    long rounds = n / 10, v = 0;
    int64_t t2 = gort_nanotime();
    for (long i = 0; i < rounds; i++) {
        gort_chan_send(ping, &v);
        gort_chan_recv(pong, &v);
    }
    int64_t t3 = gort_nanotime();
    gort_chan_close(ping);
    printf("  channel ping-pong: %ld round trips, %.0f ns each\n", v, (double)(t3 - t2) / rounds);
    gort_chan *in = gort_chan_make(sizeof(long), 128);
    gort_go(summer, in);
    gort_case cases[2];
    long sent = 0, sum;
    gort_chan *tick = gort_after(2 * 1000000000LL);
    for (long i = 1; i <= rounds; i++) {
        cases[0] = (gort_case){in, GORT_SEND, &i, false};
        cases[1] = (gort_case){tick, GORT_RECV, NULL, false};
        if (gort_select(cases, 2, true) == 1)
            break;   /* the 2 s timer fired first: stop early */
        sent += i;
    }
    gort_chan_close(in);
    gort_chan_recv(pong, &sum);
    printf("  select over a send and a timer, then close: summed %ld (%s)\n\n", sum,
           sum == sent ? "every value arrived" : "MISMATCH");
    network(n < 100000);
}

/* ---- network: a goroutine per connection -------------------------------------
 * The server side is written with plain read and write (transparent mode
 * parks the goroutine), the client side with the gort_ calls. */

static int threads_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    int n = -1;
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

static void echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[256];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)   /* plain libc names */
        if (write(fd, buf, (size_t)r) != r)
            break;
    close(fd);
}

typedef struct net_run {
    int lfd, port, conns, rounds;
    gort_waitgroup wg;
    atomic_long echoes;
    atomic_int max_threads;
} net_run;

static void accept_conns(void *arg)
{
    net_run *nr = arg;
    for (int i = 0; i < nr->conns; i++) {
        int fd = gort_accept(nr->lfd, NULL, NULL);
        if (fd < 0)
            break;
        gort_go(echo_conn, (void *)(intptr_t)fd);
    }
}

static void net_client(void *arg)
{
    net_run *nr = arg;
    int fd = gort_dial_tcp("127.0.0.1", nr->port);
    char msg[32] = "ping from a goroutine, echoed";
    char back[32];
    for (int i = 0; fd >= 0 && i < nr->rounds; i++) {
        if (gort_write(fd, msg, sizeof msg) != (ssize_t)sizeof msg)
            break;
        size_t got = 0;
        while (got < sizeof msg) {
            ssize_t r = gort_read(fd, back + got, sizeof msg - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got != sizeof msg || memcmp(msg, back, sizeof msg) != 0)
            break;
        atomic_fetch_add(&nr->echoes, 1);
        if (i == nr->rounds / 2) {
            int t = threads_now();
            if (t > atomic_load(&nr->max_threads))
                atomic_store(&nr->max_threads, t);
        }
    }
    if (fd >= 0)
        gort_close(fd);
    gort_waitgroup_done(&nr->wg);
}

static void network(bool quick)
{
    struct rlimit rl;
    int conns = quick ? 200 : 2000;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        if ((long)rl.rlim_cur / 2 - 64 < conns)
            conns = (int)(rl.rlim_cur / 2) - 64;   /* both ends live in this process */
    }
    static net_run nr;
    nr.lfd = gort_listen_tcp("127.0.0.1", 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (nr.lfd < 0 || conns <= 0 || getsockname(nr.lfd, (struct sockaddr *)&sa, &sl) != 0) {
        printf("network: no loopback socket here; skipped\n\n");
        return;
    }
    nr.port = ntohs(sa.sin_port);
    nr.conns = conns;
    nr.rounds = 10;
    gort_go(accept_conns, &nr);
    int64_t t0 = gort_nanotime();
    gort_waitgroup_add(&nr.wg, conns);
    for (int i = 0; i < conns; i++)
        gort_go(net_client, &nr);
    gort_waitgroup_wait(&nr.wg);
    double ms = (double)(gort_nanotime() - t0) / 1e6;
    gort_close(nr.lfd);
    printf("network (a goroutine per connection end; the server's use plain read/write):\n");
    printf("  %d loopback connections, %ld echoes of 32 bytes in %.0f ms; %d threads in the\n"
           "  process at the busiest (GOMAXPROCS=%d)\n\n",
           conns, atomic_load(&nr.echoes), ms, atomic_load(&nr.max_threads), gort_gomaxprocs(0));
}

/* ---- garbage collector ------------------------------------------------------
 * Runs in a process of its own (see the top of the file). Binary trees as in
 * GCBench and the benchmarks game: a long-lived tree stays reachable from a
 * global the whole time while worker goroutines build trees of several
 * depths from gort_gc_alloc, check them and drop them. Nothing is freed by
 * hand. */

typedef struct node {
    struct node *left, *right;
    long item;
} node;

/* Children of item i are 2i and 2i+1, so a check can tell a node that was
 * collected and reused from the one that belongs there. */
static node *tree_build(int depth, long item)
{
    node *n = gort_gc_alloc(sizeof *n);
    n->item = item;
    if (depth > 0) {
        n->left = tree_build(depth - 1, 2 * item);
        n->right = tree_build(depth - 1, 2 * item + 1);
    }
    return n;
}

/* The number of nodes, or -1 if a node is not the one built there. */
static long tree_check(const node *n)
{
    if (!n->left)
        return 1;
    if (n->left->item != 2 * n->item || n->right->item != 2 * n->item + 1)
        return -1;
    long l = tree_check(n->left), r = tree_check(n->right);
    return l < 0 || r < 0 ? -1 : 1 + l + r;
}

typedef struct tree_job {
    int depth;
    long trees;
} tree_job;

typedef struct tree_result {
    long trees, nodes;   /* nodes: -1 if a check failed */
} tree_result;

static gort_chan *tree_jobs, *tree_results;   /* globals: roots for the collector */
static node *long_lived;

static void tree_worker(void *arg)
{
    (void)arg;
    tree_job j;
    while (gort_chan_recv(tree_jobs, &j)) {
        tree_result r = {j.trees, 0};
        for (long i = 0; i < j.trees && r.nodes >= 0; i++) {
            long n = tree_check(tree_build(j.depth, 1));   /* built, checked, dropped */
            r.nodes = n < 0 ? -1 : r.nodes + n;
        }
        gort_chan_send(tree_results, &r);
    }
}

/* A handle that must be closed: the finalizer closes the ones a program
 * dropped without closing (Go's os.File does the same). */
typedef struct handle {
    long id;
    bool open;
} handle;

static atomic_long handles_closed, first_closed = -1;

static void handle_finalize(void *obj, void *arg)
{
    (void)arg;
    handle *h = obj;
    h->open = false;
    long none = -1;
    atomic_compare_exchange_strong(&first_closed, &none, h->id);
    atomic_fetch_add(&handles_closed, 1);
}

static gort_chan *handles_done;

static void open_handles(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        handle *h = gort_gc_alloc(sizeof *h);
        h->id = i;
        h->open = true;
        gort_gc_set_finalizer(h, handle_finalize, NULL);
    }
    gort_chan_send(handles_done, &n);   /* a chan struct{}: done, the handles are garbage */
}

static __attribute__((noinline)) long build_long_lived(int depth)
{
    long_lived = tree_build(depth, 1);
    return tree_check(long_lived);
}

static __attribute__((noinline)) long check_long_lived(void)
{
    return tree_check(long_lived);
}

static double mib(uint64_t b)
{
    return b / 1048576.0;
}

static int gc_failed;

static void gc_showcase(void *arg)
{
    bool quick = *(bool *)arg;
    int long_depth = quick ? 12 : 17, max_depth = quick ? 12 : 16, chunks = 8;
    long per_depth = quick ? 1L << 17 : 1L << 20;   /* nodes built at each depth */
    int workers = gort_gomaxprocs(0) < 4 ? 4 : gort_gomaxprocs(0);
    const char *gogc = getenv("GOGC");
    printf("garbage collector (GOGC=%s, %d worker goroutines; GORT_DEBUG=gctrace=1 prints a\n"
           "line per cycle: pause = stop+mark+restart ms, heap before->after->live MB, goal):\n",
           gogc && *gogc ? gogc : "100", workers);

    tree_jobs = gort_chan_make(sizeof(tree_job), 64);
    tree_results = gort_chan_make(sizeof(tree_result), 64);
    int64_t t0 = gort_nanotime();
    long long_nodes = build_long_lived(long_depth);
    for (int w = 0; w < workers; w++)
        gort_go(tree_worker, NULL);
    int ndepths = 0;
    for (int d = 4; d <= max_depth; d += 4, ndepths++)
        for (int c = 0; c < chunks; c++) {
            long trees = per_depth / ((2L << d) - 1) / chunks;
            gort_chan_send(tree_jobs, &(tree_job){d, trees < 1 ? 1 : trees});
        }
    gort_chan_close(tree_jobs);
    long nodes = 0, trees = 0;
    for (int i = 0; i < ndepths * chunks; i++) {
        tree_result r;
        gort_chan_recv(tree_results, &r);
        if (r.nodes < 0)
            gc_failed = 1;
        nodes += r.nodes;
        trees += r.trees;
    }
    double secs = (gort_nanotime() - t0) / 1e9;
    long still = check_long_lived();
    gort_memstats m;
    gort_read_memstats(&m);
    printf("  built, checked and dropped %ld trees of depth 4 to %d in %.2f s: %.1f M nodes,\n"
           "  %.0f MiB allocated in all; the long-lived tree of depth %d (%ld nodes)\n"
           "  is intact after %u cycles%s\n",
           trees, max_depth, secs, nodes / 1e6, mib(m.total_alloc), long_depth, still, m.num_gc,
           gc_failed || still != long_nodes ? " - MISMATCH" : "");
    if (still != long_nodes)
        gc_failed = 1;

    /* finalizers: a goroutine opens handles and drops them */
    static long nhandles = 1000;
    handles_done = gort_chan_make(0, 0);
    gort_go(open_handles, &nhandles);
    gort_chan_recv(handles_done, NULL);
    gort_gc_collect();
    for (int i = 0; i < 2000 && atomic_load(&handles_closed) < nhandles; i++)
        gort_sleep(1000000);
    printf("  %ld handles dropped unclosed: gort_gc_collect() found them, and %ld finalizers\n"
           "  closed them on the finalizer goroutine (handle #%ld first)\n",
           nhandles, (long)atomic_load(&handles_closed), (long)atomic_load(&first_closed));

    gort_gc_collect();   /* frees the finalized handles */
    gort_read_memstats(&m);
    uint64_t with_tree = m.heap_alloc;
    long_lived = NULL;
    gort_gc_collect();
    gort_read_memstats(&m);
    uint64_t max_pause = 0;   /* pause_ns is a ring of the last 256 pauses */
    for (uint32_t i = 0; i < m.num_gc && i < 256; i++)
        if (m.pause_ns[i] > max_pause)
            max_pause = m.pause_ns[i];
    printf("  memstats: %u cycles (%u forced by gort_gc_collect), pauses max %.2f ms,\n"
           "  total %.2f ms; %.0f MiB allocated in all, %.1f%% of the CPU spent in GC\n",
           m.num_gc, m.num_forced_gc, max_pause / 1e6, m.pause_total_ns / 1e6,
           mib(m.total_alloc), m.gc_cpu_fraction * 100);
    printf("  heap_alloc %.2f MiB with the long-lived tree, %.2f MiB after dropping it\n"
           "  and gort_gc_collect()\n",
           mib(with_tree), mib(m.heap_alloc));
}

/* Run "showcase gc" in a fresh process, its stderr on our stdout. */
static int spawn_gc_part(bool quick)
{
    extern char **environ;
    char *args[] = {"showcase", "gc", quick ? "quick" : NULL, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    fflush(stdout);
    pid_t pid;
    int err = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    int status = 0;
    if (err == 0 && waitpid(pid, &status, 0) != pid)
        err = 1;
    if (err == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (err == 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE)
        return 1;   /* its reader went away (showcase | head) */
    fprintf(stderr, "showcase: the garbage-collector part failed\n");
    return 1;
}

static int gc_main(bool quick)
{
    /* before gort starts: add gctrace=1 to GORT_DEBUG unless it says otherwise */
    const char *dbg = getenv("GORT_DEBUG");
    if (!dbg || !strstr(dbg, "gctrace")) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s%sgctrace=1", dbg ? dbg : "", dbg && *dbg ? "," : "");
        setenv("GORT_DEBUG", buf, 1);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);   /* our lines and the trace's in order */
    static bool q;
    q = quick;
    gort_main(gc_showcase, &q);
    return gc_failed;
}

int main(int argc, char **argv)
{
    bool gc = argc > 1 && strcmp(argv[1], "gc") == 0;
    bool quick = argc > 1 + gc && strcmp(argv[1 + gc], "quick") == 0;
    if (gc)
        return gc_main(quick);
    if (quick)
        scale = 0;
    struct { const char *name; double (*fn)(const allocator *); } work[] = {
        {"small objects, 1 thread", small_objects},
        {"allocate here, free there", cross_thread},
        {"large blocks in a loop", large_blocks},
    };
    printf("gort: Go's runtime as a C library\n\n");
    static long ngo;
    ngo = quick ? 10000 : 1000000;
    gort_main(goroutines, &ngo);

    printf("%-28s %12s %12s %8s\n", "workload (ns/op)", "gort", "libc", "ratio");
    for (size_t i = 0; i < sizeof work / sizeof work[0]; i++) {
        double g = work[i].fn(&gort), l = work[i].fn(&libc);
        printf("%-28s %12.1f %12.1f %8.2f\n", work[i].name, g, l, g / l);
    }
    printf("(ratio = gort / libc; below 1 is faster. bench/malloc compares jemalloc,\n"
           " tcmalloc and mimalloc too.)\n\n");

    /* Memory comes back: allocate 256 MiB, free it, give it to the OS. */
    enum { N = 4096 };
    static void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = gort_malloc(64 << 10);
        memset(blocks[i], 1, 64 << 10);
    }
    size_t full = rss();
    gort_memstats m;
    gort_read_memstats(&m);
    printf("statistics with 256 MiB live:\n");
    gort_print_memstats(&m, stdout);
    for (int i = 0; i < N; i++)
        gort_free(blocks[i]);
    gort_free_os_memory();
    size_t after = rss();
    gort_read_memstats(&m);
    printf("\nafter freeing it all and gort_free_os_memory():\n");
    printf("heap_inuse %.1f MiB, heap_released %.1f MiB; RSS %.1f MiB -> %.1f MiB\n",
           m.heap_inuse / 1048576.0, m.heap_released / 1048576.0, full / 1048576.0,
           after / 1048576.0);
    printf("\n");
    return spawn_gc_part(quick);
}
