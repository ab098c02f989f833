/* test_stress.c - randomized multi-threaded stress test of the manual heap.
 *
 * NTHREADS threads each run a random mix of gort_malloc, gort_calloc,
 * gort_realloc, gort_aligned_alloc and gort_free over sizes from 1 byte to
 * 256 KiB (mostly small, some large). Every object is filled with a pattern
 * derived from (object id, size); every byte is checked before the object is
 * freed, and after a realloc the first min(old, new) bytes must still hold
 * the old pattern. Calloc memory must be zero, aligned memory aligned, and
 * gort_malloc_usable_size at least the request.
 *
 * A fraction of the objects travel to another thread through a
 * mutex-protected inbox: the receiver checks the pattern and then frees the
 * object or adopts it (and may later realloc or free it itself).
 *
 * At the end everything is freed and the statistics must balance: the live
 * object count is back where it started and mallocs - frees agrees.
 *
 * GORT_TEST_SCALE (a positive number, default 1) scales the operation count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gort.h>
#include "test.h"

#define NTHREADS 4
#define NSLOTS 1024
#define INBOX_CAP 512
#define BASE_OPS 100000

typedef struct obj {
    unsigned char *p;
    size_t size;  /* bytes requested (and filled) */
    uint64_t id;
} obj;

typedef struct inbox {
    pthread_mutex_t mu;
    obj items[INBOX_CAP];
    int n;
} inbox;

static inbox inboxes[NTHREADS];
static pthread_barrier_t barrier;
static long ops_per_thread;

/* Threads must not touch test.h's plain counter: they count here. */
static atomic_long failures;
static atomic_long n_allocs;        /* objects obtained by malloc/calloc/aligned/realloc(NULL) */
static atomic_long n_frees;         /* objects handed to gort_free */
static atomic_ullong bytes_requested; /* bytes asked for by those allocations */
static atomic_long n_sent, n_received, n_adopted;

