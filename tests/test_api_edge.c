/* test_api_edge.c - edge cases of the manual heap's API.
 *
 * malloc(0), free(NULL), sizes too large to satisfy, multiplications that
 * overflow (calloc, reallocarray), realloc(NULL, n) and realloc(p, 0),
 * posix_memalign's argument checks, aligned_alloc from 16 bytes to 1 MiB,
 * malloc_usable_size against the size classes (and realloc within the
 * usable size staying in place), calloc of reused memory being zero, the
 * alignment contract of gort.h, and the statistics that go with all this.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gort.h>
#include "test.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* Sizes go through a volatile so that no compiler reasons about them. */
static volatile size_t vsize;
static size_t V(size_t n)
{
    vsize = n;
    return vsize;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static int all_bytes(const void *p, size_t n, unsigned char c)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != c)
            return 0;
    return 1;
}

static size_t first_nonzero(const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i = 0;
    uint64_t v;
    for (; i + 8 <= n; i += 8) {
        memcpy(&v, b + i, 8);
        if (v)
            break;
    }
    for (; i < n; i++)
        if (b[i])
            return i;
    return n;
}

static gort_memstats ms;

static void stats(void)
{
    gort_read_memstats(&ms);
}

/* Relations that hold between the statistics whenever nothing is running. */
static void check_stats_invariants(const char *where)
{
    gort_memstats m;
    gort_read_memstats(&m);
    CHECK_MSG(m.heap_objects == m.mallocs - m.frees,
              "%s: heap_objects %" PRIu64 " != mallocs %" PRIu64 " - frees %" PRIu64,
              where, m.heap_objects, m.mallocs, m.frees);
    CHECK_MSG(m.alloc == m.heap_alloc, "%s: alloc %" PRIu64 " != heap_alloc %" PRIu64,
              where, m.alloc, m.heap_alloc);
    CHECK_MSG(m.total_alloc >= m.heap_alloc,
              "%s: total_alloc %" PRIu64 " < heap_alloc %" PRIu64, where,
              m.total_alloc, m.heap_alloc);
    CHECK_MSG(m.heap_alloc <= m.heap_inuse,
              "%s: heap_alloc %" PRIu64 " > heap_inuse %" PRIu64, where,
              m.heap_alloc, m.heap_inuse);
    CHECK_MSG(m.heap_released <= m.heap_idle,
              "%s: heap_released %" PRIu64 " > heap_idle %" PRIu64, where,
              m.heap_released, m.heap_idle);
    /* Go: HeapSys = HeapInuse + HeapIdle (HeapIdle counts released spans). */
    CHECK_MSG(m.heap_inuse + m.heap_idle == m.heap_sys,
              "%s: heap_inuse %" PRIu64 " + heap_idle %" PRIu64 " != heap_sys %" PRIu64,
              where, m.heap_inuse, m.heap_idle, m.heap_sys);
    CHECK_MSG(m.sys >= m.heap_sys, "%s: sys %" PRIu64 " < heap_sys %" PRIu64, where,
              m.sys, m.heap_sys);
    uint64_t sm = 0, sf = 0;
    for (int i = 0; i < GORT_NUM_SIZE_CLASSES; i++) {
        sm += m.by_size[i].mallocs;
        sf += m.by_size[i].frees;
        CHECK_MSG(m.by_size[i].mallocs >= m.by_size[i].frees,
                  "%s: class %d: mallocs %" PRIu64 " < frees %" PRIu64, where, i,
                  m.by_size[i].mallocs, m.by_size[i].frees);
    }
    CHECK_MSG(sm == m.mallocs, "%s: sum of by_size mallocs %" PRIu64 " != mallocs %" PRIu64,
              where, sm, m.mallocs);
    CHECK_MSG(sf == m.frees, "%s: sum of by_size frees %" PRIu64 " != frees %" PRIu64,
              where, sf, m.frees);
}

/* ---- size classes, from the statistics ---------------------------------- */

static uint32_t class_size[GORT_NUM_SIZE_CLASSES];
static size_t max_small;

