/* test_sched_migrate.c - goroutines move between threads and keep their state.
 *
 * At GOMAXPROCS=2, goroutines yield (and now and then sleep briefly) many
 * times, noting pthread_self() each time. At least one of them must be seen
 * on two different threads. Across every switch each goroutine's state must
 * be intact: locals kept in callee-saved registers and on its stack, a
 * double, and errno, which gort keeps per goroutine (each goroutine sets
 * errno to a value of its own and finds it again after every yield, on
 * whatever thread it then runs).
 *
 * GORT_TEST_SCALE (a positive number, default 1) scales the iteration counts.
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

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)
#define NG 7
#define NSLOT 64

typedef struct gstate {
    int idx;
    long iters;          /* done */
    int threads_seen;    /* distinct threads (up to 8 noted) */
    pthread_t seen[8];
    long bad_stack, bad_errno, bad_reg, bad_fp;
} gstate;

static gstate gs[NG];
static atomic_long finished;
static atomic_int migrated_any;
static long min_iters;
static int64_t deadline;

/* pthread_self and errno through functions the compiler cannot see into:
 * glibc declares pthread_self and __errno_location const, so in a loop the
 * compiler may keep one result across gort_yield, after which the goroutine
 * may run on another thread. (That is a hazard for user code too: a
 * thread-local's address must not be kept across a call that may switch.) */
static __attribute__((noinline)) pthread_t current_thread(void)
{
    __asm__ __volatile__("" ::: "memory");
    return pthread_self();
}

static __attribute__((noinline)) int get_errno(void)
{
    __asm__ __volatile__("" ::: "memory");
    return errno;
}

static __attribute__((noinline)) void set_errno(int e)
{
    __asm__ __volatile__("" ::: "memory");
    errno = e;
}

static void note_thread(gstate *g)
{
    pthread_t self = current_thread();
    for (int i = 0; i < g->threads_seen; i++)
        if (pthread_equal(g->seen[i], self))
            return;
    if (g->threads_seen < 8)
        g->seen[g->threads_seen++] = self;
    if (g->threads_seen >= 2)
        atomic_store(&migrated_any, 1);
}

static void __attribute__((noinline)) worker(void *arg)
{
    gstate *g = arg;
    const int idx = g->idx;
    uint64_t stack[NSLOT];
    /* Values the compiler keeps in callee-saved registers across calls. */
    register uint64_t r1 = 0x1234567800000000ull + (uint64_t)idx;
    register uint64_t r2 = ~r1;
    double fp = 1.0 + idx / 8.0;
    for (int i = 0; i < NSLOT; i++)
        stack[i] = (uint64_t)idx * 1000003u + (uint64_t)i;
    const int my_errno = 10000 + idx;
    set_errno(my_errno);

    long i = 0;
    for (;;) {
        note_thread(g);
        if (i % 97 == 96)
            gort_sleep(MS / 2);
        else
            gort_yield();
        i++;

        if (get_errno() != my_errno) {
            g->bad_errno++;
            set_errno(my_errno);
        }
        for (int k = 0; k < NSLOT; k++)
            if (stack[k] != (uint64_t)idx * 1000003u + (uint64_t)k) {
                g->bad_stack++;
                stack[k] = (uint64_t)idx * 1000003u + (uint64_t)k;
            }
        if (r1 != 0x1234567800000000ull + (uint64_t)idx || r2 != ~r1)
            g->bad_reg++;
        if (fp != 1.0 + idx / 8.0)
            g->bad_fp++;
        /* Some work that uses the registers and memory in between. */
        r1 ^= (uint64_t)i;
        r1 ^= (uint64_t)i;
        fp = fp * 3.0 / 3.0;
        for (int k = 0; k < NSLOT; k++)
            stack[k] += 1;
        for (int k = 0; k < NSLOT; k++)
            stack[k] -= 1;

        if (i >= min_iters && (atomic_load(&migrated_any) || gort_nanotime() > deadline))
            break;
    }
    g->iters = i;
    atomic_fetch_add(&finished, 1);
}

static void real_main(void *arg)
{
    (void)arg;
    int prev = gort_gomaxprocs(2);
    CHECK(prev >= 1);
    min_iters = (long)(2000 * test_scale());
    if (min_iters < 100)
        min_iters = 100;
    deadline = gort_nanotime() + 20 * SEC;

    for (int i = 0; i < NG; i++) {
        gs[i].idx = i;
        gort_go(worker, &gs[i]);
    }
    /* The main goroutine keeps an errno of its own as well. */
    set_errno(4242);
    int64_t limit = gort_nanotime() + 50 * SEC;
    long main_bad = 0;
    while (atomic_load(&finished) < NG && gort_nanotime() < limit) {
        gort_sleep(MS);
        if (get_errno() != 4242) {
            main_bad++;
            set_errno(4242);
        }
    }
    CHECK_MSG(main_bad == 0, "main goroutine: errno changed across %ld sleeps", main_bad);
    CHECK_MSG(atomic_load(&finished) == NG, "only %ld of %d goroutines finished",
              atomic_load(&finished), NG);

    long iters = 0;
    int maxthreads = 0;
    for (int i = 0; i < NG; i++) {
        gstate *g = &gs[i];
        iters += g->iters;
        if (g->threads_seen > maxthreads)
            maxthreads = g->threads_seen;
        CHECK_MSG(g->iters >= min_iters, "goroutine %d: %ld iterations", i, g->iters);
        CHECK_MSG(g->bad_errno == 0, "goroutine %d: errno changed across %ld of %ld switches", i,
                  g->bad_errno, g->iters);
        CHECK_MSG(g->bad_stack == 0, "goroutine %d: %ld stack words changed", i, g->bad_stack);
        CHECK_MSG(g->bad_reg == 0, "goroutine %d: register locals changed %ld times", i,
                  g->bad_reg);
        CHECK_MSG(g->bad_fp == 0, "goroutine %d: a double changed %ld times", i, g->bad_fp);
    }
    CHECK_MSG(atomic_load(&migrated_any),
              "no goroutine ran on two threads in %ld yields at GOMAXPROCS=2", iters);
    printf("%ld switches, up to %d threads seen by one goroutine\n", iters, maxthreads);
    gort_gomaxprocs(prev);
}

int main(void)
{
    CHECK(gort_main(real_main, NULL) == 0);
    return test_done();
}
