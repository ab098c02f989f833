/* test_timechan.c - time channels: gort_after, gort_timer_*, gort_ticker_*.
 *
 * gort.h: the channels carry an int64 (the nanotime of the firing) and have
 * capacity 1. gort_after(d) delivers once, no earlier than d after the
 * call; a select with a timer case wakes on time when nothing else
 * happens; a zero or negative duration fires at once; many timers each
 * fire no earlier than their own time. gort_timer_stop before the firing
 * returns true and nothing is ever received (a later non-blocking select
 * finds nothing); after the firing it returns false and the value waits in
 * the channel. gort_timer_reset re-arms (true if it was still active): the
 * firing moves to d after the reset. A ticker ticks again and again, the
 * k-th tick no earlier than k periods after its start, with increasing
 * values; gort_ticker_reset changes the period; after gort_ticker_stop no
 * tick comes. Only lower bounds on time are checked.
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

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* Non-blocking receive: true if a value was there. */
static bool try_recv(gort_chan *c, int64_t *v)
{
    gort_case cs = {c, GORT_RECV, v, false};
    return gort_select(&cs, 1, false) == 0;
}

static void test_after(void)
{
    for (int i = 0; i < 3; i++) {
        int64_t d = (int64_t)(i + 1) * 10 * MS;
        int64_t t0 = gort_nanotime();
        gort_chan *c = gort_after(d);
        REQUIRE(c);
        CHECK(gort_chan_cap(c) == 1);
        int64_t v = 0;
        CHECK(gort_chan_recv(c, &v));
        int64_t t1 = gort_nanotime();
        CHECK_MSG(t1 - t0 >= d, "gort_after(%" PRId64 " ms) fired after %" PRId64 " us",
                  d / MS, (t1 - t0) / 1000);
        CHECK_MSG(v >= t0 + d && v <= t1, "gort_after value %" PRId64 " not in [%" PRId64
                  ", %" PRId64 "]", v, t0 + d, t1);
        /* exactly one value */
        CHECK(!try_recv(c, &v));
    }

    /* zero and negative durations fire at once (no lower bound to wait for) */
    int64_t v;
    CHECK(gort_chan_recv(gort_after(0), &v));
    CHECK(gort_chan_recv(gort_after(-5 * SEC), &v));
}

static void test_select_timeout(void)
{
    gort_chan *never = gort_chan_make(sizeof(int64_t), 0);
    int64_t a = 0, b = 0;
    int64_t d = 30 * MS;
    int64_t t0 = gort_nanotime();
    gort_case cs[2] = {{never, GORT_RECV, &a, false}, {gort_after(d), GORT_RECV, &b, false}};
    int k = gort_select(cs, 2, true);
    int64_t t1 = gort_nanotime();
    CHECK_MSG(k == 1, "select with a timeout chose %d", k);
    CHECK(cs[1].ok);
    CHECK_MSG(t1 - t0 >= d, "select timeout after %" PRId64 " us, want >= %" PRId64 " ms",
              (t1 - t0) / 1000, d / MS);
    CHECK(b >= t0 + d);

    /* the timer does not fire early when another case is taken first */
    gort_chan *ready = gort_chan_make(sizeof(int64_t), 1);
    gort_chan_send(ready, &(int64_t){4});
    gort_timer *t = gort_timer_new(10 * SEC);
    gort_case cs2[2] = {{gort_timer_chan(t), GORT_RECV, &b, false}, {ready, GORT_RECV, &a, false}};
    CHECK(gort_select(cs2, 2, true) == 1 && a == 4);
    CHECK(gort_timer_stop(t));
}