static void load_classes(void)
{
    stats();
    CHECK_MSG(ms.by_size[0].size == 0, "by_size[0].size is %u, want 0 (large)",
              ms.by_size[0].size);
    for (int i = 0; i < GORT_NUM_SIZE_CLASSES; i++)
        class_size[i] = ms.by_size[i].size;
    REQUIRE(class_size[1] > 0);
    CHECK_MSG(class_size[1] == 8, "smallest class is %u bytes, want 8", class_size[1]);
    for (int i = 2; i < GORT_NUM_SIZE_CLASSES; i++) {
        CHECK_MSG(class_size[i] > class_size[i - 1], "class %d (%u) <= class %d (%u)", i,
                  class_size[i], i - 1, class_size[i - 1]);
        /* 16-byte alignment above 8 bytes needs every such class to be a
         * multiple of 16. */
        CHECK_MSG(class_size[i] % 16 == 0, "class %d size %u is not a multiple of 16",
                  i, class_size[i]);
    }
    max_small = class_size[GORT_NUM_SIZE_CLASSES - 1];
    CHECK_MSG(max_small == 32 * KiB, "largest small class is %zu, want 32768", max_small);
}

/* Smallest class that holds n bytes (n in 1..max_small). */
static int class_of(size_t n)
{
    for (int i = 1; i < GORT_NUM_SIZE_CLASSES; i++)
        if (class_size[i] >= n)
            return i;
    return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_malloc_zero(void)
{
    enum { N = 1000 };
    static void *ps[N];
    stats();
    uint64_t h0 = ms.heap_objects;

    for (int i = 0; i < N; i++) {
        ps[i] = gort_malloc(V(0));
        CHECK_MSG(ps[i] != NULL, "malloc(0) #%d returned NULL", i);
        if (!ps[i])
            return;
    }
    stats();
    CHECK_MSG(ms.heap_objects == h0 + N, "after %d malloc(0): heap_objects %" PRIu64
              ", want %" PRIu64, N, ms.heap_objects, h0 + N);
    qsort(ps, N, sizeof ps[0], cmp_ptr);
    for (int i = 1; i < N; i++)
        CHECK_MSG(ps[i] != ps[i - 1], "malloc(0) returned %p twice", ps[i]);
    for (int i = 0; i < N; i++)
        gort_free(ps[i]);
    stats();
    CHECK_MSG(ms.heap_objects == h0, "after freeing the malloc(0) objects: heap_objects %"
              PRIu64 ", want %" PRIu64, ms.heap_objects, h0);

    /* Other zero-byte requests are freeable too. */
    void *p = gort_calloc(V(0), 16), *q = gort_calloc(16, V(0));
    void *r = gort_aligned_alloc(64, V(0)), *s = NULL;
    int rc = gort_posix_memalign(&s, 64, V(0));
    CHECK(rc == 0);
    CHECK(r == NULL || ((uintptr_t)r & 63) == 0);
    CHECK(s == NULL || ((uintptr_t)s & 63) == 0);
    gort_free(p);
    gort_free(q);
    gort_free(r);
    gort_free(s);

    gort_free(NULL);
    CHECK(gort_malloc_usable_size(NULL) == 0);
    stats();
    CHECK(ms.heap_objects == h0);
}

static void expect_enomem(void *p, const char *what)
{
    int e = errno;
    CHECK_MSG(p == NULL, "%s returned %p, want NULL", what, p);
    CHECK_MSG(e == ENOMEM, "%s: errno %d, want ENOMEM", what, e);
    if (p)
        gort_free(p);
}

static void test_huge(void)
{
    static const size_t huge[] = {
        SIZE_MAX,         SIZE_MAX - 1,        SIZE_MAX - 4095,
        SIZE_MAX - 65536, SIZE_MAX / 2 + 1,    SIZE_MAX / 2,
        SIZE_MAX / 2 - 8191, (size_t)1 << 62,  (size_t)1 << 60,
        ((size_t)1 << 57) + 1,
    };
    char what[128];
    stats();
    uint64_t h0 = ms.heap_objects;

    char *keep = gort_malloc(100);
    REQUIRE(keep);
    memset(keep, 0x5a, 100);

    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        size_t n = V(huge[i]);
        errno = 0;
        snprintf(what, sizeof what, "malloc(%#zx)", n);
        expect_enomem(gort_malloc(n), what);
        errno = 0;
        snprintf(what, sizeof what, "calloc(1, %#zx)", n);
        expect_enomem(gort_calloc(1, n), what);
        errno = 0;
        snprintf(what, sizeof what, "calloc(%#zx, 1)", n);
        expect_enomem(gort_calloc(n, 1), what);
        errno = 0;
        snprintf(what, sizeof what, "realloc(NULL, %#zx)", n);
        expect_enomem(gort_realloc(NULL, n), what);
        errno = 0;
        snprintf(what, sizeof what, "aligned_alloc(64, %#zx)", n);
        expect_enomem(gort_aligned_alloc(64, n), what);
        errno = 0;
        snprintf(what, sizeof what, "aligned_alloc(1 MiB, %#zx)", n);
        expect_enomem(gort_aligned_alloc(MiB, n), what);

        void *out = (void *)&out;
        int rc = gort_posix_memalign(&out, 64, n);
        CHECK_MSG(rc == ENOMEM, "posix_memalign(64, %#zx) = %d, want ENOMEM", n, rc);
        CHECK_MSG(out == (void *)&out || out == NULL,
                  "posix_memalign failed but set *out to %p", out);
        if (rc == 0)
            gort_free(out);

        errno = 0;
        void *r = gort_realloc(keep, n);
        snprintf(what, sizeof what, "realloc(p, %#zx)", n);
        expect_enomem(r, what);
        CHECK_MSG(all_bytes(keep, 100, 0x5a), "failed realloc(p, %#zx) changed p", n);
    }
    gort_free(keep);
    stats();
    CHECK_MSG(ms.heap_objects == h0, "heap_objects %" PRIu64 " after the huge requests, want %"
              PRIu64, ms.heap_objects, h0);
}

