/* test_sync_mutex.c - gort_mutex and gort_rwmutex (gort.h, Go's sync).
 *
 * Mutex: zero value ready; mutual exclusion under contention (goroutines
 * incrementing a plain counter, at GOMAXPROCS 1, 2 and 4, some yielding
 * while they hold it); trylock; a mutex may be unlocked by another
 * goroutine than the one that locked it; starvation: a goroutine that
 * re-locks in a loop cannot keep a waiter out forever (Go's starvation
 * mode hands the lock over; the bound is generous: 10 s), at GOMAXPROCS 1
 * and 2.
 *
 * RWMutex: readers hold it together (seen at GOMAXPROCS 1 and with two
 * readers inside at once at GOMAXPROCS 2); a writer excludes readers and
 * writers; a pending writer blocks new readers (writer preference) and gets
 * the lock before them; the writer's unlock lets every blocked reader in.
 *
 * Where a test needs a goroutine to be blocked before it acts, it runs at
 * GOMAXPROCS=1: the scheduler does not preempt, so when the main goroutine
 * runs again after the other one raised its flag, the other one has parked.
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

/* ---- mutual exclusion ------------------------------------------------------- */

static gort_mutex mx;            /* zero value */
static long mx_counter;          /* plain: only the mutex protects it */
static atomic_int mx_inside, mx_overlap, mx_done;
static long mx_iters;

static void mx_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (long i = 0; i < mx_iters; i++) {
        gort_mutex_lock(&mx);
        if (atomic_fetch_add(&mx_inside, 1) != 0)
            atomic_fetch_add(&mx_overlap, 1);
        long c = mx_counter;
        if ((i + id) % 97 == 0)
            gort_yield(); /* hold it across a reschedule */
        mx_counter = c + 1;
        atomic_fetch_sub(&mx_inside, 1);
        gort_mutex_unlock(&mx);
    }
    atomic_fetch_add(&mx_done, 1);
}

static void test_mutual_exclusion(int procs)
{
    gort_gomaxprocs(procs);
    enum { G = 8 };
    mx_iters = scaled(20000);
    mx_counter = 0;
    atomic_store(&mx_done, 0);
    atomic_store(&mx_overlap, 0);
    for (int i = 0; i < G; i++)
        gort_go(mx_worker, (void *)(intptr_t)i);
    CHECK(wait_ge(&mx_done, G, 60));
    gort_mutex_lock(&mx);
    CHECK_MSG(mx_counter == G * mx_iters && atomic_load(&mx_overlap) == 0,
              "GOMAXPROCS=%d: counter %ld, want %ld; %d times two goroutines inside", procs,
              mx_counter, G * mx_iters, atomic_load(&mx_overlap));
    gort_mutex_unlock(&mx);
}

/* ---- trylock ----------------------------------------------------------------- */

static gort_mutex tm;
static atomic_int tl_result, tl_done;

static void tl_try(void *arg)
{
    (void)arg;
    bool ok = gort_mutex_trylock(&tm);
    atomic_store(&tl_result, ok ? 1 : 0);
    if (ok)
        gort_mutex_unlock(&tm);
    atomic_fetch_add(&tl_done, 1);
}

static void test_trylock(void)
{
    gort_gomaxprocs(2);
    CHECK(gort_mutex_trylock(&tm));
    CHECK_MSG(!gort_mutex_trylock(&tm), "trylock of a locked mutex succeeded");
    atomic_store(&tl_done, 0);
    atomic_store(&tl_result, -1);
    gort_go(tl_try, NULL);
    CHECK(wait_ge(&tl_done, 1, 30));
    CHECK_MSG(atomic_load(&tl_result) == 0, "trylock from another goroutine succeeded");
    gort_mutex_unlock(&tm);
    atomic_store(&tl_done, 0);
    gort_go(tl_try, NULL);
    CHECK(wait_ge(&tl_done, 1, 30));
    CHECK(atomic_load(&tl_result) == 1);
    gort_mutex_lock(&tm);
    CHECK(!gort_mutex_trylock(&tm));
    gort_mutex_unlock(&tm);
}

/* ---- unlock from another goroutine -------------------------------------------------- */

static gort_mutex om;
static atomic_int om_state;

static void om_locker(void *arg)
{
    (void)arg;
    atomic_store(&om_state, 1);
    gort_mutex_lock(&om); /* blocks: main holds it */
    atomic_store(&om_state, 2);
    gort_mutex_unlock(&om);
}

static void om_unlocker(void *arg)
{
    (void)arg;
    gort_mutex_unlock(&om); /* main's lock */
}

static void test_unlock_other_goroutine(void)
{
    gort_gomaxprocs(1);
    gort_mutex_lock(&om);
    gort_go(om_locker, NULL);
    CHECK(wait_ge(&om_state, 1, 30));
    gort_sleep(5 * MS);
    CHECK(atomic_load(&om_state) == 1);
    gort_go(om_unlocker, NULL);
    CHECK_MSG(wait_ge(&om_state, 2, 30), "unlock by another goroutine did not let the "
              "waiter in");
}

