/* test_mheap.c - page heap: page map, splitting, coalescing, alignment,
 * growth in place, release and the zero-page knowledge. */
#include <string.h>
#include <unistd.h>

#include "export_test.h"
#include "gort.h"
#include "test.h"

int main(void)
{
    /* Page map: every page of a large object maps to its span; interior
     * addresses too, and one past the end does not. */
    size_t n = 10 * PAGE_SIZE + 123;
    char *p = gort_malloc(n);
    REQUIRE(p);
    mspan *s = test_spanof(p);
    REQUIRE(s);
    CHECK(s->base == (uintptr_t)p);
    CHECK(s->npages == 11);
    for (size_t off = 0; off < n; off += 4096)
        CHECK(test_spanof(p + off) == s);
    CHECK(gort_malloc_usable_size(p) == 11 * PAGE_SIZE);
    CHECK(test_spanof((void *)0x10) == NULL);
    test_heap_verify();

    /* Coalescing: three neighbours freed in any order merge into one span. */
    char *a = gort_malloc(64 * 1024), *b = gort_malloc(64 * 1024), *c = gort_malloc(64 * 1024);
    REQUIRE(a && b && c);
    CHECK(b == a + 64 * 1024 && c == b + 64 * 1024);   /* heap hands out in address order */
    gort_free(a);
    gort_free(c);
    test_heap_verify();
    gort_free(b);
    test_heap_verify();   /* checks no two free spans are adjacent */
    mspan *m = test_spanof(a);
    CHECK(m && atomic_load(&m->state) == SPAN_FREE && m->base <= (uintptr_t)a &&
          m->base + m->npages * PAGE_SIZE >= (uintptr_t)c + 64 * 1024);

    /* Large realloc grows in place into the free pages after it. */
    char *g = gort_malloc(100 * 1024);
    REQUIRE(g);
    memset(g, 7, 100 * 1024);
    char *g2 = gort_realloc(g, 300 * 1024);
    CHECK(g2 == g);
    CHECK(g2[100 * 1024 - 1] == 7);
    test_heap_verify();
    gort_free(g2);

    /* Alignment beyond a page aligns a span; the lead pages stay free. */
    for (size_t al = PAGE_SIZE * 2; al <= ((size_t)1 << 24); al <<= 2) {
        void *q = gort_aligned_alloc(al, 3 * PAGE_SIZE);
        REQUIRE(q);
        CHECK(((uintptr_t)q & (al - 1)) == 0);
        test_heap_verify();
        gort_free(q);
    }
    test_heap_verify();

    /* Released pages: after free_os_memory every free page is released and
     * reads as zero; calloc then needs no memset (observable as zeroes). */
    char *z = gort_malloc(4 << 20);
    REQUIRE(z);
    memset(z, 0xAB, 4 << 20);
    gort_free(z);
    gort_free_os_memory();
    test_heap_verify();
    gort_memstats ms;
    gort_read_memstats(&ms);
    if (sysconf(_SC_PAGESIZE) <= (long)PAGE_SIZE)
        CHECK(ms.heap_released == ms.heap_idle);
    else   /* larger kernel pages: free spans smaller than one cannot go back */
        CHECK(ms.heap_released > 0 && ms.heap_released <= ms.heap_idle);
    char *z2 = gort_calloc(1, 4 << 20);
    REQUIRE(z2);
    for (size_t i = 0; i < (4 << 20); i += 997)
        CHECK_MSG(z2[i] == 0, "calloc byte %zu not zero", i);
    gort_free(z2);
    gort_free(p);
    test_heap_verify();
    return test_done();
}