static void test_overflow(void)
{
    static const size_t pairs[][2] = {
        {SIZE_MAX / 2, 3},
        {3, SIZE_MAX / 2},
        {SIZE_MAX, SIZE_MAX},
        {SIZE_MAX, 2},
        {(size_t)1 << 32, (size_t)1 << 32},   /* wraps to exactly 0 */
        {(size_t)1 << 16, (size_t)1 << 48},   /* wraps to exactly 0 */
        {((size_t)1 << 32) + 1, (size_t)1 << 32}, /* wraps to 1 << 32 */
        {SIZE_MAX / 16 + 1, 16},              /* wraps to 0 */
        {SIZE_MAX / 3 + 1, 3},                /* wraps to 1 */
    };
    char what[128];
    stats();
    uint64_t h0 = ms.heap_objects;

    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        size_t a = V(pairs[i][0]), b = V(pairs[i][1]);
        errno = 0;
        snprintf(what, sizeof what, "calloc(%#zx, %#zx)", a, b);
        expect_enomem(gort_calloc(a, b), what);

        errno = 0;
        snprintf(what, sizeof what, "reallocarray(NULL, %#zx, %#zx)", a, b);
        expect_enomem(gort_reallocarray(NULL, a, b), what);

        char *p = gort_malloc(200);
        REQUIRE(p);
        for (int k = 0; k < 200; k++)
            p[k] = (char)(k * 7 + 1);
        errno = 0;
        snprintf(what, sizeof what, "reallocarray(p, %#zx, %#zx)", a, b);
        expect_enomem(gort_reallocarray(p, a, b), what);
        int intact = 1;
        for (int k = 0; k < 200; k++)
            if (p[k] != (char)(k * 7 + 1))
                intact = 0;
        CHECK_MSG(intact, "failed reallocarray(p, %#zx, %#zx) changed p", a, b);
        /* p must still be a live object: grow it for real. */
        char *q = gort_reallocarray(p, 50, 8);
        CHECK(q != NULL);
        if (q) {
            int kept = 1;
            for (int k = 0; k < 200; k++)
                if (q[k] != (char)(k * 7 + 1))
                    kept = 0;
            CHECK_MSG(kept, "reallocarray(p, 50, 8) lost the contents");
            CHECK(gort_malloc_usable_size(q) >= 400);
            gort_free(q);
        } else {
            gort_free(p);
        }
    }

    /* The ordinary cases. */
    int *arr = gort_reallocarray(NULL, 100, sizeof(int));
    REQUIRE(arr);
    CHECK(gort_malloc_usable_size(arr) >= 100 * sizeof(int));
    for (int k = 0; k < 100; k++)
        arr[k] = k * k;
    arr = gort_reallocarray(arr, 10000, sizeof(int));
    REQUIRE(arr);
    int ok = 1;
    for (int k = 0; k < 100; k++)
        if (arr[k] != k * k)
            ok = 0;
    CHECK_MSG(ok, "reallocarray growth lost the contents");
    for (int k = 0; k < 10000; k++)
        arr[k] = -k;
    gort_free(arr);

    int *z = gort_calloc(V(1000), sizeof(int));
    REQUIRE(z);
    CHECK(first_nonzero(z, 1000 * sizeof(int)) == 1000 * sizeof(int));
    gort_free(z);

    stats();
    CHECK_MSG(ms.heap_objects == h0, "heap_objects %" PRIu64 " after the overflow tests, want %"
              PRIu64, ms.heap_objects, h0);
}

