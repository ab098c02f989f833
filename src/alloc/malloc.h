/* malloc.h - the allocator's internal interface between its files.
 * See malloc.c for the overview. */
#ifndef GORT_ALLOC_MALLOC_H
#define GORT_ALLOC_MALLOC_H

#include "runtime.h"

/* ---- fixalloc.c: fixed-size metadata outside the arenas ----------------- */
typedef struct fixalloc {
    size_t size;          /* object size */
    void *list;           /* freed objects */
    char *chunk;          /* current chunk being carved */
    size_t nchunk;        /* bytes left in chunk */
    uint64_t inuse;       /* bytes handed out */
    uint64_t sys;         /* bytes obtained from the OS */
} fixalloc;
/* All fields are protected by the lock the caller names for each instance. */
void  fixalloc_init(fixalloc *f, size_t size);
void *fixalloc_alloc(fixalloc *f);      /* zeroed; NULL if the OS refuses */
void  fixalloc_free(fixalloc *f, void *p);

/* ---- arena.c: address space and the page map ----------------------------
 * Per 64 MiB arena: the page -> span table and the released-page bitmap. */
typedef struct arena_meta {
    mspan *spans[PAGES_PER_ARENA];          /* INUSE: every page; FREE: first and last */
    /* Small INUSE spans only, else 0: size class | kind << 8 | page index
     * in span << 10. Dense (4 bytes a page) so that free() finds an
     * object's class and kind and checks its alignment without touching
     * the span. */
    _Atomic uint32_t pageinfo[PAGES_PER_ARENA];
    uint64_t released[PAGES_PER_ARENA / 64];/* page holds no physical memory, reads zero. Protected by h->lock */
} arena_meta;

extern arena_meta *arena_l1[ARENA_L1_ENTRIES];  /* written under h->lock, read racily */
extern _Atomic uintptr_t arena_lo, arena_hi;    /* bounds of all arenas */

static inline arena_meta *arena_of(uintptr_t p)
{
    if (unlikely(p >> ADDR_BITS))
        return NULL;
    return __atomic_load_n(&arena_l1[p >> ARENA_SHIFT], __ATOMIC_ACQUIRE);
}

/* The span that owns address p, or NULL: two loads. The answer may be stale
 * for an address inside a free span; callers check state and bounds. */
static inline mspan *spanof(uintptr_t p)
{
    arena_meta *a = arena_of(p);
    if (unlikely(!a))
        return NULL;
    return __atomic_load_n(&a->spans[(p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)], __ATOMIC_RELAXED);
}

static inline uint32_t pageinfo_of(arena_meta *a, uintptr_t p)
{
    return atomic_load_explicit(&a->pageinfo[(p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)],
                                memory_order_relaxed);
}
#define PAGEINFO_CLASS(i) ((uint8_t)((i) & 0xff))
#define PAGEINFO_KIND(i) (((i) >> 8) & 3)
#define PAGEINFO_SPANCLASS(i) ((i) & 0x3ff)    /* class | kind << 8 */
#define PAGEINFO_INDEX(i) ((uintptr_t)(i) >> 10)
/* Set pageinfo for every page of a small span (or clear it: cls 0). */
void pageinfo_set(uintptr_t base, uintptr_t npages, uint8_t cls, uint8_t kind);

/* Set the page map for [base, base+npages*PAGE_SIZE) (all pages or just the
 * ends). Caller holds h->lock. */
void pagemap_set(uintptr_t base, uintptr_t npages, mspan *s, bool all);
/* Grow: commit at least npages of fresh, contiguous pages. Returns the base
 * and sets *got to the pages obtained (all marked released). Caller holds
 * h->lock. 0 when the OS refuses. */
uintptr_t arena_grow(uintptr_t npages, uintptr_t *got);
/* released bitmap (caller holds h->lock) */
uintptr_t pages_count_released(uintptr_t base, uintptr_t npages);
void pages_set_released(uintptr_t base, uintptr_t npages, bool released);

