/* select.c - gort_select (Go's select.go).
 *
 * 1. Order: a random permutation of the cases decides which ready case
 *    wins (each ready case equally likely, as the Go spec requires); the
 *    channels are locked in address order, each once even if it appears in
 *    several cases, so two selects over the same channels cannot deadlock.
 * 2. Poll: under the locks, the first ready case in the random order is
 *    done (the same transfer as a plain send or receive) and returned.
 * 3. No case ready and no default: enqueue one sudog per case (all on this
 *    goroutine's stack), park, and let g0 unlock the channels. Whichever
 *    channel operation comes first wins g->selectdone (waitq_dequeue) and
 *    fills in that sudog; the others skip it. On wake-up the goroutine
 *    locks the channels again and takes its other sudogs off their queues.
 *
 * NULL channels are never ready. A send case on a closed channel panics
 * ("send on closed channel") when chosen, as in Go.
 */
#include <stdlib.h>
#include <string.h>

#include "chan/chan.h"
#include "sched/proc.h"

typedef struct selstate {
    hchan **locks;   /* distinct channels in address order */
    int nlocks;
} selstate;

static void sellock(selstate *st)
{
    for (int i = 0; i < st->nlocks; i++)
        lock(&st->locks[i]->lock);
}

static void selunlock(selstate *st)
{
    for (int i = st->nlocks - 1; i >= 0; i--)
        unlock(&st->locks[i]->lock);
}

static void selunlock_park(G *gp, void *arg)
{
    (void)gp;
    selunlock(arg);
}

static int cmp_chan(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (hchan *const *)a, y = (uintptr_t) * (hchan *const *)b;
    return x < y ? -1 : x > y;
}

static uint32_t cheaprand(void)
{
    /* per-thread xorshift; quality enough for a uniform pick */
    static __thread uint32_t s;
    if (!s)
        s = (uint32_t)os_nanotime() | 1;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
}

static void park_forever(G *gp, void *arg)
{
    (void)gp;
    (void)arg;
}

int gort_select(gort_case *cases, int n, bool block)
{
    G *gp = need_g("gort_select");
    if (unlikely(atomic_load_explicit(&gp->preempt, memory_order_relaxed)))
        preempt_check();
    if (n < 0)
        gort_panic("select with a negative number of cases");
    int order[n > 0 ? n : 1];
    hchan *chans[n > 0 ? n : 1];
    int nch = 0;
    /* random permutation (Fisher-Yates, inside-out) of the non-nil cases */
    int live = 0;
    for (int i = 0; i < n; i++) {
        cases[i].ok = false;
        if (!cases[i].chan)
            continue;
        if (cases[i].dir != GORT_SEND && cases[i].dir != GORT_RECV)
            gort_panic("select: case %d has no direction (GORT_SEND or GORT_RECV)", i);
        int j = (int)(cheaprand() % (uint32_t)(live + 1));
        order[live] = order[j];
        order[j] = i;
        live++;
        chans[nch++] = (hchan *)cases[i].chan;
    }
    if (live == 0) {
        if (!block)
            return -1;
        gopark(park_forever, NULL);   /* select {} */
        throw("unreachable: an empty select resumed");
    }
    qsort(chans, (size_t)nch, sizeof chans[0], cmp_chan);
    int nd = 0;
    for (int i = 0; i < nch; i++)
        if (nd == 0 || chans[nd - 1] != chans[i])
            chans[nd++] = chans[i];
    selstate st = {chans, nd};

    sellock(&st);
    /* pass 1: anything ready? */
    for (int k = 0; k < live; k++) {
        int i = order[k];
        hchan *c = (hchan *)cases[i].chan;
        if (cases[i].dir == GORT_SEND) {
            if (c->closed) {
                selunlock(&st);
                gort_panic("send on closed channel");
            }
            sudog *sg = waitq_dequeue(&c->recvq);
            if (sg) {
                /* chan_send_direct unlocks c; drop the others first */
                for (int l = nd - 1; l >= 0; l--)
                    if (chans[l] != c)
                        unlock(&chans[l]->lock);
                chan_send_direct(c, sg, cases[i].elem);
                return i;
            }
            size_t q = atomic_load_explicit(&c->qcount, memory_order_relaxed);
            if (q < c->dataqsiz) {
                chan_buf_push(c, cases[i].elem, q);
                selunlock(&st);
                return i;
            }
        } else {
            sudog *sg = waitq_dequeue(&c->sendq);
            if (sg) {
                for (int l = nd - 1; l >= 0; l--)
                    if (chans[l] != c)
                        unlock(&chans[l]->lock);
                chan_recv_from(c, sg, cases[i].elem);
                cases[i].ok = true;
                return i;
            }
            size_t q = atomic_load_explicit(&c->qcount, memory_order_relaxed);
            if (q > 0) {
                chan_buf_pop(c, cases[i].elem, q);
                selunlock(&st);
                cases[i].ok = true;
                return i;
            }
            if (c->closed) {
                selunlock(&st);
                if (cases[i].elem && c->elemsize)
                    memset(cases[i].elem, 0, c->elemsize);
                return i;
            }
        }
    }
    if (!block) {
        selunlock(&st);
        return -1;
    }

    /* pass 2: wait on every case */
    sudog sgs[live];
    atomic_store(&gp->selectdone, 0);
    gp->param = NULL;
    for (int k = 0; k < live; k++) {
        int i = order[k];
        hchan *c = (hchan *)cases[i].chan;
        sudog *sg = &sgs[k];
        *sg = (sudog){.g = gp, .elem = cases[i].elem, .c = c, .isselect = true, .caseidx = i};
        waitq_enqueue(cases[i].dir == GORT_SEND ? &c->sendq : &c->recvq, sg);
    }
    gopark(selunlock_park, &st);

    /* pass 3: woken by one case; take the other sudogs off their queues */
    sudog *won = gp->param;
    sellock(&st);
    for (int k = 0; k < live; k++) {
        sudog *sg = &sgs[k];
        if (sg == won)
            continue;
        int i = sg->caseidx;
        hchan *c = sg->c;
        waitq_remove(cases[i].dir == GORT_SEND ? &c->sendq : &c->recvq, sg);
    }
    selunlock(&st);
    if (!won)
        throw("select: woken with no case");
    int i = won->caseidx;
    if (cases[i].dir == GORT_SEND) {
        if (!won->success)
            gort_panic("send on closed channel");
    } else {
        cases[i].ok = won->success;
    }
    return i;
}
