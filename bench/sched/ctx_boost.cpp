// ctx_boost.cpp - raw cost of a Boost.Context fcontext switch, the baseline
// for ctx_gort.c (same loop, same stack size, same clock).
//
//   ctx_boost K   K round trips main -> coroutine -> main (2K switches).
//                 result: ns per switch
#include <boost/context/detail/fcontext.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace bcd = boost::context::detail;

static const std::size_t STACK_SIZE = 64 * 1024;
static const int BATCHES = 21;

static int64_t now_ns()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *static_cast<const double *>(a), y = *static_cast<const double *>(b);
    return (x > y) - (x < y);
}

// The coroutine: every resume switches straight back. Never returns.
static void co_fn(bcd::transfer_t t)
{
    for (;;)
        t = bcd::jump_fcontext(t.fctx, nullptr);
}

int main(int argc, char **argv)
{
    long k = argc > 1 ? std::atol(argv[1]) : 10000000;
    if (k < 1) {
        std::fprintf(stderr, "usage: %s K\n", argv[0]);
        return 2;
    }
    char *stack = static_cast<char *>(std::aligned_alloc(4096, STACK_SIZE));
    if (stack == nullptr)
        return 1;
    bcd::fcontext_t co = bcd::make_fcontext(stack + STACK_SIZE, STACK_SIZE, co_fn);

    for (long i = 0; i < 1000; i++)     // warm up
        co = bcd::jump_fcontext(co, nullptr).fctx;
    // BATCHES timed batches of k / BATCHES round trips; the median batch is
    // the result, so a preemption on this noisy machine spoils one batch,
    // not the run.
    long per = k / BATCHES > 0 ? k / BATCHES : 1;
    double ns[BATCHES];
    for (int b = 0; b < BATCHES; b++) {
        int64_t t0 = now_ns();
        for (long i = 0; i < per; i++)
            co = bcd::jump_fcontext(co, nullptr).fctx;
        int64_t t1 = now_ns();
        ns[b] = (double)(t1 - t0) / (double)(2 * per);
    }
    std::qsort(ns, BATCHES, sizeof ns[0], cmp_double);

    std::fprintf(stderr, "ctx_boost: %d batches of %ld switches; ns/switch min %.3f median %.3f max %.3f\n",
                 BATCHES, 2 * per, ns[0], ns[BATCHES / 2], ns[BATCHES - 1]);
    std::printf("result %.3f\n", ns[BATCHES / 2]);
    return 0;
}
