/* timer.c - per-P timer heaps (Go 1.14+'s design, simplified).
 *
 * Each P keeps its timers in a 4-ary min-heap ordered by when (a 4-ary heap
 * is shallower than a binary one and its four children share a cache
 * line). A timer is added to the P of the goroutine that sets it; whoever
 * holds that P runs it when due (the scheduler checks timer0when, an atomic
 * copy of the earliest deadline, at every schedule), and an idle M that
 * finds nothing else to do sleeps until the earliest deadline over all Ps
 * (proc.c: the timer M). Stealing Ms also run other Ps' due timers, so a
 * P whose M is busy in user code does not hold timers back.
 *
 * The heap holds (when, timer) pairs, so sifting compares without touching
 * the timers themselves: with a million sleeping goroutines their timers
 * sit in a million different pages.
 *
 * A timer's function runs on g0 without the heap lock (it may ready a
 * goroutine, which may add timers). Periodic timers are re-queued before
 * their function runs. Everything here is protected by pp->timerslock.
 */
#include "sched/proc.h"

#include <stdlib.h>

static void set_when0(P *pp)
{
    atomic_store_explicit(&pp->timer0when, pp->ntimers ? pp->timers[0].when : 0,
                          memory_order_release);
}

static void place(P *pp, int32_t i, theap e)
{
    pp->timers[i] = e;
    e.t->idx = i;
}

static void siftup(P *pp, int32_t i)
{
    theap e = pp->timers[i];
    while (i > 0) {
        int32_t parent = (i - 1) / 4;
        if (pp->timers[parent].when <= e.when)
            break;
        place(pp, i, pp->timers[parent]);
        i = parent;
    }
    place(pp, i, e);
}

static void siftdown(P *pp, int32_t i)
{
    theap e = pp->timers[i];
    int32_t n = pp->ntimers;
    for (;;) {
        int32_t c = i * 4 + 1;
        if (c >= n)
            break;
        int32_t best = c;
        for (int32_t k = c + 1; k < c + 4 && k < n; k++)
            if (pp->timers[k].when < pp->timers[best].when)
                best = k;
        if (pp->timers[best].when >= e.when)
            break;
        place(pp, i, pp->timers[best]);
        i = best;
    }
    place(pp, i, e);
}

static void remove_at(P *pp, int32_t i)
{
    timer *t = pp->timers[i].t;
    int32_t last = --pp->ntimers;
    if (i != last) {
        timer *moved = pp->timers[last].t;
        place(pp, i, pp->timers[last]);
        siftup(pp, i);
        if (moved->idx == i)
            siftdown(pp, i);
    }
    __atomic_store_n(&t->pp, NULL, __ATOMIC_RELEASE);
    t->idx = -1;
}

static void push_locked(P *pp, timer *t)
{
    if (pp->ntimers == pp->timerscap) {
        int32_t cap = pp->timerscap ? pp->timerscap * 2 : 64;
        theap *nt = realloc(pp->timers, (size_t)cap * sizeof *nt);
        if (!nt)
            throw("out of memory growing a timer heap");
        pp->timers = nt;
        pp->timerscap = cap;
    }
    int32_t i = pp->ntimers++;
    place(pp, i, (theap){t->when, t});
    __atomic_store_n(&t->pp, pp, __ATOMIC_RELEASE);
    siftup(pp, i);
}

void timer_add(P *pp, timer *t)
{
    int64_t when = t->when;   /* once unlocked, t may fire and be reused */
    lock(&pp->timerslock);
    push_locked(pp, t);
    bool first = t->idx == 0;
    set_when0(pp);
    unlock(&pp->timerslock);
    if (first)
        wake_timer_m(when);
}

bool timer_del(timer *t)
{
    for (;;) {
        P *pp = __atomic_load_n(&t->pp, __ATOMIC_ACQUIRE);
        if (!pp)
            return false;
        lock(&pp->timerslock);
        if (__atomic_load_n(&t->pp, __ATOMIC_RELAXED) != pp) {
            unlock(&pp->timerslock);
            continue;   /* it moved (procresize) or fired meanwhile */
        }
        remove_at(pp, t->idx);
        set_when0(pp);
        unlock(&pp->timerslock);
        return true;
    }
}

void timer_run(P *pp, int64_t now)
{
    lock(&pp->timerslock);
    while (pp->ntimers > 0 && pp->timers[0].when <= now) {
        timer *t = pp->timers[0].t;
        timerfn f = t->f;
        void *arg = t->arg;
        uintptr_t seq = t->seq;
        if (t->period > 0) {
            t->when += t->period * (1 + (now - t->when) / t->period);
            pp->timers[0].when = t->when;
            siftdown(pp, 0);
        } else {
            remove_at(pp, 0);
        }
        set_when0(pp);
        unlock(&pp->timerslock);
        f(arg, seq);
        lock(&pp->timerslock);
    }
    unlock(&pp->timerslock);
}

void timer_move_all(P *from, P *to)
{
    lock(&from->timerslock);
    lock(&to->timerslock);
    while (from->ntimers > 0) {
        timer *t = from->timers[from->ntimers - 1].t;
        remove_at(from, from->ntimers - 1);
        push_locked(to, t);
    }
    set_when0(from);
    set_when0(to);
    unlock(&to->timerslock);
    unlock(&from->timerslock);
}
