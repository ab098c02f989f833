/* mcentral.c - garbage-collected spans that no cache holds (Go's mcentral.go).
 *
 * GC objects are not allocated from free lists threaded through them, as
 * manual ones are (mcache.c), but by bitmap as in Go: a span's allocbits
 * say which objects survived the last sweep, freeindex walks over the rest
 * in address order, and alloccache holds 64 inverted allocbits at a time so
 * that the next free object is one count-trailing-zeros away. The reason is
 * the sweep: after a mark, the new allocbits simply are the mark bits, so a
 * span is swept in a few word operations without touching its objects, and
 * no free list has to be rebuilt or walked (a conservative pointer into a
 * free object cannot corrupt anything either).
 *
 * Each cache (per P or per thread) allocates from one span per kind and
 * class (mcache.gcspans). When it is used up the cache returns it here and
 * takes another: first a swept span with free objects, then it sweeps
 * unswept spans itself (lazy sweeping, as in Go) until one has room, then
 * a fresh span from the page heap. The lists per kind and class are
 * swept/unswept, partial/full, indexed by the sweep generation so that
 * starting a cycle turns every swept list into an unswept one at once.
 * Large GC objects (class 0) sit on the full lists of class 0 so that the
 * sweeper finds them.
 *
 * heap_live is kept per span, not per object, as Go does: a span entering
 * a cache counts all its free objects as allocated, and leaving it gives
 * the unused ones back. The allocation fast path touches no shared counter.
 *
 * Locks: each central has its own; the page heap's lock comes after it.
 * A cache's spans are released with the world stopped (the collector) or
 * by the cache's own thread.
 */
#include "gc/gc.h"

#include <string.h>

mcentral mcentrals[NUM_GC_KINDS][NUM_SIZE_CLASSES];

size_t gc_nbitwords(const mspan *s)
{
    return ((size_t)s->nelems + 63) / 64;
}

/* Lists of a central, by parity i; n[i] counts both of parity i. */
static void cpush(mcentral *c, int i, bool partial, mspan *s)
{
    spanlist_push(partial ? &c->partial[i] : &c->full[i], s);
    atomic_fetch_add_explicit(&c->n[i], 1, memory_order_relaxed);
}

static void cremove(mcentral *c, int i, mspan **head, mspan *s)
{
    spanlist_remove(head, s);
    atomic_fetch_sub_explicit(&c->n[i], 1, memory_order_relaxed);
}

/* A span of parity i, partial ones first; NULL if none. */
static mspan *cpop(mcentral *c, int i)
{
    mspan **head = c->partial[i] ? &c->partial[i] : &c->full[i];
    mspan *s = *head;
    if (s)
        cremove(c, i, head, s);
    return s;
}

static inline mcentral *central_of(const mspan *s)
{
    return &mcentrals[s->kind - 1][s->sizeclass];
}

/* The allocation cache for the word of allocbits that holds freeindex. */
static inline void refill_alloccache(mspan *s)
{
    uint32_t i = s->freeindex;
    s->alloccache = i < s->nelems ? ~s->allocbits[i >> 6] >> (i & 63) : 0;
}

/* A fresh span from the page heap for GC objects: bitmaps allocated, all free. */
static mspan *span_new(uint8_t kind, uint8_t cls, uintptr_t npages)
{
    bool zeroed;
    mspan *s = mheap_alloc(npages, 1, cls, kind, NULL, &zeroed);
    if (!s)
        return NULL;
    size_t nw = gc_nbitwords(s);
    /* allocbits, freedbits, then the mark bytes, in one block */
    uint64_t *bits = gort_calloc(2 * nw + (s->nelems + 7) / 8, sizeof(uint64_t));
    const struct gort_gc_type **types = NULL;
    if (kind == HEAP_GC_TYPED)
        types = gort_calloc(s->nelems, sizeof *types);
    if (!bits || (kind == HEAP_GC_TYPED && !types)) {
        gort_free(bits);
        gort_free(types);
        mheap_free(s);
        return NULL;
    }
    s->allocbits = bits;
    s->freedbits = bits + nw;
    s->gcmark = (_Atomic uint8_t *)(bits + 2 * nw);
    s->types = types;
    s->freeindex = 0;
    s->alloccount = 0;
    s->incache = 0;
    /* free slots of a small GC span are kept zero (sweep.c) */
    if (cls && !zeroed && !gc_clobberfree)
        memset((void *)s->base, 0, s->npages * PAGE_SIZE);
    s->needzero = cls ? gc_clobberfree : !zeroed;
    refill_alloccache(s);
    atomic_store_explicit(&s->sweepgen, atomic_load(&gc.sweepgen), memory_order_relaxed);
    return s;
}

void gc_span_free(mspan *s)
{
    uint64_t *bits = s->allocbits;
    const struct gort_gc_type **types = s->types;
    s->allocbits = s->freedbits = NULL;
    s->gcmark = NULL;
    s->types = NULL;
    mheap_free(s);
    gort_free(bits);
    gort_free(types);
}

static void take_for_cache(mspan *s)
{
    s->incache = 1;
    s->cachecount = s->alloccount;
    atomic_fetch_add_explicit(&gc.heap_live, (uint64_t)(s->nelems - s->alloccount) * s->elemsize,
                              memory_order_relaxed);
}

