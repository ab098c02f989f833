/* test_sched_lockos.c - gort_lock_os_thread / gort_unlock_os_thread.
 *
 * Go's rules (runtime.LockOSThread): a locked goroutine always runs on the
 * same thread, and while it is locked no other goroutine runs on that
 * thread; calls nest (the goroutine stays locked until as many unlocks as
 * locks); a goroutine that exits locked takes its thread with it and the
 * runtime carries on.
 *
 * At GOMAXPROCS=2 a locked goroutine yields and sleeps many times and must
 * always find itself on the same pthread, while other goroutines, yielding
 * and sleeping too, keep making progress and never show up on that thread.
 * After the unlock it may move; it only has to keep working. Then the same
 * with a nested lock (two locks, one unlock: still locked), and goroutines
 * that exit while locked.
 *
 * GORT_TEST_SCALE (a positive number, default 1) scales the loop counts.
 */
#define _GNU_SOURCE
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

static int wait_ge(atomic_long *v, long want, int secs)
{
    int64_t deadline = gort_nanotime() + secs * SEC;
    while (atomic_load(v) < want) {
        if (gort_nanotime() > deadline)
            return 0;
        gort_sleep(MS);
    }
    return 1;
}

/* pthread_self through a function the compiler cannot see into: glibc
 * declares it const, so the compiler could keep one result across a yield
 * after which the goroutine runs on another thread. */
static __attribute__((noinline)) pthread_t current_thread(void)
{
    __asm__ __volatile__("" ::: "memory");
    return pthread_self();
}

static long iters;

/* The locked thread, published while a goroutine is locked to it. */
static _Atomic(pthread_t) locked_tid; /* pthread_t is an integer on Linux */
static atomic_int locked_active;

static atomic_long others_progress, others_on_locked, others_done;
static atomic_int stop_others;

static void other_fn(void *arg)
{
    (void)arg;
    long i = 0;
    while (!atomic_load(&stop_others)) {
        if (atomic_load(&locked_active) &&
            pthread_equal(current_thread(), atomic_load(&locked_tid)))
            atomic_fetch_add(&others_on_locked, 1);
        atomic_fetch_add(&others_progress, 1);
        if (++i % 50 == 0)
            gort_sleep(MS / 10);
        else
            gort_yield();
    }
    atomic_fetch_add(&others_done, 1);
}

typedef struct lock_result {
    long moved_locked;      /* times seen off the locked thread */
    long progress_during;   /* others' progress while locked */
    long after_unlock;      /* iterations after the unlock */
} lock_result;

static lock_result res[2];
static atomic_long locked_done;

/* nested: lock twice, unlock once, and check it is still locked. */
static void locked_fn(void *arg)
{
    int nested = (int)(intptr_t)arg;
    lock_result *r = &res[nested];
    gort_lock_os_thread();
    if (nested)
        gort_lock_os_thread();
    pthread_t me = current_thread();
    atomic_store(&locked_tid, me);
    atomic_store(&locked_active, 1);
    long p0 = atomic_load(&others_progress);

    for (int phase = 0; phase < 1 + nested; phase++) {
        if (phase == 1)
            gort_unlock_os_thread(); /* one of two: still locked */
        for (long i = 0; i < iters; i++) {
            if (i % 25 == 0)
                gort_sleep(MS / 5);
            else
                gort_yield();
            if (!pthread_equal(current_thread(), me))
                r->moved_locked++;
        }
    }
    r->progress_during = atomic_load(&others_progress) - p0;

    atomic_store(&locked_active, 0);
    gort_unlock_os_thread();
    for (long i = 0; i < iters; i++) {
        gort_yield();
        r->after_unlock++;
    }
    atomic_fetch_add(&locked_done, 1);
}

static atomic_long exit_locked_ran, after_exit_done;

static void exit_locked_fn(void *arg)
{
    (void)arg;
    gort_lock_os_thread();
    gort_yield();
    atomic_fetch_add(&exit_locked_ran, 1);
    /* returns locked: the thread goes with it */
}

static void after_exit_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++)
        gort_yield();
    atomic_fetch_add(&after_exit_done, 1);
}

static void real_main(void *arg)
{
    (void)arg;
    int prev = gort_gomaxprocs(2);
    iters = (long)(1000 * test_scale());
    if (iters < 100)
        iters = 100;

    for (int i = 0; i < 4; i++)
        gort_go(other_fn, NULL);

    for (int nested = 0; nested < 2; nested++) {
        atomic_store(&locked_done, 0);
        gort_go(locked_fn, (void *)(intptr_t)nested);
        CHECK_MSG(wait_ge(&locked_done, 1, 50), "the locked goroutine did not finish (%s)",
                  nested ? "nested" : "simple");
        lock_result *r = &res[nested];
        const char *what = nested ? "nested lock" : "lock";
        CHECK_MSG(r->moved_locked == 0, "%s: the locked goroutine ran on another thread %ld times",
                  what, r->moved_locked);
        CHECK_MSG(r->progress_during > 0,
                  "%s: other goroutines made no progress while one was locked", what);
        CHECK_MSG(r->after_unlock == iters, "%s: %ld iterations after unlock", what,
                  r->after_unlock);
        CHECK_MSG(atomic_load(&others_on_locked) == 0,
                  "%s: other goroutines ran %ld times on the locked thread", what,
                  atomic_load(&others_on_locked));
    }

    /* The main goroutine itself, locked across yields and sleeps. */
    gort_lock_os_thread();
    pthread_t me = current_thread();
    atomic_store(&locked_tid, me);
    atomic_store(&locked_active, 1);
    long moved = 0;
    for (long i = 0; i < iters; i++) {
        if (i % 25 == 0)
            gort_sleep(MS / 5);
        else
            gort_yield();
        if (!pthread_equal(current_thread(), me))
            moved++;
    }
    atomic_store(&locked_active, 0);
    gort_unlock_os_thread();
    CHECK_MSG(moved == 0, "locked main goroutine ran on another thread %ld times", moved);
    CHECK_MSG(atomic_load(&others_on_locked) == 0,
              "other goroutines ran %ld times on main's locked thread",
              atomic_load(&others_on_locked));

    /* Exiting while locked. */
    for (int i = 0; i < 5; i++)
        gort_go(exit_locked_fn, NULL);
    CHECK(wait_ge(&exit_locked_ran, 5, 30));
    for (int i = 0; i < 20; i++)
        gort_go(after_exit_fn, NULL);
    CHECK_MSG(wait_ge(&after_exit_done, 20, 30),
              "after goroutines exited locked, only %ld of 20 new ones finished",
              atomic_load(&after_exit_done));

    atomic_store(&stop_others, 1);
    CHECK(wait_ge(&others_done, 4, 30));
    int64_t deadline = gort_nanotime() + 30 * SEC;
    while (gort_num_goroutine() > 1 && gort_nanotime() < deadline)
        gort_sleep(MS);
    CHECK(gort_num_goroutine() == 1);
    gort_gomaxprocs(prev);
}

int main(void)
{
    CHECK(gort_main(real_main, NULL) == 0);
    return test_done();
}
