/* test_gc_stress.c - thousands of cycles under mutators that check everything they hold.
 *
 * Mutators build trees and lists (typed nodes pointing to noscan blobs),
 * keep a few of them, replace one at a time (freeing some early with
 * gort_gc_free, giving others a finalizer that checks the structure hanging
 * from its object), and after every replacement check every structure they
 * still hold, node by node, against values derived from a seed. A cycle
 * that frees a reachable object shows up as a node whose contents changed
 * (the slot is reused, and zeroed or refilled by someone else).
 *
 * The heap is kept small (a 1 MiB ballast tree) and GOGC at 10, so a cycle
 * runs every few hundred KiB of allocation; the run goes on until the
 * collector has done the number of cycles wanted (GORT_TEST_SCALE scales
 * it: 1200 per phase, 500 for gcstress).
 * Three phases, each its own process:
 *   threads     4 pthreads, outside gort_main;
 *   goroutines  in gort_main at GOMAXPROCS=2: 2 goroutine mutators, a
 *               producer handing structures to a consumer through a
 *               buffered channel, and 2 pthreads alongside;
 *   gcstress    2 pthreads and 2 goroutines with GORT_DEBUG=gcstress=10
 *               (a cycle every 10 span allocations, freed objects clobbered).
 * The phases are children forked before the parent starts any thread, so
 * each runs its own heap and settings.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
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

#define NOINLINE __attribute__((noinline))
#define HI (1ull << 63)   /* set in every value: never mistaken for a pointer */

/* ---- structures ------------------------------------------------------------------ */

typedef struct tnode {
    struct tnode *left, *right;
    uint64_t val;
} tnode;

/* Typed list node: next and blob are pointers (mask 0b0011), check and
 * len are not scanned. blob is a noscan object of len bytes. */
typedef struct lnode {
    struct lnode *next;
    unsigned char *blob;
    uint64_t check;
    uint64_t len;
} lnode;

static const unsigned char lnode_mask[1] = {0x03};
static const gort_gc_type lnode_type = {sizeof(lnode), lnode_mask};

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t x = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return (x ^ x >> 32) | HI;
}

static NOINLINE tnode *make_tree(uint64_t seed, int depth, uint64_t path)
{
    tnode *t = gort_gc_alloc(sizeof *t);
    REQUIRE(t);
    t->val = mix(seed, path * 64 + (uint64_t)depth);
    if (depth > 0) {
        t->left = make_tree(seed, depth - 1, path * 2);
        t->right = make_tree(seed, depth - 1, path * 2 + 1);
    }
    return t;
}

static long tree_bad(const tnode *t, uint64_t seed, int depth, uint64_t path)
{
    if (!t)
        return 1;
    if (t->val != mix(seed, path * 64 + (uint64_t)depth))
        return 1;   /* what hangs below is not to be trusted */
    if (depth == 0)
        return t->left != NULL || t->right != NULL;
    return tree_bad(t->left, seed, depth - 1, path * 2) +
           tree_bad(t->right, seed, depth - 1, path * 2 + 1);
}

static void tree_free(tnode *t)
{
    if (!t)
        return;
    tree_free(t->left);
    tree_free(t->right);
    gort_gc_free(t);
}

static NOINLINE lnode *make_list(uint64_t seed, int n)
{
    lnode *head = NULL;
    for (int i = n - 1; i >= 0; i--) {
        lnode *x = gort_gc_alloc_typed(sizeof *x, &lnode_type);
        REQUIRE(x);
        x->check = mix(seed, (uint64_t)i);
        x->len = 8 + x->check % 200;
        x->blob = gort_gc_alloc_noscan(x->len);
        REQUIRE(x->blob);
        memset(x->blob, (int)(x->check & 0xff), x->len);
        x->next = head;
        head = x;
    }
    return head;
}

static long list_bad(const lnode *x, uint64_t seed, int n)
{
    for (int i = 0; i < n; i++, x = x->next) {
        if (!x || x->check != mix(seed, (uint64_t)i) || x->len != 8 + x->check % 200 || !x->blob)
            return 1;
        for (uint64_t j = 0; j < x->len; j++)
            if (x->blob[j] != (unsigned char)(x->check & 0xff))
                return 1;
    }
    return x != NULL;
}

/* A structure: a small GC object naming its seed and shape. */
typedef struct sroot {
    uint64_t seed;     /* has HI set */
    uint64_t kind;     /* 1 tree, 2 list (HI set) */
    uint64_t size;     /* depth or length (HI set) */
    void *data;
} sroot;

