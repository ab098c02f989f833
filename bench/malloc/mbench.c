/*
 * mbench.c - allocator-agnostic malloc micro/macro benchmarks for gort.
 *
 * The program only calls the standard malloc/free/realloc/calloc, so the
 * very same binary can be run under any allocator via LD_PRELOAD; every
 * allocator therefore executes exactly the same workload code.
 *
 * Usage:  mbench <workload> [N] [threads]
 *   workloads: st-small window2 window xthread larson realloc large bintree
 *   N      : main size parameter (operation count; tree depth for bintree)
 *   threads: number of worker threads, for the workloads that scale:
 *            window (default 2; N ops per thread), xthread (default 2, even:
 *            threads/2 producer/consumer pairs, N objects per pair), larson
 *            (default 2 lineages, N ops each) and bintree (default 2; the
 *            fixed work is split).  The defaults are the original two-thread
 *            workloads, unchanged; the other workloads ignore it.
 *
 * Output: exactly one line on stdout, e.g.
 *   MBENCH workload=st-small value=17.204 unit=ns/op ops=20000000
 *          elapsed_s=0.344 check=123456 malloc_lib=libc.so.6
 * (on a single line).  `value` is the number to compare: lower is better.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 4096u
#define MAX_THREADS 64 /* bound of the [threads] argument */

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

/* xorshift64* : a few cycles per number, no shared state, no libc call. */
static inline uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* uniform-ish integer in [0, n) for n < 2^32 (multiply-shift, no divide) */
static inline uint32_t rnd_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(((rnd(s) >> 32) * (uint64_t)n) >> 32);
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin politely: pause first, then give the core away (2-core boxes). */
static inline void backoff(unsigned *spins)
{
    if (++*spins < 256)
        cpu_relax();
    else
        sched_yield();
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "mbench: malloc(%zu) failed\n", n);
        exit(2);
    }
    return p;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "mbench: %s: %s\n", what, strerror(err));
    exit(2);
}

static void spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
    int e = pthread_create(t, NULL, fn, arg);
    if (e)
        die("pthread_create", e);
}

/*
 * Thread placement.  Worker k is pinned to the k-th CPU of the process's
 * allowed set (modulo its size), so two-thread workloads always run on two
 * different CPUs instead of whatever the scheduler picks that run: on small
 * VMs "same core" vs "different cores" changes cross-thread results by
 * 5-10x and makes them bimodal.  MBENCH_NOPIN=1 disables pinning.
 */
static cpu_set_t g_allowed;
static int g_ncpu, g_pin;

static void pin_init(void)
{
    const char *e = getenv("MBENCH_NOPIN");
    CPU_ZERO(&g_allowed);
    if (sched_getaffinity(0, sizeof g_allowed, &g_allowed) == 0)
        g_ncpu = CPU_COUNT(&g_allowed);
    g_pin = g_ncpu >= 2 && !(e && *e && strcmp(e, "0"));
}

static void pin_self(int k)
{
    if (!g_pin)
        return;
    int want = k % g_ncpu;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &g_allowed) || want-- > 0)
            continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        pthread_setaffinity_np(pthread_self(), sizeof one, &one);
        return;
    }
}

