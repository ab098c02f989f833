/* runq.c - run queues: the per-P lock-free ring and the global queue.
 *
 * Each P has a 256-slot ring of runnable Gs plus runnext, a one-G slot for
 * the goroutine just readied (it runs next and inherits the time slice,
 * which keeps a producer and the consumer it wakes on one CPU, as Go does).
 * Only the P's owner puts into the ring (at the tail); the owner and
 * thieves take from the head with a CAS. A thief takes half of a victim's
 * queue in one CAS (runqgrab). When the ring is full, half of it plus the
 * new G move to the global queue in one locked batch (runqputslow), so the
 * global lock is taken once per 128 Gs at worst.
 *
 * Memory order: slots are written before the tail is published with a
 * release store and read after an acquire load of the tail; a taker's CAS on
 * the head is a release, so the owner sees a slot free only after its old
 * value was read. Slots are atomics (relaxed) so TSan sees no plain race
 * between a thief reading a slot and the owner rewriting it after the CAS
 * said the thief lost.
 *
 * The global queue is a growable ring of G pointers under sched.lock. Not
 * a list through the Gs: each G sits in the top page of its own stack, so
 * walking a list of them is a cache and TLB miss per G, and moving a
 * batch between the global queue and a P would touch every one of them
 * while holding the lock.
 * See proc.c for the overview.
 */
#include <stdlib.h>

#include "sched/proc.h"

#define RUNQ_MASK (RUNQ_SIZE - 1)

bool runq_empty(P *pp)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_acquire);
        G *next = atomic_load_explicit(&pp->runnext, memory_order_acquire);
        if (atomic_load_explicit(&pp->runqtail, memory_order_acquire) == t)
            return h == t && next == NULL;
    }
}

static bool runq_putslow(P *pp, G *gp, uint32_t h, uint32_t t)
{
    G *batch[RUNQ_SIZE / 2 + 1];
    uint32_t n = (t - h) / 2;
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&pp->runq[(h + i) & RUNQ_MASK], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&pp->runqhead, &h, h + n, memory_order_release,
                                                 memory_order_relaxed))
        return false;
    batch[n] = gp;
    lock(&sched.lock);
    globrunq_putbatch(batch, (int32_t)n + 1);
    unlock(&sched.lock);
    return true;
}

void runq_put(P *pp, G *gp, bool next)
{
    if (next) {
        G *old = atomic_exchange_explicit(&pp->runnext, gp, memory_order_acq_rel);
        if (!old)
            return;
        gp = old;   /* the one it displaced goes to the ring */
    }
    for (;;) {
        uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
        if (t - h < RUNQ_SIZE) {
            atomic_store_explicit(&pp->runq[t & RUNQ_MASK], gp, memory_order_relaxed);
            atomic_store_explicit(&pp->runqtail, t + 1, memory_order_release);
            return;
        }
        if (runq_putslow(pp, gp, h, t))
            return;
    }
}

G *runq_get(P *pp, bool *inherit)
{
    G *next = atomic_load_explicit(&pp->runnext, memory_order_relaxed);
    if (next && atomic_compare_exchange_strong_explicit(&pp->runnext, &next, NULL,
                                                        memory_order_acq_rel, memory_order_relaxed)) {
        *inherit = true;
        return next;
    }
    *inherit = false;
    for (;;) {
        uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
        if (t == h)
            return NULL;
        G *gp = atomic_load_explicit(&pp->runq[h & RUNQ_MASK], memory_order_relaxed);
        if (atomic_compare_exchange_strong_explicit(&pp->runqhead, &h, h + 1, memory_order_release,
                                                    memory_order_relaxed))
            return gp;
    }
}