/* ---- starvation ------------------------------------------------------------------------
 * The hog holds the mutex across a short sleep and re-locks it right after
 * unlocking (Go's TestMutexFairness). In normal mode the waiter woken by
 * the unlock always finds it locked again; starvation mode (a waiter that
 * waited more than 1 ms is handed the lock) lets it in. The waiter locks
 * 10 times; the bound is generous: 10 s. */

static gort_mutex sm;
static atomic_int st_stop, st_got, st_hog_started;
static atomic_long st_hog_iters;

static void st_hog(void *arg)
{
    (void)arg;
    atomic_store(&st_hog_started, 1);
    while (!atomic_load(&st_stop)) {
        gort_mutex_lock(&sm);
        gort_sleep(100 * 1000); /* 100 us, holding it */
        gort_mutex_unlock(&sm);
        atomic_fetch_add_explicit(&st_hog_iters, 1, memory_order_relaxed);
    }
    atomic_fetch_add(&st_stop, 1);
}

static void st_waiter(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        gort_sleep(100 * 1000);
        gort_mutex_lock(&sm);
        gort_mutex_unlock(&sm);
        atomic_fetch_add(&st_got, 1);
    }
}

static void test_starvation(int procs)
{
    gort_gomaxprocs(procs);
    atomic_store(&st_stop, 0);
    atomic_store(&st_got, 0);
    atomic_store(&st_hog_started, 0);
    atomic_store(&st_hog_iters, 0);
    gort_go(st_hog, NULL);
    CHECK(wait_ge(&st_hog_started, 1, 30));
    gort_go(st_waiter, NULL);
    int got = wait_ge(&st_got, 10, 10);
    long iters = atomic_load(&st_hog_iters);
    int n = atomic_load(&st_got);
    atomic_store(&st_stop, 1);
    CHECK_MSG(got, "GOMAXPROCS=%d: a goroutine re-locking the mutex in a loop kept a waiter "
              "out: %d of 10 locks in 10 s (%ld hog rounds)", procs, n, iters);
    /* let both finish before the next test */
    CHECK(wait_ge(&st_stop, 2, 30));
    CHECK(wait_ge(&st_got, 10, 30));
}

/* ---- rwmutex: readers together -------------------------------------------------------- */

static gort_rwmutex rw;
static atomic_int rd_state;

static void rd_second(void *arg)
{
    (void)arg;
    gort_rwmutex_rlock(&rw);
    atomic_store(&rd_state, 1);
    gort_rwmutex_runlock(&rw);
    atomic_store(&rd_state, 2);
}

static atomic_int both_inside, both_seen, both_done;

static void rd_pair(void *arg)
{
    (void)arg;
    gort_rwmutex_rlock(&rw);
    atomic_fetch_add(&both_inside, 1);
    int64_t deadline = gort_nanotime() + 20 * SEC;
    while (atomic_load(&both_inside) < 2 && gort_nanotime() < deadline)
        gort_yield();
    if (atomic_load(&both_inside) >= 2)
        atomic_fetch_add(&both_seen, 1);
    gort_rwmutex_runlock(&rw);
    atomic_fetch_add(&both_done, 1);
}

static void test_readers_together(void)
{
    gort_gomaxprocs(1);
    gort_rwmutex_rlock(&rw);
    gort_go(rd_second, NULL);
    CHECK_MSG(wait_ge(&rd_state, 1, 20), "a second reader could not get in");
    gort_rwmutex_runlock(&rw);
    CHECK(wait_ge(&rd_state, 2, 30));

    gort_gomaxprocs(2);
    gort_go(rd_pair, NULL);
    gort_go(rd_pair, NULL);
    CHECK(wait_ge(&both_done, 2, 30));
    CHECK_MSG(atomic_load(&both_seen) == 2, "two readers were not inside at once");
}

/* ---- rwmutex: writers exclusive --------------------------------------------------------- */

static atomic_int rw_readers, rw_writers, rw_bad, rw_done;
static long rw_counter, rw_iters;

static void rw_reader(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (long i = 0; i < rw_iters; i++) {
        gort_rwmutex_rlock(&rw);
        atomic_fetch_add(&rw_readers, 1);
        if (atomic_load(&rw_writers) != 0)
            atomic_fetch_add(&rw_bad, 1);
        volatile long c = rw_counter;
        (void)c;
        if ((i + id) % 13 == 0)
            gort_yield();
        if (atomic_load(&rw_writers) != 0)
            atomic_fetch_add(&rw_bad, 1);
        atomic_fetch_sub(&rw_readers, 1);
        gort_rwmutex_runlock(&rw);
    }
    atomic_fetch_add(&rw_done, 1);
}

static void rw_writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (long i = 0; i < rw_iters; i++) {
        gort_rwmutex_lock(&rw);
        if (atomic_fetch_add(&rw_writers, 1) != 0 || atomic_load(&rw_readers) != 0)
            atomic_fetch_add(&rw_bad, 1);
        long c = rw_counter;
        if ((i + id) % 17 == 0)
            gort_yield();
        rw_counter = c + 1;
        if (atomic_load(&rw_readers) != 0)
            atomic_fetch_add(&rw_bad, 1);
        atomic_fetch_sub(&rw_writers, 1);
        gort_rwmutex_unlock(&rw);
    }
    atomic_fetch_add(&rw_done, 1);
}