/* Name of the shared object that provides the malloc we are calling.  */
static const char *malloc_provider(void)
{
    Dl_info info;
    void *(*volatile fp)(size_t) = malloc;
    if (dladdr((void *)fp, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        return slash ? slash + 1 : info.dli_fname;
    }
    return "unknown";
}

static void report(const char *wl, double value, const char *unit,
                   uint64_t ops, uint64_t ns, uint64_t check)
{
    printf("MBENCH workload=%s value=%.4f unit=%s ops=%llu elapsed_s=%.4f "
           "check=%llu pinned=%d malloc_lib=%s\n",
           wl, value, unit, (unsigned long long)ops, ns / 1e9,
           (unsigned long long)check, g_pin, malloc_provider());
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* st-small: one thread, random sizes 8..512, random malloc or free    */
/* over a table of slots (about half full => moderate live set).       */
/* ------------------------------------------------------------------ */

#define STS_SLOTS 16384u

static void wl_st_small(uint64_t n)
{
    unsigned char **slot = calloc(STS_SLOTS, sizeof *slot);
    uint64_t r = 0x9E3779B97F4A7C15ull, sum = 0;
    if (!slot)
        die("calloc", ENOMEM);

    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        uint32_t j = rnd_below(&r, STS_SLOTS);
        unsigned char *p = slot[j];
        if (p) {
            sum += p[0];
            free(p);
            slot[j] = NULL;
        } else {
            size_t sz = 8 + rnd_below(&r, 505);
            p = xmalloc(sz);
            p[0] = (unsigned char)i;
            p[sz - 1] = 1;
            slot[j] = p;
        }
    }
    uint64_t t1 = now_ns();

    for (uint32_t j = 0; j < STS_SLOTS; j++)
        free(slot[j]);
    free(slot);
    report("st-small", (double)(t1 - t0) / n, "ns/op", n, t1 - t0, sum);
}

/* ------------------------------------------------------------------ */
/* window2 / window: T threads (2 for window2), each keeps a FIFO      */
/* window of W live objects: free the oldest, malloc a new one         */
/* (16..256 B).  Every thread does N ops, so ideal scaling keeps the   */
/* wall time flat and divides the value (wall time per op) by T.       */
/* ------------------------------------------------------------------ */

#define WIN_W 1000u

struct win_arg {
    uint64_t n, seed, sum;
    int cpu;
    pthread_barrier_t *go;
};

static void *win_thread(void *a)
{
    struct win_arg *w = a;
    unsigned char *ring[WIN_W];
    uint64_t r = w->seed, sum = 0;

    pin_self(w->cpu);
    for (uint32_t k = 0; k < WIN_W; k++) {
        size_t sz = 16 + rnd_below(&r, 241);
        ring[k] = xmalloc(sz);
        ring[k][0] = (unsigned char)k;
    }
    pthread_barrier_wait(w->go);

    uint32_t k = 0;
    for (uint64_t i = 0; i < w->n; i++) {
        sum += ring[k][0];
        free(ring[k]);
        size_t sz = 16 + rnd_below(&r, 241);
        unsigned char *p = xmalloc(sz);
        p[0] = (unsigned char)i;
        p[sz - 1] = 2;
        ring[k] = p;
        if (++k == WIN_W)
            k = 0;
    }
    for (k = 0; k < WIN_W; k++)
        free(ring[k]);
    w->sum = sum;
    return NULL;
}

static void wl_window(const char *name, uint64_t n, int T)
{
    pthread_t th[MAX_THREADS];
    struct win_arg arg[MAX_THREADS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, T + 1);
    for (int t = 0; t < T; t++) {
        arg[t] = (struct win_arg){ .n = n, .seed = 0x1234567ull + 77 * t,
                                   .cpu = t, .go = &go };
        spawn(&th[t], win_thread, &arg[t]);
    }
    pthread_barrier_wait(&go);
    uint64_t t0 = now_ns();
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    uint64_t t1 = now_ns();
    pthread_barrier_destroy(&go);
    uint64_t sum = 0;
    for (int t = 0; t < T; t++)
        sum += arg[t].sum;
    /* one op = one free + one malloc; wall time divided by all ops */
    report(name, (double)(t1 - t0) / (n * T), "ns/op", n * T, t1 - t0, sum);
}

/* ------------------------------------------------------------------ */
/* xthread: producer mallocs, hands objects over in batches through a  */
/* single-producer/single-consumer ring, consumer frees them.  With    */
/* more threads, T/2 independent pairs, each with its own ring and N   */
/* objects; the value is wall time over the objects of all pairs.      */
/* ------------------------------------------------------------------ */

#define XT_BATCH 64u
#define XT_SLOTS 64u /* power of two; in flight <= XT_SLOTS * XT_BATCH */

struct xt_ring {
    _Alignas(64) _Atomic uint64_t head; /* written by producer */
    _Alignas(64) _Atomic uint64_t tail; /* written by consumer */
    _Alignas(64) unsigned char *slot[XT_SLOTS][XT_BATCH];
    uint64_t nbatches;
    uint64_t sum;
    uint64_t seed;          /* producer's random sizes */
    int cpu;                /* producer pins to cpu, consumer to cpu + 1 */
    pthread_barrier_t *go;
};

static void *xt_producer(void *a)
{
    struct xt_ring *q = a;
    uint64_t r = q->seed, tail_seen = 0;
    pin_self(q->cpu);
    pthread_barrier_wait(q->go);
    for (uint64_t b = 0; b < q->nbatches; b++) {
        unsigned spins = 0;
        while (b - tail_seen >= XT_SLOTS) {
            tail_seen = atomic_load_explicit(&q->tail, memory_order_acquire);
            if (b - tail_seen >= XT_SLOTS)
                backoff(&spins);
        }
        unsigned char **s = q->slot[b & (XT_SLOTS - 1)];
        for (uint32_t k = 0; k < XT_BATCH; k++) {
            size_t sz = 16 + rnd_below(&r, 241);
            unsigned char *p = xmalloc(sz);
            p[0] = (unsigned char)k;
            p[sz - 1] = 3;
            s[k] = p;
        }
        atomic_store_explicit(&q->head, b + 1, memory_order_release);
    }
    return NULL;
}

static void *xt_consumer(void *a)
{
    struct xt_ring *q = a;
    uint64_t head_seen = 0, sum = 0;
    pin_self(q->cpu + 1);
    pthread_barrier_wait(q->go);
    for (uint64_t b = 0; b < q->nbatches; b++) {
        unsigned spins = 0;
        while (b >= head_seen) {
            head_seen = atomic_load_explicit(&q->head, memory_order_acquire);
            if (b >= head_seen)
                backoff(&spins);
        }
        unsigned char **s = q->slot[b & (XT_SLOTS - 1)];
        for (uint32_t k = 0; k < XT_BATCH; k++) {
            sum += s[k][0];
            free(s[k]);
        }
        atomic_store_explicit(&q->tail, b + 1, memory_order_release);
    }
    q->sum = sum;
    return NULL;
}

static void wl_xthread(uint64_t n, int nthreads)
{
    int pairs = nthreads / 2;
    struct xt_ring *q[MAX_THREADS / 2];
    pthread_t tp[MAX_THREADS / 2], tc[MAX_THREADS / 2];
    pthread_barrier_t go;
    uint64_t nbatches = (n + XT_BATCH - 1) / XT_BATCH;
    n = nbatches * XT_BATCH;
    pthread_barrier_init(&go, NULL, 2 * pairs + 1);
    for (int k = 0; k < pairs; k++) {
        q[k] = aligned_alloc(64, sizeof *q[k]);
        if (!q[k])
            die("aligned_alloc", ENOMEM);
        memset(q[k], 0, sizeof *q[k]);
        q[k]->nbatches = nbatches;
        q[k]->seed = 0xABCDEF12345ull + 0x9E3779B97F4A7C15ull * (uint64_t)k;
        q[k]->cpu = 2 * k;
        q[k]->go = &go;
        spawn(&tp[k], xt_producer, q[k]);
        spawn(&tc[k], xt_consumer, q[k]);
    }
    pthread_barrier_wait(&go);
    uint64_t t0 = now_ns();
    for (int k = 0; k < pairs; k++) {
        pthread_join(tp[k], NULL);
        pthread_join(tc[k], NULL);
    }
    uint64_t t1 = now_ns();
    pthread_barrier_destroy(&go);
    uint64_t sum = 0;
    for (int k = 0; k < pairs; k++) {
        sum += q[k]->sum;
        free(q[k]);
    }
    report("xthread", (double)(t1 - t0) / (n * pairs), "ns/obj", n * pairs, t1 - t0, sum);
}

/* ------------------------------------------------------------------ */
/* larson: server simulation.  Two "lineages" ([threads] of them when  */
/* given), each owning an array of slots.  A thread replaces random    */
/* slots with new random-size blocks (16..1024 B) for one round, then  */
/* starts a fresh thread that inherits the array and exits (thread     */
/* churn).  The arrays are initially filled by the main thread, so the */
/* first frees are remote frees.  Each lineage does N ops.             */
/* ------------------------------------------------------------------ */

#define LAR_SLOTS 4000u
#define LAR_ROUND 10000u /* replacements per thread generation */

struct lar_line {
    unsigned char **slot;
    uint64_t rng, rounds_left, sum, threads;
    int cpu;
    sem_t *done;
    pthread_attr_t *attr;
};

static void *lar_thread(void *a)
{
    struct lar_line *L = a;
    uint64_t r = L->rng, sum = L->sum;
    unsigned char **slot = L->slot;
    if (L->threads == 1) /* successors inherit the affinity mask */
        pin_self(L->cpu);
    for (uint32_t i = 0; i < LAR_ROUND; i++) {
        uint32_t j = rnd_below(&r, LAR_SLOTS);
        sum += slot[j][0];
        free(slot[j]);
        size_t sz = 16 + rnd_below(&r, 1009);
        unsigned char *p = xmalloc(sz);
        p[0] = (unsigned char)i;
        p[sz - 1] = 4;
        slot[j] = p;
    }
    L->rng = r;
    L->sum = sum;
    if (--L->rounds_left > 0) {
        pthread_t t;
        L->threads++;
        int e = pthread_create(&t, L->attr, lar_thread, L);
        if (e)
            die("pthread_create", e);
    } else {
        sem_post(L->done);
    }
    return NULL;
}

static void wl_larson(uint64_t n, int lines)
{
    struct lar_line line[MAX_THREADS];
    pthread_attr_t attr;
    sem_t done;
    uint64_t rounds = (n + LAR_ROUND - 1) / LAR_ROUND;
    if (rounds == 0)
        rounds = 1;
    sem_init(&done, 0, 0);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);

    for (int l = 0; l < lines; l++) {
        uint64_t r = 0x5151ull + 1000003ull * l;
        line[l] = (struct lar_line){ .rng = r, .rounds_left = rounds,
                                     .cpu = l, .done = &done,
                                     .attr = &attr };
        line[l].slot = calloc(LAR_SLOTS, sizeof(unsigned char *));
        if (!line[l].slot)
            die("calloc", ENOMEM);
        for (uint32_t j = 0; j < LAR_SLOTS; j++) {
            size_t sz = 16 + rnd_below(&line[l].rng, 1009);
            line[l].slot[j] = xmalloc(sz);
            line[l].slot[j][0] = (unsigned char)j;
        }
    }

    uint64_t t0 = now_ns();
    for (int l = 0; l < lines; l++) {
        pthread_t t;
        line[l].threads = 1;
        int e = pthread_create(&t, &attr, lar_thread, &line[l]);
        if (e)
            die("pthread_create", e);
    }
    for (int l = 0; l < lines; l++)
        sem_wait(&done);
    uint64_t t1 = now_ns();

    uint64_t sum = 0, ops = rounds * LAR_ROUND * lines;
    for (int l = 0; l < lines; l++) {
        sum += line[l].sum;
        for (uint32_t j = 0; j < LAR_SLOTS; j++)
            free(line[l].slot[j]);
        free(line[l].slot);
    }
    pthread_attr_destroy(&attr);
    sem_destroy(&done);
    /* one op = one free + one malloc (wall time / all ops) */
    report("larson", (double)(t1 - t0) / ops, "ns/op", ops, t1 - t0, sum);
}

