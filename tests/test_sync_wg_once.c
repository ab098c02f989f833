/* test_sync_wg_once.c - gort_waitgroup and gort_once (gort.h, Go's sync).
 *
 * WaitGroup: zero value ready; wait returns at once at zero, and
 * otherwise only after the count drops to zero (add of n > 1, done from
 * many goroutines); several waiters all wake; reuse after wait returned;
 * a negative counter (add below zero, done at zero) panics "sync: negative
 * WaitGroup counter", which can be recovered.
 *
 * Once: fn runs exactly once among concurrent callers, and every caller
 * returns only after it has finished; later calls do not run it; separate
 * onces are independent; if fn panics, the panic reaches the caller and
 * once counts it as done (Go: later calls do not run fn, and do not hang).
 *
 * GORT_TEST_SCALE (a positive number, default 1) scales the counts; without
 * it, under valgrind and TSan they are a tenth.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"
#include "gort_test.h"

/* ---- waitgroup ------------------------------------------------------------------------ */

typedef struct {
    gort_waitgroup *wg;
    atomic_int *count;
    int delay_us;
} wg_arg;

static void wg_worker(void *arg)
{
    wg_arg *a = arg;
    if (a->delay_us)
        gort_sleep((int64_t)a->delay_us * 1000);
    else
        gort_yield();
    atomic_fetch_add(a->count, 1);
    gort_waitgroup_done(a->wg);
}

static void test_wg_basic(int procs)
{
    gort_gomaxprocs(procs);
    gort_waitgroup wg = {0};
    gort_waitgroup_wait(&wg); /* zero: at once */

    enum { N = 32 };
    atomic_int count = 0;
    wg_arg args[N];
    gort_waitgroup_add(&wg, N / 2);
    gort_waitgroup_add(&wg, N - N / 2);
    for (int i = 0; i < N; i++) {
        args[i] = (wg_arg){&wg, &count, (i % 4) * 500};
        gort_go(wg_worker, &args[i]);
    }
    gort_waitgroup_wait(&wg);
    CHECK_MSG(atomic_load(&count) == N, "GOMAXPROCS=%d: wait returned with %d of %d done",
              procs, atomic_load(&count), N);

    /* reuse, many rounds */
    long rounds = scaled(300);
    int bad = 0;
    for (long r = 0; r < rounds; r++) {
        atomic_store(&count, 0);
        int n = 1 + (int)(r % 8);
        gort_waitgroup_add(&wg, n);
        for (int i = 0; i < n; i++) {
            args[i] = (wg_arg){&wg, &count, 0};
            gort_go(wg_worker, &args[i]);
        }
        gort_waitgroup_wait(&wg);
        if (atomic_load(&count) != n)
            bad++;
    }
    CHECK_MSG(bad == 0, "GOMAXPROCS=%d: %d of %ld reused rounds returned early", procs, bad,
              rounds);
}

static gort_waitgroup mw_wg;
static atomic_int mw_woken, mw_started;

static void mw_waiter(void *arg)
{
    (void)arg;
    atomic_fetch_add(&mw_started, 1);
    gort_waitgroup_wait(&mw_wg);
    atomic_fetch_add(&mw_woken, 1);
}

static void test_wg_many_waiters(void)
{
    gort_gomaxprocs(1);
    enum { W = 6 };
    gort_waitgroup_add(&mw_wg, 2);
    for (int i = 0; i < W; i++)
        gort_go(mw_waiter, NULL);
    CHECK(wait_ge(&mw_started, W, 30));
    gort_sleep(5 * MS);
    CHECK(atomic_load(&mw_woken) == 0);
    gort_waitgroup_done(&mw_wg);
    gort_sleep(5 * MS);
    CHECK_MSG(atomic_load(&mw_woken) == 0, "waiters woke with the counter at 1");
    gort_waitgroup_done(&mw_wg);
    CHECK_MSG(wait_ge(&mw_woken, W, 30), "%d of %d waiters woke", atomic_load(&mw_woken), W);
}

static void wg_add_neg(void *arg)
{
    gort_waitgroup_add(arg, -1);
}

static void wg_done_fn(void *arg)
{
    gort_waitgroup_done(arg);
}