/* ---- doubly linked span lists (through next/prev) ------------------------- */
static inline void spanlist_push(mspan **head, mspan *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

static inline void spanlist_remove(mspan **head, mspan *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

/* ---- mheap.c: the page heap ---------------------------------------------- */
typedef struct mheap {
    rlock lock;
    mspan *free[128];          /* free spans of exactly n pages (n < 128). Protected by lock */
    mspan *freelarge;          /* free spans of >= 128 pages. Protected by lock */
    uint64_t freemask[2];      /* bit n: free[n] non-empty. Protected by lock */
    fixalloc spanalloc;        /* mspan structs. Protected by lock */
    /* statistics, in bytes. Written under lock, read racily (atomics). */
    _Atomic uint64_t sys;          /* committed arena bytes (heap_sys) */
    _Atomic uint64_t inuse;        /* bytes in INUSE spans */
    _Atomic uint64_t released;     /* bytes in free pages that are released */
    _Atomic uint64_t large_alloc;  /* cumulative large bytes allocated */
    _Atomic uint64_t large_free;   /* cumulative large bytes freed */
    _Atomic uint64_t nlarge_alloc, nlarge_free;
    _Atomic uint64_t other_sys;    /* arena metadata and the like */
    _Atomic uint64_t nscavenged;   /* cumulative bytes released by the scavenger */
    uint64_t scav_bytes;       /* bytes in SCAVENGING spans (off the lists). Protected by lock */
    uint64_t scav_released;    /* of those, bytes already released. Protected by lock */
} mheap;

extern mheap mheap_;

/* Allocate an INUSE span of npages. For small classes sizeclass != 0 and
 * owner is the caching mcache. *zeroed reports that every page was known to
 * be zero. Takes h->lock. NULL when out of memory. align_pages (a power of
 * two, >= 1) aligns the base to align_pages * PAGE_SIZE. */
mspan *mheap_alloc(uintptr_t npages, uintptr_t align_pages, uint8_t sizeclass,
                   uint8_t kind, mcache *owner, bool *zeroed);
/* Return an INUSE span to the heap. Takes h->lock. */
void mheap_free(mspan *s);
/* Try to extend a large INUSE span in place to npages by taking free pages
 * right after it. Takes h->lock. */
bool mheap_grow_inplace(mspan *s, uintptr_t npages);
/* Release free pages to the OS: those free for at least min_age ns, until
 * no more than keep bytes of free, unreleased memory remain. Returns bytes
 * released. Takes and drops h->lock. */
uint64_t mheap_scavenge(int64_t min_age, uint64_t keep);
/* Bytes of free pages that still hold physical memory. */
uint64_t mheap_free_unreleased(void);
/* Walk every span (for the heap checker). Takes h->lock. */
void mheap_verify(void);

/* ---- mcache.c ------------------------------------------------------------ */
extern __thread mcache *tls_mcache __attribute__((tls_model("initial-exec")));
mcache *mcache_get_slow(void);            /* attach a cache to this thread */
mcache *mcache_for_p(void);               /* a cache for a new P */
void    mcache_release_p(mcache *c);      /* a P goes away: flush and park its cache */
/* This thread allocates through c from now on (a P's cache, or NULL when
 * it drops its P); a cache of the thread's own is parked. */
void    mcache_use(mcache *c);
void   *mcache_refill(mcache *c, uint8_t kind, uint8_t cls);  /* bin empty: an object or NULL */
void    mcache_bin_overflow(mcache *c, uint8_t kind, uint8_t cls); /* bin over max: return it */
void    mcache_flush(mcache *c);          /* give back all cached objects */
void    mcache_collect(mcache *c);        /* take in remote frees */
void    mcache_collect_idle(void);        /* collect for parked caches */
mcache *mcache_all(void);                 /* head of the all-caches list */
uint64_t mcache_sys_bytes(uint64_t *inuse); /* metadata held by caches */
void    mcache_atfork_prepare(void);
void    mcache_atfork_parent(void);
void    mcache_atfork_child(void);
extern _Atomic uint64_t mcache_count;     /* caches ever created */

/* ---- scavenge.c ---------------------------------------------------------- */
void scavenger_kick(void);                /* memory became free: make sure it runs */
void scavenger_start_if_needed(void);     /* start the thread if work is waiting */
void scavenger_atfork_child(void);
extern int64_t scavenge_delay_ns;         /* idle time before release */

/* ---- malloc.c ------------------------------------------------------------ */
/* n <= MAX_SMALL_SIZE */
static inline uint8_t size_to_class(size_t n)
{
    return size_to_class_all[(n + 7) >> 3];
}

/* objects on a bin's list (see mbin) */
static inline int64_t bin_len(mbin *b, uint32_t max)
{
    return (int64_t)(atomic_load_explicit(&b->nfree, memory_order_relaxed) -
                     atomic_load_explicit(&b->nmalloc, memory_order_relaxed)) +
           (int64_t)max - b->limit;
}
_Noreturn void bad_free(const void *p);

#endif
