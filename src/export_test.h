/* export_test.h - internals that tests may reach (Go's export_test.go idea).
 * Only tests include this; nothing in the library does. */
#ifndef GORT_EXPORT_TEST_H
#define GORT_EXPORT_TEST_H

#include "alloc/malloc.h"
#include "gc/gc.h"

/* Walk the whole heap and check every invariant mheap_verify knows. */
static inline void test_heap_verify(void) { mheap_verify(); }
static inline mspan *test_spanof(const void *p) { return spanof((uintptr_t)p); }
static inline uint64_t test_heap_released(void)
{
    return atomic_load_explicit(&mheap_.released, memory_order_relaxed);
}

#endif
