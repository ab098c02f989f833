/* chan.c - channels (Go's chan.go).
 *
 * A channel is a lock, a ring buffer of dataqsiz elements, a closed flag
 * and two queues of waiting goroutines (sudogs): receivers waiting for a
 * value and senders waiting for room. The invariants, as in Go:
 *   - if recvq is not empty, the buffer is empty (a receiver waits only
 *     when there was nothing to take);
 *   - if sendq is not empty, the buffer is full (or there is none).
 * So a send first looks for a waiting receiver and copies its value
 * straight into the receiver's destination (on the receiver's stack: it is
 * parked, its stack cannot move) and readies it; else it appends to the
 * buffer; else it parks on sendq. A receive mirrors it; on an unbuffered
 * channel it copies straight from the waiting sender, on a full buffered
 * one it takes the head and moves the sender's value to the tail, which
 * keeps FIFO order.
 *
 * Parking: the sudog lives on the parking goroutine's stack; gopark's
 * callback releases the channel lock on g0 only once the goroutine is
 * marked waiting, so a waker that takes the lock always finds it parkable
 * (goready requires WAITING).
 *
 * Waking: the waker fills in the sudog (success = true for a value, false
 * for close) before goready; the woken goroutine reads it after it
 * resumes, which the run queue's release/acquire orders.
 *
 * A sudog that belongs to a select can be dequeued by several channels at
 * once; only the one that wins the CAS on g->selectdone may use it, the
 * others drop it and look at the next waiter (waitq_dequeue).
 *
 * NULL channels block forever (the goroutine parks with nothing that can
 * wake it; deadlock detection reports it if nothing else runs). Runtime
 * errors are Go's panics: send on a closed channel, close of a closed or
 * NULL channel.
 *
 * Memory: a channel is one allocation from the GC heap, header and buffer
 * together (Go programs never free channels; the collector will).
 */
#include "chan/chan.h"

#include <string.h>

#include "sched/proc.h"

void waitq_enqueue(waitq *q, sudog *s)
{
    s->next = NULL;
    s->prev = q->last;
    if (q->last)
        q->last->next = s;
    else
        q->first = s;
    q->last = s;
}

static void unlink_first(waitq *q, sudog *s)
{
    q->first = s->next;
    if (q->first)
        q->first->prev = NULL;
    else
        q->last = NULL;
    s->next = s->prev = NULL;
}

sudog *waitq_dequeue(waitq *q)
{
    for (;;) {
        sudog *s = q->first;
        if (!s)
            return NULL;
        unlink_first(q, s);
        if (s->isselect) {
            uint32_t z = 0;
            if (!atomic_compare_exchange_strong(&s->g->selectdone, &z, 1))
                continue;   /* another case of that select won */
        }
        return s;
    }
}

void waitq_remove(waitq *q, sudog *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else if (q->first == s)
        q->first = s->next;
    else
        return;   /* not queued (already dequeued by a waker) */
    if (s->next)
        s->next->prev = s->prev;
    else
        q->last = s->prev;
    s->next = s->prev = NULL;
}

static inline char *slot(hchan *c, size_t i)
{
    return c->buf + i * c->elemsize;
}

gort_chan *gort_chan_make(size_t elem_size, size_t cap)
{
    size_t bytes;
    if (elem_size > (1 << 16))
        gort_panic("makechan: element size too large");
    if (__builtin_mul_overflow(elem_size, cap, &bytes) || bytes > ((size_t)1 << 40))
        gort_panic("makechan: size out of range");
    hchan *c = gort_gc_alloc(sizeof(hchan) + bytes);
    if (!c)
        throw("out of memory making a channel");
    c->elemsize = elem_size;
    c->dataqsiz = cap;
    c->buf = (char *)(c + 1);
    return (gort_chan *)c;
}

size_t gort_chan_len(gort_chan *ch)
{
    hchan *c = (hchan *)ch;
    return c ? atomic_load_explicit(&c->qcount, memory_order_relaxed) : 0;
}

size_t gort_chan_cap(gort_chan *ch)
{
    hchan *c = (hchan *)ch;
    return c ? c->dataqsiz : 0;
}

void chan_unlock_park(G *gp, void *arg)
{
    (void)gp;
    unlock(&((hchan *)arg)->lock);
}

static void park_forever(G *gp, void *arg)
{
    (void)gp;
    (void)arg;
}

/* A receiver is waiting on c (lock held): give it elem directly. Unlocks. */
void chan_send_direct(hchan *c, sudog *sg, const void *elem)
{
    if (sg->elem && c->elemsize)
        memcpy(sg->elem, elem, c->elemsize);
    sg->success = true;
    sg->g->param = sg;
    unlock(&c->lock);
    goready(sg->g);
}

/* A sender is waiting on c (lock held): take its value (or the buffer's
 * head, moving the sender's value in behind). Unlocks. */
void chan_recv_from(hchan *c, sudog *sg, void *elem)
{
    if (c->dataqsiz == 0) {
        if (elem && c->elemsize)
            memcpy(elem, sg->elem, c->elemsize);
    } else {
        char *head = slot(c, c->recvx);
        if (elem && c->elemsize)
            memcpy(elem, head, c->elemsize);
        if (c->elemsize)
            memcpy(head, sg->elem, c->elemsize);
        if (++c->recvx == c->dataqsiz)
            c->recvx = 0;
        c->sendx = c->recvx;
    }
    sg->success = true;
    sg->g->param = sg;
    unlock(&c->lock);
    goready(sg->g);
}