static void test_realloc_null_and_zero(void)
{
    stats();
    uint64_t h0 = ms.heap_objects, m0 = ms.mallocs;

    /* realloc(NULL, n) is malloc(n). */
    static const size_t sizes[] = {1, 8, 100, 4096, 40000, 3 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        stats();
        uint64_t before = ms.mallocs;
        unsigned char *p = gort_realloc(NULL, n);
        CHECK_MSG(p != NULL, "realloc(NULL, %zu) returned NULL", n);
        if (!p)
            continue;
        stats();
        CHECK_MSG(ms.mallocs == before + 1, "realloc(NULL, %zu) counted %" PRIu64
                  " mallocs, want 1", n, ms.mallocs - before);
        CHECK(gort_malloc_usable_size(p) >= n);
        CHECK(n <= 8 || ((uintptr_t)p & 15) == 0);
        memset(p, 0xee, gort_malloc_usable_size(p));
        gort_free(p);
    }
    stats();
    CHECK(ms.heap_objects == h0);
    CHECK(ms.mallocs == m0 + sizeof sizes / sizeof sizes[0]);

    /* realloc(p, 0): either frees p and returns NULL, or returns a (minimal)
     * object in p's place. Either way no object may leak. */
    static const size_t from[] = {1, 100, 5000, 100000};
    for (size_t i = 0; i < sizeof from / sizeof from[0]; i++) {
        stats();
        uint64_t h = ms.heap_objects;
        char *p = gort_malloc(from[i]);
        REQUIRE(p);
        memset(p, 0x11, from[i]);
        char *q = gort_realloc(p, V(0));
        stats();
        if (q == NULL) {
            printf("realloc(malloc(%zu), 0) freed the object and returned NULL\n",
                   from[i]);
            CHECK_MSG(ms.heap_objects == h, "realloc(p, 0) returned NULL but heap_objects "
                      "is %" PRIu64 ", want %" PRIu64 " (p not freed?)", ms.heap_objects, h);
        } else {
            printf("realloc(malloc(%zu), 0) returned %s object %p (usable %zu)\n",
                   from[i], q == p ? "the same" : "a new", (void *)q,
                   gort_malloc_usable_size(q));
            CHECK_MSG(ms.heap_objects == h + 1, "realloc(p, 0) returned an object but "
                      "heap_objects is %" PRIu64 ", want %" PRIu64, ms.heap_objects, h + 1);
            gort_free(q);
            stats();
            CHECK(ms.heap_objects == h);
        }
    }
    /* realloc(NULL, 0) behaves as malloc(0). */
    void *z = gort_realloc(NULL, V(0));
    CHECK(z != NULL);
    gort_free(z);
    stats();
    CHECK(ms.heap_objects == h0);
}