static void wg_add_2_sub_3(void *arg)
{
    gort_waitgroup_add(arg, 2);
    gort_waitgroup_add(arg, -3);
}

static void test_wg_negative(void)
{
    static const struct {
        const char *what;
        gort_fn fn;
    } cases[] = {
        {"add(-1) at zero", wg_add_neg},
        {"done at zero", wg_done_fn},
        {"add(2), add(-3)", wg_add_2_sub_3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gort_waitgroup wg = {0};
        bool completed = true;
        char *m = try_call(cases[i].fn, &wg, &completed);
        CHECK_MSG(m && strcmp(m, "sync: negative WaitGroup counter") == 0,
                  "%s: recovered \"%s\"", cases[i].what, m ? m : "(nothing)");
        CHECK(!completed);
        free(m);
    }
}

/* ---- once ------------------------------------------------------------------------------ */

static gort_once once;
static atomic_int once_calls, once_finished, once_early, once_returned;

static void once_fn(void *arg)
{
    atomic_fetch_add(&once_calls, 1);
    CHECK(arg == &once_calls);
    gort_sleep(20 * MS); /* the others must wait for this */
    atomic_store(&once_finished, 1);
}

static void once_caller(void *arg)
{
    (void)arg;
    gort_once_do(&once, once_fn, &once_calls);
    if (!atomic_load(&once_finished))
        atomic_fetch_add(&once_early, 1);
    atomic_fetch_add(&once_returned, 1);
}

static void count_fn(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_once(void)
{
    gort_gomaxprocs(2);
    enum { N = 16 };
    for (int i = 0; i < N; i++)
        gort_go(once_caller, NULL);
    CHECK(wait_ge(&once_returned, N, 30));
    CHECK_MSG(atomic_load(&once_calls) == 1, "once ran fn %d times", atomic_load(&once_calls));
    CHECK_MSG(atomic_load(&once_early) == 0, "%d callers returned before fn finished",
              atomic_load(&once_early));
    gort_once_do(&once, once_fn, &once_calls);
    CHECK(atomic_load(&once_calls) == 1);

    /* independent onces */
    gort_once a = {0}, b = {0};
    atomic_int ca = 0, cb = 0;
    for (int i = 0; i < 3; i++) {
        gort_once_do(&a, count_fn, &ca);
        gort_once_do(&b, count_fn, &cb);
    }
    CHECK(atomic_load(&ca) == 1 && atomic_load(&cb) == 1);
}

/* fn panics: the caller sees the panic; once is done */

static gort_once pon;
static atomic_int pon_calls, pon_state;

static void pon_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&pon_calls, 1);
    gort_panic("once fn %d", 7);
}

static void pon_do(void *arg)
{
    (void)arg;
    gort_once_do(&pon, pon_fn, NULL);
}

static char *pon_msg;
static bool pon_completed;

static void pon_second(void *arg)
{
    (void)arg;
    pon_msg = try_call(pon_do, NULL, &pon_completed);
    atomic_store(&pon_state, 1);
}

static void test_once_panic(void)
{
    bool completed = true;
    char *m = try_call(pon_do, NULL, &completed);
    CHECK_MSG(m && strcmp(m, "once fn 7") == 0, "panic in once's fn: recovered \"%s\"",
              m ? m : "(nothing)");
    CHECK(!completed);
    free(m);
    /* in a goroutine: a once left locked would hang it */
    gort_go(pon_second, NULL);
    CHECK_MSG(wait_ge(&pon_state, 1, 10), "once_do after fn panicked did not return");
    if (atomic_load(&pon_state)) {
        CHECK_MSG(pon_msg == NULL && pon_completed, "once_do after fn panicked: \"%s\"",
                  pon_msg ? pon_msg : "");
        CHECK_MSG(atomic_load(&pon_calls) == 1, "fn ran %d times", atomic_load(&pon_calls));
    }
}

static void main_fn(void *arg)
{
    (void)arg;
    test_wg_basic(1);
    test_wg_basic(2);
    test_wg_many_waiters();
    test_wg_negative();
    test_once();
    test_once_panic();
}

int main(void)
{
    int rc = gort_main(main_fn, NULL);
    CHECK_MSG(rc == 0, "gort_main returned %d", rc);
    return test_done();
}
