/* gc_test.h - helpers for the collector's tests (include after <gort.h>,
 * test.h and gort_test.h).
 *
 * Leaves: 64-byte GC objects with checksummed contents whose words have
 * their top bit set, so they never look like pointers to the conservative
 * scan. A probe counts the finalizers run on a set of leaves (and those that
 * found their leaf changed).
 *
 * The finalizer barrier: finalizers run one at a time in the order their
 * objects were found unreachable, so once a cycle has queued a fresh
 * sentinel and the sentinel's finalizer has run, every finalizer queued by
 * an earlier cycle has run too. That is how a test knows that a finalizer
 * did NOT run.
 *
 * Scanning is conservative: a stale copy of a pointer in a dead stack slot
 * or a register may keep an object alive. So the test functions keep no
 * object pointer in their own locals: objects are made, checked and
 * dropped by functions that are not inlined, scrub_stack clears the stack
 * below its caller (where their frames were), and expect_collected asks
 * for three quarters of a probe's objects, never for one exact object, nor
 * for objects that one dropped pointer alone kept (all or nothing).
 * expect_alive is exact.
 */
#ifndef GORT_GC_TEST_H
#define GORT_GC_TEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gort.h"

#define NOINLINE __attribute__((noinline, unused))

typedef struct leaf {
    uint64_t id;
    uint64_t w[6];
    uint64_t sum;
} leaf;

typedef struct probe {
    const char *name;
    atomic_int finalized;     /* finalizers run */
    atomic_int corrupt;       /* ... that found their object's contents changed */
} probe;

static atomic_uint next_leaf_id;

static inline uint64_t leaf_word(uint64_t id, int i)
{
    uint64_t x = (id + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ull;
    return x | 0x8000000000000000ull;   /* never a user-space address */
}

static inline void leaf_fill(leaf *l, uint64_t id)
{
    l->id = id | 0x8000000000000000ull;
    l->sum = l->id;
    for (int i = 0; i < 6; i++) {
        l->w[i] = leaf_word(id, i);
        l->sum ^= l->w[i] * (uint64_t)(2 * i + 3);
    }
}

static inline bool leaf_ok(const leaf *l)
{
    if (!l || !(l->id >> 63))
        return false;
    uint64_t id = l->id & ~0x8000000000000000ull, sum = l->id;
    for (int i = 0; i < 6; i++) {
        if (l->w[i] != leaf_word(id, i))
            return false;
        sum ^= l->w[i] * (uint64_t)(2 * i + 3);
    }
    return sum == l->sum;
}

static inline void fin_leaf(void *obj, void *arg)
{
    probe *p = arg;
    if (!leaf_ok(obj))
        atomic_fetch_add(&p->corrupt, 1);
    atomic_fetch_add(&p->finalized, 1);
}

/* for objects that are not leaves */
static inline void fin_count(void *obj, void *arg)
{
    (void)obj;
    atomic_fetch_add(&((probe *)arg)->finalized, 1);
}

/* A new leaf, with a finalizer counting in p unless p is NULL. */
static NOINLINE leaf *new_leaf(probe *p)
{
    leaf *l = gort_gc_alloc(sizeof *l);
    REQUIRE(l);
    leaf_fill(l, atomic_fetch_add(&next_leaf_id, 1));
    if (p)
        gort_gc_set_finalizer(l, fin_leaf, p);
    return l;
}

/* slots[i*stride] = a new leaf, for i < n */
static NOINLINE void make_leaves(void *volatile *slots, int n, int stride, probe *p)
{
    for (int i = 0; i < n; i++)
        slots[(long)i * stride] = new_leaf(p);
}

/* Not inlined, as everything that loads object pointers: a copy left in a
 * dead frame is cleared by the next scrub_stack, one in the caller's own
 * frame would not be. */
static NOINLINE int count_bad(void *volatile *slots, int n, int stride)
{
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += !leaf_ok(slots[(long)i * stride]);
    return bad;
}

static NOINLINE void clear_slots(void *volatile *slots, int n, int stride)
{
    for (int i = 0; i < n; i++)
        slots[(long)i * stride] = NULL;
}

/* Overwrite the stack below the caller, where earlier calls left pointers.
 * Uninstrumented, without memset: under ASan the dead frames it covers may
 * still be poisoned. */
static NOINLINE __attribute__((no_sanitize_address)) void scrub_stack(void)
{
    volatile uintptr_t buf[4096];
    for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++)
        buf[i] = 0;
}