static void test_posix_memalign_args(void)
{
    static const size_t bad[] = {0, 1, 2, 3, 4, 5, 6, 7, 12, 24, 40, 48, 96, 100,
                                 4097, 3 * 4096, (size_t)1 << 20 | 8, SIZE_MAX};
    stats();
    uint64_t h0 = ms.heap_objects;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *out = (void *)&out;
        int rc = gort_posix_memalign(&out, V(bad[i]), 64);
        CHECK_MSG(rc == EINVAL, "posix_memalign(align %#zx) = %d, want EINVAL", bad[i], rc);
        CHECK_MSG(out == (void *)&out || out == NULL,
                  "posix_memalign(align %#zx) failed but set *out to %p", bad[i], out);
        if (rc == 0)
            gort_free(out);
    }
    /* A valid but impossible alignment. */
    void *out = NULL;
    int rc = gort_posix_memalign(&out, V((size_t)1 << 62), 64);
    CHECK_MSG(rc == ENOMEM || rc == EINVAL, "posix_memalign(align 2^62) = %d", rc);
    if (rc == 0)
        gort_free(out);

    /* aligned_alloc with an alignment that is not a power of two: C17 says it
     * fails with NULL; report what happens, and insist only that a result,
     * if any, is a freeable object. */
    errno = 0;
    void *a = gort_aligned_alloc(V(24), 48);
    printf("aligned_alloc(24, 48) = %p (errno %d)\n", a, a ? 0 : errno);
    gort_free(a);

    stats();
    CHECK(ms.heap_objects == h0);
}

static void test_aligned(void)
{
    enum { MAXOBJ = 512 };
    static unsigned char *objs[MAXOBJ];
    static size_t objn[MAXOBJ];
    int n = 0;
    stats();
    uint64_t h0 = ms.heap_objects;

    for (size_t align = 8; align <= 4 * MiB; align *= 2) {
        const size_t sizes[] = {1, 7, 8, 16, 100, align > 1 ? align - 1 : 1, align,
                                align + 1, 3 * align + 5, 40000, MiB + 3};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t sz = sizes[i];
            if (sz > 8 * MiB)
                continue;
            for (int api = 0; api < 2; api++) {
                unsigned char *p = NULL;
                if (api == 0) {
                    if (align < 16 || align > MiB)
                        continue; /* aligned_alloc: 16 .. 1 MiB */
                    p = gort_aligned_alloc(align, sz);
                    CHECK_MSG(p != NULL, "aligned_alloc(%zu, %zu) returned NULL", align, sz);
                } else {
                    int rc = gort_posix_memalign((void **)&p, align, sz);
                    CHECK_MSG(rc == 0 && p != NULL,
                              "posix_memalign(%zu, %zu) = %d", align, sz, rc);
                    if (rc)
                        p = NULL;
                }
                if (!p)
                    continue;
                CHECK_MSG(((uintptr_t)p & (align - 1)) == 0,
                          "%s(%zu, %zu) = %p is misaligned",
                          api ? "posix_memalign" : "aligned_alloc", align, sz, (void *)p);
                size_t u = gort_malloc_usable_size(p);
                CHECK_MSG(u >= sz, "aligned object of %zu bytes has usable size %zu", sz, u);
                REQUIRE(n < MAXOBJ);
                objs[n] = p;
                objn[n] = u;
                /* All of the usable size is writable. */
                memset(p, (unsigned char)(n * 37 + 11), u);
                n++;
            }
        }
    }
    /* No two live objects overlap: each still holds its own byte. */
    for (int i = 0; i < n; i++)
        CHECK_MSG(all_bytes(objs[i], objn[i], (unsigned char)(i * 37 + 11)),
                  "aligned object %d (%p, %zu bytes) was overwritten", i, (void *)objs[i],
                  objn[i]);
    for (int i = 0; i < n; i++)
        gort_free(objs[i]);
    stats();
    CHECK_MSG(ms.heap_objects == h0, "heap_objects %" PRIu64 " after aligned tests, want %"
              PRIu64, ms.heap_objects, h0);
}

