/* finalizer.c - finalizers (Go's SetFinalizer, mfinal.go).
 *
 * gort_gc_set_finalizer records (object, fn, arg) in a table keyed by the
 * object's address. During the mark, the table's objects are not roots, but
 * what they point to is (their contents are scanned without marking them),
 * as in Go: an object reachable only from a finalizable object survives
 * until that finalizer has run. After the mark, an object of the table whose
 * mark bit is still clear is unreachable: its record moves to the queue and
 * the object is marked, so the sweep keeps it for its finalizer. The queue
 * is a root until the finalizer has run; the next cycle that finds the
 * object unreachable frees it. A finalizer runs once: its record is gone
 * from the table when it is queued. Cycles through finalizable objects are
 * never collected (Go's rule too).
 *
 * Finalizers run one at a time, in queue order, on a goroutine of their own
 * when the table was first used from a goroutine, else on a thread of their
 * own (a program that never calls gort_main). The collector wakes it after
 * the world restarts; a finalizer may block, allocate and set finalizers.
 */
#define _GNU_SOURCE
#include "gc/gc.h"

#include <pthread.h>
#include <string.h>

#include "sched/proc.h"

typedef struct finrec {
    uintptr_t obj;
    void (*fn)(void *obj, void *arg);
    void *arg;
} finrec;

static rlock finlock;              /* protects everything below */
static finrec *table;              /* open addressing; obj 0: empty, 1: deleted */
static size_t tcap, tcount, tused; /* slots, live records, live + deleted */
static finrec *queue;              /* unreachable objects waiting for their finalizer */
static size_t qhead, qlen, qcap;   /* ring */
static G *fing;                    /* the finalizer goroutine, or NULL */
static bool fing_waiting;          /* fing is parked */
static bool runner_started;        /* fing or the thread was started */
static _Atomic bool any;           /* a finalizer was ever set: gort_gc_free must look */
static _Atomic uint32_t finseq;    /* + 1 when the queue gets work (the thread runner waits on it) */

#define DELETED ((uintptr_t)1)

static size_t hash(uintptr_t p)
{
    return (size_t)((p >> 4) * 0x9e3779b97f4a7c15ull);
}

static finrec *lookup(uintptr_t obj)
{
    if (!tcap)
        return NULL;
    for (size_t i = hash(obj) & (tcap - 1);; i = (i + 1) & (tcap - 1)) {
        if (table[i].obj == obj)
            return &table[i];
        if (table[i].obj == 0)
            return NULL;
    }
}

static void insert_locked(finrec r)
{
    if ((tused + 1) * 2 > tcap) {
        size_t ncap = 64;
        while (ncap < (tcount + 1) * 4)
            ncap *= 2;
        finrec *nt = gort_calloc(ncap, sizeof *nt);
        if (!nt)
            throw("gort_gc_set_finalizer: out of memory");
        finrec *old = table;
        size_t ocap = tcap;
        table = nt;
        tcap = ncap;
        tused = tcount = 0;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].obj > DELETED)
                insert_locked(old[i]);
        gort_free(old);
    }
    for (size_t i = hash(r.obj) & (tcap - 1);; i = (i + 1) & (tcap - 1)) {
        if (table[i].obj <= DELETED) {
            if (table[i].obj == 0)
                tused++;
            table[i] = r;
            tcount++;
            return;
        }
    }
}

static void delete_locked(finrec *r)
{
    r->obj = DELETED;
    r->fn = NULL;
    r->arg = NULL;
    tcount--;
}

static void queue_push_locked(finrec r)
{
    if (qlen == qcap) {
        size_t ncap = qcap ? qcap * 2 : 64;
        finrec *nq = gort_malloc(ncap * sizeof *nq);
        if (!nq)
            throw("gc: out of memory queueing a finalizer");
        for (size_t i = 0; i < qlen; i++)
            nq[i] = queue[(qhead + i) % qcap];
        gort_free(queue);
        queue = nq;
        qcap = ncap;
        qhead = 0;
    }
    queue[(qhead + qlen) % qcap] = r;
    qlen++;
}

static bool queue_pop_locked(finrec *r)
{
    if (!qlen)
        return false;
    *r = queue[qhead];
    queue[qhead].obj = 0;
    qhead = (qhead + 1) % qcap;
    qlen--;
    return true;
}

/* Run it, then forget it: the runner's stack is scanned, and a copy of
 * the record left there would keep the object alive for good. */
