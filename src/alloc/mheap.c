/* mheap.c - the page heap: free spans, coalescing, growth, release.
 *
 * mheap owns every page of every arena. A page is in exactly one span; a
 * span is INUSE (handed to a cache for small objects, or one large object),
 * FREE (on the heap's free lists) or SCAVENGING (taken off the lists while
 * the scavenger gives its pages back without holding the lock).
 *
 * Free spans are kept on 127 exact-size lists (1..127 pages) plus one list
 * of larger spans, with a bitmap of the non-empty exact lists: a request
 * for n < 128 pages takes the first list >= n in one or two bit scans;
 * larger requests take the best fit among the large spans. The remainder of
 * a split goes back on the lists. This is the design of Go before 1.14
 * (mheap.free[] + treap) with a plain list for the rare large spans; Go's
 * later bitmap-and-radix-tree page allocator pays off for a GC heap with
 * millions of one-page spans and concurrent scavenging per chunk, which the
 * collector may bring; the interface here (alloc/free/scavenge) is kept
 * narrow so it can be swapped without touching callers.
 *
 * Coalescing: the page map records the first and last page of every free
 * span, so a freed span finds its neighbours in two lookups and merges with
 * the ones that are FREE and adjacent. Invariant: no two FREE spans are
 * adjacent (mheap_verify checks it).
 *
 * Release: a free span remembers when it became free. The scavenger
 * (scavenge.c) calls mheap_scavenge to madvise away spans idle long enough;
 * the released-page bitmap (arena.c) then says those pages read as zero, so
 * mheap_alloc can tell calloc not to zero them.
 *
 * All state here is protected by mheap_.lock. Lock order: an mcache's work
 * and the idle-cache lock come before mheap_.lock; nothing is taken after it.
 */
#include "alloc/malloc.h"

#include <string.h>

mheap mheap_;

#define NSMALL_LISTS 128

static void list_insert(mheap *h, mspan *s)
{
    mspan **head = s->npages < NSMALL_LISTS ? &h->free[s->npages] : &h->freelarge;
    spanlist_push(head, s);
    if (s->npages < NSMALL_LISTS)
        h->freemask[s->npages / 64] |= (uint64_t)1 << (s->npages % 64);
}

static void list_remove(mheap *h, mspan *s)
{
    mspan **head = s->npages < NSMALL_LISTS ? &h->free[s->npages] : &h->freelarge;
    spanlist_remove(head, s);
    if (s->npages < NSMALL_LISTS && !*head)
        h->freemask[s->npages / 64] &= ~((uint64_t)1 << (s->npages % 64));
}

/* The span owning the page at address a, if it is FREE and starts (or ends)
 * exactly there. */
static mspan *free_span_at(uintptr_t a, bool starts)
{
    mspan *t = spanof(a);
    if (!t || atomic_load_explicit(&t->state, memory_order_relaxed) != SPAN_FREE)
        return NULL;
    if (starts ? t->base != a : t->base + t->npages * PAGE_SIZE != a + PAGE_SIZE)
        return NULL;
    return t;
}

/* Put a span on the free lists, merging it with free neighbours. */
static void free_span_locked(mheap *h, mspan *s, int64_t freetime)
{
    atomic_store_explicit(&s->state, SPAN_FREE, memory_order_relaxed);
    s->freetime = freetime;
    mspan *t;
    if ((t = free_span_at(s->base - PAGE_SIZE, false)) != NULL) {
        list_remove(h, t);
        s->base = t->base;
        s->npages += t->npages;
        if (t->freetime > s->freetime)
            s->freetime = t->freetime;
        atomic_store_explicit(&t->state, SPAN_DEAD, memory_order_relaxed);
        fixalloc_free(&h->spanalloc, t);
    }
    if ((t = free_span_at(s->base + s->npages * PAGE_SIZE, true)) != NULL) {
        list_remove(h, t);
        s->npages += t->npages;
        if (t->freetime > s->freetime)
            s->freetime = t->freetime;
        atomic_store_explicit(&t->state, SPAN_DEAD, memory_order_relaxed);
        fixalloc_free(&h->spanalloc, t);
    }
    pagemap_set(s->base, s->npages, s, false);
    list_insert(h, s);
}

static bool fits(mspan *s, uintptr_t npages, uintptr_t align_pages)
{
    uintptr_t align = align_pages * PAGE_SIZE;
    uintptr_t start = (s->base + align - 1) & ~(align - 1);
    return start + npages * PAGE_SIZE <= s->base + s->npages * PAGE_SIZE;
}