static void test_writer_exclusive(int procs)
{
    gort_gomaxprocs(procs);
    enum { R = 6, W = 3 };
    rw_iters = scaled(5000);
    rw_counter = 0;
    atomic_store(&rw_done, 0);
    atomic_store(&rw_bad, 0);
    for (int i = 0; i < R + W; i++) {
        if (i % 3 == 1)
            gort_go(rw_writer, (void *)(intptr_t)i);
        else
            gort_go(rw_reader, (void *)(intptr_t)i);
    }
    CHECK(wait_ge(&rw_done, R + W, 60));
    gort_rwmutex_lock(&rw);
    CHECK_MSG(rw_counter == W * rw_iters && atomic_load(&rw_bad) == 0,
              "GOMAXPROCS=%d: counter %ld, want %ld; %d exclusion violations", procs,
              rw_counter, W * rw_iters, atomic_load(&rw_bad));
    gort_rwmutex_unlock(&rw);
}

/* ---- rwmutex: writer preference ------------------------------------------------------------ */

static atomic_int wp_w_started, wp_r_started, wp_n;
static char wp_order[4];

static void wp_writer(void *arg)
{
    (void)arg;
    atomic_store(&wp_w_started, 1);
    gort_rwmutex_lock(&rw);
    wp_order[atomic_fetch_add(&wp_n, 1)] = 'W';
    gort_rwmutex_unlock(&rw);
}

static void wp_reader(void *arg)
{
    (void)arg;
    atomic_store(&wp_r_started, 1);
    gort_rwmutex_rlock(&rw);
    wp_order[atomic_fetch_add(&wp_n, 1)] = 'R';
    gort_rwmutex_runlock(&rw);
}

static void test_writer_preference(void)
{
    gort_gomaxprocs(1);
    gort_rwmutex_rlock(&rw);
    gort_go(wp_writer, NULL);
    CHECK(wait_ge(&wp_w_started, 1, 30));
    gort_sleep(5 * MS);
    CHECK_MSG(atomic_load(&wp_n) == 0, "a writer got in while a reader held the lock");
    gort_go(wp_reader, NULL);
    CHECK(wait_ge(&wp_r_started, 1, 30));
    gort_sleep(5 * MS);
    CHECK_MSG(atomic_load(&wp_n) == 0, "a new reader got in while a writer was waiting");
    gort_rwmutex_runlock(&rw);
    CHECK(wait_ge(&wp_n, 2, 30));
    CHECK_MSG(wp_order[0] == 'W' && wp_order[1] == 'R', "order %c%c, want WR", wp_order[0],
              wp_order[1]);
}

/* ---- rwmutex: the writer's unlock lets all blocked readers in --------------------------------- */

static atomic_int wr_started, wr_inside, wr_seen_all, wr_done;
enum { WR_N = 5 };

static void wr_reader(void *arg)
{
    (void)arg;
    atomic_fetch_add(&wr_started, 1);
    gort_rwmutex_rlock(&rw);
    atomic_fetch_add(&wr_inside, 1);
    int64_t deadline = gort_nanotime() + 20 * SEC;
    while (atomic_load(&wr_inside) < WR_N && gort_nanotime() < deadline)
        gort_yield();
    if (atomic_load(&wr_inside) >= WR_N)
        atomic_fetch_add(&wr_seen_all, 1);
    gort_rwmutex_runlock(&rw);
    atomic_fetch_add(&wr_done, 1);
}

static void test_writer_unlock_wakes_readers(void)
{
    gort_gomaxprocs(1);
    gort_rwmutex_lock(&rw);
    for (int i = 0; i < WR_N; i++)
        gort_go(wr_reader, NULL);
    CHECK(wait_ge(&wr_started, WR_N, 30));
    gort_sleep(5 * MS);
    CHECK_MSG(atomic_load(&wr_inside) == 0, "readers got in while a writer held the lock");
    gort_rwmutex_unlock(&rw);
    CHECK(wait_ge(&wr_done, WR_N, 30));
    CHECK_MSG(atomic_load(&wr_seen_all) == WR_N, "%d of %d readers saw all readers inside",
              atomic_load(&wr_seen_all), WR_N);
    /* and it is free again */
    gort_rwmutex_lock(&rw);
    gort_rwmutex_unlock(&rw);
}

static void main_fn(void *arg)
{
    (void)arg;
    test_mutual_exclusion(1);
    test_mutual_exclusion(2);
    test_mutual_exclusion(4);
    test_trylock();
    test_unlock_other_goroutine();
    test_readers_together();
    test_writer_exclusive(1);
    test_writer_exclusive(2);
    test_writer_preference();
    test_writer_unlock_wakes_readers();
    test_starvation(1);
    test_starvation(2);
}

int main(void)
{
    int rc = gort_main(main_fn, NULL);
    CHECK_MSG(rc == 0, "gort_main returned %d", rc);
    return test_done();
}