static NOINLINE sroot *make_struct(uint64_t seed)
{
    sroot *r = gort_gc_alloc(sizeof *r);
    REQUIRE(r);
    r->seed = seed | HI;
    if (seed % 3 == 0) {
        int n = 16 + (int)(seed % 97);
        r->kind = 2 | HI;
        r->size = (uint64_t)n | HI;
        r->data = make_list(seed, n);
    } else {
        int d = 3 + (int)(seed % 6);
        r->kind = 1 | HI;
        r->size = (uint64_t)d | HI;
        r->data = make_tree(seed, d, 1);
    }
    return r;
}

static long struct_bad(const sroot *r)
{
    if (!r || !(r->seed & HI) || !(r->kind & HI) || !(r->size & HI))
        return 1;
    uint64_t seed = r->seed & ~HI, size = r->size & ~HI;
    switch (r->kind & ~HI) {
    case 1:
        return seed % 3 != 0 && size == 3 + seed % 6 ? tree_bad(r->data, seed, (int)size, 1) : 1;
    case 2:
        return seed % 3 == 0 && size == 16 + seed % 97 ? list_bad(r->data, seed, (int)size) : 1;
    default:
        return 1;
    }
}

/* Finalizers on some structures check what hangs from them (it stays
 * alive until the finalizer has run). */
static atomic_long fin_runs, fin_bad;

static void fin_struct(void *obj, void *arg)
{
    (void)arg;
    if (struct_bad(obj))
        atomic_fetch_add(&fin_bad, 1);
    atomic_fetch_add(&fin_runs, 1);
}

/* ---- mutators ------------------------------------------------------------------------- */

#define KEEP 8

static atomic_int stop;
static atomic_long total_bad, total_iters;

/* One replacement: slot i gets a new structure; the old one is freed
 * early (trees, sometimes), given a finalizer (sometimes) or dropped. */
static void replace(sroot *volatile *slots, uint64_t seed, long iter)
{
    int i = (int)(iter % KEEP);
    sroot *old = slots[i];
    slots[i] = make_struct(seed);
    if (old) {
        if (iter % 5 == 1 && (old->kind & ~HI) == 1) {
            tree_free(old->data);
            gort_gc_free(old);
        } else if (iter % 5 == 2) {
            gort_gc_set_finalizer(old, fin_struct, NULL);
        }
    }
}

static long check_all(sroot *volatile *slots)
{
    long bad = 0;
    for (int i = 0; i < KEEP; i++)
        if (slots[i])
            bad += struct_bad(slots[i]);
    return bad;
}

/* The slots live on the mutator's stack (goroutines) or in a GC object
 * referred to from it (threads). */
static void mutate(int id, sroot *volatile *slots)
{
    long bad = 0, iter = 0;
    uint64_t seed = (uint64_t)id << 40;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        replace(slots, seed + (uint64_t)iter, iter);
        bad += check_all(slots);
        iter++;
        if (gort_goid() != 0 && iter % 4 == 0)
            gort_yield();
    }
    bad += check_all(slots);
    atomic_fetch_add(&total_bad, bad);
    atomic_fetch_add(&total_iters, iter);
}

static void *thread_mutator(void *arg)
{
    sroot *volatile *slots = gort_gc_alloc(KEEP * sizeof(sroot *));
    REQUIRE(slots);
    mutate((int)(intptr_t)arg, slots);
    return NULL;
}

static gort_waitgroup wg;

static void goroutine_mutator(void *arg)
{
    sroot *volatile slots[KEEP] = {0};
    mutate((int)(intptr_t)arg, slots);
    gort_waitgroup_done(&wg);
}

/* Producer and consumer: structures travel through a buffered channel,
 * so that some live only in its buffer or on a parked goroutine's stack. */
static gort_chan *pipe_chan;

static void producer(void *arg)
{
    uint64_t seed = (uint64_t)(intptr_t)arg << 40;
    long iter = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        sroot *r = make_struct(seed + (uint64_t)iter++);
        gort_chan_send(pipe_chan, &r);
    }
    gort_chan_close(pipe_chan);
    atomic_fetch_add(&total_iters, iter);
    gort_waitgroup_done(&wg);
}

static void consumer(void *arg)
{
    (void)arg;
    long bad = 0;
    sroot *r;
    sroot *volatile held = NULL;
    while (gort_chan_recv(pipe_chan, &r)) {
        bad += struct_bad(r);
        if (held)
            bad += struct_bad(held);
        held = r;   /* keep one across the next receive: parked with it */
    }
    atomic_fetch_add(&total_bad, bad);
    gort_waitgroup_done(&wg);
}

/* ---- phases -------------------------------------------------------------------------- */

static uint32_t num_gc(void)
{
    static gort_memstats ms;
    gort_read_memstats(&ms);
    return ms.num_gc;
}

