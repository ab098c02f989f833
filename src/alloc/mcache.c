/* mcache.c - per-thread allocation caches, and frees across threads.
 *
 * An mcache is owned by one thread at a time (one P, once the scheduler
 * exists) and needs no lock. For each size class it has a bin: a list of
 * free objects from one span (the current span), and a list of partial
 * spans. Spans belong to the cache that took them from the heap until they
 * are empty again; that ownership is what makes both kinds of free cheap:
 *
 *   local free  (the freeing thread owns the span): push on the bin's list
 *               if the span is current, else on the span's own free list.
 *               No atomics. A span whose last object comes back returns to
 *               the heap; a full span that gets one back becomes partial.
 *   remote free (another cache owns it): one CAS pushes the object on the
 *               span's xfree stack. The thread that turns xfree from empty
 *               to non-empty also pushes the span on its owner's xspans
 *               stack, so the owner finds remote frees without scanning
 *               its spans. The owner takes each stack whole with one atomic
 *               exchange when a bin runs dry (mcache_collect).
 *
 * This is mimalloc's sharded-free-list idea (per span rather than per 64 KiB
 * page) on Go's span/size-class heap. Rejected: tcmalloc's model where any
 * thread caches any object and caches overflow to a central list. There a
 * producer/consumer pair moves every object through a locked central list
 * and memory comes back to spans only when every cache lets go, which is
 * why such allocators are slow on cross-thread frees and rarely give RSS
 * back.
 *
 * Why a span is never on two xspans stacks: it is pushed only by the free
 * that made xfree non-empty, and xfree becomes empty again only by the
 * owner's exchange, which the owner does after reading s->xnext. Why a
 * span is never returned to the heap while a remote free is under way: its
 * `used` count includes objects on xfree until the owner collects them, so
 * it cannot reach zero first.
 *
 * Accounting: span->used counts objects that are neither on the span's free
 * list nor uncarved; objects on the bin's list count as used (the fast path
 * does not touch the span at all).
 *
 * Thread exit: a pthread key destructor flushes the cache (collects remote
 * frees, returns the bin lists to their spans, returns empty spans to the
 * heap) and parks it on the idle list; the next new thread adopts it, spans
 * and all. Caches are never freed, so a late remote free into a parked
 * cache's span is still safe; the scavenger collects for parked caches.
 * fork: the child keeps only its own thread's cache; caches of threads that
 * do not exist in the child are orphaned (never reused: one of them might
 * have been mid-operation), which leaks their partial spans in the child
 * only.
 *
 * See malloc.c for the overview.
 */
#define _GNU_SOURCE
#include "alloc/malloc.h"

#include <pthread.h>
#include <string.h>

__thread mcache *tls_mcache __attribute__((tls_model("initial-exec")));

static rlock idle_lock;              /* protects idle_list, cachealloc, collection of idle caches */
static mcache *idle_list;
static fixalloc cachealloc;
static _Atomic(mcache *) all_caches;
_Atomic uint64_t mcache_count;
static pthread_key_t cache_key;
static _Atomic int key_state;        /* 0 none, 1 being created, 2 ready */

static void cache_destructor(void *arg);

mcache *mcache_all(void)
{
    return atomic_load_explicit(&all_caches, memory_order_acquire);
}

static void register_thread_exit(mcache *c)
{
    int st = atomic_load_explicit(&key_state, memory_order_acquire);
    if (st != 2) {
        int z = 0;
        if (atomic_compare_exchange_strong(&key_state, &z, 1)) {
            pthread_key_create(&cache_key, cache_destructor);
            pthread_atfork(mcache_atfork_prepare, mcache_atfork_parent, mcache_atfork_child);
            atomic_store_explicit(&key_state, 2, memory_order_release);
        } else {
            while (atomic_load_explicit(&key_state, memory_order_acquire) != 2)
                os_yield();
        }
    }
    pthread_setspecific(cache_key, c);
}

