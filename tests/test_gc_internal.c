/* test_gc_internal.c - the collector's pieces seen from inside: pacer
 * arithmetic, allocation bits after a sweep, slots of dead objects reused,
 * empty spans given back to the heap, interior pointers, and the mark
 * bit of a reachable object after a stop-the-world sweep. */
#include <pthread.h>
#include <string.h>

#include "export_test.h"
#include "gort.h"
#include "test.h"

#define MiB ((uint64_t)1 << 20)

static void test_pacer(void)
{
    /* Go's rule: live * (1 + GOGC/100), never below 4 MiB * GOGC/100 */
    CHECK(gc_heap_goal(0, 100, INT64_MAX, 0) == 4 * MiB);
    CHECK(gc_heap_goal(10 * MiB, 100, INT64_MAX, 0) == 20 * MiB);
    CHECK(gc_heap_goal(10 * MiB, 50, INT64_MAX, 0) == 15 * MiB);
    CHECK(gc_heap_goal(1 * MiB, 50, INT64_MAX, 0) == 2 * MiB);
    CHECK(gc_heap_goal(10 * MiB, 0, INT64_MAX, 0) == 10 * MiB);
    CHECK(gc_heap_goal(100, 100, INT64_MAX, 0) == 4 * MiB);
    CHECK(gc_heap_goal(3, 100, INT64_MAX, 0) == 4 * MiB);
    CHECK(gc_heap_goal((uint64_t)1 << 40, 200, INT64_MAX, 0) == (uint64_t)3 << 40);
    /* off, no limit: no goal */
    CHECK(gc_heap_goal(10 * MiB, -1, INT64_MAX, 0) == UINT64_MAX);
    /* a limit pulls the goal in: limit minus what is held outside the heap */
    CHECK(gc_heap_goal(10 * MiB, 100, (int64_t)(16 * MiB), 2 * MiB) == 14 * MiB);
    CHECK(gc_heap_goal(10 * MiB, 100, (int64_t)(64 * MiB), 2 * MiB) == 20 * MiB);
    /* GOGC=off with a limit: the limit alone */
    CHECK(gc_heap_goal(10 * MiB, -1, (int64_t)(32 * MiB), 0) == 32 * MiB);
    /* a limit below the live heap: a little room above it, never below */
    uint64_t g = gc_heap_goal(10 * MiB, 100, (int64_t)(5 * MiB), 2 * MiB);
    CHECK(g > 10 * MiB && g <= 10 * MiB + 10 * MiB / 16 + (256 << 10));
}

/* Pointers the test keeps: a global is a root. */
#define N 4096
static void *volatile keep[N];

static __attribute__((noinline)) void fill(size_t size)
{
    for (int i = 0; i < N; i++)
        keep[i] = gort_gc_alloc(size);
}

static __attribute__((noinline)) void scrub(void)
{
    volatile char junk[16384];
    memset((char *)junk, 0, sizeof junk);
}

static void test_allocbits_after_sweep(void)
{
    fill(48);
    for (int i = 0; i < N; i += 2)
        keep[i] = NULL;
    scrub();
    gort_gc_collect();   /* marked and swept */
    int kept_ok = 0, dropped_free = 0;
    for (int i = 1; i < N; i += 2) {
        mspan *s = test_spanof(keep[i]);
        REQUIRE(s && s->kind == HEAP_GC);
        uint32_t idx = (uint32_t)(((uintptr_t)keep[i] - s->base) / s->elemsize);
        kept_ok += bit_get(s->allocbits, idx);
        /* the even neighbour of a kept object in the same span is free now */
        uintptr_t nb = (uintptr_t)keep[i] - s->elemsize;
        if (nb >= s->base) {
            uint32_t j = idx - 1;
            dropped_free += !bit_get(s->allocbits, j) && !s->gcmark[j];
        }
    }
    CHECK_MSG(kept_ok == N / 2, "%d of %d reachable objects have their allocation bit", kept_ok,
              N / 2);
    /* conservative scanning may keep a few dead ones; nearly all are free */
    CHECK_MSG(dropped_free > N / 2 * 9 / 10, "only %d of ~%d dropped neighbours are free",
              dropped_free, N / 2);
    /* freed slots are handed out again (and zeroed) */
    int reused = 0, dirty = 0;
    for (int k = 0; k < N / 2; k++) {
        char *p = gort_gc_alloc(48);
        mspan *s = test_spanof(p);
        for (int b = 0; b < 48; b++)
            dirty += p[b] != 0;
        for (int i = 1; i < N && !reused; i += 2)
            if (test_spanof(keep[i]) == s) {
                reused++;
                break;
            }
        memset(p, 0xab, 48);
    }
    CHECK(dirty == 0);
    CHECK_MSG(reused > 0, "no freed slot of a surviving span was reused");
    for (int i = 0; i < N; i++)
        keep[i] = NULL;
}

