/* test_sched_syscall.c - goroutines blocked in bracketed system calls.
 *
 * gort.h: gort_entersyscall / gort_exitsyscall bracket a blocking call;
 * sysmon hands the P to another M after 20 us, so the other goroutines keep
 * running.
 *
 * All at GOMAXPROCS=1, where a P held by a blocked thread would stop
 * everything:
 * - one goroutine blocks in poll+read on an empty pipe (poll gives up after
 *   10 s): the others must make progress while it is blocked, before the
 *   pipe is written; then the write wakes it (poll reports data, not a
 *   timeout);
 * - four goroutines blocked at once on four pipes, the same;
 * - the main goroutine itself blocked, and woken by a goroutine that could
 *   only run because main's P was handed off;
 * - many short bracketed calls (nanosleep) in a loop: each gort_exitsyscall
 *   must get a P back before user code runs again, so that at no time do two
 *   goroutines run user code (counted around every runtime call);
 * - errno set by the bracketed call survives gort_exitsyscall, on the fast
 *   and the slow path.
 *
 * No timing thresholds: the checks are on what happened before what.
 * GORT_TEST_SCALE (a positive number, default 1) scales the loop counts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
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
#define POLL_MS 10000
#define PROGRESS 1000

/* ---- who runs user code: at GOMAXPROCS=1, one goroutine at a time --------- */

static atomic_int running, running_max;

static void enter_user(void)
{
    int r = atomic_fetch_add(&running, 1) + 1;
    int m = atomic_load(&running_max);
    while (r > m && !atomic_compare_exchange_weak(&running_max, &m, r))
        ;
}

static void leave_user(void)
{
    atomic_fetch_sub(&running, 1);
}

static void y(void)
{
    leave_user();
    gort_yield();
    enter_user();
}

static void slp(int64_t ns)
{
    leave_user();
    gort_sleep(ns);
    enter_user();
}

static void sys_begin(void)
{
    leave_user();
    gort_entersyscall();
}

static void sys_end(void)
{
    gort_exitsyscall();
    enter_user();
}

/* gort_go may switch too (a goroutine marked for preemption yields there). */
static void go(gort_fn fn, void *arg)
{
    leave_user();
    gort_go(fn, arg);
    enter_user();
}

/* errno through functions the compiler cannot see into: glibc declares
 * __errno_location const, so the compiler may keep errno's address across a
 * call that resumes the goroutine on another thread, whose errno lives
 * elsewhere. */
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

/* ---- a counting goroutine ---------------------------------------------------- */

static atomic_long w_count;
static atomic_int w_stop;
static atomic_long w_done;

static void counter_fn(void *arg)
{
    (void)arg;
    enter_user();
    while (!atomic_load(&w_stop)) {
        atomic_fetch_add(&w_count, 1);
        y();
    }
    leave_user();
    atomic_fetch_add(&w_done, 1);
}

static void stop_counter(long want_done)
{
    atomic_store(&w_stop, 1);
    while (atomic_load(&w_done) < want_done)
        y();
    atomic_store(&w_stop, 0);
}

/* ---- blocked readers ------------------------------------------------------------ */

typedef struct reader {
    int fd;
    atomic_int entered, returned;
    int poll_rc, read_rc;
} reader;

static void reader_fn(void *arg)
{
    reader *r = arg;
    enter_user();
    atomic_store(&r->entered, 1);
    sys_begin();
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    int pr = poll(&p, 1, POLL_MS);
    char c;
    int rr = pr == 1 ? (int)read(r->fd, &c, 1) : -1;
    sys_end();
    r->poll_rc = pr;
    r->read_rc = rr;
    atomic_store(&r->returned, 1);
    leave_user();
}

/* Waits (yielding, so the others run) until the counter has moved PROGRESS
 * since c0, or any reader returned, or 20 s; returns the progress. */
static long progress_while_blocked(long c0, reader *rs, int n)
{
    int64_t deadline = gort_nanotime() + 20 * SEC;
    for (;;) {
        long d = atomic_load(&w_count) - c0;
        if (d >= PROGRESS || gort_nanotime() > deadline)
            return d;
        for (int i = 0; i < n; i++)
            if (atomic_load(&rs[i].returned))
                return d;
        y();
    }
}