static void run_one(finrec *r)
{
    r->fn((void *)r->obj, r->arg);
    *(volatile uintptr_t *)&r->obj = 0;
    *(void *volatile *)&r->arg = NULL;
}

static void fing_park(G *gp, void *arg)
{
    (void)gp;
    unlock(arg);
}

static void fing_main(void *arg)
{
    (void)arg;
    lock(&finlock);
    fing = getg();
    unlock(&finlock);
    for (;;) {
        lock(&finlock);
        finrec r;
        if (!queue_pop_locked(&r)) {
            fing_waiting = true;
            gopark(fing_park, &finlock);
            continue;
        }
        unlock(&finlock);
        run_one(&r);
    }
}

static void *finthread_main(void *arg)
{
    (void)arg;
    gcthread_register(NULL);
    for (;;) {
        uint32_t seen = atomic_load(&finseq);
        lock(&finlock);
        finrec r;
        bool got = queue_pop_locked(&r);
        unlock(&finlock);
        if (got) {
            run_one(&r);
            continue;
        }
        bool b = gcthread_block();
        os_futex_wait((uint32_t *)&finseq, seen, -1);
        gcthread_unblock(b);
    }
    return NULL;
}

static void start_runner_locked(void)
{
    if (runner_started)
        return;
    runner_started = true;
    if (sched_running() && getg()) {
        unlock(&finlock);
        gort_go(fing_main, NULL);
        lock(&finlock);
        return;
    }
    if (!os_thread_start(finthread_main, NULL))
        throw("gc: cannot start the finalizer thread");
}

void gort_gc_set_finalizer(void *obj, void (*fn)(void *obj, void *arg), void *arg)
{
    if (!obj)
        return;
    mspan *s;
    uint32_t idx;
    nosuspend_enter();
    uintptr_t base = gc_object_of((uintptr_t)obj, &s, &idx);
    bool ok = base == (uintptr_t)obj;
    nosuspend_leave();
    if (!ok)
        throwf("gort_gc_set_finalizer: %p is not the start of a GC object", obj);
    lock(&finlock);
    finrec *r = lookup((uintptr_t)obj);
    if (!fn) {
        if (r)
            delete_locked(r);
        unlock(&finlock);
        return;
    }
    if (r) {
        unlock(&finlock);
        throw("runtime.SetFinalizer: finalizer already set");
    }
    insert_locked((finrec){(uintptr_t)obj, fn, arg});
    atomic_store(&any, true);
    start_runner_locked();
    unlock(&finlock);
}

void finalizer_forget(uintptr_t obj)
{
    if (!atomic_load_explicit(&any, memory_order_relaxed))
        return;
    lock(&finlock);
    finrec *r = lookup(obj);
    if (r)
        delete_locked(r);
    unlock(&finlock);
}

/* The world is stopped in the three below: nobody else holds finlock
 * (runtime locks defer a thread's stop), except the finalizer runner
 * when it is not registered yet, briefly. */

void finalizer_mark_referents(void *w)
{
    lock(&finlock);
    for (size_t i = 0; i < tcap; i++)
        if (table[i].obj > DELETED) {
            mark_object_noscan_self(w, table[i].obj);
            mark_set(w, (uintptr_t)table[i].arg);
        }
    unlock(&finlock);
}

void finalizer_mark_queue(void *w)
{
    lock(&finlock);
    for (size_t i = 0; i < qlen; i++) {
        finrec *r = &queue[(qhead + i) % qcap];
        mark_set(w, r->obj);
        mark_set(w, (uintptr_t)r->arg);
    }
    unlock(&finlock);
}

void finalizer_queue_unreachable(void *w)
{
    lock(&finlock);
    for (size_t i = 0; i < tcap; i++) {
        finrec *r = &table[i];
        if (r->obj > DELETED && !mark_is_marked(r->obj)) {
            queue_push_locked(*r);
            mark_set(w, r->obj);
            delete_locked(r);
        }
    }
    unlock(&finlock);
}

void finalizer_wake(void)
{
    lock(&finlock);
    if (!qlen) {
        unlock(&finlock);
        return;
    }
    G *gp = NULL;
    if (fing_waiting) {
        fing_waiting = false;
        gp = fing;
    }
    unlock(&finlock);
    atomic_fetch_add(&finseq, 1);
    os_futex_wake((uint32_t *)&finseq, 1);
    if (gp)
        goready(gp);
}

uint64_t finalizer_count(void)
{
    lock(&finlock);
    uint64_t n = tcount + qlen;
    unlock(&finlock);
    return n;
}