static mspan *find_fit(mheap *h, uintptr_t npages, uintptr_t align_pages)
{
    if (align_pages == 1 && npages < NSMALL_LISTS) {
        for (uintptr_t w = npages / 64; w < 2; w++) {
            uint64_t m = h->freemask[w];
            if (w == npages / 64)
                m &= ~(uint64_t)0 << (npages % 64);
            if (m)
                return h->free[w * 64 + (uintptr_t)__builtin_ctzll(m)];
        }
    } else if (align_pages > 1) {
        for (uintptr_t n = npages; n < NSMALL_LISTS; n++)
            for (mspan *s = h->free[n]; s; s = s->next)
                if (fits(s, npages, align_pages))
                    return s;
    }
    mspan *best = NULL;
    for (mspan *s = h->freelarge; s; s = s->next)
        if (s->npages >= npages && fits(s, npages, align_pages) &&
            (!best || s->npages < best->npages || (s->npages == best->npages && s->base < best->base)))
            best = s;
    return best;
}

static bool grow(mheap *h, uintptr_t npages)
{
    uintptr_t got;
    uintptr_t base = arena_grow(npages, &got);
    if (!base)
        return false;
    mspan *s = fixalloc_alloc(&h->spanalloc);
    if (!s)
        return false;   /* the arena stays committed but unused: OOM anyway */
    s->base = base;
    s->npages = got;
    atomic_fetch_add_explicit(&h->sys, got * PAGE_SIZE, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->released, got * PAGE_SIZE, memory_order_relaxed);
    free_span_locked(h, s, os_nanotime());
    return true;
}

/* Split [s->base, s->base + n pages) off the front of free span s; the rest
 * becomes a new free span. s must be off the lists. */
static bool split_front(mheap *h, mspan *s, uintptr_t n)
{
    if (s->npages == n)
        return true;
    mspan *t = fixalloc_alloc(&h->spanalloc);
    if (!t)
        return false;
    t->base = s->base + n * PAGE_SIZE;
    t->npages = s->npages - n;
    s->npages = n;
    atomic_store_explicit(&t->state, SPAN_FREE, memory_order_relaxed);
    t->freetime = s->freetime;
    pagemap_set(t->base, t->npages, t, false);
    list_insert(h, t);
    return true;
}

mspan *mheap_alloc(uintptr_t npages, uintptr_t align_pages, uint8_t sizeclass,
                   uint8_t kind, mcache *owner, bool *zeroed)
{
    mheap *h = &mheap_;
    if (npages == 0 || npages > ((uintptr_t)1 << (ADDR_BITS - PAGE_SHIFT)))
        return NULL;
    lock(&h->lock);
    if (!h->spanalloc.size)
        fixalloc_init(&h->spanalloc, sizeof(mspan));
    mspan *s = find_fit(h, npages, align_pages);
    if (!s) {
        if (!grow(h, npages + align_pages - 1) || !(s = find_fit(h, npages, align_pages))) {
            unlock(&h->lock);
            return NULL;
        }
    }
    list_remove(h, s);
    if (align_pages > 1) {
        uintptr_t align = align_pages * PAGE_SIZE;
        uintptr_t start = (s->base + align - 1) & ~(align - 1);
        if (start != s->base) {
            /* keep the lead as a free span; continue with the rest */
            uintptr_t lead = (start - s->base) >> PAGE_SHIFT;
            mspan *t = fixalloc_alloc(&h->spanalloc);
            if (!t) {
                list_insert(h, s);
                unlock(&h->lock);
                return NULL;
            }
            t->base = start;
            t->npages = s->npages - lead;
            t->freetime = s->freetime;
            s->npages = lead;
            pagemap_set(s->base, s->npages, s, false);
            list_insert(h, s);
            s = t;
        }
    }
    if (!split_front(h, s, npages)) {
        free_span_locked(h, s, s->freetime);
        unlock(&h->lock);
        return NULL;
    }
    uintptr_t rel = pages_count_released(s->base, npages);
    if (rel) {
        pages_set_released(s->base, npages, false);
        atomic_fetch_sub_explicit(&h->released, rel * PAGE_SIZE, memory_order_relaxed);
    }
    *zeroed = rel == npages;
    s->sizeclass = sizeclass;
    s->kind = kind;
    s->owner = owner;
    s->needzero = rel != npages;
    if (sizeclass) {
        s->elemsize = class_to_size[sizeclass];
        s->divmagic = class_infos[sizeclass].divmagic;
        s->nelems = (uint32_t)(npages * PAGE_SIZE / s->elemsize);
    } else {
        s->elemsize = npages * PAGE_SIZE > UINT32_MAX ? 0 : (uint32_t)(npages * PAGE_SIZE);
        s->divmagic = 0;
        s->nelems = 1;
    }
    s->limit = s->base + (sizeclass ? (uintptr_t)s->nelems * s->elemsize : npages * PAGE_SIZE);
    s->carve = s->base;
    s->freelist = NULL;
    s->nfreelist = 0;
    s->used = 0;
    s->where = SPAN_IN_BIN;
    s->next = s->prev = NULL;
    atomic_store_explicit(&s->xfree, NULL, memory_order_relaxed);
    s->xnext = NULL;
    pagemap_set(s->base, npages, s, true);
    if (sizeclass)
        pageinfo_set(s->base, npages, sizeclass, kind);
    atomic_store_explicit(&s->state, SPAN_INUSE, memory_order_release);
    atomic_fetch_add_explicit(&h->inuse, npages * PAGE_SIZE, memory_order_relaxed);
    unlock(&h->lock);
    return s;
}

