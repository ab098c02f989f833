/* mcache.c - per-thread allocation caches, and frees across threads.
 *
 * An mcache is owned by one thread at a time (one P, once the scheduler
 * exists) and needs no lock. For each size class it has a bin: a list of
 * free objects ready to hand out (with its length and a maximum), the
 * current span, and a list of partial spans.
 *
 * Spans belong to the cache that took them from the heap until they are
 * empty again. Objects do not: a free pushes the object on the freeing
 * thread's bin whatever span it came from (tcmalloc's thread cache), so a
 * thread that frees and allocates in a loop never touches span metadata,
 * and free() needs only the page info (class and offset: arena.c) to find
 * the bin. When a bin grows past its maximum, the older half goes back to
 * the spans (return_objects):
 *
 *   own span     the objects go on the span's free list; no atomics. A span
 *                whose last object comes back returns to the heap; a full
 *                span that gets objects back becomes partial.
 *   other cache  the objects are pushed on the span's xfree stack, a whole
 *                run of consecutive objects of one span with one CAS. The
 *                thread that turns xfree from empty to non-empty also
 *                pushes the span on its owner's xspans stack, so the owner
 *                finds remote frees without scanning its spans; it takes
 *                each stack whole with one atomic exchange when a bin runs
 *                dry (mcache_collect).
 *
 * So a producer/consumer pair costs the consumer a push per object and one
 * CAS per run, and memory goes back to the owner's spans, where it can be
 * reused or, once a span is empty, returned to the heap and to the OS.
 * This borrows mimalloc's per-span remote-free lists; it rejects tcmalloc's
 * central free lists, where every object on its way between threads goes
 * through a lock and spans rarely empty. A bin's maximum is 64 KiB worth of
 * objects (4 to 512), so a thread caches at most a few MiB.
 *
 * Refill (a bin ran dry): collect remote frees, then take the current
 * span's free list, or carve a page worth of never-used objects from it
 * (carving lazily keeps a fresh span's untouched pages out of RSS), then a
 * partial span, then a new span from the heap.
 *
 * Why a span is never on two xspans stacks: it is pushed only by the free
 * that made xfree non-empty, and xfree becomes empty again only by the
 * owner's exchange, which the owner does after reading s->xnext. Why a span
 * is never returned to the heap while a remote free is under way: its
 * `used` count includes objects on xfree until the owner collects them, so
 * it cannot reach zero first.
 *
 * Accounting: span->used counts objects that are neither on the span's free
 * list nor uncarved; objects in any bin count as used.
 *
 * Thread exit: a pthread key destructor flushes the cache (bins back to
 * their spans, remote frees collected, empty spans back to the heap) and
 * parks it on the idle list; the next new thread adopts it, spans and all.
 * Caches are never freed, so a late remote free into a parked cache's span
 * is still safe; the scavenger collects for parked caches. fork: the child
 * keeps only its own thread's cache; caches of threads that do not exist in
 * the child are orphaned (never reused: one of them might have been
 * mid-operation), which leaks their partial spans in the child only.
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

/* A cache from the idle list, or a new one. NULL if out of memory. */
static mcache *cache_take(void)
{
    lock(&idle_lock);
    mcache *c = idle_list;
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
    for (int k = 0; k < NUM_BIN_KINDS; k++)
        for (int cls = 1; cls < NUM_SIZE_CLASSES; cls++) {
            uint32_t m = 65536 / class_to_size[cls];
            m = m < 4 ? 4 : m > 512 ? 512 : m;
            if (c->classes[k][cls].max == 0) {   /* a new cache: an empty bin */
                c->classes[k][cls].max = m;
                c->bins[k][cls].limit = m;
            }
        }
    atomic_store_explicit(&c->state, MCACHE_ACTIVE, memory_order_relaxed);
    unlock(&idle_lock);
    return c;
}

/* Park a cache on the idle list (flushed first when asked). */
static void cache_park(mcache *c, bool flush)
{
    if (flush)
        mcache_flush(c);
    lock(&idle_lock);
    atomic_store_explicit(&c->state, MCACHE_IDLE, memory_order_relaxed);
    c->for_p = false;
    c->next_idle = idle_list;
    idle_list = c;
    unlock(&idle_lock);
}

mcache *mcache_get_slow(void)
{
    mcache *c = tls_mcache;
    if (c)
        return c;
    c = cache_take();
    if (!c)
        return NULL;
    /* Publish before registering: pthread_setspecific or pthread_atfork may
     * call malloc, which must find this cache rather than recurse. */
    tls_mcache = c;
    register_thread_exit(c);
    return c;
}

static void cache_destructor(void *arg)
{
    mcache *c = arg;
    if (tls_mcache == c)
        tls_mcache = NULL;
    cache_park(c, true);
}

mcache *mcache_for_p(void)
{
    mcache *c = cache_take();
    if (c)
        c->for_p = true;
    return c;
}

void mcache_release_p(mcache *c)
{
    cache_park(c, true);
}

void mcache_use(mcache *c)
{
    mcache *old = tls_mcache;
    if (old == c)
        return;
    if (old && !old->for_p) {
        /* this thread's own cache: the thread now allocates through a P */
        if (atomic_load_explicit(&key_state, memory_order_acquire) == 2)
            pthread_setspecific(cache_key, NULL);
        tls_mcache = NULL;
        cache_park(old, true);
    }
    tls_mcache = c;
}