/* GORT_DEBUG=gcstress=N (tests/run.sh --mode gcstress): a cycle every N
 * allocations, whatever GOGC says. */
static inline bool gcstress_on(void)
{
    const char *s = getenv("GORT_DEBUG");
    const char *g = s ? strstr(s, "gcstress=") : NULL;
    return g && atoi(g + 9) > 0;
}

/* Let the finalizers run: a goroutine sleeps, a thread too. */
static inline void nap(void)
{
    if (gort_goid() != 0) {
        gort_sleep(500000);
    } else {
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
}

/* Garbage in the leaves' size class and around it, filled with a pattern:
 * an object freed by mistake is reused and no longer checks out. */
static NOINLINE void churn(void)
{
    long bytes = scaled(4L << 20);
    for (long done = 0; done < bytes;) {
        size_t n = 16 + (size_t)(done / 48 % 8) * 16;
        unsigned char *p = gort_gc_alloc(n);
        REQUIRE(p);
        memset(p, 0x5A, n);
        done += (long)n;
    }
}

static atomic_uint barrier_gen;
static atomic_int barrier_hits;

static inline void fin_sentinel(void *obj, void *arg)
{
    (void)obj;
    if ((unsigned)(uintptr_t)arg == atomic_load(&barrier_gen))
        atomic_fetch_add(&barrier_hits, 1);
}

static NOINLINE void make_sentinels(unsigned gen)
{
    for (int i = 0; i < 32; i++) {
        void *p = gort_gc_alloc(48);
        REQUIRE(p);
        gort_gc_set_finalizer(p, fin_sentinel, (void *)(uintptr_t)gen);
    }
}

/* Returns once every finalizer queued by the cycles before the call ran. */
static inline void finalizer_barrier(void)
{
    unsigned gen = atomic_fetch_add(&barrier_gen, 1) + 1;
    atomic_store(&barrier_hits, 0);
    make_sentinels(gen);
    scrub_stack();
    int64_t deadline = gort_nanotime() + 60 * SEC;
    while (atomic_load(&barrier_hits) == 0) {
        if (gort_nanotime() > deadline) {
            CHECK_MSG(0, "finalizer barrier: none of 32 unreachable sentinels finalized in 60 s");
            return;
        }
        gort_gc_collect();
        nap();
    }
}

/* A root holds the objects of p: cycles (with garbage in between) must
 * finalize none. */
static inline void expect_alive(probe *p)
{
    for (int c = 0; c < 3; c++) {
        churn();
        gort_gc_collect();
    }
    finalizer_barrier();
    CHECK_MSG(atomic_load(&p->finalized) == 0, "%s: %d objects finalized while still reachable",
              p->name, atomic_load(&p->finalized));
}

/* The n objects of p are unreachable (a probe's objects are dropped
 * together, once): the next cycles must finalize most. The count is
 * absolute: a cycle run for another case may have found them already. */
static inline void expect_collected(probe *p, int n)
{
    for (int c = 0; c < 2; c++) {
        scrub_stack();
        gort_gc_collect();
    }
    finalizer_barrier();
    int got = atomic_load(&p->finalized);
    CHECK_MSG(got >= n - n / 4, "%s: %d of %d unreachable objects finalized (want >= %d)",
              p->name, got, n, n - n / 4);
    CHECK_MSG(atomic_load(&p->corrupt) == 0, "%s: %d finalizers found their object corrupt",
              p->name, atomic_load(&p->corrupt));
}

#endif
