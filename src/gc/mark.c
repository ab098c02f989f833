/* mark.c - parallel marking (Go's mgcmark.go and mgcwork.go).
 *
 * With the world stopped, nworkers threads (the collector and its helpers,
 * one per P up to the CPUs there are) mark every object reachable from the
 * roots. Each worker takes root jobs (roots.c) until none is left, then
 * drains its grey objects. A grey object is one whose mark bit is set but
 * whose contents are not scanned yet; workers keep them in work buffers
 * (Go's workbufs: 2 KiB blocks of object addresses), two per worker, so a
 * worker pushes and pops locally without synchronisation. A full buffer goes
 * to a global list where idle workers take it (work stealing by buffer); a
 * worker that sees others idle and the global list empty hands over its
 * current buffer early, so one deep structure does not leave the others
 * waiting. The mark ends when every worker is idle and the list is empty.
 *
 * Memory: the traversal is an explicit stack, so a 10-million-node list
 * costs one buffer, not 10 million C frames; buffers come from the OS in
 * 128 KiB chunks, and since an object is pushed only when its mark bit goes
 * from 0 to 1, the buffers never hold more entries than there are objects.
 * Large objects are scanned in 128 KiB pieces (Go's oblets), each piece a
 * separate entry, so one big array spreads over the workers too.
 *
 * Marking a candidate word: reject it unless it is inside the arenas' bounds,
 * find its span through the page map, reject it unless the span is an
 * in-use GC span and the object under it is allocated (a stale pointer to a
 * free slot must not revive it), then set the mark bit with one atomic OR
 * (a plain load first skips objects already marked). Noscan objects are
 * marked but never pushed; typed objects are scanned through their type's
 * pointer mask; all others conservatively, word by word. Interior pointers
 * count: the object under the address is marked.
 */
#define _GNU_SOURCE
#include "gc/gc.h"

#include <pthread.h>
#include <string.h>

#include "sched/sanitize.h"

#define WBUF_N 253
#define OBLET ((uintptr_t)128 << 10)
#define CHUNK_BUFS 64

typedef struct workbuf {
    struct workbuf *next;
    uint32_t n;
    uint32_t pad;
    uintptr_t obj[WBUF_N];
} workbuf;

typedef struct gcwork {
    workbuf *b1, *b2;
    uint64_t bytes;        /* bytes of objects this worker marked */
    uintptr_t lo, hi;      /* arena bounds, read once */
    uint32_t nscan;        /* objects scanned (paces the balance check) */
    mspan *last;           /* span of the last pointer found, [lastbase, +lastsize) */
    uintptr_t lastbase, lastsize;
} gcwork;

static rlock wlock;        /* protects full, empty */
static workbuf *full, *empty;
static _Atomic int32_t nfull;
static _Atomic int32_t nwait;         /* workers out of work */
/* Workers that joined this mark, and JOIN_DONE once it has ended. The
 * collector is one; a helper joins when it wakes, unless the mark already
 * ended (on a busy machine a helper may get its CPU late: the mark does
 * not wait for it). */
static _Atomic uint32_t joined = 0x80000000u;
#define JOIN_DONE 0x80000000u

/* Waking a sleeping thread takes tens to hundreds of microseconds (more
 * on a virtual machine whose idle CPU is halted): the helpers are woken
 * before the world stops (phase_seq) and spin until the mark starts
 * (go_seq), so that they are on a CPU when there is work. */
static _Atomic uint32_t phase_seq;    /* + 1 wakes the helpers for a mark */
static _Atomic uint32_t go_seq;       /* = phase_seq: the mark has started */
static bool helpers_woken;            /* phase_seq was bumped for the coming mark. Collector only */
static _Atomic int32_t helpers_busy;
static int32_t nhelpers;              /* helper threads started */
static _Atomic uint64_t bytes_marked;

static workbuf *getempty(void)
{
    lock(&wlock);
    workbuf *b = empty;
    if (!b) {
        char *mem = os_alloc(CHUNK_BUFS * sizeof(workbuf));
        if (!mem) {
            unlock(&wlock);
            throw("gc: out of memory for mark work buffers");
        }
        for (int i = 1; i < CHUNK_BUFS; i++) {
            workbuf *x = (workbuf *)(mem + i * sizeof(workbuf));
            x->next = empty;
            empty = x;
        }
        b = (workbuf *)mem;
    } else {
        empty = b->next;
    }
    unlock(&wlock);
    b->next = NULL;
    b->n = 0;
    return b;
}