/* Take half of pp's Gs into batch[bhead...]; returns how many. */
static uint32_t runq_grab(P *pp, G *_Atomic *batch, uint32_t bhead, bool steal_next)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_acquire);
        uint32_t n = t - h;
        n -= n / 2;
        if (n == 0) {
            if (steal_next) {
                G *next = atomic_load_explicit(&pp->runnext, memory_order_acquire);
                if (next) {
                    /* The owner may be about to run it: give it a moment,
                     * as Go does, rather than bounce it between CPUs. */
                    if (atomic_load_explicit(&pp->status, memory_order_relaxed) == P_RUNNING)
                        os_usleep(3);
                    if (!atomic_compare_exchange_strong_explicit(&pp->runnext, &next, NULL,
                                                                 memory_order_acq_rel,
                                                                 memory_order_relaxed))
                        continue;
                    atomic_store_explicit(&batch[bhead & RUNQ_MASK], next, memory_order_relaxed);
                    return 1;
                }
            }
            return 0;
        }
        if (n > RUNQ_SIZE / 2)
            continue;   /* read h and t at different times: retry */
        for (uint32_t i = 0; i < n; i++) {
            G *g = atomic_load_explicit(&pp->runq[(h + i) & RUNQ_MASK], memory_order_relaxed);
            atomic_store_explicit(&batch[(bhead + i) & RUNQ_MASK], g, memory_order_relaxed);
        }
        if (atomic_compare_exchange_strong_explicit(&pp->runqhead, &h, h + n, memory_order_release,
                                                    memory_order_relaxed))
            return n;
    }
}

G *runq_steal(P *pp, P *victim, bool steal_next)
{
    uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
    uint32_t n = runq_grab(victim, pp->runq, t, steal_next);
    if (n == 0)
        return NULL;
    n--;
    G *gp = atomic_load_explicit(&pp->runq[(t + n) & RUNQ_MASK], memory_order_relaxed);
    if (n == 0)
        return gp;
    atomic_store_explicit(&pp->runqtail, t + n, memory_order_release);
    return gp;
}

/* ---- the global queue: sched.lock held ---------------------------------- */

static void gq_grow(void)
{
    uint32_t len = (uint32_t)atomic_load_explicit(&sched.runqsize, memory_order_relaxed);
    uint32_t cap = sched.gqcap ? sched.gqcap * 2 : 1024;
    G **n = malloc((size_t)cap * sizeof(G *));
    if (!n)
        throw("out of memory growing the global run queue");
    for (uint32_t i = 0; i < len; i++)
        n[i] = sched.gq[(sched.gqhead + i) & (sched.gqcap - 1)];
    free(sched.gq);
    sched.gq = n;
    sched.gqcap = cap;
    sched.gqhead = 0;
}

void globrunq_put(G *gp)
{
    assert_lock_held(&sched.lock);
    uint32_t len = (uint32_t)atomic_load_explicit(&sched.runqsize, memory_order_relaxed);
    if (len == sched.gqcap)
        gq_grow();
    sched.gq[(sched.gqhead + len) & (sched.gqcap - 1)] = gp;
    atomic_store_explicit(&sched.runqsize, (int32_t)len + 1, memory_order_relaxed);
}

void globrunq_putbatch(G **batch, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        globrunq_put(batch[i]);
}

G *globrunq_get(P *pp, int32_t max)
{
    assert_lock_held(&sched.lock);
    int32_t size = atomic_load_explicit(&sched.runqsize, memory_order_relaxed);
    if (size == 0)
        return NULL;
    int32_t n = size / __atomic_load_n(&sched.gomaxprocs, __ATOMIC_RELAXED) + 1;
    if (n > size)
        n = size;
    if (max > 0 && n > max)
        n = max;
    if (n > RUNQ_SIZE / 2)
        n = RUNQ_SIZE / 2;
    atomic_store_explicit(&sched.runqsize, size - n, memory_order_relaxed);
    uint32_t mask = sched.gqcap - 1;
    G *gp = sched.gq[sched.gqhead];
    for (int32_t i = 1; i < n; i++)
        runq_put(pp, sched.gq[(sched.gqhead + (uint32_t)i) & mask], false);
    sched.gqhead = (sched.gqhead + (uint32_t)n) & mask;
    return gp;
}
