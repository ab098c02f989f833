/* mstats.c - runtime.ReadMemStats for gort's heap.
 *
 * Counters are kept where they are cheapest to keep: per cache and per
 * size class for small objects (the owner bumps them with plain relaxed
 * stores), in the heap for large objects and pages. Reading them sums over
 * every cache ever created. The sum is not a snapshot: as in Go before its
 * consistent-stats work, fields read while other threads allocate may be
 * off by the operations in flight; once the program is quiet they are
 * exact (the tests rely on that).
 *
 * Field meanings follow Go's MemStats: heap_sys is committed arena memory,
 * heap_inuse the bytes in in-use spans, heap_idle the rest, heap_released
 * the part of heap_idle that has been returned to the OS (including pages
 * never touched since the arena was committed, as Go counts them).
 */
#include "alloc/malloc.h"
#include "gc/gc.h"
#include "sched/sanitize.h"

#include <stdio.h>
#include <string.h>

#include "gort.h"

/* What the GC spans a cache holds handed out since it took them. Read
 * while the owner allocates, racily on purpose: statistics, as the rest. */
SAN_NO_INSTRUMENT static void add_cached_mallocs(mcache *c, gort_memstats *m)
{
    for (int k = 0; k < NUM_GC_KINDS; k++)
        for (int cls = 1; cls < NUM_SIZE_CLASSES; cls++) {
            mspan *s = *(mspan *volatile *)&c->gcspans[k][cls];
            if (s)
                m->by_size[cls].mallocs += (uint32_t)(*(volatile uint32_t *)&s->alloccount -
                                                      *(volatile uint32_t *)&s->cachecount);
        }
}

void gort_read_memstats(gort_memstats *m)
{
    memset(m, 0, sizeof *m);
    mheap *h = &mheap_;
    for (int cls = 0; cls < NUM_SIZE_CLASSES; cls++)
        m->by_size[cls].size = class_to_size[cls];
    for (mcache *c = mcache_all(); c; c = c->next_all) {
        for (int k = 0; k < NUM_BIN_KINDS; k++)
            for (int cls = 1; cls < NUM_SIZE_CLASSES; cls++) {
                mbin *b = &c->bins[k][cls];
                m->by_size[cls].mallocs += atomic_load_explicit(&b->nmalloc, memory_order_relaxed);
                m->by_size[cls].frees += atomic_load_explicit(&b->nfree, memory_order_relaxed);
            }
    }
    /* GC objects: counted when a span leaves a cache, plus what the
     * cached spans handed out since they were taken */
    for (int cls = 1; cls < NUM_SIZE_CLASSES; cls++) {
        m->by_size[cls].mallocs += atomic_load_explicit(&gc.nmalloc[cls], memory_order_relaxed);
        m->by_size[cls].frees += atomic_load_explicit(&gc.nfree[cls], memory_order_relaxed);
    }
    for (mcache *c = mcache_all(); c; c = c->next_all)
        add_cached_mallocs(c, m);
    uint64_t live = 0;
    for (int cls = 1; cls < NUM_SIZE_CLASSES; cls++) {
        gort_size_class_stats *b = &m->by_size[cls];
        if (b->frees > b->mallocs)   /* a racing read: frees counted first */
            b->frees = b->mallocs;
        m->mallocs += b->mallocs;
        m->frees += b->frees;
        m->total_alloc += b->mallocs * b->size;
        live += (b->mallocs - b->frees) * b->size;
    }
    uint64_t la = atomic_load_explicit(&h->large_alloc, memory_order_relaxed);
    uint64_t lf = atomic_load_explicit(&h->large_free, memory_order_relaxed);
    m->by_size[0].mallocs = atomic_load_explicit(&h->nlarge_alloc, memory_order_relaxed);
    m->by_size[0].frees = atomic_load_explicit(&h->nlarge_free, memory_order_relaxed);
    m->mallocs += m->by_size[0].mallocs;
    m->frees += m->by_size[0].frees;
    m->total_alloc += la;
    live += la > lf ? la - lf : 0;
    m->alloc = m->heap_alloc = live;
    m->heap_objects = m->mallocs - m->frees;

    m->heap_sys = atomic_load_explicit(&h->sys, memory_order_relaxed);
    m->heap_inuse = atomic_load_explicit(&h->inuse, memory_order_relaxed);
    m->heap_idle = m->heap_sys > m->heap_inuse ? m->heap_sys - m->heap_inuse : 0;
    m->heap_released = atomic_load_explicit(&h->released, memory_order_relaxed);
    lock(&h->lock);
    m->mspan_inuse = h->spanalloc.inuse;
    m->mspan_sys = h->spanalloc.sys;
    unlock(&h->lock);
    m->mcache_sys = mcache_sys_bytes(&m->mcache_inuse);
    m->other_sys = atomic_load_explicit(&h->other_sys, memory_order_relaxed);
    m->sys = m->heap_sys + m->mspan_sys + m->mcache_sys + m->other_sys;
    gc_fill_memstats(m);
}

static const char *human(uint64_t b, char *buf, size_t n)
{
    if (b >= (uint64_t)1 << 30)
        snprintf(buf, n, "%.2f GiB", (double)b / (1 << 30));
    else if (b >= (uint64_t)1 << 20)
        snprintf(buf, n, "%.2f MiB", (double)b / (1 << 20));
    else if (b >= (uint64_t)1 << 10)
        snprintf(buf, n, "%.1f KiB", (double)b / (1 << 10));
    else
        snprintf(buf, n, "%llu B", (unsigned long long)b);
    return buf;
}

void gort_print_memstats(const gort_memstats *m, void *file)
{
    FILE *f = file ? file : stdout;
    char a[32], b[32], c[32], d[32], e[32];
    fprintf(f, "heap: alloc %s, sys %s, inuse %s, idle %s, released %s\n",
            human(m->heap_alloc, a, sizeof a), human(m->heap_sys, b, sizeof b),
            human(m->heap_inuse, c, sizeof c), human(m->heap_idle, d, sizeof d),
            human(m->heap_released, e, sizeof e));
    fprintf(f, "objects: %llu live, %llu mallocs, %llu frees, total alloc %s\n",
            (unsigned long long)m->heap_objects, (unsigned long long)m->mallocs,
            (unsigned long long)m->frees, human(m->total_alloc, b, sizeof b));
    fprintf(f, "sys: %s (spans %s, caches %s, other %s)\n", human(m->sys, a, sizeof a),
            human(m->mspan_sys, b, sizeof b), human(m->mcache_sys, c, sizeof c),
            human(m->other_sys, d, sizeof d));
    fprintf(f, "%6s %10s %14s %14s %12s\n", "class", "size", "mallocs", "frees", "live");
    for (int i = 0; i < GORT_NUM_SIZE_CLASSES; i++) {
        const gort_size_class_stats *s = &m->by_size[i];
        if (!s->mallocs)
            continue;
        if (i == 0)
            fprintf(f, "%6s %10s ", "large", "-");
        else
            fprintf(f, "%6d %10u ", i, s->size);
        fprintf(f, "%14llu %14llu %12llu\n", (unsigned long long)s->mallocs,
                (unsigned long long)s->frees, (unsigned long long)(s->mallocs - s->frees));
    }
}
