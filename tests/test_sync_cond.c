/* test_sync_cond.c - gort_cond (gort.h, Go's sync.Cond).
 *
 * Zero value ready. wait unlocks the mutex, waits and relocks it (the
 * waiter holds it when wait returns). signal wakes exactly one waiter (Go:
 * wait cannot return unless woken by signal or broadcast), broadcast wakes
 * every waiter, and neither is remembered for goroutines that start
 * waiting later. No signal is lost between wait's unlock and its park: a
 * ping-pong whose signals are sent after unlocking, at GOMAXPROCS 1 and 2,
 * finishes.
 *
 * Where a test needs goroutines to be waiting before it signals, they count
 * themselves under the mutex before calling wait: once the main goroutine
 * holds the mutex and sees the count, they are all on the wait list.
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

static gort_mutex m;
static gort_cond cv;
static int waiting;            /* under m */
static atomic_int woken, relock_bad;

static void waiter(void *arg)
{
    (void)arg;
    gort_mutex_lock(&m);
    waiting++;
    gort_cond_wait(&cv, &m);
    /* wait relocked m: it is held (by us) */
    if (gort_mutex_trylock(&m))
        atomic_fetch_add(&relock_bad, 1);
    waiting--;
    atomic_fetch_add(&woken, 1);
    gort_mutex_unlock(&m);
}

/* Waits until n goroutines are on the wait list. */
static int wait_waiting(int n)
{
    int64_t deadline = gort_nanotime() + 30 * SEC;
    for (;;) {
        gort_mutex_lock(&m);
        int w = waiting;
        gort_mutex_unlock(&m);
        if (w >= n)
            return 1;
        if (gort_nanotime() > deadline)
            return 0;
        gort_sleep(MS / 5);
    }
}

static void test_signal_one(int procs)
{
    gort_gomaxprocs(procs);
    enum { N = 5 };
    atomic_store(&woken, 0);
    for (int i = 0; i < N; i++)
        gort_go(waiter, NULL);
    REQUIRE(wait_waiting(N));
    for (int k = 1; k <= N; k++) {
        gort_cond_signal(&cv);
        CHECK_MSG(wait_ge(&woken, k, 30), "signal %d woke nobody", k);
        gort_sleep(10 * MS);
        CHECK_MSG(atomic_load(&woken) == k, "GOMAXPROCS=%d: after %d signals %d woke", procs, k,
                  atomic_load(&woken));
    }
    /* nothing waits: a signal and a broadcast are not remembered */
    gort_cond_signal(&cv);
    gort_cond_broadcast(&cv);
    gort_go(waiter, NULL);
    REQUIRE(wait_waiting(1));
    gort_sleep(10 * MS);
    CHECK_MSG(atomic_load(&woken) == N, "an earlier signal woke a later waiter");
    gort_cond_signal(&cv);
    CHECK(wait_ge(&woken, N + 1, 30));
    CHECK(atomic_load(&relock_bad) == 0);
}

static void test_broadcast(int procs)
{
    gort_gomaxprocs(procs);
    enum { N = 8 };
    atomic_store(&woken, 0);
    for (int i = 0; i < N; i++)
        gort_go(waiter, NULL);
    REQUIRE(wait_waiting(N));
    gort_sleep(5 * MS);
    CHECK(atomic_load(&woken) == 0);
    gort_cond_broadcast(&cv);
    CHECK_MSG(wait_ge(&woken, N, 30), "broadcast woke %d of %d", atomic_load(&woken), N);
    CHECK(atomic_load(&relock_bad) == 0);
    gort_mutex_lock(&m);
    CHECK(waiting == 0);
    gort_mutex_unlock(&m);
}

/* ---- ping-pong: signal after unlock ------------------------------------------------- */

static gort_mutex pm;
static gort_cond pc;
static int turn;               /* under pm */
static long pp_rounds;
static atomic_int pp_done;
static atomic_long pp_progress;