static void test_usable_size(void)
{
    int reported = 0;
    stats();
    uint64_t h0 = ms.heap_objects;

    for (size_t n = 1; n <= max_small; n++) {
        unsigned char *p = gort_malloc(n);
        REQUIRE(p);
        size_t u = gort_malloc_usable_size(p);
        int c = class_of(n);
        if (u != class_size[c] && reported++ < 10)
            CHECK_MSG(0, "usable_size(malloc(%zu)) = %zu, want the class size %u", n, u,
                      class_size[c]);
        if (u < n) {
            gort_free(p);
            continue;
        }
        p[0] = 1;
        p[u - 1] = 2;
        /* Growing within the usable size keeps the object in place. */
        unsigned char *q = gort_realloc(p, u);
        if (q != p && reported++ < 10)
            CHECK_MSG(0, "realloc(malloc(%zu), usable %zu) moved %p -> %p", n, u,
                      (void *)p, (void *)q);
        if (!q) {
            gort_free(p);
            continue;
        }
        CHECK(q[0] == 1 && q[u - 1] == 2);
        /* So does shrinking within the same size class. */
        size_t lo = c > 1 ? class_size[c - 1] + 1 : 1;
        unsigned char *r = gort_realloc(q, lo);
        if (r != q && reported++ < 10)
            CHECK_MSG(0, "realloc(%zu-byte object, %zu) within class %u moved it", u, lo,
                      class_size[c]);
        if (!r) {
            gort_free(q);
            continue;
        }
        CHECK(r[0] == 1);
        gort_free(r);
    }

    /* Per-class statistics move by one per malloc and free. */
    static const size_t probe[] = {100, 1000, 5000, 32768};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        int c = class_of(probe[i]);
        gort_memstats a, b, d;
        gort_read_memstats(&a);
        void *p = gort_malloc(probe[i]);
        REQUIRE(p);
        gort_read_memstats(&b);
        gort_free(p);
        gort_read_memstats(&d);
        CHECK_MSG(b.by_size[c].mallocs == a.by_size[c].mallocs + 1,
                  "malloc(%zu): by_size[%d].mallocs moved by %" PRIu64, probe[i], c,
                  b.by_size[c].mallocs - a.by_size[c].mallocs);
        CHECK_MSG(d.by_size[c].frees == b.by_size[c].frees + 1,
                  "free of %zu bytes: by_size[%d].frees moved by %" PRIu64, probe[i], c,
                  d.by_size[c].frees - b.by_size[c].frees);
        CHECK(b.mallocs == a.mallocs + 1 && d.frees == b.frees + 1);
        CHECK_MSG(b.total_alloc - a.total_alloc == class_size[c],
                  "malloc(%zu): total_alloc grew by %" PRIu64 ", want %u", probe[i],
                  b.total_alloc - a.total_alloc, class_size[c]);
        CHECK_MSG(b.heap_alloc - a.heap_alloc == class_size[c],
                  "malloc(%zu): heap_alloc grew by %" PRIu64 ", want %u", probe[i],
                  b.heap_alloc - a.heap_alloc, class_size[c]);
        CHECK(d.heap_alloc == a.heap_alloc);
    }

    /* Large objects: usable size covers the request and all of it is
     * writable; realloc up to it keeps the object in place. */
    static const size_t large[] = {32769, 40000, 65536, 100000, MiB, MiB + 1, 5 * MiB + 77};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        size_t n = large[i];
        gort_memstats a, b;
        gort_read_memstats(&a);
        unsigned char *p = gort_malloc(n);
        REQUIRE(p);
        gort_read_memstats(&b);
        size_t u = gort_malloc_usable_size(p);
        CHECK_MSG(u >= n, "usable_size(malloc(%zu)) = %zu", n, u);
        CHECK_MSG(b.by_size[0].mallocs == a.by_size[0].mallocs + 1,
                  "malloc(%zu) is not counted as a large object", n);
        CHECK_MSG(b.total_alloc - a.total_alloc == u,
                  "malloc(%zu): total_alloc grew by %" PRIu64 ", usable size %zu", n,
                  b.total_alloc - a.total_alloc, u);
        memset(p, 0x3c, u);
        unsigned char *q = gort_realloc(p, u);
        CHECK_MSG(q == p, "realloc(malloc(%zu), usable %zu) moved the object", n, u);
        if (!q)
            q = p;
        CHECK(all_bytes(q, u, 0x3c));
        /* Growing past the usable size preserves the contents. */
        unsigned char *r = gort_realloc(q, u + 5000);
        CHECK(r != NULL);
        if (!r)
            r = q;
        else
            CHECK_MSG(all_bytes(r, u, 0x3c), "realloc(%zu -> %zu) lost contents", u,
                      u + 5000);
        gort_free(r);
    }

    stats();
    CHECK_MSG(ms.heap_objects == h0, "heap_objects %" PRIu64 " after usable-size tests, "
              "want %" PRIu64, ms.heap_objects, h0);
}