/* ------------------------------------------------------------------ */
/* realloc: 64 buffers, each grown by 1.5x from 16 B up to 1 MiB, then */
/* released and restarted.  Newly exposed bytes are written (one byte  */
/* per page plus the last byte), like a growing string/vector would.   */
/* ------------------------------------------------------------------ */

#define RA_BUFS 64u
#define RA_START 16u
#define RA_MAX (1u << 20)

struct ra_buf {
    unsigned char *p;
    size_t sz;
};

static void ra_touch(unsigned char *p, size_t from, size_t to)
{
    size_t off = (from + PAGE - 1) & ~(size_t)(PAGE - 1);
    for (; off < to; off += PAGE)
        p[off] = 5;
    p[to - 1] = 6;
}

static void wl_realloc(uint64_t n)
{
    struct ra_buf b[RA_BUFS];
    uint64_t r = 0x7777ull, sum = 0;

    /* stagger the buffers over the whole growth range (untimed) */
    for (uint32_t j = 0; j < RA_BUFS; j++) {
        b[j].sz = RA_START;
        b[j].p = xmalloc(RA_START);
        b[j].p[0] = (unsigned char)j;
        uint32_t steps = rnd_below(&r, 28);
        for (uint32_t s = 0; s < steps; s++) {
            size_t nsz = b[j].sz + b[j].sz / 2;
            if (nsz > RA_MAX)
                break;
            b[j].p = realloc(b[j].p, nsz);
            if (!b[j].p)
                die("realloc", ENOMEM);
            ra_touch(b[j].p, b[j].sz, nsz);
            b[j].sz = nsz;
        }
    }

    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        struct ra_buf *x = &b[rnd_below(&r, RA_BUFS)];
        size_t nsz = x->sz + x->sz / 2;
        if (nsz > RA_MAX) { /* start over with a fresh small buffer */
            sum += x->p[0];
            free(x->p);
            x->p = xmalloc(RA_START);
            x->p[0] = (unsigned char)i;
            x->sz = RA_START;
            nsz = RA_START + RA_START / 2;
        }
        unsigned char *p = realloc(x->p, nsz);
        if (!p)
            die("realloc", ENOMEM);
        ra_touch(p, x->sz, nsz);
        sum += p[0]; /* content must survive the move */
        x->p = p;
        x->sz = nsz;
    }
    uint64_t t1 = now_ns();

    for (uint32_t j = 0; j < RA_BUFS; j++)
        free(b[j].p);
    report("realloc", (double)(t1 - t0) / n, "ns/realloc", n, t1 - t0, sum);
}