/* many timers at once, each no earlier than its time */
static void test_many_timers(void)
{
    enum { N = 100 };
    gort_timer *t[N];
    int64_t due[N];
    int64_t t0 = gort_nanotime();
    uint32_t r = 7;
    for (int i = 0; i < N; i++) {
        r = r * 1103515245u + 12345u;
        int64_t d = (int64_t)((r >> 16) % 50) * MS;
        due[i] = gort_nanotime() + d;
        t[i] = gort_timer_new(d);
        REQUIRE(t[i]);
        CHECK(gort_chan_cap(gort_timer_chan(t[i])) == 1);
    }
    int early = 0, fired = 0;
    for (int i = 0; i < N; i++) {
        int64_t v = 0;
        if (gort_chan_recv(gort_timer_chan(t[i]), &v))
            fired++;
        if (gort_nanotime() < due[i] || v < due[i])
            early++;
    }
    CHECK_MSG(fired == N && early == 0, "%d of %d timers fired, %d early", fired, N, early);
    (void)t0;
}

static void test_timer_stop(void)
{
    gort_timer *t = gort_timer_new(100 * MS);
    REQUIRE(t);
    CHECK_MSG(gort_timer_stop(t), "stop before the firing returned false");
    gort_sleep(150 * MS);
    int64_t v;
    CHECK_MSG(!try_recv(gort_timer_chan(t), &v), "a stopped timer delivered a value");
    CHECK_MSG(!gort_timer_stop(t), "second stop returned true");

    /* stop after the firing: false, the value is in the channel */
    int64_t t0 = gort_nanotime();
    t = gort_timer_new(5 * MS);
    gort_sleep(30 * MS);
    CHECK_MSG(!gort_timer_stop(t), "stop after the firing returned true");
    v = 0;
    CHECK_MSG(try_recv(gort_timer_chan(t), &v), "a fired timer's value is not in its channel");
    CHECK(v >= t0 + 5 * MS);
    CHECK(!try_recv(gort_timer_chan(t), &v));

    /* stop after the value was received: false */
    t = gort_timer_new(MS);
    CHECK(gort_chan_recv(gort_timer_chan(t), &v));
    CHECK(!gort_timer_stop(t));
}

static void test_timer_reset(void)
{
    /* reset of an active timer: true, fires d after the reset */
    gort_timer *t = gort_timer_new(10 * SEC);
    gort_sleep(MS);
    int64_t t0 = gort_nanotime();
    CHECK_MSG(gort_timer_reset(t, 20 * MS), "reset of an active timer returned false");
    int64_t v = 0;
    CHECK(gort_chan_recv(gort_timer_chan(t), &v));
    int64_t t1 = gort_nanotime();
    CHECK_MSG(t1 - t0 >= 20 * MS && v >= t0 + 20 * MS, "reset timer fired after %" PRId64
              " us, want >= 20 ms", (t1 - t0) / 1000);
    CHECK(!try_recv(gort_timer_chan(t), &v));

    /* reset of a fired (and drained) timer: false, fires again */
    t0 = gort_nanotime();
    CHECK_MSG(!gort_timer_reset(t, 10 * MS), "reset of a fired timer returned true");
    CHECK(gort_chan_recv(gort_timer_chan(t), &v));
    t1 = gort_nanotime();
    CHECK(t1 - t0 >= 10 * MS && v >= t0 + 10 * MS);

    /* reset of a stopped timer: false, fires */
    t = gort_timer_new(10 * SEC);
    CHECK(gort_timer_stop(t));
    t0 = gort_nanotime();
    CHECK(!gort_timer_reset(t, 5 * MS));
    CHECK(gort_chan_recv(gort_timer_chan(t), &v));
    CHECK(gort_nanotime() - t0 >= 5 * MS);

    /* reset to a later time: nothing at the first time */
    t = gort_timer_new(100 * MS);
    CHECK(gort_timer_reset(t, 10 * SEC));
    gort_sleep(150 * MS);
    CHECK_MSG(!try_recv(gort_timer_chan(t), &v), "the timer fired at its time before reset");
    CHECK(gort_timer_stop(t));
}