static void pp_player(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (long i = 0; i < pp_rounds; i++) {
        gort_mutex_lock(&pm);
        while (turn != me)
            gort_cond_wait(&pc, &pm);
        turn = 1 - me;
        gort_mutex_unlock(&pm);
        /* outside the lock: races with the other's unlock-then-park */
        gort_cond_signal(&pc);
        atomic_fetch_add_explicit(&pp_progress, 1, memory_order_relaxed);
    }
    atomic_fetch_add(&pp_done, 1);
}

static void test_pingpong(int procs)
{
    gort_gomaxprocs(procs);
    pp_rounds = scaled(20000);
    turn = 0;
    atomic_store(&pp_done, 0);
    atomic_store(&pp_progress, 0);
    gort_go(pp_player, (void *)(intptr_t)0);
    gort_go(pp_player, (void *)(intptr_t)1);
    /* a lost signal leaves both waiting: give up after 30 s without progress */
    long last = -1;
    int64_t stuck_since = gort_nanotime();
    while (atomic_load(&pp_done) < 2) {
        long p = atomic_load(&pp_progress);
        if (p != last) {
            last = p;
            stuck_since = gort_nanotime();
        } else if (gort_nanotime() - stuck_since > 30 * SEC) {
            break;
        }
        gort_sleep(MS);
    }
    CHECK_MSG(atomic_load(&pp_done) == 2, "GOMAXPROCS=%d: ping-pong stuck after %ld of %ld "
              "moves (a lost signal)", procs, atomic_load(&pp_progress), 2 * pp_rounds);
}

/* ---- the window between wait's unlock and its park ----------------------------------
 * The waiter raises a flag under the mutex and waits; the signaler, on the
 * other P, spins until it sees the flag, takes the mutex (so the waiter is
 * inside wait, past its unlock) and signals at once: that lands in the
 * window before the waiter has parked. The signal must still wake it. */

static gort_mutex wm;
static gort_cond wc;
static atomic_int w_flag, w_rounds_done, w_stop;
static long w_rounds;

static void window_waiter(void *arg)
{
    (void)arg;
    for (long i = 0; i < w_rounds && !atomic_load(&w_stop); i++) {
        gort_mutex_lock(&wm);
        atomic_store(&w_flag, 1);
        gort_cond_wait(&wc, &wm);
        atomic_store(&w_flag, 0);
        gort_mutex_unlock(&wm);
        atomic_fetch_add(&w_rounds_done, 1);
    }
}

static void test_window(int procs)
{
    gort_gomaxprocs(procs);
    w_rounds = scaled(20000);
    atomic_store(&w_rounds_done, 0);
    atomic_store(&w_flag, 0);
    atomic_store(&w_stop, 0);
    gort_go(window_waiter, NULL);
    int stuck = 0;
    for (long i = 0; i < w_rounds; i++) {
        int64_t deadline = gort_nanotime() + 30 * SEC;
        while (!atomic_load(&w_flag)) {
            if (gort_nanotime() > deadline)
                break;
            gort_yield();
        }
        gort_mutex_lock(&wm);
        gort_mutex_unlock(&wm);
        gort_cond_signal(&wc);
        /* the signal must wake it: wait for the round to finish */
        while (atomic_load(&w_rounds_done) <= i) {
            if (gort_nanotime() > deadline) {
                stuck = 1;
                break;
            }
            gort_yield();
        }
        if (stuck) {
            CHECK_MSG(0, "GOMAXPROCS=%d: round %ld: a signal sent right after the waiter "
                      "unlocked did not wake it (lost between unlock and park)", procs, i);
            atomic_store(&w_stop, 1);
            gort_cond_broadcast(&wc); /* let it go if it can */
            break;
        }
    }
}

/* The same window, made wide at GOMAXPROCS=1: the mutex is put in
 * starvation mode (X has waited on it for more than 1 ms), so the unlock
 * inside W's cond_wait hands it straight to X, and (in Go's design) yields
 * to X before W has parked. X, holding the mutex W released inside wait,
 * signals: W must wake. */