/* ------------------------------------------------------------------ */
/* large: keep 4 slots of large blocks (64 KiB .. 4 MiB, log-uniform); */
/* each op frees a random slot and mallocs a new block, writing one    */
/* byte per page.  Allocators that hand pages back to the OS on every  */
/* free pay a page fault per touched page here.                        */
/* ------------------------------------------------------------------ */

#define LG_SLOTS 4u

static void wl_large(uint64_t n)
{
    unsigned char *slot[LG_SLOTS] = { 0 };
    size_t size[LG_SLOTS] = { 0 };
    uint64_t r = 0xC0FFEEull, sum = 0;

    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        uint32_t j = rnd_below(&r, LG_SLOTS);
        if (slot[j]) {
            sum += slot[j][0] + slot[j][size[j] - 1];
            free(slot[j]);
        }
        uint32_t e = 16 + rnd_below(&r, 6); /* 2^16 .. 2^21 */
        size_t sz = ((size_t)1 << e) + rnd_below(&r, 1u << e);
        unsigned char *p = xmalloc(sz);
        for (size_t off = 0; off < sz; off += PAGE)
            p[off] = (unsigned char)i;
        p[sz - 1] = 7;
        slot[j] = p;
        size[j] = sz;
    }
    uint64_t t1 = now_ns();

    for (uint32_t j = 0; j < LG_SLOTS; j++)
        free(slot[j]);
    report("large", (double)(t1 - t0) / n, "ns/op", n, t1 - t0, sum);
}