/* Returns true if done; false only when !block and it would block. */
static bool chansend(hchan *c, const void *elem, bool block)
{
    if (!c) {
        if (!block)
            return false;
        gopark(park_forever, NULL);
        throw("unreachable: a goroutine blocked on a nil channel resumed");
    }
    if (!block && !c->closed &&
        ((c->dataqsiz == 0 && !c->recvq.first) ||
         (c->dataqsiz > 0 && atomic_load_explicit(&c->qcount, memory_order_relaxed) == c->dataqsiz)))
        return false;   /* fast check without the lock, as Go */
    lock(&c->lock);
    if (c->closed) {
        unlock(&c->lock);
        gort_panic("send on closed channel");
    }
    sudog *sg = waitq_dequeue(&c->recvq);
    if (sg) {
        chan_send_direct(c, sg, elem);
        return true;
    }
    size_t n = atomic_load_explicit(&c->qcount, memory_order_relaxed);
    if (n < c->dataqsiz) {
        chan_buf_push(c, elem, n);
        unlock(&c->lock);
        return true;
    }
    if (!block) {
        unlock(&c->lock);
        return false;
    }
    G *gp = getg();
    sudog me = {.g = gp, .elem = (void *)elem, .c = c};
    gp->param = NULL;
    waitq_enqueue(&c->sendq, &me);
    gopark(chan_unlock_park, c);
    /* woken: by a receiver (success) or by close */
    if (!me.success)
        gort_panic("send on closed channel");
    return true;
}

/* Returns 1 if a value was received, 0 if closed and drained, -1 only when
 * !block and it would block. */
static int chanrecv(hchan *c, void *elem, bool block)
{
    if (!c) {
        if (!block)
            return -1;
        gopark(park_forever, NULL);
        throw("unreachable: a goroutine blocked on a nil channel resumed");
    }
    if (!block && atomic_load_explicit(&c->qcount, memory_order_relaxed) == 0 &&
        !c->sendq.first && !__atomic_load_n(&c->closed, __ATOMIC_ACQUIRE))
        return -1;
    lock(&c->lock);
    size_t n = atomic_load_explicit(&c->qcount, memory_order_relaxed);
    if (c->closed && n == 0) {
        unlock(&c->lock);
        if (elem && c->elemsize)
            memset(elem, 0, c->elemsize);
        return 0;
    }
    sudog *sg = waitq_dequeue(&c->sendq);
    if (sg) {
        chan_recv_from(c, sg, elem);
        return 1;
    }
    if (n > 0) {
        chan_buf_pop(c, elem, n);
        unlock(&c->lock);
        return 1;
    }
    if (!block) {
        unlock(&c->lock);
        return -1;
    }
    G *gp = getg();
    sudog me = {.g = gp, .elem = elem, .c = c};
    gp->param = NULL;
    waitq_enqueue(&c->recvq, &me);
    gopark(chan_unlock_park, c);
    return me.success ? 1 : 0;
}

void gort_chan_send(gort_chan *c, const void *elem)
{
    G *gp = need_g("gort_chan_send");
    if (unlikely(atomic_load_explicit(&gp->preempt, memory_order_relaxed)))
        preempt_check();
    chansend((hchan *)c, elem, true);
}

bool gort_chan_recv(gort_chan *c, void *elem)
{
    G *gp = need_g("gort_chan_recv");
    if (unlikely(atomic_load_explicit(&gp->preempt, memory_order_relaxed)))
        preempt_check();
    return chanrecv((hchan *)c, elem, true) == 1;
}

bool chan_trysend(hchan *c, const void *elem)
{
    return chansend(c, elem, false);
}

void gort_chan_close(gort_chan *ch)
{
    hchan *c = (hchan *)ch;
    if (!c)
        gort_panic("close of nil channel");
    lock(&c->lock);
    if (c->closed) {
        unlock(&c->lock);
        gort_panic("close of closed channel");
    }
    __atomic_store_n(&c->closed, true, __ATOMIC_RELEASE);
    /* Every waiter goes: receivers with a zero value and ok = false,
     * senders to panic. They are readied after the unlock; a waiting G is
     * on no run queue, so its schedlink is free to chain them. */
    G *ready = NULL;
    sudog *sg;
    while ((sg = waitq_dequeue(&c->recvq))) {
        if (sg->elem && c->elemsize)
            memset(sg->elem, 0, c->elemsize);
        sg->success = false;
        sg->g->param = sg;
        sg->g->schedlink = ready;
        ready = sg->g;
    }
    while ((sg = waitq_dequeue(&c->sendq))) {
        sg->success = false;
        sg->g->param = sg;
        sg->g->schedlink = ready;
        ready = sg->g;
    }
    unlock(&c->lock);
    while (ready) {
        G *gp = ready;
        ready = gp->schedlink;
        gp->schedlink = NULL;
        goready(gp);
    }
}
