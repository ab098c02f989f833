/* test_sched_basic.c - the scheduler's basic contract (gort.h).
 *
 * gort_main runs fn(arg) as the main goroutine and returns 0 once fn
 * returns; gort_goid is unique and > 0 inside goroutines and 0 outside one
 * (before and after gort_main, on a plain pthread); gort_go runs every
 * goroutine it is given, with its argument; gort_num_goroutine counts the
 * live goroutines; at GOMAXPROCS=1 gort_yield lets the others run and no two
 * goroutines run user code at the same time; gort_goexit ends a goroutine
 * (nothing after it runs, however deep the call); gort_sleep sleeps at least
 * the time asked and a sleeping goroutine does not hold up the others;
 * gort_nanotime never goes backwards. Finally main returns while goroutines
 * are still alive: gort_main returns 0 and those goroutines are not run
 * again (each running one may finish its current stretch only).
 *
 * GORT_TEST_SCALE (a positive number, default 1) scales the loop counts;
 * without it, under valgrind and TSan they are a tenth.
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
#include <time.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* Valgrind runs everything one thread at a time, many times slower; TSan
 * treats every goroutine as a thread of its own, and its synchronization
 * costs grow with the number of them. */
/* tests/run.sh sets GORT_TEST_SCALE for the slow tools; run by hand under
 * one, the test scales itself down. */
/* Yields until *v >= want or `secs` pass; returns whether it got there. */
static int wait_ge(atomic_long *v, long want, int secs)
{
    int64_t deadline = gort_nanotime() + secs * SEC;
    while (atomic_load(v) < want) {
        if (gort_nanotime() > deadline)
            return 0;
        gort_yield();
    }
    return 1;
}

/* Waits until only the main goroutine is left (or `secs` pass). */
static int wait_alone(int secs)
{
    int64_t deadline = gort_nanotime() + secs * SEC;
    while (gort_num_goroutine() > 1) {
        if (gort_nanotime() > deadline)
            return 0;
        gort_yield();
    }
    return 1;
}

/* ---- gort_main's argument, goid in main --------------------------------- */

static int main_arg_token;
static atomic_int main_ran;
static atomic_int main_finished;
static int64_t main_goid;

/* ---- goid -------------------------------------------------------------- */

#define MAXGOID 2000
static int ngoid = MAXGOID; /* goroutines per batch */
static int64_t goids[2 * MAXGOID];
static atomic_long goid_started, goid_done;
static atomic_int goid_release;