/* ------------------------------------------------------------------ */
/* bintree: the binary-trees algorithm with one malloc per node.       */
/* Stretch tree (depth+1), one long-lived tree (depth), then for each  */
/* d = 4, 6, .. depth: 2^(depth-d+4) trees of depth d are built,       */
/* checked and freed.  The iterations of each level are split over T   */
/* threads.  Result: total elapsed seconds.                            */
/* ------------------------------------------------------------------ */

struct node {
    struct node *l, *r;
};

static struct node *bt_make(int d)
{
    struct node *n = xmalloc(sizeof *n);
    if (d > 0) {
        n->l = bt_make(d - 1);
        n->r = bt_make(d - 1);
    } else {
        n->l = n->r = NULL;
    }
    return n;
}

static uint64_t bt_check(const struct node *n)
{
    return n->l ? 1 + bt_check(n->l) + bt_check(n->r) : 1;
}

static void bt_free(struct node *n)
{
    if (n->l) {
        bt_free(n->l);
        bt_free(n->r);
    }
    free(n);
}

#define BT_MIN 4

struct bt_arg {
    int maxd, tid, nthreads;
    uint64_t sum;
};

static void *bt_worker(void *a)
{
    struct bt_arg *w = a;
    uint64_t sum = 0;
    if (w->nthreads > 1)
        pin_self(w->tid);
    for (int d = BT_MIN; d <= w->maxd; d += 2) {
        uint64_t iters = 1ull << (w->maxd - d + BT_MIN);
        for (uint64_t i = (uint64_t)w->tid; i < iters; i += w->nthreads) {
            struct node *t = bt_make(d);
            sum += bt_check(t);
            bt_free(t);
        }
    }
    w->sum = sum;
    return NULL;
}

