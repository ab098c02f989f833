/* test_sched_regress.c - scheduler races found in review, kept fixed.
 *
 *   locked_sleep   a goroutine locked to its thread and sleeping alone was
 *                  declared deadlocked while its M was being handed a P
 *   concurrent_stw two goroutines changing GOMAXPROCS at once deadlocked
 *                  (each one's P counted toward the other's stop)
 *   shrink_cache   shrinking GOMAXPROCS from a goroutine on a removed P
 *                  left two Ps sharing one allocator cache
 *   signal_mask    Ms that sysmon started inherited its mask (every signal
 *                  blocked): goroutines there never got SIGPIPE & co.
 */
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "export_test.h"
#include "gort.h"
#include "runtime.h"
#include "test.h"

#define MS 1000000LL

static void locked_sleep(void)
{
    gort_lock_os_thread();
    for (int i = 0; i < 20; i++)
        gort_sleep(MS);
    gort_unlock_os_thread();
}

static atomic_int changers_done;

static void changer(void *arg)
{
    long k = (long)arg;
    for (int i = 0; i < 500; i++)
        gort_gomaxprocs((int)((i + k) % 3) + 1);
    atomic_fetch_add(&changers_done, 1);
}

static void concurrent_stw(void)
{
    gort_go(changer, (void *)0L);
    gort_go(changer, (void *)1L);
    while (atomic_load(&changers_done) < 2)
        gort_sleep(MS);
}

static atomic_int shrink_done, claimed;

static void shrinker(void *arg)
{
    (void)arg;
    while (!atomic_load(&shrink_done)) {
        if (getm()->p->id >= 1 && !atomic_exchange(&claimed, 1)) {
            gort_gomaxprocs(1);
            gort_gomaxprocs(4);
            gort_gomaxprocs(8);
            for (int i = 0; i < 8; i++)
                for (int j = i + 1; j < 8; j++)
                    CHECK_MSG(sched.allp[i]->mcache != sched.allp[j]->mcache,
                              "P%d and P%d share an allocator cache", i, j);
            /* and the caches work */
            for (int i = 0; i < 1000; i++)
                gort_free(gort_malloc(64));
            atomic_store(&shrink_done, 1);
        }
        gort_yield();
    }
}

static void shrink_cache(void)
{
    gort_gomaxprocs(4);
    for (int i = 0; i < 4; i++)
        gort_go(shrinker, NULL);
    while (!atomic_load(&shrink_done))
        gort_sleep(MS);
}

static atomic_int masked, sampled, blockers_done;

/* A goroutine in a long system call: sysmon hands its P to an M it
 * starts itself. */
static void blocker(void *arg)
{
    (void)arg;
    gort_entersyscall();
    struct timespec ts = {0, 50 * MS};
    nanosleep(&ts, NULL);
    gort_exitsyscall();
    atomic_fetch_add(&blockers_done, 1);
}

static void sampler(void *arg)
{
    (void)arg;
    while (atomic_load(&blockers_done) < 4) {
        sigset_t cur;
        pthread_sigmask(SIG_BLOCK, NULL, &cur);
        if (sigismember(&cur, SIGPIPE) || sigismember(&cur, SIGINT))
            atomic_fetch_add(&masked, 1);
        atomic_fetch_add(&sampled, 1);
        gort_yield();
    }
}

static void signal_mask(void)
{
    gort_gomaxprocs(2);
    for (int i = 0; i < 4; i++)
        gort_go(sampler, NULL);
    for (int i = 0; i < 4; i++)
        gort_go(blocker, NULL);
    while (atomic_load(&blockers_done) < 4)
        gort_sleep(MS);
    gort_sleep(10 * MS);
    CHECK(atomic_load(&sampled) > 0);
    CHECK_MSG(atomic_load(&masked) == 0, "%d of %d samples ran with signals blocked",
              atomic_load(&masked), atomic_load(&sampled));
}

static void real_main(void *arg)
{
    (void)arg;
    signal_mask();   /* first: the Ms it needs must be new ones */
    gort_gomaxprocs(1);
    locked_sleep();
    gort_gomaxprocs(4);
    locked_sleep();
    gort_gomaxprocs(2);
    concurrent_stw();
    shrink_cache();
}

int main(void)
{
    CHECK(gort_main(real_main, NULL) == 0);
    test_heap_verify();
    return test_done();
}