static void putempty(workbuf *b)
{
    lock(&wlock);
    b->next = empty;
    empty = b;
    unlock(&wlock);
}

static void putfull(workbuf *b)
{
    lock(&wlock);
    b->next = full;
    full = b;
    atomic_fetch_add(&nfull, 1);
    unlock(&wlock);
}

static workbuf *trygetfull(void)
{
    if (!atomic_load_explicit(&nfull, memory_order_relaxed))
        return NULL;
    lock(&wlock);
    workbuf *b = full;
    if (b) {
        full = b->next;
        atomic_fetch_sub(&nfull, 1);
    }
    unlock(&wlock);
    return b;
}

static inline void push(gcwork *w, uintptr_t obj)
{
    workbuf *b = w->b1;
    if (unlikely(b->n == WBUF_N)) {
        workbuf *t = w->b2;
        if (t->n < WBUF_N) {
            w->b2 = b;
            w->b1 = b = t;
        } else {
            putfull(b);
            w->b1 = b = getempty();
        }
    }
    b->obj[b->n++] = obj;
}

static inline bool pop(gcwork *w, uintptr_t *obj)
{
    workbuf *b = w->b1;
    if (likely(b->n)) {
        *obj = b->obj[--b->n];
        return true;
    }
    workbuf *t = w->b2;
    if (t->n) {
        w->b2 = b;
        w->b1 = t;
        *obj = t->obj[--t->n];
        return true;
    }
    workbuf *f = trygetfull();
    if (!f)
        return false;
    putempty(b);
    w->b1 = f;
    *obj = f->obj[--f->n];
    return true;
}

/* Mark the object of in-use GC span s under address p (inside s). These
 * are inlined into the uninstrumented scanners, so they must not be
 * instrumented either (ASan would poison their locals' shadow in a frame
 * that never unpoisons it). */
static inline __attribute__((always_inline, no_sanitize_address)) void
mark_in_span(gcwork *w, uintptr_t p, mspan *s)
{
    uint32_t idx = 0;
    uintptr_t base = s->base;
    if (s->sizeclass) {
        idx = (uint32_t)(((p - base) * s->divmagic) >> 32);
        base += (uintptr_t)idx * s->elemsize;
    }
    /* A byte per object, set with a plain store: an atomic RMW would cost
     * tens of cycles and stall the loads behind it (the misses that the
     * prefetching overlaps). Two workers may both see it clear and both
     * scan the object: harmless, and rare. Marked implies allocated, so
     * the allocation check comes after. */
    _Atomic uint8_t *mb = &s->gcmark[idx];
    if (atomic_load_explicit(mb, memory_order_relaxed) || !gc_is_allocated(s, idx))
        return;
    atomic_store_explicit(mb, 1, memory_order_relaxed);
    w->bytes += gc_object_size(s);
    if (s->kind != HEAP_GC_NOSCAN) {
        __builtin_prefetch((const void *)base);
        push(w, base);
    }
}

/* Mark the object under candidate address p (already inside the arena bounds). */
static inline __attribute__((always_inline, no_sanitize_address)) void
mark_ptr(gcwork *w, uintptr_t p)
{
    mspan *s;
    uint32_t idx;
    if (gc_object_of(p, &s, &idx))
        mark_in_span(w, p, s);
}

/* Scan [lo, hi) conservatively: every aligned word that points into the
 * arenas marks what it points to. Stacks and globals are read racily by
 * design (the world is stopped, but the sanitizers cannot know that). */
SAN_NO_INSTRUMENT static void scan_words(gcwork *w, uintptr_t lo, uintptr_t hi)
{
    lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    uintptr_t alo = w->lo, span = w->hi - w->lo;
    /* the span of the last hit: pointers of a structure built together
     * often land in the same span, and then need no page-map lookup */
    mspan *ls = w->last;
    uintptr_t lbase = w->lastbase, lsize = w->lastsize;
    for (uintptr_t q = lo; q + sizeof(uintptr_t) <= hi; q += sizeof(uintptr_t)) {
        uintptr_t v = *(volatile uintptr_t *)q;
        if (v - lbase < lsize) {
            mark_in_span(w, v, ls);
        } else if (v - alo < span) {
            mspan *s;
            uint32_t idx;
            if (gc_object_of(v, &s, &idx)) {
                mark_in_span(w, v, s);
                ls = s;
                lbase = s->base;
                lsize = s->limit - s->base;
            }
        }
    }
    w->last = ls;
    w->lastbase = lbase;
    w->lastsize = lsize;
}

