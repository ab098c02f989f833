/* arena.c - address space reservation and the page map.
 *
 * The heap lives in 64 MiB arenas carved, in address order, out of large
 * reservations (64 GiB of PROT_NONE | MAP_NORESERVE address space each, the
 * first at 0x00c000000000 as Go 1.5 did: an address that is rarely a false
 * pointer for a conservative scan, and easy to recognise in a debugger).
 * Reserving costs nothing; an arena is committed (made read/write) when the
 * heap first grows into it, so the commit charge under
 * vm.overcommit_memory=2 grows 64 MiB at a time.
 *
 * The page map answers "which span owns this address?" in two loads:
 * arena_l1[addr >> 26] is the arena's metadata (NULL: not gort's), and
 * meta->spans[page within arena] is the span. arena_l1 covers the 48-bit
 * address space with 4M pointers (32 MiB of bss that is touched only where
 * arenas exist). This lookup serves free(), malloc_usable_size, interior
 * pointers and, later, the collector's conservative scan.
 *
 * Beside it each arena keeps a bitmap of released pages: a set bit means the
 * page holds no physical memory and reads as zero (fresh from the OS, or
 * given back with MADV_DONTNEED). It drives heap_released and lets calloc
 * skip zeroing memory that is known to be zero.
 *
 * Alternatives rejected: one flat reservation with a flat map (caps the
 * heap, or needs a huge map); a radix tree of page summaries as Go 1.14 (its
 * speed matters for a GC heap with millions of 1-page spans; our span free
 * lists are enough for now, see mheap.c).
 */
#include "alloc/malloc.h"

#include <string.h>

arena_meta *arena_l1[ARENA_L1_ENTRIES];
_Atomic uintptr_t arena_lo, arena_hi;

#define REGION_BYTES ((uintptr_t)64 << 30)
#define FIRST_HINT ((uintptr_t)0x00c000000000)

/* The current reservation. Protected by mheap_.lock. */
static uintptr_t region_cur, region_end, next_hint = FIRST_HINT;

static bool reserve_region(uintptr_t need)
{
    uintptr_t size = need > REGION_BYTES ? need : REGION_BYTES;
    for (int attempt = 0; attempt < 8; attempt++) {
        uintptr_t hint = next_hint;
        char *p = os_reserve((void *)hint, size + ARENA_BYTES);
        if (!p)
            return false;
        uintptr_t lo = ((uintptr_t)p + ARENA_BYTES - 1) & ~(ARENA_BYTES - 1);
        uintptr_t hi = lo + size;
        /* trim to arena alignment */
        if (lo > (uintptr_t)p)
            os_free(p, lo - (uintptr_t)p);
        if ((uintptr_t)p + size + ARENA_BYTES > hi)
            os_free((void *)hi, (uintptr_t)p + size + ARENA_BYTES - hi);
        if ((hi - 1) >> ADDR_BITS) {        /* outside the page map's reach */
            os_free((void *)lo, size);
            next_hint = 0;
            continue;
        }
        region_cur = lo;
        region_end = hi;
        next_hint = hi;
        return true;
    }
    return false;
}

