/* test_sched_stack.c - goroutines may use the stack size they were given.
 *
 * gort.h: goroutine stacks are 256 KiB by default (GORT_STACK_SIZE
 * overrides it); gort_set_stack_size applies to goroutines created
 * afterwards, rounds up to a power of two >= 16 KiB and returns the
 * previous size.
 *
 * A goroutine recurses with a 1 KiB volatile array in every frame, writing
 * every part of it, until its frames span 100 KiB of its default 256 KiB
 * stack; then, with the size set to 1 MiB, goroutines recurse down 800 KiB.
 * The depth is measured in frame addresses, so it is the same whatever a
 * frame costs (sanitizer red zones). The arrays are checked on the way back
 * up. Several goroutines do it at once, at
 * GOMAXPROCS=2, yielding now and then so that their stacks interleave.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gort.h>
#include "test.h"

#define KiB ((size_t)1024)
#define SEC ((int64_t)1000000000)
#define FRAME 1024

typedef struct rec_job {
    size_t target;    /* bytes of stack to cover */
    int yield_every;  /* yield at every n-th frame (0: never) */
    uintptr_t top;    /* frame address of the first frame */
    size_t deepest;   /* most stack covered (frame addresses) */
    int depth;        /* frames it took */
    long result;
    int bad;          /* corrupted arrays found */
} rec_job;

/* Recurses until the frames span j->target bytes. Depth is measured with
 * frame addresses, not counted, so that the test covers the same stack
 * whatever a frame costs (sanitizers add red zones; ASan may even move
 * the arrays to a heap "fake stack"). */
static long __attribute__((noinline)) recurse(rec_job *j, int n)
{
    volatile unsigned char buf[FRAME];
    unsigned char tag = (unsigned char)(n * 31 + 7);
    for (int i = 0; i < FRAME; i += 64)
        buf[i] = tag;
    buf[FRAME - 1] = tag;
    uintptr_t fa = (uintptr_t)__builtin_frame_address(0);
    if (n == 0)
        j->top = fa;
    size_t used = j->top - fa;
    if (used > j->deepest)
        j->deepest = used;
    if (j->yield_every && n % j->yield_every == 0)
        gort_yield();
    long r;
    if (used >= j->target || n >= 1000000) {
        j->depth = n;
        r = 0;
    } else {
        r = recurse(j, n + 1);
    }
    for (int i = 0; i < FRAME; i += 64)
        if (buf[i] != tag)
            j->bad++;
    if (buf[FRAME - 1] != tag)
        j->bad++;
    return r + n;
}

static atomic_long done;

static void rec_fn(void *arg)
{
    rec_job *j = arg;
    j->result = recurse(j, 0);
    atomic_fetch_add(&done, 1);
}

static int wait_done(long want)
{
    int64_t deadline = gort_nanotime() + 30 * SEC;
    while (atomic_load(&done) < want) {
        if (gort_nanotime() > deadline)
            return 0;
        gort_yield();
    }
    return 1;
}

static void check_job(const char *what, rec_job *j)
{
    long want = (long)j->depth * (j->depth + 1) / 2;
    CHECK_MSG(j->result == want, "%s: result %ld, want %ld", what, j->result, want);
    CHECK_MSG(j->bad == 0, "%s: %d corrupted stack bytes", what, j->bad);
    CHECK_MSG(j->deepest >= j->target, "%s: recursion covered only %zu KiB of stack, meant "
              "%zu KiB", what, j->deepest / KiB, j->target / KiB);
    printf("%s: %d frames covered %zu KiB of stack\n", what, j->depth, j->deepest / KiB);
}

static rec_job jobs[8];

static void real_main(void *arg)
{
    (void)arg;
    int prevprocs = gort_gomaxprocs(2);
    int env_size = getenv("GORT_STACK_SIZE") != NULL;

    /* Default stack: ~100 KiB. */
    for (int i = 0; i < 4; i++) {
        jobs[i].target = 100 * KiB;
        jobs[i].yield_every = i == 0 ? 0 : 7 + i;
        gort_go(rec_fn, &jobs[i]);
    }
    CHECK(wait_done(4));
    for (int i = 0; i < 4; i++)
        check_job("256 KiB stack, 100 KiB deep", &jobs[i]);

    /* 1 MiB: ~800 KiB. */
    size_t prev = gort_set_stack_size(1024 * KiB);
    if (!env_size)
        CHECK_MSG(prev == 256 * KiB, "default stack size %zu, want 256 KiB", prev);
    for (int i = 4; i < 8; i++) {
        jobs[i].target = 800 * KiB;
        jobs[i].yield_every = i == 4 ? 0 : 50 + i;
        gort_go(rec_fn, &jobs[i]);
    }
    CHECK(wait_done(8));
    for (int i = 4; i < 8; i++)
        check_job("1 MiB stack, 800 KiB deep", &jobs[i]);

    /* Rounding: a power of two at least 16 KiB. */
    CHECK(gort_set_stack_size(300 * KiB) == 1024 * KiB);
    CHECK_MSG(gort_set_stack_size(1000) == 512 * KiB, "300 KiB did not round up to 512 KiB");
    CHECK_MSG(gort_set_stack_size(prev) == 16 * KiB, "1000 bytes did not round up to 16 KiB");
    CHECK(gort_set_stack_size(prev) == prev);

    gort_gomaxprocs(prevprocs);
}

int main(void)
{
    CHECK(gort_main(real_main, NULL) == 0);
    return test_done();
}