static void test_blocked_readers(int n)
{
    static reader rs[4];
    int wfd[4];
    for (int i = 0; i < n; i++) {
        int fd[2];
        REQUIRE(pipe(fd) == 0);
        memset(&rs[i], 0, sizeof rs[i]);
        rs[i].fd = fd[0];
        wfd[i] = fd[1];
    }
    long done0 = atomic_load(&w_done);
    go(counter_fn, NULL);
    for (int i = 0; i < n; i++)
        go(reader_fn, &rs[i]);
    for (int i = 0; i < n; i++)
        while (!atomic_load(&rs[i].entered))
            y();

    long c0 = atomic_load(&w_count);
    long progress = progress_while_blocked(c0, rs, n);
    int returned_early = 0;
    for (int i = 0; i < n; i++)
        returned_early += atomic_load(&rs[i].returned);

    for (int i = 0; i < n; i++)
        REQUIRE(write(wfd[i], "x", 1) == 1);
    for (int i = 0; i < n; i++)
        while (!atomic_load(&rs[i].returned))
            slp(MS);
    stop_counter(done0 + 1);

    CHECK_MSG(returned_early == 0,
              "%d of %d readers returned before their pipe was written (poll timed out: "
              "the others could not run while they were blocked)",
              returned_early, n);
    CHECK_MSG(progress >= PROGRESS,
              "%d blocked reader(s) at GOMAXPROCS=1: the others made %ld steps, want %d",
              n, progress, PROGRESS);
    for (int i = 0; i < n; i++) {
        CHECK_MSG(rs[i].poll_rc == 1 && rs[i].read_rc == 1, "reader %d: poll %d read %d", i,
                  rs[i].poll_rc, rs[i].read_rc);
        close(rs[i].fd);
        close(wfd[i]);
    }
}

/* ---- the main goroutine blocked ------------------------------------------------- */

static atomic_int main_in_sys;
static int waker_fd;
static atomic_long waker_steps, waker_done;

static void waker_fn(void *arg)
{
    (void)arg;
    enter_user();
    while (!atomic_load(&main_in_sys))
        y();
    for (int i = 0; i < 100; i++) {
        atomic_fetch_add(&waker_steps, 1);
        y();
    }
    REQUIRE(write(waker_fd, "x", 1) == 1);
    leave_user();
    atomic_fetch_add(&waker_done, 1);
}

static void test_main_blocked(void)
{
    int fd[2];
    REQUIRE(pipe(fd) == 0);
    waker_fd = fd[1];
    go(waker_fn, NULL);
    atomic_store(&main_in_sys, 1);
    sys_begin();
    struct pollfd p = {.fd = fd[0], .events = POLLIN};
    int pr = poll(&p, 1, POLL_MS);
    sys_end();
    CHECK_MSG(pr == 1, "main blocked in poll: poll returned %d (timed out: no goroutine ran "
                       "while main was in the system call)", pr);
    CHECK(atomic_load(&waker_steps) == 100);
    while (atomic_load(&waker_done) < 1)
        y();
    close(fd[0]);
    close(fd[1]);
}

/* ---- many short bracketed calls, errno ----------------------------------------- */

static atomic_long churn_done, churn_iters, errno_bad, errno_checked;

static void churn_fn(void *arg)
{
    long iters = (long)(intptr_t)arg;
    int fd[2];
    REQUIRE(pipe2(fd, O_NONBLOCK) == 0);
    enter_user();
    for (long i = 0; i < iters; i++) {
        char c;
        sys_begin();
        ssize_t r = read(fd[0], &c, 1); /* empty: EAGAIN */
        int e = get_errno();
        if (i % 2) {
            /* Long enough for sysmon to take the P: the slow way back. */
            struct timespec ts = {0, 200 * 1000};
            nanosleep(&ts, NULL);
        }
        set_errno(e);
        sys_end();
        if (r == -1) {
            atomic_fetch_add(&errno_checked, 1);
            if (get_errno() != EAGAIN)
                atomic_fetch_add(&errno_bad, 1);
        }
        atomic_fetch_add(&churn_iters, 1);
        if (i % 10 == 0)
            y();
    }
    leave_user();
    close(fd[0]);
    close(fd[1]);
    atomic_fetch_add(&churn_done, 1);
}

static void test_churn(void)
{
    long iters = (long)(400 * test_scale());
    if (iters < 20)
        iters = 20;
    long done0 = atomic_load(&w_done);
    go(counter_fn, NULL);
    for (int i = 0; i < 3; i++)
        go(churn_fn, (void *)(intptr_t)iters);
    int64_t deadline = gort_nanotime() + 40 * SEC;
    while (atomic_load(&churn_done) < 3 && gort_nanotime() < deadline)
        slp(MS);
    stop_counter(done0 + 1);
    CHECK_MSG(atomic_load(&churn_done) == 3, "only %ld of 3 goroutines finished their %ld "
              "system calls", atomic_load(&churn_done), iters);
    CHECK(atomic_load(&churn_iters) == 3 * iters);
    CHECK(atomic_load(&errno_checked) == 3 * iters);
    CHECK_MSG(atomic_load(&errno_bad) == 0,
              "errno of the bracketed call lost across gort_exitsyscall %ld of %ld times",
              atomic_load(&errno_bad), atomic_load(&errno_checked));
}

static void check_exclusive(const char *phase)
{
    CHECK_MSG(atomic_load(&running_max) == 1,
              "%s: %d goroutines ran user code at once at GOMAXPROCS=1", phase,
              atomic_load(&running_max));
    atomic_store(&running_max, 1);
}

static void real_main(void *arg)
{
    (void)arg;
    int prev = gort_gomaxprocs(1);
    enter_user();

    test_blocked_readers(1);
    check_exclusive("one blocked reader");
    test_blocked_readers(4);
    check_exclusive("four blocked readers");
    test_main_blocked();
    check_exclusive("main blocked");
    test_churn();
    check_exclusive("many short system calls");
    leave_user();
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