mspan *mcentral_cache_span(uint8_t kind, uint8_t cls)
{
    mcentral *c = &mcentrals[kind - 1][cls];
    uint32_t sg = atomic_load(&gc.sweepgen);
    int sw = swept_index(sg), un = 1 - sw;
    lock(&c->lock);
    mspan *s = c->partial[sw];
    if (s) {
        cremove(c, sw, &c->partial[sw], s);
        goto have;
    }
    /* Sweep unswept spans until one has room (bounded, as Go's spanBudget). */
    for (int budget = 100; budget > 0; budget--) {
        s = cpop(c, un);
        if (!s)
            break;
        uint32_t want = sg - 2;
        if (!atomic_compare_exchange_strong(&s->sweepgen, &want, sg - 1))
            throwf("mcentral: span on an unswept list has sweepgen %u (sweepgen %u)", want, sg);
        unlock(&c->lock);
        sweep_span(s, true);
        if (s->alloccount < s->nelems) {
            lock(&c->lock);
            goto have;
        }
        lock(&c->lock);
        cpush(c, sw, false, s);
    }
    unlock(&c->lock);
    s = span_new(kind, cls, class_to_npages[cls]);
    if (!s)
        return NULL;
    take_for_cache(s);
    return s;
have:
    unlock(&c->lock);
    take_for_cache(s);
    return s;
}

void mcentral_put_swept(mspan *s)
{
    mcentral *c = central_of(s);
    int sw = swept_index(atomic_load_explicit(&s->sweepgen, memory_order_relaxed));
    lock(&c->lock);
    cpush(c, sw, s->sizeclass && s->alloccount < s->nelems, s);
    unlock(&c->lock);
}

void mcentral_uncache_span(mspan *s)
{
    uint32_t n = s->alloccount;
    atomic_fetch_sub_explicit(&gc.heap_live, (uint64_t)(s->nelems - n) * s->elemsize,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&gc.nmalloc[s->sizeclass], n - s->cachecount, memory_order_relaxed);
    s->incache = 0;
    mcentral_put_swept(s);
}

mspan *mcentral_take_unswept(int k, int cls)
{
    mcentral *c = &mcentrals[k][cls];
    uint32_t sg = atomic_load(&gc.sweepgen);
    int un = 1 - swept_index(sg);
    if (!atomic_load_explicit(&c->n[un], memory_order_relaxed))   /* the sweeper's fast skip */
        return NULL;
    lock(&c->lock);
    mspan *s = cpop(c, un);
    if (s) {
        uint32_t want = sg - 2;
        if (!atomic_compare_exchange_strong(&s->sweepgen, &want, sg - 1))
            throwf("sweep: span on an unswept list has sweepgen %u (sweepgen %u)", want, sg);
    }
    unlock(&c->lock);
    return s;
}

void mcache_release_gc(mcache *c)
{
    for (int k = 0; k < NUM_GC_KINDS; k++)
        for (int cls = 1; cls < NUM_SIZE_CLASSES; cls++) {
            mspan *s = c->gcspans[k][cls];
            if (s) {
                c->gcspans[k][cls] = NULL;
                mcentral_uncache_span(s);
            }
        }
}

/* Large GC objects: a span each, on class 0's full list. */
void *gc_alloc_large(size_t n, uint8_t kind, const struct gort_gc_type *t)
{
    if (n > ((size_t)1 << (ADDR_BITS - 1)))
        return NULL;
    uintptr_t npages = (n + PAGE_SIZE - 1) >> PAGE_SHIFT;
    mspan *s = span_new(kind, 0, npages);
    if (!s)
        return NULL;
    if (s->needzero)
        memset((void *)s->base, 0, npages * PAGE_SIZE);
    s->freeindex = 1;
    s->alloccount = 1;
    s->alloccache = 0;
    if (s->types)
        s->types[0] = t;
    atomic_fetch_add_explicit(&mheap_.large_alloc, npages * PAGE_SIZE, memory_order_relaxed);
    atomic_fetch_add_explicit(&mheap_.nlarge_alloc, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&gc.heap_live, npages * PAGE_SIZE, memory_order_relaxed);
    mcentral *c = &mcentrals[kind - 1][0];
    lock(&c->lock);
    /* sweepgen is read under the lock: a cycle that starts later sees the
     * span on the list it will turn unswept */
    atomic_store_explicit(&s->sweepgen, atomic_load(&gc.sweepgen), memory_order_relaxed);
    cpush(c, swept_index(atomic_load(&gc.sweepgen)), false, s);
    unlock(&c->lock);
    return (void *)s->base;
}

/* gort_gc_free of a large object: off whichever list it is on, then back
 * to the heap. While a sweeper has it claimed (sg-1) it is on no list:
 * wait for it to come back (it will, marked: the caller holds a pointer
 * to it, which the mark found). The world cannot stop while the central
 * lock is held, so sweepgen is stable inside. */
void gc_free_large(mspan *s)
{
    mcentral *c = central_of(s);
    lock(&c->lock);
    for (;;) {
        uint32_t sg = atomic_load(&gc.sweepgen);
        uint32_t v = atomic_load(&s->sweepgen);
        if (v == sg) {
            cremove(c, swept_index(sg), &c->full[swept_index(sg)], s);
            break;
        }
        if (v == sg - 2) {
            cremove(c, 1 - swept_index(sg), &c->full[1 - swept_index(sg)], s);
            break;
        }
        unlock(&c->lock);
        os_yield();
        lock(&c->lock);
    }
    unlock(&c->lock);
    uint64_t bytes = s->npages * PAGE_SIZE;
    atomic_fetch_sub_explicit(&gc.heap_live, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&mheap_.large_free, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&mheap_.nlarge_free, 1, memory_order_relaxed);
    gc_span_free(s);
}