static void wl_bintree(int depth, int nthreads)
{
    if (depth < BT_MIN + 2)
        depth = BT_MIN + 2;
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > MAX_THREADS)
        nthreads = MAX_THREADS;

    uint64_t t0 = now_ns();
    struct node *stretch = bt_make(depth + 1);
    uint64_t sum = bt_check(stretch);
    bt_free(stretch);

    struct node *longlived = bt_make(depth);

    pthread_t th[MAX_THREADS];
    struct bt_arg arg[MAX_THREADS];
    for (int t = 0; t < nthreads; t++) {
        arg[t] = (struct bt_arg){ .maxd = depth, .tid = t,
                                  .nthreads = nthreads };
        if (nthreads > 1)
            spawn(&th[t], bt_worker, &arg[t]);
    }
    if (nthreads == 1)
        bt_worker(&arg[0]);
    for (int t = 0; t < nthreads; t++) {
        if (nthreads > 1)
            pthread_join(th[t], NULL);
        sum += arg[t].sum;
    }
    sum += bt_check(longlived);
    bt_free(longlived);
    uint64_t t1 = now_ns();

    report("bintree", (t1 - t0) / 1e9, "s", (uint64_t)depth, t1 - t0, sum);
}

/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    uint64_t defn;
} workloads[] = {
    { "st-small", 40000000 }, { "window2", 15000000 },
    { "window", 15000000 },   { "xthread", 10000000 },
    { "larson", 6000000 },    { "realloc", 2000000 },
    { "large", 20000 },       { "bintree", 20 },
};

static void usage(void)
{
    fprintf(stderr, "usage: mbench <workload> [N] [threads]\n"
                    "threads (default 2): window, xthread (even), larson, bintree\n"
                    "workloads (default N):\n");
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        fprintf(stderr, "  %-9s %llu\n", workloads[i].name,
                (unsigned long long)workloads[i].defn);
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *wl = argv[1];
    uint64_t n = 0;
    pin_init();
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        if (!strcmp(wl, workloads[i].name))
            n = workloads[i].defn;
    if (!n)
        usage();
    if (argc > 2) {
        char *end;
        unsigned long long v = strtoull(argv[2], &end, 10);
        if (*end || v == 0)
            usage();
        n = v;
    }
    /* [threads] for window, xthread and larson: 1..MAX_THREADS, even for
     * xthread.  bintree keeps its own lenient parsing (clamped there); the
     * other workloads ignore the argument. */
    int threads = 2;
    if (argc > 3 && (!strcmp(wl, "window") || !strcmp(wl, "xthread") || !strcmp(wl, "larson"))) {
        char *end;
        unsigned long v = strtoul(argv[3], &end, 10);
        if (*end || v < 1 || v > MAX_THREADS || (!strcmp(wl, "xthread") && v % 2))
            usage();
        threads = (int)v;
    }

    if (!strcmp(wl, "st-small"))
        wl_st_small(n);
    else if (!strcmp(wl, "window2"))
        wl_window("window2", n, 2);
    else if (!strcmp(wl, "window"))
        wl_window("window", n, threads);
    else if (!strcmp(wl, "xthread"))
        wl_xthread(n, threads);
    else if (!strcmp(wl, "larson"))
        wl_larson(n, threads);
    else if (!strcmp(wl, "realloc"))
        wl_realloc(n);
    else if (!strcmp(wl, "large"))
        wl_large(n);
    else
        wl_bintree((int)(n > 30 ? 30 : n), argc > 3 ? atoi(argv[3]) : 2);
    return 0;
}