static void test_ticker(void)
{
    int64_t period = 10 * MS;
    int64_t t0 = gort_nanotime();
    gort_timer *tk = gort_ticker_new(period);
    REQUIRE(tk);
    gort_chan *c = gort_timer_chan(tk);
    CHECK(gort_chan_cap(c) == 1);
    int ticks = (int)scaled(10);
    if (ticks < 3)
        ticks = 3;
    int64_t prev = 0;
    for (int k = 1; k <= ticks; k++) {
        int64_t v = 0;
        CHECK(gort_chan_recv(c, &v));
        int64_t now = gort_nanotime();
        CHECK_MSG(now - t0 >= k * period, "tick %d after %" PRId64 " us, want >= %" PRId64
                  " ms", k, (now - t0) / 1000, k * period / MS);
        CHECK_MSG(v > prev, "tick values not increasing: %" PRId64 " after %" PRId64, v, prev);
        prev = v;
    }

    /* a slow receiver: the ticker keeps at most one tick in the channel */
    gort_sleep(5 * period);
    CHECK(gort_chan_len(c) <= 1);

    /* reset to a longer period */
    int64_t v;
    int64_t longp = 60 * MS;
    int64_t t1 = gort_nanotime();
    gort_ticker_reset(tk, longp);
    try_recv(c, &v); /* a tick of the old period may be waiting */
    CHECK(gort_chan_recv(c, &v));
    int64_t t2 = gort_nanotime();
    CHECK_MSG(t2 - t1 >= longp, "first tick after reset after %" PRId64 " us, want >= %"
              PRId64 " ms", (t2 - t1) / 1000, longp / MS);
    CHECK(gort_chan_recv(c, &v));
    CHECK_MSG(gort_nanotime() - t1 >= 2 * longp, "second tick after reset too early");

    /* stop: no more ticks */
    gort_ticker_stop(tk);
    try_recv(c, &v);
    gort_sleep(3 * longp);
    CHECK_MSG(!try_recv(c, &v), "a stopped ticker ticked");

    /* reset after stop starts it again (Go 1.15+) */
    t1 = gort_nanotime();
    gort_ticker_reset(tk, period);
    CHECK(gort_chan_recv(c, &v));
    CHECK(gort_nanotime() - t1 >= period);
    gort_ticker_stop(tk);
}

/* a goroutine sleeping in select on a ticker, others working: all at GOMAXPROCS 2 */
static atomic_int tk_done;
static void tick_counter(void *arg)
{
    int n = (int)(intptr_t)arg;
    gort_timer *tk = gort_ticker_new(2 * MS);
    gort_chan *quit = gort_after(10 * SEC);
    int64_t v;
    int got = 0;
    while (got < n) {
        gort_case cs[2] = {{gort_timer_chan(tk), GORT_RECV, &v, false},
                           {quit, GORT_RECV, &v, false}};
        if (gort_select(cs, 2, true) == 1)
            break;
        got++;
    }
    gort_ticker_stop(tk);
    if (got == n)
        atomic_fetch_add(&tk_done, 1);
}

static void test_tickers_parallel(void)
{
    gort_gomaxprocs(2);
    enum { G = 8 };
    int n = (int)scaled(20);
    for (int i = 0; i < G; i++)
        gort_go(tick_counter, (void *)(intptr_t)n);
    int64_t deadline = gort_nanotime() + 30 * SEC;
    while (atomic_load(&tk_done) < G && gort_nanotime() < deadline)
        gort_sleep(MS);
    CHECK_MSG(atomic_load(&tk_done) == G, "%d of %d goroutines got their %d ticks",
              atomic_load(&tk_done), G, n);
}

static void main_fn(void *arg)
{
    (void)arg;
    test_after();
    test_select_timeout();
    test_many_timers();
    test_timer_stop();
    test_timer_reset();
    test_ticker();
    test_tickers_parallel();
}

int main(void)
{
    int rc = gort_main(main_fn, NULL);
    CHECK_MSG(rc == 0, "gort_main returned %d", rc);
    return test_done();
}