void mheap_free(mspan *s)
{
    mheap *h = &mheap_;
    lock(&h->lock);
    if (unlikely(atomic_load_explicit(&s->state, memory_order_relaxed) != SPAN_INUSE)) {
        unlock(&h->lock);   /* two threads freed the same large object */
        bad_free((void *)s->base);
    }
    atomic_fetch_sub_explicit(&h->inuse, s->npages * PAGE_SIZE, memory_order_relaxed);
    if (s->sizeclass)
        pageinfo_set(s->base, s->npages, 0, 0);
    s->owner = NULL;
    s->sizeclass = 0;
    s->kind = 0;
    free_span_locked(h, s, os_nanotime());
    unlock(&h->lock);
    scavenger_kick();
}

bool mheap_grow_inplace(mspan *s, uintptr_t npages)
{
    mheap *h = &mheap_;
    if (npages <= s->npages)
        return true;
    uintptr_t extra = npages - s->npages;
    lock(&h->lock);
    mspan *t = free_span_at(s->base + s->npages * PAGE_SIZE, true);
    if (!t || t->npages < extra) {
        unlock(&h->lock);
        return false;
    }
    list_remove(h, t);
    uintptr_t start = t->base;
    if (!split_front(h, t, extra)) {
        list_insert(h, t);
        unlock(&h->lock);
        return false;
    }
    atomic_store_explicit(&t->state, SPAN_DEAD, memory_order_relaxed);
    fixalloc_free(&h->spanalloc, t);
    uintptr_t rel = pages_count_released(start, extra);
    if (rel) {
        pages_set_released(start, extra, false);
        atomic_fetch_sub_explicit(&h->released, rel * PAGE_SIZE, memory_order_relaxed);
    }
    pagemap_set(start, extra, s, true);
    s->npages = npages;
    s->limit = s->base + npages * PAGE_SIZE;
    s->elemsize = npages * PAGE_SIZE > UINT32_MAX ? 0 : (uint32_t)(npages * PAGE_SIZE);
    atomic_fetch_add_explicit(&h->inuse, extra * PAGE_SIZE, memory_order_relaxed);
    unlock(&h->lock);
    return true;
}

uint64_t mheap_free_unreleased(void)
{
    mheap *h = &mheap_;
    uint64_t sys = atomic_load_explicit(&h->sys, memory_order_relaxed);
    uint64_t used = atomic_load_explicit(&h->inuse, memory_order_relaxed) +
                    atomic_load_explicit(&h->released, memory_order_relaxed);
    return sys > used ? sys - used : 0;
}

#define SCAVENGE_BATCH 64

/* The part of a span the kernel can release: all of it when its pages are
 * no larger than ours (8 KiB), else the interior aligned to its pages (a
 * 64 KiB-page arm64 kernel cannot release a lone 8 KiB span). Only pages
 * actually released are marked so: the bitmap promises zeroes. */
static uintptr_t releasable(mspan *s, uintptr_t *base)
{
    uintptr_t ps = os_page_size();
    if (ps <= PAGE_SIZE) {
        *base = s->base;
        return s->npages;
    }
    uintptr_t lo = (s->base + ps - 1) & ~(ps - 1);
    uintptr_t hi = (s->base + s->npages * PAGE_SIZE) & ~(ps - 1);
    *base = lo;
    return hi > lo ? (hi - lo) >> PAGE_SHIFT : 0;
}

