/* malloc_shim.c - libgort-malloc.so: gort's allocator under libc's names.
 *
 * The core never defines malloc; this file alone does, and it is linked
 * only into libgort-malloc.so, for LD_PRELOAD or for linking in place of
 * libc's allocator. One allocator instance per process: the core's objects
 * are compiled into this library, so a program that also links libgort.so
 * gets a second, separate heap (documented in README.md; link one or the
 * other).
 *
 * Each function forwards to the gort_ implementation, with the extra
 * legacy entry points (memalign, valloc, pvalloc, cfree) defined in terms
 * of aligned allocation. glibc's __libc_* aliases are provided too, since
 * some programs (and glibc's own fork path in older versions) call them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <unistd.h>

#include "gort.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t n) { return gort_malloc(n); }
EXPORT void free(void *p) { gort_free(p); }
EXPORT void cfree(void *p) { gort_free(p); }
EXPORT void *calloc(size_t c, size_t n) { return gort_calloc(c, n); }
EXPORT void *realloc(void *p, size_t n) { return gort_realloc(p, n); }
EXPORT void *reallocarray(void *p, size_t c, size_t n) { return gort_reallocarray(p, c, n); }
EXPORT void *aligned_alloc(size_t a, size_t n) { return gort_aligned_alloc(a, n); }
EXPORT int posix_memalign(void **out, size_t a, size_t n) { return gort_posix_memalign(out, a, n); }
EXPORT size_t malloc_usable_size(void *p) { return gort_malloc_usable_size(p); }

EXPORT void *memalign(size_t a, size_t n)
{
    /* glibc accepts a non-power-of-two alignment by rounding it up */
    if (a & (a - 1)) {
        size_t r = 1;
        while (r < a && r)
            r <<= 1;
        if (!r) {
            errno = EINVAL;
            return NULL;
        }
        a = r;
    }
    return gort_aligned_alloc(a ? a : 1, n);
}

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

EXPORT void *valloc(size_t n) { return gort_aligned_alloc(page_size(), n); }

EXPORT void *pvalloc(size_t n)
{
    size_t ps = page_size();
    size_t r = (n + ps - 1) & ~(ps - 1);
    if (r < n) {
        errno = ENOMEM;
        return NULL;
    }
    return gort_aligned_alloc(ps, r ? r : ps);
}

EXPORT void *__libc_malloc(size_t n) { return gort_malloc(n); }
EXPORT void __libc_free(void *p) { gort_free(p); }
EXPORT void *__libc_calloc(size_t c, size_t n) { return gort_calloc(c, n); }
EXPORT void *__libc_realloc(void *p, size_t n) { return gort_realloc(p, n); }
EXPORT void *__libc_memalign(size_t a, size_t n) { return memalign(a, n); }
EXPORT void *__libc_valloc(size_t n) { return valloc(n); }
EXPORT void *__libc_pvalloc(size_t n) { return pvalloc(n); }
EXPORT int __posix_memalign(void **out, size_t a, size_t n) { return gort_posix_memalign(out, a, n); }