static void partial_push(mclass *k, mspan *s)
{
    s->where = SPAN_IN_PARTIAL;
    s->prev = NULL;
    s->next = k->partial;
    if (k->partial)
        k->partial->prev = s;
    k->partial = s;
}

static void partial_remove(mclass *k, mspan *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        k->partial = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

/* A span got objects back on its own free list. The current span stays
 * even when empty; any other empty span goes back to the heap. */
static void span_gained(mclass *k, mspan *s)
{
    if (s->where == SPAN_IN_BIN)
        return;
    if (s->used == 0) {
        if (s->where == SPAN_IN_PARTIAL)
            partial_remove(k, s);
        mheap_free(s);
    } else if (s->where == SPAN_IN_FULL) {
        partial_push(k, s);
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
    b->limit -= (int64_t)n;
    s->carve += n * size;
    s->used += (uint32_t)n;
}

/* Only called with the bin empty (refill), so no tail walk is needed. */
static void take_freelist(mbin *b, mspan *s)
{
    dassert(b->free == NULL);
    b->free = s->freelist;
    b->limit -= s->nfreelist;
    s->used += s->nfreelist;
    s->freelist = NULL;
    s->nfreelist = 0;
}

void *mcache_refill(mcache *c, uint8_t kind, uint8_t cls)
{
    mbin *b = &c->bins[kind][cls];
    mclass *k = &c->classes[kind][cls];
    if (atomic_load_explicit(&c->xspans, memory_order_relaxed))
        mcache_collect(c);
    mspan *s = k->span;
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
        k->span = NULL;
    }
    s = k->partial;
    if (s) {
        partial_remove(k, s);
        s->where = SPAN_IN_BIN;
        k->span = s;
        if (s->freelist)
            take_freelist(b, s);
        else
            carve(b, s);
        goto pop;
    }
    bool zeroed;
    s = mheap_alloc(class_to_npages[cls], 1, cls, kind, c, &zeroed);
    if (!s)
        return NULL;
    s->where = SPAN_IN_BIN;
    k->span = s;
    carve(b, s);
pop:;
    void *p = b->free;
    b->free = *(void **)p;
    return p;
}

/* Push the chain head..tail (n objects) on span s, owned by another cache:
 * one CAS for the whole chain. */
static void free_remote_chain(mspan *s, void *head, void *tail)
{
    /* acquire on success: pairs with the owner's exchange (see collect) */
    void *old = atomic_load_explicit(&s->xfree, memory_order_relaxed);
    do {
        *(void **)tail = old;
    } while (!atomic_compare_exchange_weak_explicit(&s->xfree, &old, head, memory_order_acq_rel,
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

/* Give a NULL-terminated list of objects back to their spans, in one pass.
 * Runs of consecutive objects from one span are handed over together: a
 * local span takes them on its free list, a remote one with one CAS. For
 * a span of our own the run also checks what the fast path could not
 * afford to: that no object lies beyond the carved part (never handed
 * out). */
static void return_objects(mcache *c, void *list)
{
    while (list) {
        mspan *s = spanof((uintptr_t)list);
        bool own = s->owner == c;
        uintptr_t base = s->base, bound = own ? s->carve : s->limit;
        if (unlikely((uintptr_t)list - base >= bound - base))
            bad_free(list);
        void *head = list, *tail = list;
        uint32_t n = 1;
        list = *(void **)list;
        while (list && (uintptr_t)list - base < bound - base) {
            tail = list;
            list = *(void **)list;
            n++;
        }
        if (own) {
            *(void **)tail = s->freelist;
            s->freelist = head;
            s->nfreelist += n;
            s->used -= n;
            span_gained(&c->classes[s->kind][s->sizeclass], s);
        } else {
            free_remote_chain(s, head, tail);
        }
    }
}

void mcache_bin_overflow(mcache *c, uint8_t kind, uint8_t cls)
{
    /* Return the whole list: finding a cut point would cost a walk of its
     * own, and return_objects walks the list anyway. A free-heavy phase
     * (a data structure torn down) then costs one extra touch per object;
     * a balanced malloc/free mix rarely gets here. */
    mbin *b = &c->bins[kind][cls];
    void *list = b->free;
    b->limit += bin_len(b, c->classes[kind][cls].max);
    b->free = NULL;
    return_objects(c, list);
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
            *(void **)tail = s->freelist;
            s->freelist = list;
            s->nfreelist += n;
            s->used -= n;
            span_gained(&c->classes[s->kind][s->sizeclass], s);   /* may return s to the heap */
        }
        s = next;
    }
}

void mcache_flush(mcache *c)
{
    for (int kind = 0; kind < NUM_BIN_KINDS; kind++)
        for (int cls = 1; cls < NUM_SIZE_CLASSES; cls++)
            if (c->bins[kind][cls].free)
                mcache_bin_overflow(c, (uint8_t)kind, (uint8_t)cls);
    mcache_collect(c);
    for (int kind = 0; kind < NUM_BIN_KINDS; kind++) {
        for (int cls = 1; cls < NUM_SIZE_CLASSES; cls++) {
            mclass *k = &c->classes[kind][cls];
            mspan *s = k->span;
            if (!s)
                continue;
            k->span = NULL;
            s->where = SPAN_IN_FULL;
            if (s->used == 0)
                mheap_free(s);
            else if (s->freelist || s->carve < s->limit)
                partial_push(k, s);
        }
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
    tls_nosuspend = 0;   /* the two locks of prepare, released by hand above */
    tls_suspend_pending = 0;
    scavenger_atfork_child();
}
