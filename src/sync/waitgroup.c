/* waitgroup.c - gort_waitgroup, gort_once, gort_cond (Go's sync).
 *
 * WaitGroup: one 64-bit state word, the counter in the high half and the
 * number of waiters in the low half, so Add and Wait agree with one atomic
 * operation; when the counter reaches zero the waiters are released through
 * the semaphore. A negative counter is Go's panic.
 *
 * Once: a done flag checked without a lock, and a mutex for the first
 * call; done is set when fn returns or panics (a deferred call), so
 * concurrent callers wait for it and none calls fn again.
 *
 * Cond: Go's notifyList. A waiter takes a ticket before it unlocks the
 * mutex; signal serves the oldest ticket not yet served, broadcast all of
 * them. A signal that comes between taking a ticket and parking is not
 * lost: the waiter sees its ticket served and does not park.
 */
#include "chan/chan.h"
#include "gort.h"
#include "runtime.h"
#include "sched/proc.h"
#include "sync/sema.h"

void gort_waitgroup_add(gort_waitgroup *wg, int n)
{
    uint64_t state = __atomic_add_fetch(&wg->state, (uint64_t)(int64_t)n << 32, __ATOMIC_ACQ_REL);
    int32_t v = (int32_t)(state >> 32);
    uint32_t w = (uint32_t)state;
    if (v < 0)
        gort_panic("sync: negative WaitGroup counter");
    if (w != 0 && n > 0 && v == n)
        gort_panic("sync: WaitGroup misuse: Add called concurrently with Wait");
    if (v > 0 || w == 0)
        return;
    /* counter at zero with waiters: nobody may touch the state now */
    if (__atomic_load_n(&wg->state, __ATOMIC_ACQUIRE) != state)
        gort_panic("sync: WaitGroup misuse: Add called concurrently with Wait");
    __atomic_store_n(&wg->state, 0, __ATOMIC_RELEASE);
    for (; w > 0; w--)
        semrelease(&wg->sema, false);
}

void gort_waitgroup_done(gort_waitgroup *wg)
{
    gort_waitgroup_add(wg, -1);
}

void gort_waitgroup_wait(gort_waitgroup *wg)
{
    for (;;) {
        uint64_t state = __atomic_load_n(&wg->state, __ATOMIC_ACQUIRE);
        if ((int32_t)(state >> 32) == 0)
            return;
        if (__atomic_compare_exchange_n(&wg->state, &state, state + 1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            semacquire(&wg->sema, false);
            if (__atomic_load_n(&wg->state, __ATOMIC_ACQUIRE) != 0)
                gort_panic("sync: WaitGroup is reused before previous Wait has returned");
            return;
        }
    }
}

typedef struct once_call {
    gort_once *o;
    gort_fn fn;
    void *arg;
} once_call;

/* Deferred: done is set and the mutex released even if fn panics (Go: a
 * Do whose function panicked counts as returned). */
static void once_finish(void *arg)
{
    gort_once *o = arg;
    __atomic_store_n(&o->done, 1, __ATOMIC_RELEASE);
    gort_mutex_unlock(&o->m);
}

static void once_body(void *arg)
{
    once_call *oc = arg;
    gort_defer(once_finish, oc->o);
    oc->fn(oc->arg);
}

void gort_once_do(gort_once *o, gort_fn fn, void *arg)
{
    if (__atomic_load_n(&o->done, __ATOMIC_ACQUIRE))
        return;
    gort_mutex_lock(&o->m);
    if (o->done) {
        gort_mutex_unlock(&o->m);
        return;
    }
    once_call oc = {o, fn, arg};
    gort_call(once_body, &oc);
}

/* ---- cond --------------------------------------------------------------------- */

static rlock *cond_lock(gort_cond *c)
{
    return (rlock *)&c->lock;
}

static void cond_unlock_park(G *gp, void *arg)
{
    (void)gp;
    unlock(arg);
}

void gort_cond_wait(gort_cond *c, gort_mutex *m)
{
    G *gp = need_g("gort_cond_wait");
    uint32_t t = __atomic_fetch_add(&c->wait, 1, __ATOMIC_ACQ_REL);
    gort_mutex_unlock(m);
    lock(cond_lock(c));
    if ((int32_t)(t - c->notify) < 0) {
        unlock(cond_lock(c));   /* already signalled */
    } else {
        sudog s = {.g = gp, .caseidx = (int32_t)t};
        waitq_enqueue((waitq *)&c->head, &s);
        gopark(cond_unlock_park, cond_lock(c));
    }
    gort_mutex_lock(m);
}

void gort_cond_signal(gort_cond *c)
{
    if (__atomic_load_n(&c->wait, __ATOMIC_ACQUIRE) == __atomic_load_n(&c->notify, __ATOMIC_ACQUIRE))
        return;
    lock(cond_lock(c));
    uint32_t t = c->notify;
    if (t == __atomic_load_n(&c->wait, __ATOMIC_ACQUIRE)) {
        unlock(cond_lock(c));
        return;
    }
    __atomic_store_n(&c->notify, t + 1, __ATOMIC_RELEASE);
    waitq *q = (waitq *)&c->head;
    for (sudog *s = q->first; s; s = s->next) {
        if ((uint32_t)s->caseidx == t) {
            waitq_remove(q, s);
            G *g = s->g;
            unlock(cond_lock(c));
            goready(g);
            return;
        }
    }
    /* its waiter has a ticket but has not queued yet: it will see it served */
    unlock(cond_lock(c));
}

void gort_cond_broadcast(gort_cond *c)
{
    if (__atomic_load_n(&c->wait, __ATOMIC_ACQUIRE) == __atomic_load_n(&c->notify, __ATOMIC_ACQUIRE))
        return;
    lock(cond_lock(c));
    __atomic_store_n(&c->notify, __atomic_load_n(&c->wait, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
    waitq *q = (waitq *)&c->head;
    G *ready = NULL;
    sudog *s;
    while ((s = q->first)) {
        waitq_remove(q, s);
        s->g->schedlink = ready;
        ready = s->g;
    }
    unlock(cond_lock(c));
    while (ready) {
        G *g = ready;
        ready = g->schedlink;
        g->schedlink = NULL;
        goready(g);
    }
}