uint64_t mheap_scavenge(int64_t min_age, uint64_t keep)
{
    mheap *h = &mheap_;
    uint64_t total = 0;
    mspan *batch[SCAVENGE_BATCH];
    for (;;) {
        int n = 0;
        uint64_t planned = 0;
        lock(&h->lock);
        uint64_t avail = mheap_free_unreleased();
        int64_t cutoff = os_nanotime() - min_age;
        for (uintptr_t l = 1; l <= NSMALL_LISTS && n < SCAVENGE_BATCH && avail > keep + planned; l++) {
            mspan *s = l < NSMALL_LISTS ? h->free[l] : h->freelarge;
            while (s && n < SCAVENGE_BATCH && avail > keep + planned) {
                mspan *next = s->next;
                uintptr_t rbase, rpages = releasable(s, &rbase);
                if (s->freetime <= cutoff && rpages &&
                    pages_count_released(rbase, rpages) < rpages) {
                    uintptr_t rel = pages_count_released(s->base, s->npages);
                    list_remove(h, s);
                    atomic_store_explicit(&s->state, SPAN_SCAVENGING, memory_order_relaxed);
                    batch[n++] = s;
                    planned += (rpages - pages_count_released(rbase, rpages)) * PAGE_SIZE;
                    h->scav_bytes += s->npages * PAGE_SIZE;
                    h->scav_released += rel * PAGE_SIZE;
                }
                s = next;
            }
        }
        unlock(&h->lock);
        if (n == 0)
            break;
        /* The spans are ours: no allocation can touch them while we madvise. */
        for (int i = 0; i < n; i++) {
            uintptr_t rbase, rpages = releasable(batch[i], &rbase);
            os_release((void *)rbase, rpages * PAGE_SIZE);
        }
        lock(&h->lock);
        for (int i = 0; i < n; i++) {
            mspan *s = batch[i];
            uintptr_t rel = pages_count_released(s->base, s->npages);
            h->scav_bytes -= s->npages * PAGE_SIZE;
            h->scav_released -= rel * PAGE_SIZE;
            uintptr_t rbase, rpages = releasable(s, &rbase);
            pages_set_released(rbase, rpages, true);
            uintptr_t gained = pages_count_released(s->base, s->npages) - rel;
            atomic_fetch_add_explicit(&h->released, gained * PAGE_SIZE, memory_order_relaxed);
            atomic_fetch_add_explicit(&h->nscavenged, gained * PAGE_SIZE, memory_order_relaxed);
            free_span_locked(h, s, s->freetime);
        }
        unlock(&h->lock);
        total += planned;
        if (n < SCAVENGE_BATCH)
            break;
    }
    return total;
}

void mheap_verify(void)
{
    mheap *h = &mheap_;
    lock(&h->lock);
    uint64_t freebytes = 0, relbytes = 0;
    for (uintptr_t l = 1; l <= NSMALL_LISTS; l++) {
        mspan *s = l < NSMALL_LISTS ? h->free[l] : h->freelarge;
        if (l < NSMALL_LISTS)
            assert_always(!!s == !!(h->freemask[l / 64] & ((uint64_t)1 << (l % 64))));
        for (mspan *prev = NULL; s; prev = s, s = s->next) {
            assert_always(s->prev == prev);
            assert_always(atomic_load_explicit(&s->state, memory_order_relaxed) == SPAN_FREE);
            assert_always(l < NSMALL_LISTS ? s->npages == l : s->npages >= NSMALL_LISTS);
            assert_always(spanof(s->base) == s);
            assert_always(spanof(s->base + (s->npages - 1) * PAGE_SIZE) == s);
            /* coalescing invariant: no free neighbour */
            assert_always(!free_span_at(s->base - PAGE_SIZE, false));
            assert_always(!free_span_at(s->base + s->npages * PAGE_SIZE, true));
            freebytes += s->npages * PAGE_SIZE;
            relbytes += pages_count_released(s->base, s->npages) * PAGE_SIZE;
        }
    }
    assert_always(relbytes + h->scav_released == atomic_load_explicit(&h->released, memory_order_relaxed));
    assert_always(freebytes + h->scav_bytes + atomic_load_explicit(&h->inuse, memory_order_relaxed) ==
                  atomic_load_explicit(&h->sys, memory_order_relaxed));
    unlock(&h->lock);
}