static gort_mutex sw_m;
static gort_cond sw_c;
static atomic_int sw_x_waiting, sw_x_done, sw_w_done;

static void sw_x(void *arg)
{
    (void)arg;
    atomic_store(&sw_x_waiting, 1);
    gort_mutex_lock(&sw_m);
    gort_cond_signal(&sw_c);
    gort_mutex_unlock(&sw_m);
    atomic_store(&sw_x_done, 1);
}

static void sw_w(void *arg)
{
    (void)arg;
    gort_mutex_lock(&sw_m);
    gort_go(sw_x, NULL);
    while (!atomic_load(&sw_x_waiting))
        gort_yield();
    gort_sleep(3 * MS);       /* X waits on the mutex > 1 ms */
    gort_mutex_unlock(&sw_m); /* wakes X ... */
    gort_mutex_lock(&sw_m);   /* ... which finds it locked again: starving */
    gort_sleep(3 * MS);
    gort_cond_wait(&sw_c, &sw_m);
    gort_mutex_unlock(&sw_m);
    atomic_store(&sw_w_done, 1);
}

static void test_window_starving(void)
{
    gort_gomaxprocs(1);
    for (int round = 0; round < 5; round++) {
        atomic_store(&sw_x_waiting, 0);
        atomic_store(&sw_x_done, 0);
        atomic_store(&sw_w_done, 0);
        gort_go(sw_w, NULL);
        int ok = wait_ge(&sw_x_done, 1, 30) && wait_ge(&sw_w_done, 1, 10);
        CHECK_MSG(ok, "round %d: a signal from the goroutine the mutex was handed to inside "
                  "cond_wait did not wake the waiter (x done %d, w done %d)", round,
                  atomic_load(&sw_x_done), atomic_load(&sw_w_done));
        if (!ok) {
            gort_cond_broadcast(&sw_c);
            break;
        }
    }
}

/* ---- many waiters, a producer with broadcast and signal -------------------------------- */

static gort_mutex qm;
static gort_cond qc;
static long q_items, q_taken;       /* under qm */
static bool q_closed;
static atomic_int q_done;

static void q_consumer(void *arg)
{
    (void)arg;
    for (;;) {
        gort_mutex_lock(&qm);
        while (q_items == 0 && !q_closed)
            gort_cond_wait(&qc, &qm);
        if (q_items == 0 && q_closed) {
            gort_mutex_unlock(&qm);
            break;
        }
        q_items--;
        q_taken++;
        gort_mutex_unlock(&qm);
    }
    atomic_fetch_add(&q_done, 1);
}

static void test_queue(void)
{
    gort_gomaxprocs(2);
    enum { C = 6 };
    long n = scaled(20000);
    for (int i = 0; i < C; i++)
        gort_go(q_consumer, NULL);
    for (long i = 0; i < n; i++) {
        gort_mutex_lock(&qm);
        q_items++;
        gort_mutex_unlock(&qm);
        if (i % 3 == 0)
            gort_cond_broadcast(&qc);
        else
            gort_cond_signal(&qc);
        if (i % 64 == 0)
            gort_yield();
    }
    gort_mutex_lock(&qm);
    q_closed = true;
    gort_mutex_unlock(&qm);
    gort_cond_broadcast(&qc);
    CHECK_MSG(wait_ge(&q_done, C, 30), "%d of %d consumers finished", atomic_load(&q_done), C);
    gort_mutex_lock(&qm);
    CHECK_MSG(q_taken == n && q_items == 0, "taken %ld of %ld", q_taken, n);
    gort_mutex_unlock(&qm);
}

static void main_fn(void *arg)
{
    (void)arg;
    test_signal_one(1);
    test_signal_one(2);
    test_broadcast(1);
    test_broadcast(2);
    test_window_starving();
    test_window(2);
    test_window(4);
    test_pingpong(1);
    test_pingpong(2);
    test_queue();
}

int main(void)
{
    int rc = gort_main(main_fn, NULL);
    CHECK_MSG(rc == 0, "gort_main returned %d", rc);
    return test_done();
}
