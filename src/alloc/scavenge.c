/* scavenge.c - giving free memory back to the operating system.
 *
 * A server whose data shrinks must see its RSS come down, yet a program
 * that frees and re-allocates large blocks in a loop must not pay a page
 * fault (~3 us here) per page per round because memory went back too
 * eagerly. Both are served by releasing with delay and hysteresis:
 *
 *   delay       a free span is released only after it stayed free for
 *               scavenge_delay_ns (default 2 s; GORT_DEBUG=scavdelay=MS).
 *               Memory that is reused within that time is never released.
 *   hysteresis  the scavenger stops when the free-but-resident memory is at
 *               most 1/16 of the in-use heap plus 1 MiB: small fluctuations
 *               of a large heap stay resident.
 *
 * The work is done by a background thread that wakes every delay/2 while
 * there is something to release and otherwise sleeps on a futex until a
 * span is freed to the heap, so an idle program costs no CPU. It also
 * collects remote frees for the caches of exited threads, so their empty
 * spans can come back to the heap.
 *
 * The thread is started lazily, from an allocation slow path once memory
 * has been freed to the heap: not at load time (a malloc that starts a
 * thread in every process breaks programs that must stay single-threaded,
 * such as those calling unshare) and not from free() (glibc frees some
 * memory while holding its thread-stack lock, which pthread_create needs).
 * GORT_DEBUG=scavenger=0 disables it; gort_free_os_memory() works either
 * way. Once the scheduler exists, sysmon will drive this instead.
 *
 * Released pages are marked in the arena's released bitmap (arena.c): they
 * read as zero, so calloc and the page heap skip zeroing them.
 */
#define _GNU_SOURCE
#include "alloc/malloc.h"

#include <pthread.h>
#include <signal.h>

int64_t scavenge_delay_ns = 2000000000;

enum { SCAV_IDLE = 0, SCAV_PENDING = 1, SCAV_STARTING = 2, SCAV_RUNNING = 3, SCAV_OFF = 4 };
static _Atomic int scav_state;
static _Atomic uint32_t scav_sleeping;   /* the thread waits for a kick */

static uint64_t keep_bytes(void)
{
    return atomic_load_explicit(&mheap_.inuse, memory_order_relaxed) / 16 + ((uint64_t)1 << 20);
}

static void *scavenger_main(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        os_usleep((uint32_t)(scavenge_delay_ns / 2 / 1000));
        mcache_collect_idle();
        mheap_scavenge(scavenge_delay_ns, keep_bytes());
        if (mheap_free_unreleased() <= keep_bytes()) {
            atomic_store(&scav_sleeping, 1);
            full_fence();
            if (mheap_free_unreleased() <= keep_bytes())
                os_futex_wait((uint32_t *)&scav_sleeping, 1, -1);
            atomic_store(&scav_sleeping, 0);
        }
    }
    return NULL;
}

void scavenger_kick(void)
{
    int st = atomic_load_explicit(&scav_state, memory_order_relaxed);
    if (st == SCAV_IDLE) {
        atomic_compare_exchange_strong(&scav_state, &st, SCAV_PENDING);
        return;
    }
    full_fence();
    if (st == SCAV_RUNNING && atomic_load(&scav_sleeping)) {
        atomic_store(&scav_sleeping, 0);
        os_futex_wake((uint32_t *)&scav_sleeping, 1);
    }
}

void scavenger_start_if_needed(void)
{
    int st = atomic_load_explicit(&scav_state, memory_order_relaxed);
    if (likely(st != SCAV_PENDING))
        return;
    if (!atomic_compare_exchange_strong(&scav_state, &st, SCAV_STARTING))
        return;
    if (debug_int("scavenger", 1) == 0) {
        atomic_store(&scav_state, SCAV_OFF);
        return;
    }
    int64_t ms = debug_int("scavdelay", -1);
    if (ms >= 0)
        scavenge_delay_ns = ms * 1000000;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t t;
    int err = pthread_create(&t, &attr, scavenger_main, NULL);
    pthread_attr_destroy(&attr);
    atomic_store(&scav_state, err == 0 ? SCAV_RUNNING : SCAV_IDLE);
}

void scavenger_atfork_child(void)
{
    /* the thread did not survive the fork; restart it when needed */
    if (atomic_load(&scav_state) != SCAV_OFF)
        atomic_store(&scav_state, SCAV_IDLE);
    atomic_store(&scav_sleeping, 0);
}