static __attribute__((noinline)) uintptr_t lonely_span(void)
{
    /* a size class nothing else here uses, one span's worth */
    void *p = gort_gc_alloc(3072);
    mspan *s = test_spanof(p);
    uintptr_t base = s->base;
    for (uint32_t i = 1; i < s->nelems; i++)
        keep[2 + (i & 1)] = gort_gc_alloc(3072);
    keep[2] = keep[3] = NULL;
    return base ^ 0x5a5a5a5a;   /* not a pointer to the span while it is held */
}

static void *lonely_thread(void *arg)
{
    *(uintptr_t *)arg = lonely_span();
    return NULL;
}

static void test_empty_span_returns(void)
{
    /* made on a thread that is gone by the collection: no stale stack or
     * register of it can hold one of the objects */
    uintptr_t base;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, lonely_thread, &base) == 0);
    pthread_join(t, NULL);
    gort_gc_collect();
    gort_gc_collect();   /* the first may keep what a stale stack word points to */
    mspan *s = test_spanof((void *)(base ^ 0x5a5a5a5a));
    CHECK_MSG(!s || atomic_load(&s->state) != SPAN_INUSE || s->kind != HEAP_GC ||
                  s->sizeclass != size_to_class(3072),
              "a span whose objects all died is still an in-use GC span");
}

static void test_interior_and_large(void)
{
    char *big = gort_gc_alloc(1 << 20);
    char *small = gort_gc_alloc(100);
    keep[0] = big + 12345;        /* interior pointers only */
    keep[1] = small + 99;
    memset(big, 7, 1 << 20);
    memset(small, 9, 100);
    big = small = NULL;
    scrub();
    for (int i = 0; i < 3; i++)
        gort_gc_collect();
    char *b = (char *)keep[0] - 12345, *s = (char *)keep[1] - 99;
    mspan *sb = test_spanof(b), *ss = test_spanof(s);
    CHECK(sb && atomic_load(&sb->state) == SPAN_INUSE && sb->kind == HEAP_GC && sb->base == (uintptr_t)b);
    CHECK(ss && atomic_load(&ss->state) == SPAN_INUSE && ss->kind == HEAP_GC);
    int bad = 0;
    for (int i = 0; i < (1 << 20); i++)
        bad += b[i] != 7;
    for (int i = 0; i < 100; i++)
        bad += s[i] != 9;
    CHECK(bad == 0);
    uint32_t idx = (uint32_t)(((uintptr_t)s - ss->base) / ss->elemsize);
    CHECK(bit_get(ss->allocbits, idx));
    CHECK(gort_gc_size(s) >= 100 && gort_gc_size(b) >= (1 << 20));
    keep[0] = keep[1] = NULL;
}

static void test_memstats(void)
{
    gort_memstats m;
    gort_read_memstats(&m);
    CHECK(m.num_gc >= 5);
    CHECK(m.num_forced_gc >= 5);
    CHECK(m.next_gc >= 4 * MiB);
    CHECK(m.last_gc > 0);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < m.num_gc && i < 256; i++) {
        CHECK(m.pause_ns[i] > 0);
        sum += m.pause_ns[i];
    }
    CHECK(m.num_gc > 256 || sum == m.pause_total_ns);
}

int main(void)
{
    test_pacer();
    test_allocbits_after_sweep();
    test_empty_span_returns();
    test_interior_and_large();
    test_memstats();
    return test_done();
}