static void goid_fn(void *arg)
{
    long i = (long)(intptr_t)arg;
    goids[i] = gort_goid();
    atomic_fetch_add(&goid_started, 1);
    /* The first batch stays alive until all of it has run, so its ids are
     * those of live goroutines at one time. */
    if (i < ngoid)
        while (!atomic_load(&goid_release))
            gort_yield();
    atomic_fetch_add(&goid_done, 1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pthread_goid = -1;
static void *pthread_goid_fn(void *arg)
{
    (void)arg;
    pthread_goid = gort_goid();
    return NULL;
}

static void test_goid(void)
{
    ngoid = (int)scaled(MAXGOID);
    if (ngoid > MAXGOID)
        ngoid = MAXGOID;
    if (ngoid < 2)
        ngoid = 2;
    CHECK_MSG(main_goid > 0, "main goroutine's goid %" PRId64, main_goid);
    CHECK(gort_goid() == main_goid);

    for (long i = 0; i < ngoid; i++)
        gort_go(goid_fn, (void *)(intptr_t)i);
    CHECK_MSG(wait_ge(&goid_started, ngoid, 30), "only %ld of %d goroutines started",
              atomic_load(&goid_started), ngoid);
    CHECK_MSG(gort_num_goroutine() == ngoid + 1, "num_goroutine %d with %d parked, want %d",
              gort_num_goroutine(), ngoid, ngoid + 1);
    atomic_store(&goid_release, 1);
    CHECK(wait_ge(&goid_done, ngoid, 30));
    CHECK(wait_alone(30));

    /* A second batch after the first has exited: Go never reuses ids. */
    for (long i = ngoid; i < 2 * ngoid; i++)
        gort_go(goid_fn, (void *)(intptr_t)i);
    CHECK(wait_ge(&goid_done, 2 * ngoid, 30));
    CHECK(wait_alone(30));

    static int64_t sorted[2 * MAXGOID];
    memcpy(sorted, goids, 2 * ngoid * sizeof goids[0]);
    int bad = 0, dup_live = 0, dup_any = 0;
    for (int i = 0; i < 2 * ngoid; i++) {
        if (sorted[i] <= 0)
            bad++;
        if (sorted[i] == main_goid)
            dup_any++;
    }
    CHECK_MSG(bad == 0, "%d goroutines saw goid <= 0", bad);
    qsort(sorted, ngoid, sizeof sorted[0], cmp_i64);
    for (int i = 1; i < ngoid; i++)
        if (sorted[i] == sorted[i - 1])
            dup_live++;
    CHECK_MSG(dup_live == 0, "%d duplicate goids among %d live goroutines", dup_live, ngoid);
    qsort(sorted, 2 * ngoid, sizeof sorted[0], cmp_i64);
    for (int i = 1; i < 2 * ngoid; i++)
        if (sorted[i] == sorted[i - 1])
            dup_any++;
    CHECK_MSG(dup_any == 0, "%d goids reused (or equal to main's %" PRId64 ")", dup_any,
              main_goid);

    /* A thread the runtime does not own is outside any goroutine. */
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, pthread_goid_fn, NULL) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    CHECK_MSG(pthread_goid == 0, "goid on a plain pthread: %" PRId64, pthread_goid);
}

/* ---- many goroutines all run, with their argument ------------------------ */

static atomic_long many_count, many_sum;

static void many_fn(void *arg)
{
    atomic_fetch_add(&many_sum, (long)(intptr_t)arg);
    atomic_fetch_add(&many_count, 1);
}

static void test_many(void)
{
    long n = scaled(100000);
    CHECK(gort_num_goroutine() == 1);
    for (long i = 0; i < n; i++)
        gort_go(many_fn, (void *)(intptr_t)i);
    CHECK_MSG(wait_ge(&many_count, n, 50), "%ld of %ld goroutines ran",
              atomic_load(&many_count), n);
    long want = n * (n - 1) / 2;
    CHECK_MSG(atomic_load(&many_sum) == want, "sum of arguments %ld, want %ld",
              atomic_load(&many_sum), want);
    CHECK(wait_alone(30));
    CHECK(gort_num_goroutine() == 1);
}

/* ---- num_goroutine ------------------------------------------------------ */

static atomic_long ng_started, ng_done;
static atomic_int ng_release;

static void ng_fn(void *arg)
{
    int sleeper = (int)(intptr_t)arg;
    atomic_fetch_add(&ng_started, 1);
    while (!atomic_load(&ng_release)) {
        if (sleeper)
            gort_sleep(MS);
        else
            gort_yield();
    }
    atomic_fetch_add(&ng_done, 1);
}

static void test_num_goroutine(void)
{
    const int n = 50;
    CHECK_MSG(gort_num_goroutine() == 1, "num_goroutine %d with main alone",
              gort_num_goroutine());
    for (int i = 0; i < n; i++)
        gort_go(ng_fn, (void *)(intptr_t)(i & 1));
    /* Created but maybe not yet run: they count already. */
    CHECK_MSG(gort_num_goroutine() == n + 1, "num_goroutine %d right after %d gort_go, want %d",
              gort_num_goroutine(), n, n + 1);
    CHECK(wait_ge(&ng_started, n, 30));
    CHECK_MSG(gort_num_goroutine() == n + 1, "num_goroutine %d, want %d",
              gort_num_goroutine(), n + 1);
    atomic_store(&ng_release, 1);
    CHECK(wait_ge(&ng_done, n, 30));
    CHECK(wait_alone(30));
    CHECK_MSG(gort_num_goroutine() == 1, "num_goroutine %d after all exited",
              gort_num_goroutine());
}

/* ---- GOMAXPROCS=1: yield interleaves, no parallel user code --------------- */

#define ILOG_ITERS 100
static char ilog[2 * ILOG_ITERS];
static atomic_int ilog_n;
static atomic_long il_done;

static void interleave_fn(void *arg)
{
    char c = (char)(intptr_t)arg;
    for (int i = 0; i < ILOG_ITERS; i++) {
        int k = atomic_fetch_add(&ilog_n, 1);
        ilog[k] = c;
        gort_yield();
    }
    atomic_fetch_add(&il_done, 1);
}

/* A waits for B, which can only run if A's yields let it. */
static atomic_int pp_b_ran, pp_a_gaveup;
static atomic_long pp_done;

static void pp_a(void *arg)
{
    (void)arg;
    int64_t deadline = gort_nanotime() + 20 * SEC;
    while (!atomic_load(&pp_b_ran)) {
        if (gort_nanotime() > deadline) {
            atomic_store(&pp_a_gaveup, 1);
            break;
        }
        gort_yield();
    }
    atomic_fetch_add(&pp_done, 1);
}

static void pp_b(void *arg)
{
    (void)arg;
    atomic_store(&pp_b_ran, 1);
    atomic_fetch_add(&pp_done, 1);
}

static atomic_int excl_running, excl_max;
static atomic_long excl_done, excl_iters;

static void excl_fn(void *arg)
{
    long iters = (long)(intptr_t)arg;
    for (long i = 0; i < iters; i++) {
        int r = atomic_fetch_add(&excl_running, 1) + 1;
        int m = atomic_load(&excl_max);
        while (r > m && !atomic_compare_exchange_weak(&excl_max, &m, r))
            ;
        for (volatile int k = 0; k < 2000; k++)
            ;
        atomic_fetch_add(&excl_iters, 1);
        atomic_fetch_sub(&excl_running, 1);
        gort_yield();
    }
    atomic_fetch_add(&excl_done, 1);
}

static void test_gomaxprocs1(void)
{
    int prev = gort_gomaxprocs(1);
    CHECK_MSG(prev >= 1, "gort_gomaxprocs returned %d", prev);
    CHECK(gort_gomaxprocs(0) == 1);

    /* Interleaving. */
    gort_go(interleave_fn, (void *)(intptr_t)'A');
    gort_go(interleave_fn, (void *)(intptr_t)'B');
    CHECK(wait_ge(&il_done, 2, 30));
    int n = atomic_load(&ilog_n), switches = 0, na = 0, nb = 0;
    CHECK(n == 2 * ILOG_ITERS);
    for (int i = 0; i < n; i++) {
        na += ilog[i] == 'A';
        nb += ilog[i] == 'B';
        if (i > 0 && ilog[i] != ilog[i - 1])
            switches++;
    }
    CHECK(na == ILOG_ITERS && nb == ILOG_ITERS);
    /* Each yield with the other goroutine runnable should let it run; ask
     * for a quarter of the possible switches. */
    CHECK_MSG(switches >= (2 * ILOG_ITERS - 1) / 4,
              "only %d switches between two yielding goroutines at GOMAXPROCS=1: %.*s",
              switches, n, ilog);

    /* Liveness: A spins on yield until B has run. */
    gort_go(pp_a, NULL);
    gort_go(pp_b, NULL);
    CHECK(wait_ge(&pp_done, 2, 40));
    CHECK_MSG(!atomic_load(&pp_a_gaveup),
              "at GOMAXPROCS=1 a yielding goroutine never let another run (20 s)");

    /* Mutual exclusion of user code. */
    long iters = scaled(300);
    for (int i = 0; i < 4; i++)
        gort_go(excl_fn, (void *)(intptr_t)iters);
    CHECK(wait_ge(&excl_done, 4, 50));
    CHECK(atomic_load(&excl_iters) == 4 * iters);
    CHECK_MSG(atomic_load(&excl_max) == 1,
              "%d goroutines ran user code at once at GOMAXPROCS=1", atomic_load(&excl_max));

    CHECK(wait_alone(30));
    CHECK(gort_gomaxprocs(prev) == 1);
    CHECK(gort_gomaxprocs(0) == prev);
}

/* ---- goexit -------------------------------------------------------------- */

static atomic_long gx_before, gx_after, gx_after_fn;

static volatile int goexit_skip; /* never set; a way out the compiler can see */

static int __attribute__((noinline)) goexit_deep(int depth)
{
    volatile char pad[128];
    pad[0] = (char)depth;
    if (goexit_skip)
        return 0;
    if (depth == 0) {
        atomic_fetch_add(&gx_before, 1);
        gort_goexit();
    }
    int r = goexit_deep(depth - 1);
    atomic_fetch_add(&gx_after, 1); /* never reached */
    return r + pad[0];
}

static void goexit_fn(void *arg)
{
    goexit_deep((int)(intptr_t)arg);
    atomic_fetch_add(&gx_after_fn, 1);
}

static void test_goexit(void)
{
    const int n = 200;
    for (int i = 0; i < n; i++)
        gort_go(goexit_fn, (void *)(intptr_t)(i % 20));
    CHECK(wait_ge(&gx_before, n, 30));
    CHECK_MSG(wait_alone(30), "goroutines that called gort_goexit still count: %d",
              gort_num_goroutine());
    CHECK_MSG(atomic_load(&gx_after) == 0 && atomic_load(&gx_after_fn) == 0,
              "code after gort_goexit ran (%ld in callers, %ld in the goroutine function)",
              atomic_load(&gx_after), atomic_load(&gx_after_fn));
}

/* ---- sleep --------------------------------------------------------------- */

#define NSLEEP 100
static int64_t sl_want[NSLEEP], sl_got[NSLEEP];
static atomic_long sl_done;

static void sleep_fn(void *arg)
{
    long i = (long)(intptr_t)arg;
    int64_t t0 = gort_nanotime();
    gort_sleep(sl_want[i]);
    sl_got[i] = gort_nanotime() - t0;
    atomic_fetch_add(&sl_done, 1);
}

static atomic_long bg_counter;
static atomic_int sleeper_done;
static long sleeper_progress = -1;

static void sleeper_fn(void *arg)
{
    (void)arg;
    long c0 = atomic_load(&bg_counter);
    gort_sleep(100 * MS);
    sleeper_progress = atomic_load(&bg_counter) - c0;
    atomic_store(&sleeper_done, 1);
}

static void busy_fn(void *arg)
{
    (void)arg;
    while (!atomic_load(&sleeper_done)) {
        atomic_fetch_add(&bg_counter, 1);
        gort_yield();
    }
}

static void test_sleep(void)
{
    int64_t t0 = gort_nanotime();
    gort_sleep(20 * MS);
    int64_t dt = gort_nanotime() - t0;
    CHECK_MSG(dt >= 20 * MS, "gort_sleep(20ms) returned after %" PRId64 " ns", dt);

    /* Zero and negative durations return. */
    gort_sleep(0);
    gort_sleep(-5 * SEC);

    /* Many sleepers with different durations: all wake, none early. */
    for (int i = 0; i < NSLEEP; i++)
        sl_want[i] = (int64_t)((i * 7919) % 50 + 1) * MS;
    for (long i = 0; i < NSLEEP; i++)
        gort_go(sleep_fn, (void *)(intptr_t)i);
    CHECK_MSG(wait_ge(&sl_done, NSLEEP, 30), "%ld of %d sleepers woke",
              atomic_load(&sl_done), NSLEEP);
    int early = 0;
    for (int i = 0; i < NSLEEP; i++)
        if (sl_got[i] < sl_want[i]) {
            if (!early)
                fprintf(stderr, "sleeper %d: asked %" PRId64 " ns, slept %" PRId64 " ns\n", i,
                        sl_want[i], sl_got[i]);
            early++;
        }
    CHECK_MSG(early == 0, "%d sleepers woke early", early);
    CHECK(wait_alone(30));

    /* At GOMAXPROCS=1 a sleeping goroutine lets the others run. */
    int prev = gort_gomaxprocs(1);
    gort_go(sleeper_fn, NULL);
    gort_go(busy_fn, NULL);
    while (!atomic_load(&sleeper_done))
        gort_sleep(MS);
    CHECK(wait_alone(30));
    CHECK_MSG(sleeper_progress > 0,
              "another goroutine made no progress while one slept 100 ms at GOMAXPROCS=1");
    gort_gomaxprocs(prev);
}

/* ---- nanotime ------------------------------------------------------------- */

static atomic_long nt_bad, nt_done;

static void nanotime_fn(void *arg)
{
    (void)arg;
    int64_t last = gort_nanotime();
    for (int i = 0; i < 20000; i++) {
        int64_t t = gort_nanotime();
        if (t < last)
            atomic_fetch_add(&nt_bad, 1);
        last = t;
        if (i % 100 == 0)
            gort_yield(); /* and maybe move to another thread */
    }
    atomic_fetch_add(&nt_done, 1);
}

static void test_nanotime(void)
{
    int64_t t0 = gort_nanotime();
    CHECK(t0 > 0);
    int64_t last = t0;
    int back = 0;
    for (int i = 0; i < 100000; i++) {
        int64_t t = gort_nanotime();
        if (t < last)
            back++;
        last = t;
    }
    CHECK_MSG(back == 0, "gort_nanotime went backwards %d times", back);

    /* Against CLOCK_MONOTONIC: a 10 ms sleep measures at least 10 ms in both. */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int64_t n0 = gort_nanotime();
    gort_sleep(10 * MS);
    int64_t n1 = gort_nanotime();
    clock_gettime(CLOCK_MONOTONIC, &b);
    int64_t mono = (int64_t)(b.tv_sec - a.tv_sec) * SEC + (b.tv_nsec - a.tv_nsec);
    CHECK(n1 - n0 >= 10 * MS);
    CHECK(mono >= 10 * MS);

    for (int i = 0; i < 4; i++)
        gort_go(nanotime_fn, NULL);
    CHECK(wait_ge(&nt_done, 4, 50));
    CHECK_MSG(atomic_load(&nt_bad) == 0, "gort_nanotime went backwards %ld times in goroutines",
              atomic_load(&nt_bad));
    CHECK(wait_alone(30));
}

/* ---- main returns with goroutines alive ------------------------------------ */

static atomic_long post_counter;
static atomic_long post_started;

static void post_yielder(void *arg)
{
    (void)arg;
    atomic_fetch_add(&post_started, 1);
    for (;;) {
        atomic_fetch_add(&post_counter, 1);
        gort_yield();
    }
}

static void post_sleeper(void *arg)
{
    (void)arg;
    atomic_fetch_add(&post_started, 1);
    for (;;) {
        atomic_fetch_add(&post_counter, 1);
        gort_sleep(MS);
    }
}

static int procs_at_exit;

static void real_main(void *arg)
{
    atomic_store(&main_ran, 1);
    CHECK_MSG(arg == &main_arg_token, "gort_main passed %p, want %p", arg,
              (void *)&main_arg_token);
    main_goid = gort_goid();
    CHECK_MSG(gort_num_goroutine() == 1, "num_goroutine %d in a fresh runtime",
              gort_num_goroutine());

    static const struct {
        const char *name;
        void (*fn)(void);
    } parts[] = {
        {"num_goroutine", test_num_goroutine}, {"goid", test_goid},
        {"many", test_many},                   {"gomaxprocs1", test_gomaxprocs1},
        {"goexit", test_goexit},               {"sleep", test_sleep},
        {"nanotime", test_nanotime},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        int64_t t0 = gort_nanotime();
        parts[i].fn();
        printf("%-14s %8.3f s\n", parts[i].name, (double)(gort_nanotime() - t0) / SEC);
        fflush(stdout);
    }

    /* Leave goroutines behind: 3 yielding, 3 sleeping. */
    for (int i = 0; i < 3; i++) {
        gort_go(post_yielder, NULL);
        gort_go(post_sleeper, NULL);
    }
    CHECK(wait_ge(&post_started, 6, 30));
    procs_at_exit = gort_gomaxprocs(0);
    atomic_store(&main_finished, 1);
}

int main(void)
{
    CHECK_MSG(gort_goid() == 0, "goid before gort_main: %" PRId64, gort_goid());
    int rc = gort_main(real_main, &main_arg_token);
    CHECK_MSG(rc == 0, "gort_main returned %d", rc);
    CHECK(atomic_load(&main_ran) && atomic_load(&main_finished));
    CHECK_MSG(gort_goid() == 0, "goid after gort_main: %" PRId64, gort_goid());

    /* No goroutine runs again; one running user code right now may finish
     * its stretch (one more increment at most, per P). */
    long c1 = atomic_load(&post_counter);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    long c2 = atomic_load(&post_counter);
    CHECK_MSG(c2 - c1 <= procs_at_exit,
              "goroutines kept running after gort_main returned: counter %ld -> %ld "
              "in 200 ms (GOMAXPROCS %d)",
              c1, c2, procs_at_exit);
    return test_done();
}
