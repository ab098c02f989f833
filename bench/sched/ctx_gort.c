/* ctx_gort.c - raw cost of gort's context switch (src/sched/ctx.h).
 *
 *   ctx_gort K    K round trips main -> coroutine -> main (2K switches).
 *                 result: ns per switch
 *
 * The twin of ctx_boost.cpp: same loop, same stack size, same clock.
 * ctx_switch and ctx_init are internal (hidden visibility) but link from
 * the static libgort.a.
 */
#include "sched/ctx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define STACK_SIZE (64 * 1024)
#define BATCHES 21

static void *main_sp;
static void *co_sp;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The coroutine: every resume switches straight back. Never returns. */
static void co_fn(void *arg)
{
    (void)arg;
    for (;;)
        ctx_switch(&co_sp, main_sp);
}

int main(int argc, char **argv)
{
    long k = argc > 1 ? atol(argv[1]) : 10000000;
    if (k < 1) {
        fprintf(stderr, "usage: %s K\n", argv[0]);
        return 2;
    }
    char *stack = aligned_alloc(4096, STACK_SIZE);
    if (stack == NULL)
        return 1;
    co_sp = ctx_init(stack + STACK_SIZE, co_fn, NULL);

    for (long i = 0; i < 1000; i++)     /* warm up */
        ctx_switch(&main_sp, co_sp);
    /* BATCHES timed batches of k / BATCHES round trips; the median batch is
     * the result, so a preemption on this noisy machine spoils one batch,
     * not the run. */
    long per = k / BATCHES > 0 ? k / BATCHES : 1;
    double ns[BATCHES];
    for (int b = 0; b < BATCHES; b++) {
        int64_t t0 = now_ns();
        for (long i = 0; i < per; i++)
            ctx_switch(&main_sp, co_sp);
        int64_t t1 = now_ns();
        ns[b] = (double)(t1 - t0) / (double)(2 * per);
    }
    qsort(ns, BATCHES, sizeof ns[0], cmp_double);

    fprintf(stderr, "ctx_gort: %d batches of %ld switches; ns/switch min %.3f median %.3f max %.3f\n",
            BATCHES, 2 * per, ns[0], ns[BATCHES / 2], ns[BATCHES - 1]);
    printf("result %.3f\n", ns[BATCHES / 2]);
    return 0;
}
