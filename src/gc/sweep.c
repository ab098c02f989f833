/* sweep.c - concurrent sweeping (Go's mgcsweep.go).
 *
 * After a mark, every GC span is unswept: the cycle added 2 to sweepgen
 * with the world stopped, which turned every swept list of every central
 * into an unswept one (mcentral.c). Spans are then swept concurrently with
 * the program by two kinds of sweepers: a cache that needs a span sweeps
 * unswept ones itself until one has room (lazy sweeping), and the
 * collector thread sweeps whatever is left in the background. A sweeper
 * claims a span by moving its sweepgen from sg-2 to sg-1 while taking it off
 * its list, so each span is swept exactly once per cycle; the next cycle
 * finishes any sweeping still left before it stops the world.
 *
 * Sweeping a span does not touch its objects: the objects that survive are
 * those the mark found (minus those freed early with gort_gc_free), so the
 * mark bits become the allocation bits and the old allocation bits, zeroed,
 * the next mark bits. A span with no survivor goes back to the page heap;
 * a large object's span too. Freed objects are zeroed when allocated again
 * (span.needzero). With GORT_DEBUG=clobberfree=1 (on with gcstress) freed
 * objects are filled with a pattern first, so that a program that still
 * uses one fails loudly rather than reading plausible stale data.
 *
 * GORT_DEBUG=gcstoptheworld=1 sweeps everything inside the pause instead.
 */
#include "gc/gc.h"

#include <string.h>

static _Atomic int nsweeping;        /* sweepers between claim and finish */
static _Atomic uint32_t sweep_hint;  /* where sweep_one looks first */
bool gc_clobberfree;

#define MAX_BITWORDS 16   /* the smallest class (8 bytes) has 1024 objects a span */
_Static_assert(PAGE_SIZE / 8 <= MAX_BITWORDS * 64, "MAX_BITWORDS");

static void clobber(uintptr_t p, size_t n)
{
    for (size_t i = 0; i + 8 <= n; i += 8)
        *(uint64_t *)(p + i) = 0xdeadbeefdeadbeefull;
}

/* The mark bytes of objects [64w, 64w + 64) as a bitmap. A byte is 0 or
 * 1, so eight of them read as one word pack into eight bits with one
 * multiply: byte k times 2^(56 - 7k) lands on bit 56 + k, and no two
 * partial products overlap. */
static uint64_t pack_marks(const mspan *s, size_t w)
{
    const uint8_t *m = (const uint8_t *)s->gcmark + w * 64;
    uint32_t left = s->nelems - (uint32_t)(w * 64);
    uint32_t groups = left >= 64 ? 8 : (left + 7) / 8;
    uint64_t bits = 0;
    for (uint32_t g = 0; g < groups; g++) {
        uint64_t x;
        memcpy(&x, m + g * 8, 8);
        bits |= ((x * 0x0102040810204080ull) >> 56) << (g * 8);
    }
    return bits;
}

bool sweep_span(mspan *s, bool preserve)
{
    uint32_t sg = atomic_load(&gc.sweepgen);
    dassert(atomic_load(&s->sweepgen) == sg - 1);
    size_t nw = gc_nbitwords(s);
    uint32_t nalloc = 0;
    uint32_t before = s->alloccount;
    uint64_t dead[MAX_BITWORDS];
    for (size_t w = 0; w < nw; w++) {
        uint64_t freed = atomic_exchange_explicit((_Atomic uint64_t *)&s->freedbits[w], 0,
                                                  memory_order_acquire);
        /* allocated until now: below freeindex, or by the last sweep */
        uint64_t below = s->freeindex >= (w + 1) * 64 ? ~(uint64_t)0
                         : s->freeindex <= w * 64   ? 0
                                                    : ((uint64_t)1 << (s->freeindex - w * 64)) - 1;
        uint64_t was = s->allocbits[w] | below;
        if (w * 64 + 64 > s->nelems)
            was &= ((uint64_t)1 << (s->nelems - w * 64)) - 1;
        if (unlikely(freed & ~was))   /* a double free across a cycle, caught late */
            throwf("gort_gc_free: %p was not allocated (freed twice?)",
                   (void *)(s->base +
                            (w * 64 + (uint64_t)__builtin_ctzll(freed & ~was)) * s->elemsize));
        uint64_t live = pack_marks(s, w) & ~freed;
        dead[w] = was & ~live;
        s->allocbits[w] = live;
        nalloc += (uint32_t)__builtin_popcountll(live);
    }
    memset((void *)s->gcmark, 0, s->nelems);
    s->freeindex = 0;
    s->alloccount = nalloc;
    s->alloccache = ~s->allocbits[0];
    /* Free slots of a swept span are zero, so allocation need not clear
     * them: the dead objects are cleared here, in runs, by whoever sweeps
     * (mostly a background thread), as Boehm GC clears at reclaim time.
     * With clobberfree they get the pattern instead and allocation clears. */
    if (s->sizeclass && (nalloc || preserve)) {
        for (size_t w = 0; w < nw; w++) {
            uint64_t d = dead[w];
            while (d) {
                uint32_t i = (uint32_t)__builtin_ctzll(d);
                uint64_t run = d >> i;
                uint32_t len = ~run ? (uint32_t)__builtin_ctzll(~run) : 64 - i;
                uintptr_t p = s->base + (uintptr_t)(w * 64 + i) * s->elemsize;
                if (unlikely(gc_clobberfree))
                    clobber(p, (size_t)len * s->elemsize);
                else
                    memset((void *)p, 0, (size_t)len * s->elemsize);
                d &= len + i >= 64 ? 0 : ~(uint64_t)0 << (len + i);
            }
        }
        s->needzero = gc_clobberfree;
    }
    if (s->sizeclass) {
        if (before > nalloc)
            atomic_fetch_add_explicit(&gc.nfree[s->sizeclass], before - nalloc, memory_order_relaxed);
    } else if (nalloc == 0) {
        atomic_fetch_add_explicit(&mheap_.large_free, s->npages * PAGE_SIZE, memory_order_relaxed);
        atomic_fetch_add_explicit(&mheap_.nlarge_free, 1, memory_order_relaxed);
    } else {
        s->freeindex = 1;   /* a large object is never allocated from again */
        s->alloccache = 0;
    }
    if (nalloc == 0 && !preserve) {
        gc_span_free(s);
        return false;
    }
    atomic_store_explicit(&s->sweepgen, sg, memory_order_release);
    return true;
}

bool sweep_one(void)
{
    const uint32_t n = NUM_GC_KINDS * NUM_SIZE_CLASSES;
    uint32_t start = atomic_load_explicit(&sweep_hint, memory_order_relaxed);
    atomic_fetch_add(&nsweeping, 1);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = (start + i) % n;
        mspan *s = mcentral_take_unswept((int)(j / NUM_SIZE_CLASSES), (int)(j % NUM_SIZE_CLASSES));
        if (s) {
            if (i)
                atomic_store_explicit(&sweep_hint, j, memory_order_relaxed);
            if (sweep_span(s, false))
                mcentral_put_swept(s);
            atomic_fetch_sub(&nsweeping, 1);
            return true;
        }
    }
    atomic_fetch_sub(&nsweeping, 1);
    return false;
}

void sweep_all(void)
{
    while (sweep_one())
        ;
    while (atomic_load(&nsweeping) > 0)
        os_yield();
}

void sweep_atfork_child(void)
{
    atomic_store(&nsweeping, 0);   /* sweepers of the parent do not exist here */
}
