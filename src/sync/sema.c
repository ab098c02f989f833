/* sema.c - the runtime semaphore that sync is built on (Go's sema.go).
 *
 * semacquire(addr) waits until *addr > 0 and decrements it; semrelease
 * increments it and wakes a waiter. Waiters park as goroutines (never
 * threads) in one of 251 buckets chosen by address; each bucket has a lock,
 * a count of waiters (so a release with nobody waiting takes no lock) and a
 * FIFO list of sudogs, searched for the address (Go keeps a treap per
 * bucket; a list is enough while a bucket holds few waiters).
 *
 * Handoff (for the mutex's starvation mode): semrelease(addr, true) gives
 * the count straight to the first waiter (ticket) and yields to it, so a
 * goroutine that arrives meanwhile cannot take the lock first. lifo queues
 * a waiter at the front: a goroutine that waited before goes back first.
 */
#include "sync/sema.h"

#include "chan/chan.h"
#include "sched/proc.h"

#define SEMTABSZ 251

typedef struct semroot {
    rlock lock;
    _Atomic uint32_t nwait;
    waitq q;              /* sudog.elem = the address, .success = handed the count */
    char pad[CACHE_LINE - sizeof(rlock) - sizeof(uint32_t) - sizeof(waitq)];
} semroot;

static semroot semtable[SEMTABSZ];

static semroot *semroot_of(uint32_t *addr)
{
    return &semtable[((uintptr_t)addr >> 3) % SEMTABSZ];
}

static bool cansemacquire(uint32_t *addr)
{
    uint32_t v = __atomic_load_n(addr, __ATOMIC_ACQUIRE);
    while (v > 0)
        if (__atomic_compare_exchange_n(addr, &v, v - 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return true;
    return false;
}

static void root_unlock_park(G *gp, void *arg)
{
    (void)gp;
    unlock(&((semroot *)arg)->lock);
}

void semacquire(uint32_t *addr, bool lifo)
{
    if (cansemacquire(addr))
        return;
    G *gp = need_g("semacquire");
    semroot *root = semroot_of(addr);
    for (;;) {
        lock(&root->lock);
        atomic_fetch_add(&root->nwait, 1);
        if (cansemacquire(addr)) {
            atomic_fetch_sub(&root->nwait, 1);
            unlock(&root->lock);
            return;
        }
        sudog s = {.g = gp, .elem = addr};
        if (lifo && root->q.first) {
            s.next = root->q.first;
            root->q.first->prev = &s;
            root->q.first = &s;
        } else {
            waitq_enqueue(&root->q, &s);
        }
        gopark(root_unlock_park, root);
        if (s.success || cansemacquire(addr))   /* handed off, or got it */
            return;
    }
}

void semrelease(uint32_t *addr, bool handoff)
{
    semroot *root = semroot_of(addr);
    __atomic_fetch_add(addr, 1, __ATOMIC_RELEASE);
    full_fence();
    if (atomic_load(&root->nwait) == 0)
        return;
    lock(&root->lock);
    if (atomic_load(&root->nwait) == 0) {
        unlock(&root->lock);
        return;
    }
    sudog *s = root->q.first;
    while (s && s->elem != addr)
        s = s->next;
    if (!s) {
        unlock(&root->lock);
        return;
    }
    waitq_remove(&root->q, s);
    atomic_fetch_sub(&root->nwait, 1);
    unlock(&root->lock);
    if (handoff && cansemacquire(addr))
        s->success = true;   /* the count is the waiter's now */
    bool yield = s->success;
    goready(s->g);
    if (yield && getg())
        gort_yield();        /* let it run now, ahead of newcomers */
}
