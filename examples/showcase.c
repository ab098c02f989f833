/* showcase.c - what gort does today, on defaults.
 *
 * Spawns a million goroutines and parks a hundred thousand, then runs a few
 * allocation workloads twice in one process, once through gort's manual
 * heap and once through the C library's malloc, prints the times side by
 * side, shows gort's statistics and how freed memory goes back to the
 * operating system. It grows with each capability of the runtime.
 *
 *   showcase            # default sizes (~2 s)
 *   showcase quick      # smaller (for tests)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdint.h>

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

static void sleeper(void *arg)
{
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
    while (gort_num_goroutine() < parked + 1)
        gort_sleep(1000000);
    gort_sleep(20 * 1000000);
    size_t during = rss();
    printf("  %ld goroutines parked in gort_sleep: %d alive, %.0f bytes of RSS each\n", parked,
           gort_num_goroutine(), (double)(during - before) / parked);
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
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "quick") == 0;
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
    return 0;
}