uintptr_t arena_grow(uintptr_t npages, uintptr_t *got)
{
    assert_lock_held(&mheap_.lock);
    if (npages > (((uintptr_t)1 << ADDR_BITS) >> PAGE_SHIFT))
        return 0;
    uintptr_t need = (npages * PAGE_SIZE + ARENA_BYTES - 1) & ~(ARENA_BYTES - 1);
    if (region_end - region_cur < need && !reserve_region(need))
        return 0;
    uintptr_t base = region_cur;
    uintptr_t narenas = need >> ARENA_SHIFT;
    /* Metadata first, so a failure leaves nothing half-published. */
    arena_meta *metas[64];
    arena_meta **mv = narenas <= 64 ? metas : os_alloc(narenas * sizeof(arena_meta *));
    if (!mv)
        return 0;
    uintptr_t i;
    for (i = 0; i < narenas; i++) {
        mv[i] = os_alloc(sizeof(arena_meta));
        if (!mv[i])
            break;
        memset(mv[i]->released, 0xff, sizeof mv[i]->released);
    }
    if (i < narenas || !os_commit((void *)base, need)) {
        for (uintptr_t j = 0; j < i; j++)
            os_free(mv[j], sizeof(arena_meta));
        if (mv != metas)
            os_free(mv, narenas * sizeof(arena_meta *));
        return 0;
    }
    for (i = 0; i < narenas; i++)
        __atomic_store_n(&arena_l1[(base >> ARENA_SHIFT) + i], mv[i], __ATOMIC_RELEASE);
    if (mv != metas)
        os_free(mv, narenas * sizeof(arena_meta *));
    region_cur += need;
    uintptr_t lo = atomic_load_explicit(&arena_lo, memory_order_relaxed);
    if (lo == 0 || base < lo)
        atomic_store_explicit(&arena_lo, base, memory_order_relaxed);
    if (base + need > atomic_load_explicit(&arena_hi, memory_order_relaxed))
        atomic_store_explicit(&arena_hi, base + need, memory_order_relaxed);
    atomic_fetch_add_explicit(&mheap_.other_sys, narenas * sizeof(arena_meta), memory_order_relaxed);
    *got = need >> PAGE_SHIFT;
    return base;
}

static inline arena_meta *meta_of_page(uintptr_t addr)
{
    return arena_l1[addr >> ARENA_SHIFT];
}

void pagemap_set(uintptr_t base, uintptr_t npages, mspan *s, bool all)
{
    assert_lock_held(&mheap_.lock);
    if (!all) {
        uintptr_t last = base + (npages - 1) * PAGE_SIZE;
        __atomic_store_n(&meta_of_page(base)->spans[(base >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)], s, __ATOMIC_RELAXED);
        __atomic_store_n(&meta_of_page(last)->spans[(last >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)], s, __ATOMIC_RELAXED);
        return;
    }
    for (uintptr_t i = 0; i < npages; i++) {
        uintptr_t a = base + i * PAGE_SIZE;
        __atomic_store_n(&meta_of_page(a)->spans[(a >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)], s, __ATOMIC_RELAXED);
    }
}

void pageinfo_set(uintptr_t base, uintptr_t npages, uint8_t cls, uint8_t kind)
{
    for (uintptr_t i = 0; i < npages; i++) {
        uintptr_t a = base + i * PAGE_SIZE;
        uint32_t v = cls ? (uint32_t)cls | (uint32_t)kind << 8 | (uint32_t)(i << 10) : 0;
        atomic_store_explicit(&meta_of_page(a)->pageinfo[(a >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)],
                              v, memory_order_relaxed);
    }
}

uintptr_t pages_count_released(uintptr_t base, uintptr_t npages)
{
    uintptr_t n = 0;
    for (uintptr_t i = 0; i < npages;) {
        uintptr_t a = base + i * PAGE_SIZE;
        uintptr_t pg = (a >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1);
        uint64_t *w = &meta_of_page(a)->released[pg / 64];
        if (pg % 64 == 0 && npages - i >= 64) {
            n += (uintptr_t)__builtin_popcountll(*w);
            i += 64;
        } else {
            n += (*w >> (pg % 64)) & 1;
            i++;
        }
    }
    return n;
}

void pages_set_released(uintptr_t base, uintptr_t npages, bool released)
{
    for (uintptr_t i = 0; i < npages;) {
        uintptr_t a = base + i * PAGE_SIZE;
        uintptr_t pg = (a >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1);
        uint64_t *w = &meta_of_page(a)->released[pg / 64];
        if (pg % 64 == 0 && npages - i >= 64) {
            *w = released ? ~(uint64_t)0 : 0;
            i += 64;
        } else {
            if (released)
                *w |= (uint64_t)1 << (pg % 64);
            else
                *w &= ~((uint64_t)1 << (pg % 64));
            i++;
        }
    }
}