/* Ballast: a tree held by a global, so that a cycle comes every few
 * hundred KiB (GOGC 10) rather than at every span, and the mutators check
 * their structures several times per cycle. Checked after each cycle seen. */
static tnode *volatile ballast;
static int ballast_depth;
static atomic_long ballast_bad;

static void make_ballast(void)
{
    ballast_depth = test_scale() >= 0.5 && !slow_tool() ? 14 : 11;
    ballast = make_tree(7, ballast_depth, 1);
}

/* Sleeps (a goroutine parks) until n more cycles are done, then stops the
 * mutators. */
static void run_until_cycles(uint32_t n0, long want)
{
    uint32_t seen = n0, n;
    while ((long)((n = num_gc()) - n0) < want) {
        if (n != seen) {
            atomic_fetch_add(&ballast_bad, tree_bad(ballast, 7, ballast_depth, 1));
            seen = n;
        }
        if (gort_goid() != 0) {
            gort_sleep(MS);
        } else {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    atomic_store(&stop, 1);
}

static void report(const char *phase, uint32_t n0)
{
    long bad = atomic_load(&total_bad);
    printf("%s: %u cycles, %ld replacements, %ld finalizers run\n", phase, num_gc() - n0,
           atomic_load(&total_iters), atomic_load(&fin_runs));
    CHECK_MSG(bad == 0, "%s: %ld structures found damaged", phase, bad);
    bad = atomic_load(&ballast_bad) + tree_bad(ballast, 7, ballast_depth, 1);
    CHECK_MSG(bad == 0, "%s: the ballast tree was found damaged %ld times", phase, bad);
    CHECK_MSG(atomic_load(&fin_bad) == 0, "%s: %ld finalizers found their structure damaged",
              phase, atomic_load(&fin_bad));
}

static void phase_threads(void)
{
    gort_gc_set_percent(10);
    make_ballast();
    uint32_t n0 = num_gc();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        REQUIRE(pthread_create(&t[i], NULL, thread_mutator, (void *)(intptr_t)(i + 1)) == 0);
    run_until_cycles(n0, scaled(1200));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    report("threads", n0);
}

typedef struct gphase {
    const char *name;
    int threads;
    int goroutines;
    bool pipeline;
    bool gogc10;
    long cycles;
} gphase;

static void goroutine_phase(void *arg)
{
    gphase *ph = arg;
    gort_gomaxprocs(2);
    if (ph->gogc10)
        gort_gc_set_percent(10);
    make_ballast();
    uint32_t n0 = num_gc();
    pthread_t t[4];
    for (int i = 0; i < ph->threads; i++)
        REQUIRE(pthread_create(&t[i], NULL, thread_mutator, (void *)(intptr_t)(10 + i)) == 0);
    int ng = ph->goroutines + (ph->pipeline ? 2 : 0);
    gort_waitgroup_add(&wg, ng);
    for (int i = 0; i < ph->goroutines; i++)
        gort_go(goroutine_mutator, (void *)(intptr_t)(20 + i));
    if (ph->pipeline) {
        pipe_chan = gort_chan_make(sizeof(sroot *), 16);
        REQUIRE(pipe_chan);
        gort_go(producer, (void *)(intptr_t)30);
        gort_go(consumer, NULL);
    }
    run_until_cycles(n0, ph->cycles);
    gort_waitgroup_wait(&wg);
    for (int i = 0; i < ph->threads; i++)
        pthread_join(t[i], NULL);
    report(ph->name, n0);
}

/* Runs fn in a child process; its exit status is the phase's result. */
static void in_child(const char *name, void (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        test_failures = 0;   /* the child's own */
        alarm(300);   /* a hang must not hang the test */
        fn(arg);
        fflush(NULL);
        _exit(test_done());
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "phase %s: %s %d", name,
              WIFEXITED(st) ? "exit status" : "killed by signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

static void run_threads(void *arg)
{
    (void)arg;
    phase_threads();
}

static void run_goroutines(void *arg)
{
    REQUIRE(gort_main(goroutine_phase, arg) == 0);
}

static void run_gcstress(void *arg)
{
    setenv("GORT_DEBUG", "gcstress=10", 1);
    REQUIRE(gort_main(goroutine_phase, arg) == 0);
}

int main(void)
{
    static gphase gor = {"goroutines", 2, 2, true, true, 0};
    static gphase stress = {"gcstress", 2, 2, false, false, 0};
    gor.cycles = scaled(1200);
    stress.cycles = scaled(500);
    in_child("threads", run_threads, NULL);
    in_child("goroutines", run_goroutines, &gor);
    in_child("gcstress", run_gcstress, &stress);
    return test_done();
}