/* Typed object (or piece of one) [p, end): words whose bit in the type's
 * mask is set, the mask repeating every t->size bytes from base. */
SAN_NO_INSTRUMENT static void scan_typed(gcwork *w, uintptr_t base, uintptr_t p, uintptr_t end,
                                         const gort_gc_type *t)
{
    if (!t)
        return;
    size_t words = t->size / sizeof(uintptr_t);
    uintptr_t alo = w->lo, span = w->hi - w->lo;
    size_t i = ((p - base) / sizeof(uintptr_t)) % words;
    for (uintptr_t q = p; q + sizeof(uintptr_t) <= end; q += sizeof(uintptr_t)) {
        if ((t->ptrmask[i >> 3] >> (i & 7)) & 1) {
            uintptr_t v = *(volatile uintptr_t *)q;
            if (v - alo < span)
                mark_ptr(w, v);
        }
        if (++i == words)
            i = 0;
    }
}

/* A grey entry: a small object's base, or a piece of a large object. */
static void scan_object(gcwork *w, uintptr_t p)
{
    mspan *s = spanof(p);
    uintptr_t base, end;
    if (s->sizeclass) {
        base = p;
        end = p + s->elemsize;
    } else {
        base = s->base;
        end = s->base + s->npages * PAGE_SIZE;
        if (end - p > OBLET) {
            push(w, p + OBLET);
            end = p + OBLET;
        }
    }
    if (s->kind == HEAP_GC_TYPED) {
        uint32_t idx = s->sizeclass ? (uint32_t)(((base - s->base) * s->divmagic) >> 32) : 0;
        scan_typed(w, base, p, end, s->types[idx]);
    } else {
        scan_words(w, p, end);
    }
}

void mark_scan_range(void *wp, uintptr_t lo, uintptr_t hi)
{
    scan_words(wp, lo, hi);
}

void mark_object_noscan_self(void *wp, uintptr_t obj)
{
    gcwork *w = wp;
    mspan *s;
    uint32_t idx;
    uintptr_t base = gc_object_of(obj, &s, &idx);
    if (!base || s->kind == HEAP_GC_NOSCAN)
        return;
    uintptr_t end = base + gc_object_size(s);
    if (s->kind == HEAP_GC_TYPED)
        scan_typed(w, base, base, end, s->types[idx]);
    else
        scan_words(w, base, end);
}

bool mark_is_marked(uintptr_t obj)
{
    mspan *s;
    uint32_t idx;
    if (!gc_object_of(obj, &s, &idx))
        return true;
    return atomic_load_explicit(&s->gcmark[idx], memory_order_relaxed) != 0;
}

void mark_set(void *wp, uintptr_t obj)
{
    gcwork *w = wp;
    if (obj - w->lo < w->hi - w->lo)
        mark_ptr(w, obj);
}

/* Scan grey objects until this worker has none. Objects go through a
 * small FIFO whose entries are prefetched when they enter it, so that the
 * memory of the next few objects is on its way while one is scanned.
 *
 * Balancing: when others are idle and the global list is empty, give them
 * half of what this worker holds: the older half of the current buffer, or,
 * when the buffer is nearly empty (a tree walked depth first keeps most of
 * its frontier in the FIFO), half of the FIFO. */
#define PREFETCH 16
void mark_drain_local(void *wp)
{
    gcwork *w = wp;
    uintptr_t ring[PREFETCH];
    uint32_t head = 0, n = 0;
    for (;;) {
        uintptr_t p;
        while (n < PREFETCH && pop(w, &p)) {
            __builtin_prefetch((const void *)p);
            ring[(head + n) % PREFETCH] = p;
            n++;
        }
        if (!n)
            return;
        p = ring[head];
        head = (head + 1) % PREFETCH;
        n--;
        scan_object(w, p);
        if (unlikely((++w->nscan & 15) == 0) &&
            atomic_load_explicit(&nwait, memory_order_relaxed) > 0 &&
            !atomic_load_explicit(&nfull, memory_order_relaxed)) {
            workbuf *b = w->b1;
            workbuf *h = NULL;
            if (b->n >= 4) {
                h = getempty();
                uint32_t half = b->n / 2;
                memcpy(h->obj, b->obj, half * sizeof(uintptr_t));
                h->n = half;
                memmove(b->obj, b->obj + half, (b->n - half) * sizeof(uintptr_t));
                b->n -= half;
            } else if (n >= 4) {
                h = getempty();
                uint32_t half = n / 2;
                for (uint32_t k = 0; k < half; k++)   /* the newest entries */
                    h->obj[k] = ring[(head + n - 1 - k) % PREFETCH];
                h->n = half;
                n -= half;
            }
            if (h)
                putfull(h);
        }
    }
}