mcache *mcache_get_slow(void)
{
    mcache *c = tls_mcache;
    if (c)
        return c;
    lock(&idle_lock);
    c = idle_list;
    if (c) {
        idle_list = c->next_idle;
        c->next_idle = NULL;
    } else {
        if (!cachealloc.size)
            fixalloc_init(&cachealloc, sizeof(mcache));
        c = fixalloc_alloc(&cachealloc);
        if (!c) {
            unlock(&idle_lock);
            return NULL;
        }
        c->next_all = atomic_load_explicit(&all_caches, memory_order_relaxed);
        atomic_store_explicit(&all_caches, c, memory_order_release);
        atomic_fetch_add_explicit(&mcache_count, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&c->state, MCACHE_ACTIVE, memory_order_relaxed);
    unlock(&idle_lock);
    /* Publish before registering: pthread_setspecific or pthread_atfork may
     * call malloc, which must find this cache rather than recurse. */
    tls_mcache = c;
    register_thread_exit(c);
    return c;
}

static void cache_destructor(void *arg)
{
    mcache *c = arg;
    mcache_flush(c);
    if (tls_mcache == c)
        tls_mcache = NULL;
    lock(&idle_lock);
    atomic_store_explicit(&c->state, MCACHE_IDLE, memory_order_relaxed);
    c->next_idle = idle_list;
    idle_list = c;
    unlock(&idle_lock);
}

static void partial_push(mbin *b, mspan *s)
{
    s->where = SPAN_IN_PARTIAL;
    s->prev = NULL;
    s->next = b->partial;
    if (b->partial)
        b->partial->prev = s;
    b->partial = s;
}

static void partial_remove(mbin *b, mspan *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        b->partial = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

/* A span not current in its bin got objects back on its own free list. */
static void span_gained(mbin *b, mspan *s)
{
    if (s->used == 0) {
        if (s->where == SPAN_IN_PARTIAL)
            partial_remove(b, s);
        mheap_free(s);
    } else if (s->where == SPAN_IN_FULL) {
        partial_push(b, s);
    }
}

/* Carve up to a page worth of never-used objects into the bin. */
static void carve(mbin *b, mspan *s)
{
    uintptr_t size = s->elemsize;
    uintptr_t left = (s->limit - s->carve) / size;
    uintptr_t n = PAGE_SIZE / size;
    if (n == 0)
        n = 1;
    if (n > left)
        n = left;
    char *p = (char *)s->carve;
    for (uintptr_t i = 0; i + 1 < n; i++)
        *(void **)(p + i * size) = p + (i + 1) * size;
    *(void **)(p + (n - 1) * size) = b->free;
    b->free = p;
    s->carve += n * size;
    s->used += (uint32_t)n;
}

static void take_freelist(mbin *b, mspan *s)
{
    /* b->free is empty whenever we refill, so no tail walk is needed */
    dassert(b->free == NULL);
    b->free = s->freelist;
    s->used += s->nfreelist;
    s->freelist = NULL;
    s->nfreelist = 0;
}

void *mcache_refill(mcache *c, uint8_t cls)
{
    mbin *b = &c->bins[cls];
    if (atomic_load_explicit(&c->xspans, memory_order_relaxed)) {
        mcache_collect(c);
        if (b->free)
            goto pop;
    }
    mspan *s = b->span;
    if (s) {
        if (s->freelist) {
            take_freelist(b, s);
            goto pop;
        }
        if (s->carve < s->limit) {
            carve(b, s);
            goto pop;
        }
        s->where = SPAN_IN_FULL;
        b->span = NULL;
    }
    s = b->partial;
    if (s) {
        partial_remove(b, s);
        s->where = SPAN_IN_BIN;
        b->span = s;
        if (s->freelist)
            take_freelist(b, s);
        else
            carve(b, s);
        goto pop;
    }
    bool zeroed;
    s = mheap_alloc(class_to_npages[cls], 1, cls, c, &zeroed);
    if (!s)
        return NULL;
    s->where = SPAN_IN_BIN;
    b->span = s;
    carve(b, s);
pop:;
    void *p = b->free;
    b->free = *(void **)p;
    return p;
}

void mcache_free_owned_slow(mcache *c, mspan *s, void *p)
{
    if (unlikely(p == s->freelist))
        bad_free(p);
    *(void **)p = s->freelist;
    s->freelist = p;
    s->nfreelist++;
    s->used--;
    span_gained(&c->bins[s->sizeclass], s);
}

void mcache_free_remote(mspan *s, void *p)
{
    /* acquire on success: pairs with the owner's exchange (see collect) */
    void *old = atomic_load_explicit(&s->xfree, memory_order_relaxed);
    do {
        if (unlikely(old == p))
            bad_free(p);
        *(void **)p = old;
    } while (!atomic_compare_exchange_weak_explicit(&s->xfree, &old, p, memory_order_acq_rel,
                                                    memory_order_relaxed));
    if (old == NULL) {
        mcache *o = s->owner;
        mspan *h = atomic_load_explicit(&o->xspans, memory_order_relaxed);
        do {
            s->xnext = h;
        } while (!atomic_compare_exchange_weak_explicit(&o->xspans, &h, s, memory_order_release,
                                                        memory_order_relaxed));
    }
}

void mcache_collect(mcache *c)
{
    mspan *s = atomic_exchange_explicit(&c->xspans, NULL, memory_order_acquire);
    while (s) {
        mspan *next = s->xnext;   /* read before s can be pushed again */
        /* acq_rel: our read of s->xnext happens before the next pusher's
         * write, which reads the NULL we store here */
        void *list = atomic_exchange_explicit(&s->xfree, NULL, memory_order_acq_rel);
        if (list) {
            uint32_t n = 1;
            void *tail = list;
            while (*(void **)tail) {
                tail = *(void **)tail;
                n++;
            }
            mbin *b = &c->bins[s->sizeclass];
            if (s == b->span) {
                *(void **)tail = b->free;
                b->free = list;
            } else {
                *(void **)tail = s->freelist;
                s->freelist = list;
                s->nfreelist += n;
                s->used -= n;
                span_gained(b, s);   /* may return s to the heap */
            }
        }
        s = next;
    }
}

void mcache_flush(mcache *c)
{
    mcache_collect(c);
    for (int cls = 1; cls < NUM_SIZE_CLASSES; cls++) {
        mbin *b = &c->bins[cls];
        mspan *s = b->span;
        if (!s)
            continue;
        uint32_t n = 0;
        void *list = b->free, *tail = NULL;
        for (void *q = list; q; q = *(void **)q) {
            tail = q;
            n++;
        }
        if (tail) {
            *(void **)tail = s->freelist;
            s->freelist = list;
            s->nfreelist += n;
            s->used -= n;
        }
        b->free = NULL;
        b->span = NULL;
        s->where = SPAN_IN_FULL;
        span_gained(b, s);
    }
}

void mcache_collect_idle(void)
{
    lock(&idle_lock);
    for (mcache *c = idle_list; c; c = c->next_idle)
        mcache_collect(c);
    unlock(&idle_lock);
}

uint64_t mcache_sys_bytes(uint64_t *inuse)
{
    lock(&idle_lock);
    uint64_t sys = cachealloc.sys;
    *inuse = cachealloc.inuse;
    unlock(&idle_lock);
    return sys;
}

void mcache_atfork_prepare(void)
{
    lock(&idle_lock);
    lock(&mheap_.lock);
}

void mcache_atfork_parent(void)
{
    unlock(&mheap_.lock);
    unlock(&idle_lock);
}

void mcache_atfork_child(void)
{
    /* Only this thread survives. Its cache stays; the caches of threads
     * that are gone are orphaned (see the top of the file). */
    mcache *mine = tls_mcache;
    for (mcache *c = mcache_all(); c; c = c->next_all)
        if (c != mine && atomic_load_explicit(&c->state, memory_order_relaxed) == MCACHE_ACTIVE)
            atomic_store_explicit(&c->state, MCACHE_ORPHAN, memory_order_relaxed);
    atomic_store_explicit(&mheap_.lock.key, 0, memory_order_relaxed);
    atomic_store_explicit(&idle_lock.key, 0, memory_order_relaxed);
    scavenger_atfork_child();
}