#define FAIL(...)                                                            \
    do {                                                                     \
        if (atomic_fetch_add(&failures, 1) < 50) {                           \
            fprintf(stderr, "test_stress: " __VA_ARGS__);                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

/* ---- helpers ------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

typedef struct rng { uint64_t s; } rng;

static uint64_t next(rng *r)
{
    /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

static uint64_t seed_of(uint64_t id, size_t size)
{
    return mix64(id * 0x9E3779B97F4A7C15ULL + size + 1);
}

/* Byte i of the pattern for seed s is byte (i % 8) of the word
 * s + (i / 8) * K: it depends on the seed and the offset only, so a prefix of
 * an object can be checked against the pattern of the object it came from. */
#define PAT_K 0x9E3779B97F4A7C15ULL

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t w = seed;
    size_t i = 0;
    for (; i + 8 <= n; i += 8, w += PAT_K)
        memcpy(p + i, &w, 8);
    if (i < n)
        memcpy(p + i, &w, n - i);
}

/* Returns n if the first n bytes hold the pattern, else the first bad offset. */
static size_t check(const unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t w = seed, v;
    size_t i = 0;
    for (; i + 8 <= n; i += 8, w += PAT_K) {
        memcpy(&v, p + i, 8);
        if (v != w)
            break;
    }
    for (; i < n; i++) {
        unsigned char want = (unsigned char)(w >> (8 * (i & 7)));
        if (p[i] != want)
            return i;
        if ((i & 7) == 7)
            w += PAT_K;
    }
    return n;
}

static size_t check_zero(const unsigned char *p, size_t n)
{
    size_t i = 0;
    uint64_t v;
    for (; i + 8 <= n; i += 8) {
        memcpy(&v, p + i, 8);
        if (v)
            break;
    }
    for (; i < n; i++)
        if (p[i])
            return i;
    return n;
}

/* Mostly small, some medium, a few large (above the 32 KiB small limit). */
static size_t rand_size(rng *r)
{
    unsigned k = (unsigned)(next(r) % 1000);
    if (k < 600)
        return 1 + next(r) % 128;
    if (k < 850)
        return 1 + next(r) % 1024;
    if (k < 950)
        return 1 + next(r) % 8192;
    if (k < 985)
        return 1 + next(r) % 32768;
    return 32769 + next(r) % (256 * 1024 - 32768);
}

static void verify(const obj *o, int tid, const char *when)
{
    size_t bad = check(o->p, o->size, seed_of(o->id, o->size));
    if (bad != o->size)
        FAIL("thread %d: %s: object id=%#" PRIx64 " p=%p size=%zu corrupted at "
             "offset %zu (byte %#x)",
             tid, when, o->id, (void *)o->p, o->size, bad, o->p[bad]);
    size_t u = gort_malloc_usable_size(o->p);
    if (u < o->size)
        FAIL("thread %d: %s: usable_size(%p)=%zu < size %zu", tid, when,
             (void *)o->p, u, o->size);
}

static void release(obj *o, int tid, const char *when)
{
    verify(o, tid, when);
    gort_free(o->p);
    atomic_fetch_add(&n_frees, 1);
    o->p = NULL;
}

/* ---- operations --------------------------------------------------------- */

static void do_alloc(obj *o, rng *r, int tid, uint64_t id)
{
    size_t n = rand_size(r);
    unsigned k = (unsigned)(next(r) % 100);
    unsigned char *p;
    const char *what;
    size_t align = 0;
    int zero = 0;

    if (k < 55) {
        what = "malloc";
        p = gort_malloc(n);
    } else if (k < 75) {
        what = "calloc";
        zero = 1;
        if (n % 4 == 0)
            p = gort_calloc(n / 4, 4);
        else if (n & 1)
            p = gort_calloc(1, n);
        else
            p = gort_calloc(n, 1);
    } else if (k < 90) {
        what = "aligned_alloc";
        align = (size_t)16 << (next(r) % 9);        /* 16 .. 4096 */
        if (next(r) % 50 == 0)
            align = 65536;
        p = gort_aligned_alloc(align, n);
    } else {
        what = "realloc(NULL)";
        p = gort_realloc(NULL, n);
    }
    if (!p) {
        FAIL("thread %d: %s(%zu) returned NULL (errno %d)", tid, what, n, errno);
        return;
    }
    atomic_fetch_add(&n_allocs, 1);
    atomic_fetch_add(&bytes_requested, n);
    if (align && ((uintptr_t)p & (align - 1)))
        FAIL("thread %d: aligned_alloc(%zu, %zu) = %p is misaligned", tid, align,
             n, (void *)p);
    if (n > 8 && ((uintptr_t)p & 15))
        FAIL("thread %d: %s(%zu) = %p is not 16-byte aligned", tid, what, n,
             (void *)p);
    if ((uintptr_t)p & 7)
        FAIL("thread %d: %s(%zu) = %p is not 8-byte aligned", tid, what, n,
             (void *)p);
    if (gort_malloc_usable_size(p) < n)
        FAIL("thread %d: %s(%zu): usable_size %zu too small", tid, what, n,
             gort_malloc_usable_size(p));
    if (zero) {
        size_t bad = check_zero(p, n);
        if (bad != n)
            FAIL("thread %d: calloc(%zu) = %p: byte %zu is %#x, not zero", tid,
                 n, (void *)p, bad, p[bad]);
    }
    o->p = p;
    o->size = n;
    o->id = id;
    fill(p, n, seed_of(id, n));
}

static void do_realloc(obj *o, rng *r, int tid)
{
    size_t old = o->size, n;
    unsigned k = (unsigned)(next(r) % 4);
    if (k == 0)
        n = rand_size(r);
    else if (k == 1)
        n = old + next(r) % 64 + 1;                        /* small growth */
    else if (k == 2)
        n = old > 1 ? 1 + next(r) % old : 1;               /* shrink */
    else
        n = old * 2 + 1 > 300 * 1024 ? old / 2 + 1 : old * 2 + 1; /* double */

    verify(o, tid, "before realloc");
    unsigned char *q = gort_realloc(o->p, n);
    if (!q) {
        FAIL("thread %d: realloc(%p, %zu) returned NULL (errno %d)", tid,
             (void *)o->p, n, errno);
        return; /* the old object is still ours */
    }
    size_t keep = old < n ? old : n;
    size_t bad = check(q, keep, seed_of(o->id, old));
    if (bad != keep)
        FAIL("thread %d: realloc(%p, %zu -> %zu) = %p lost contents at offset "
             "%zu",
             tid, (void *)o->p, old, n, (void *)q, bad);
    if (n > 8 && ((uintptr_t)q & 15))
        FAIL("thread %d: realloc(..., %zu) = %p is not 16-byte aligned", tid, n,
             (void *)q);
    if (gort_malloc_usable_size(q) < n)
        FAIL("thread %d: realloc(%zu): usable_size %zu too small", tid, n,
             gort_malloc_usable_size(q));
    o->p = q;
    o->size = n;
    fill(q, n, seed_of(o->id, n));
}

static int send_to(int to, const obj *o)
{
    inbox *b = &inboxes[to];
    int ok = 0;
    pthread_mutex_lock(&b->mu);
    if (b->n < INBOX_CAP) {
        b->items[b->n++] = *o;
        ok = 1;
    }
    pthread_mutex_unlock(&b->mu);
    return ok;
}

/* Take everything out of our inbox; free each object or adopt it into a free
 * slot when adopt is set. */
static void drain(int tid, obj *slots, rng *r, int adopt)
{
    static _Thread_local obj got[INBOX_CAP];
    inbox *b = &inboxes[tid];
    int n;

    pthread_mutex_lock(&b->mu);
    n = b->n;
    memcpy(got, b->items, (size_t)n * sizeof(obj));
    b->n = 0;
    pthread_mutex_unlock(&b->mu);

    atomic_fetch_add(&n_received, n);
    for (int i = 0; i < n; i++) {
        if (adopt && (next(r) & 1)) {
            obj *s = &slots[next(r) % NSLOTS];
            if (!s->p) {
                verify(&got[i], tid, "adopting a cross-thread object");
                *s = got[i];
                atomic_fetch_add(&n_adopted, 1);
                continue;
            }
        }
        release(&got[i], tid, "freeing a cross-thread object");
    }
}

typedef struct targ {
    int tid;
} targ;

static void *worker(void *arg)
{
    int tid = ((targ *)arg)->tid;
    rng r = {mix64(0x5eed0000ULL + (uint64_t)tid) | 1};
    obj *slots = calloc(NSLOTS, sizeof(obj)); /* bookkeeping: system heap */
    uint64_t counter = 0;

    if (!slots) {
        FAIL("thread %d: out of memory for bookkeeping", tid);
        return NULL;
    }
    for (long op = 0; op < ops_per_thread; op++) {
        obj *o = &slots[next(&r) % NSLOTS];
        if ((op & 63) == 0)
            drain(tid, slots, &r, 1);
        if (!o->p) {
            do_alloc(o, &r, tid, ((uint64_t)(tid + 1) << 48) | ++counter);
            continue;
        }
        unsigned k = (unsigned)(next(&r) % 100);
        if (k < 45) {
            if (next(&r) % 100 < 20) {
                int to = (tid + 1 + (int)(next(&r) % (NTHREADS - 1))) % NTHREADS;
                verify(o, tid, "before sending");
                if (send_to(to, o)) {
                    atomic_fetch_add(&n_sent, 1);
                    o->p = NULL;
                    continue;
                }
            }
            release(o, tid, "before free");
        } else if (k < 75) {
            do_realloc(o, &r, tid);
        } else {
            verify(o, tid, "spot check");
        }
    }

    /* Nobody sends after the barrier: drain what is left, then free all. */
    pthread_barrier_wait(&barrier);
    drain(tid, slots, &r, 0);
    for (int i = 0; i < NSLOTS; i++)
        if (slots[i].p)
            release(&slots[i], tid, "final free");
    free(slots);
    return NULL;
}

static void check_invariants(const gort_memstats *m, const char *when)
{
    CHECK_MSG(m->heap_objects == m->mallocs - m->frees,
              "%s: heap_objects %" PRIu64 " != mallocs %" PRIu64
              " - frees %" PRIu64,
              when, m->heap_objects, m->mallocs, m->frees);
    CHECK_MSG(m->mallocs >= m->frees, "%s: mallocs %" PRIu64 " < frees %" PRIu64,
              when, m->mallocs, m->frees);
}

int main(void)
{
    pthread_t th[NTHREADS];
    targ args[NTHREADS];
    gort_memstats before, after;

    ops_per_thread = (long)(BASE_OPS * test_scale());
    if (ops_per_thread < 1000)
        ops_per_thread = 1000;

    for (int i = 0; i < NTHREADS; i++)
        pthread_mutex_init(&inboxes[i].mu, NULL);
    REQUIRE(pthread_barrier_init(&barrier, NULL, NTHREADS) == 0);

    gort_read_memstats(&before);
    check_invariants(&before, "at start");

    for (int i = 0; i < NTHREADS; i++) {
        args[i].tid = i;
        REQUIRE(pthread_create(&th[i], NULL, worker, &args[i]) == 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);

    gort_read_memstats(&after);
    check_invariants(&after, "at end");

    long nf = atomic_load(&failures);
    CHECK_MSG(nf == 0, "%ld failure(s) in the worker threads (first 50 shown)", nf);

    printf("ops/thread %ld, allocs %ld, frees %ld, sent %ld, received %ld, "
           "adopted %ld\n",
           ops_per_thread, atomic_load(&n_allocs), atomic_load(&n_frees),
           atomic_load(&n_sent), atomic_load(&n_received),
           atomic_load(&n_adopted));

    CHECK(atomic_load(&n_sent) > 0);
    CHECK(atomic_load(&n_sent) == atomic_load(&n_received));
    CHECK(atomic_load(&n_allocs) == atomic_load(&n_frees));

    CHECK_MSG(after.heap_objects == before.heap_objects,
              "heap_objects %" PRIu64 " at start, %" PRIu64 " at end",
              before.heap_objects, after.heap_objects);
    uint64_t dm = after.mallocs - before.mallocs;
    uint64_t df = after.frees - before.frees;
    CHECK_MSG(dm == df, "mallocs grew by %" PRIu64 ", frees by %" PRIu64, dm, df);
    /* realloc may or may not count as an allocation; the rest must. */
    CHECK_MSG(dm >= (uint64_t)atomic_load(&n_allocs),
              "mallocs grew by %" PRIu64 " but the test allocated %ld objects",
              dm, atomic_load(&n_allocs));
    CHECK_MSG(df >= (uint64_t)atomic_load(&n_frees),
              "frees grew by %" PRIu64 " but the test freed %ld objects", df,
              atomic_load(&n_frees));
    CHECK_MSG(after.total_alloc - before.total_alloc >=
                  (uint64_t)atomic_load(&bytes_requested),
              "total_alloc grew by %" PRIu64 " < %llu bytes requested",
              after.total_alloc - before.total_alloc,
              atomic_load(&bytes_requested));
    CHECK_MSG(after.heap_alloc == before.heap_alloc,
              "heap_alloc %" PRIu64 " at start, %" PRIu64 " at end",
              before.heap_alloc, after.heap_alloc);

    pthread_barrier_destroy(&barrier);
    return test_done();
}