void mark_drain(void *wp)
{
    for (;;) {
        mark_drain_local(wp);
        atomic_fetch_add(&nwait, 1);
        for (int spins = 0;; spins++) {
            if (atomic_load(&nfull)) {
                atomic_fetch_sub(&nwait, 1);
                break;
            }
            uint32_t j = atomic_load(&joined);
            if (j & JOIN_DONE)
                return;
            /* every worker that joined is idle and nothing is queued:
             * the mark is over, unless a helper joins in between */
            if (atomic_load(&nwait) == (int32_t)j && !atomic_load(&nfull) &&
                atomic_compare_exchange_strong(&joined, &j, j | JOIN_DONE))
                return;
            if (spins < 50)
                cpu_relax();
            else
                os_yield();
        }
    }
}

static void worker_init(gcwork *w)
{
    memset(w, 0, sizeof *w);
    w->b1 = getempty();
    w->b2 = getempty();
    w->lo = atomic_load(&arena_lo);
    w->hi = atomic_load(&arena_hi);
}

static void worker_done(gcwork *w)
{
    atomic_fetch_add(&bytes_marked, w->bytes);
    putempty(w->b1);
    putempty(w->b2);
}

bool mark_help(void)
{
    uint32_t j = atomic_load(&joined);
    do {
        if (j & JOIN_DONE)
            return false;   /* no mark, or too late for this one */
    } while (!atomic_compare_exchange_weak(&joined, &j, j + 1));
    atomic_fetch_add(&helpers_busy, 1);
    gcwork w;
    worker_init(&w);
    roots_scan(&w);
    mark_drain(&w);
    worker_done(&w);
    if (atomic_fetch_sub(&helpers_busy, 1) == 1)
        os_futex_wake((uint32_t *)&helpers_busy, 1);
    return true;
}

static void *helper_main(void *arg)
{
    (void)arg;
    san_quiet_thread();
    uint32_t seen = 0;
    for (;;) {
        while (atomic_load(&phase_seq) == seen)
            os_futex_wait((uint32_t *)&phase_seq, seen, -1);
        seen = atomic_load(&phase_seq);
        /* wait while the mark is behind the phase we woke for. Not "until
         * equal": a helper descheduled here for a whole cycle finds go_seq
         * already past seen, and would spin forever */
        for (int spins = 0; (int32_t)(atomic_load(&go_seq) - seen) < 0; spins++) {
            if (spins < 1000)
                cpu_relax();
            else
                os_yield();
        }
        uint32_t done = gc_marked_done();
        if (mark_help())
            gc_sweep_after_mark(done);   /* awake anyway: sweep once the world runs */
    }
    return NULL;
}

void mark_wake_helpers(void)
{
    if (nhelpers && !helpers_woken) {
        atomic_fetch_add(&phase_seq, 1);
        os_futex_wake((uint32_t *)&phase_seq, INT32_MAX);
        helpers_woken = true;
    }
}

void mark_init(int nworkers)
{
    while (nhelpers < nworkers - 1) {
        if (!os_thread_start(helper_main, NULL))
            break;   /* mark with fewer workers */
        nhelpers++;
    }
}

uint64_t mark_run(void)
{
    atomic_store(&bytes_marked, 0);
    atomic_store(&nwait, 0);
    atomic_store(&joined, 1);   /* the collector */
    mark_wake_helpers();
    helpers_woken = false;
    atomic_store(&go_seq, atomic_load(&phase_seq));
    gcwork w;
    worker_init(&w);
    roots_scan(&w);
    mark_drain(&w);
    int32_t b;
    while ((b = atomic_load(&helpers_busy)) > 0)
        os_futex_wait((uint32_t *)&helpers_busy, (uint32_t)b, -1);
    /* Finalizers: single-threaded, after the parallel mark. */
    atomic_store(&nwait, 0);
    atomic_store(&joined, 1 | JOIN_DONE);   /* alone now, and no helper may join */
    finalizer_queue_unreachable(&w);
    mark_drain(&w);
    worker_done(&w);
    return atomic_load(&bytes_marked);
}

void mark_atfork_child(void)
{
    nhelpers = 0;   /* the helper threads do not exist in the child */
    helpers_woken = false;
    atomic_store(&wlock.key, 0);
}