/* Freed memory is dirty; calloc of the same size must still return zeroes. */
static void test_calloc_reuse(void)
{
    static const size_t sizes[] = {8,      24,      100,     1000,    5000,
                                   32768,  40000,   100000,  MiB,     MiB + 8192,
                                   8 * MiB, 64 * MiB};
    static unsigned char *objs[64];
    stats();
    uint64_t h0 = ms.heap_objects;

    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t sz = sizes[i];
            int k = (int)(64 * MiB / 4 / sz);
            if (k > 64)
                k = 64;
            if (k < 1)
                k = 1;
            for (int j = 0; j < k; j++) {
                objs[j] = gort_malloc(sz);
                REQUIRE(objs[j]);
                memset(objs[j], 0xa5, gort_malloc_usable_size(objs[j]));
            }
            for (int j = 0; j < k; j++)
                gort_free(objs[j]);
            if (round == 1)
                gort_free_os_memory(); /* now the pages come back released */
            for (int j = 0; j < k; j++) {
                objs[j] = (j & 1) ? gort_calloc(1, sz) : gort_calloc(sz, 1);
                REQUIRE(objs[j]);
                size_t bad = first_nonzero(objs[j], sz);
                CHECK_MSG(bad == sz, "calloc(%zu) after free (round %d): byte %zu of %p is "
                          "%#x", sz, round, bad, (void *)objs[j], objs[j][bad]);
            }
            for (int j = 0; j < k; j++)
                gort_free(objs[j]);
        }
    }
    /* calloc with a count: the product is what must be zeroed. */
    for (int j = 0; j < 16; j++) {
        objs[j] = gort_malloc(4000 * 8);
        REQUIRE(objs[j]);
        memset(objs[j], 0xff, 4000 * 8);
    }
    for (int j = 0; j < 16; j++)
        gort_free(objs[j]);
    for (int j = 0; j < 16; j++) {
        objs[j] = gort_calloc(4000, 8);
        REQUIRE(objs[j]);
        CHECK(first_nonzero(objs[j], 4000 * 8) == 4000 * 8);
    }
    for (int j = 0; j < 16; j++)
        gort_free(objs[j]);

    stats();
    CHECK(ms.heap_objects == h0);
}

static void test_alignment(void)
{
    enum { K = 8 };
    void *ps[K];
    int reported = 0;
    for (size_t n = 1; n <= 4200; n += (n < 300 ? 1 : 13)) {
        for (int j = 0; j < K; j++) {
            ps[j] = (j % 3 == 0) ? gort_calloc(1, n)
                                 : (j % 3 == 1 ? gort_malloc(n) : gort_realloc(NULL, n));
            REQUIRE(ps[j]);
            uintptr_t a = (uintptr_t)ps[j];
            size_t want = n > 8 ? 16 : 8;
            if ((a & (want - 1)) && reported++ < 10)
                CHECK_MSG(0, "allocation of %zu bytes at %p is not %zu-byte aligned", n,
                          ps[j], want);
        }
        for (int j = 0; j < K; j++)
            gort_free(ps[j]);
    }
    static const size_t big[] = {8191, 8192, 30000, 32768, 32769, 70000, MiB, 3 * MiB + 1};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        void *p = gort_malloc(big[i]);
        REQUIRE(p);
        CHECK_MSG(((uintptr_t)p & 15) == 0, "malloc(%zu) = %p is not 16-byte aligned",
                  big[i], p);
        /* realloc to a new size keeps the alignment contract */
        void *q = gort_realloc(p, big[i] / 2 + 9);
        REQUIRE(q);
        CHECK(((uintptr_t)q & 15) == 0);
        gort_free(q);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    check_stats_invariants("at start");
    load_classes();

    test_malloc_zero();
    check_stats_invariants("after malloc(0)");
    test_huge();
    check_stats_invariants("after huge sizes");
    test_overflow();
    check_stats_invariants("after overflow");
    test_realloc_null_and_zero();
    check_stats_invariants("after realloc(NULL)/realloc(p, 0)");
    test_posix_memalign_args();
    check_stats_invariants("after posix_memalign arguments");
    test_aligned();
    check_stats_invariants("after aligned allocation");
    test_usable_size();
    check_stats_invariants("after usable size");
    test_calloc_reuse();
    check_stats_invariants("after calloc reuse");
    test_alignment();
    check_stats_invariants("after alignment");
    gort_free_os_memory();
    check_stats_invariants("after free_os_memory");
    return test_done();
}
