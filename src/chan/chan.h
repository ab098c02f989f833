/* chan.h - channels and the goroutine wait queues they share with select.
 * See chan.c for the overview. */
#ifndef GORT_CHAN_CHAN_H
#define GORT_CHAN_CHAN_H

#include <string.h>

#include "runtime.h"

/* A goroutine waiting on a channel (or on several, in select). It lives on
 * the waiting goroutine's own stack: the goroutine is parked, so its stack
 * stays put until it is woken. Protected by the channel's lock. */
typedef struct sudog {
    G *g;
    struct sudog *next, *prev;  /* the channel's sendq or recvq */
    void *elem;                 /* value to send / where to receive; may be NULL */
    struct hchan *c;
    bool isselect;              /* part of a select: must win g->selectdone */
    bool success;               /* woken by a value (true) or by close (false) */
    int32_t caseidx;            /* select: the case this sudog stands for */
    struct sudog *waitlink;     /* select: all sudogs of the same goroutine */
} sudog;

typedef struct waitq {
    sudog *first, *last;
} waitq;

/* hchan: Go's channel. buf is a ring of dataqsiz elements right after the
 * struct. Everything is protected by lock, except that len and cap may be
 * read racily (they are atomics for that). */
typedef struct hchan {
    rlock lock;
    _Atomic size_t qcount;      /* elements in buf */
    size_t dataqsiz;            /* capacity */
    size_t elemsize;
    size_t sendx, recvx;        /* ring indices */
    bool closed;
    waitq recvq, sendq;
    char *buf;
} hchan;

/* The ring buffer (lock held; the caller checked there is room / a value).
 * elem may be NULL on pop: the value is dropped. */
static inline void chan_buf_push(hchan *c, const void *elem, size_t q)
{
    if (c->elemsize)
        memcpy(c->buf + c->sendx * c->elemsize, elem, c->elemsize);
    if (++c->sendx == c->dataqsiz)
        c->sendx = 0;
    atomic_store_explicit(&c->qcount, q + 1, memory_order_relaxed);
}

static inline void chan_buf_pop(hchan *c, void *elem, size_t q)
{
    char *slot = c->buf + c->recvx * c->elemsize;
    if (elem && c->elemsize)
        memcpy(elem, slot, c->elemsize);
    memset(slot, 0, c->elemsize);   /* a stale copy would keep what it points to alive */
    if (++c->recvx == c->dataqsiz)
        c->recvx = 0;
    atomic_store_explicit(&c->qcount, q - 1, memory_order_relaxed);
}

/* Non-blocking send for the runtime's own use (timers, on g0): false if it
 * would block. */
bool chan_trysend(hchan *c, const void *elem);

/* waitq primitives (chan lock held) */
void    waitq_enqueue(waitq *q, sudog *s);
sudog  *waitq_dequeue(waitq *q);
void    waitq_remove(waitq *q, sudog *s);
/* copy helpers */
void    chan_send_direct(hchan *c, sudog *sg, const void *elem);
void    chan_recv_from(hchan *c, sudog *sg, void *elem);
void    chan_unlock_park(G *gp, void *arg);

#endif
