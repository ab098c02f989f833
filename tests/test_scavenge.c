/* test_scavenge.c - freed memory goes back to the operating system.
 *
 * 1. A block allocated and freed over and over is not released in between:
 *    200 rounds of malloc(8 MiB), touching every page, free, cost far fewer
 *    minor page faults than 200 times the block's pages.
 * 2. gort_free_os_memory: after 200 MiB in mixed sizes is allocated, touched
 *    and freed, the call brings the resident set down by most of it and
 *    heap_released up.
 * 3. The background scavenger: after another 100 MiB is allocated, touched
 *    and freed, without any call, the resident set falls and heap_released
 *    rises within about 10 seconds.
 *
 * The resident set comes from /proc/self/statm.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

static size_t os_page;

static size_t rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    REQUIRE(f);
    REQUIRE(fscanf(f, "%lu %lu", &size, &res) == 2);
    fclose(f);
    return (size_t)res * os_page;
}

static uint64_t released(void)
{
    gort_memstats m;
    gort_read_memstats(&m);
    return m.heap_released;
}

static long minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

#define MAXOBJ 65536
static void *objs[MAXOBJ];
static int nobj;

/* Allocate small_bytes in small objects (16 B .. 32 KiB) and large_bytes in
 * large ones (64 KiB .. 4 MiB), interleaved, touching every byte. */
static void alloc_mixed(size_t small_bytes, size_t large_bytes, uint64_t seed)
{
    uint64_t s = seed;
    size_t small = 0, large = 0;
    nobj = 0;
    while (small < small_bytes || large < large_bytes) {
        size_t n;
        if (small < small_bytes && (large >= large_bytes || next(&s) % 64 != 0)) {
            n = (next(&s) & 1) ? 16 + next(&s) % 497 : 512 + next(&s) % (32 * KiB - 511);
            small += n;
        } else {
            n = 64 * KiB + next(&s) % (4 * MiB - 64 * KiB);
            large += n;
        }
        REQUIRE(nobj < MAXOBJ);
        void *p = gort_malloc(n);
        REQUIRE(p);
        memset(p, 0x5c, n);
        objs[nobj++] = p;
    }
}

static void free_all(void)
{
    /* Free in an order unrelated to the allocation order. */
    for (int step = 0; step < 3; step++)
        for (int i = step; i < nobj; i += 3)
            gort_free(objs[i]);
    nobj = 0;
}

static void test_reuse_without_release(void)
{
    const int rounds = 200;
    const size_t block = 8 * MiB, pages = block / os_page;

    /* One warm-up round: the first touch of the block faults anyway. */
    unsigned char *p = gort_malloc(block);
    REQUIRE(p);
    for (size_t i = 0; i < block; i += os_page)
        p[i] = 1;
    gort_free(p);

    long f0 = minflt();
    for (int r = 0; r < rounds; r++) {
        p = gort_malloc(block);
        REQUIRE(p);
        for (size_t i = 0; i < block; i += os_page)
            p[i] = (unsigned char)r;
        gort_free(p);
    }
    long faults = minflt() - f0;
    long all = (long)(rounds * pages);
    printf("malloc/free of 8 MiB x %d: %ld minor faults (%ld if released each time)\n",
           rounds, faults, all);
    CHECK_MSG(faults < all / 10,
              "%ld minor page faults over %d rounds of an 8 MiB block: its pages are "
              "released between free and the next malloc (limit %ld)",
              faults, rounds, all / 10);
}

static void test_free_os_memory(void)
{
    const size_t total = 200 * MiB;
    size_t r0 = rss();
    alloc_mixed(total / 2, total / 2, 1);
    size_t r1 = rss();
    printf("RSS %zu MiB before, %zu MiB with 200 MiB allocated (%d objects)\n", r0 / MiB,
           r1 / MiB, nobj);
    CHECK_MSG(r1 >= r0 + total * 9 / 10, "RSS grew by only %zu MiB for 200 MiB touched",
              (r1 - r0) / MiB);
    free_all();
    uint64_t rel0 = released();
    gort_free_os_memory();
    size_t r2 = rss();
    uint64_t rel1 = released();
    printf("RSS %zu MiB after free + gort_free_os_memory; heap_released %" PRIu64
           " -> %" PRIu64 " MiB\n",
           r2 / MiB, rel0 / MiB, rel1 / MiB);
    CHECK_MSG(r2 + 150 * MiB < r1,
              "gort_free_os_memory: RSS %zu MiB with 200 MiB live, %zu MiB after it "
              "was freed and released (want a drop of more than 150 MiB)",
              r1 / MiB, r2 / MiB);
    CHECK_MSG(rel1 >= rel0 + 150 * MiB,
              "gort_free_os_memory: heap_released grew by only %" PRIu64 " MiB",
              (rel1 - rel0) / MiB);

    /* "Every free page": what is idle is released. */
    gort_memstats m;
    gort_read_memstats(&m);
    CHECK_MSG(m.heap_idle - m.heap_released < MiB,
              "after gort_free_os_memory heap_idle %" PRIu64 " but heap_released %" PRIu64,
              m.heap_idle, m.heap_released);

    /* Released memory is usable again, and zero for calloc. */
    unsigned char *p = gort_calloc(1, 16 * MiB);
    REQUIRE(p);
    size_t bad = 0;
    while (bad < 16 * MiB && p[bad] == 0)
        bad++;
    CHECK_MSG(bad == 16 * MiB, "calloc of released memory: byte %zu is %#x", bad, p[bad]);
    memset(p, 1, 16 * MiB);
    gort_free(p);
}

static void test_background(void)
{
    const size_t total = 100 * MiB;
    alloc_mixed(total / 4, total * 3 / 4, 2);
    size_t r1 = rss();
    uint64_t rel0 = released();
    free_all();
    size_t r2 = rss();
    uint64_t rel2 = released();

    /* Wait up to about 10 seconds for the scavenger. Measured from the live
     * state, so memory released at free time counts as well. */
    struct timespec ts = {0, 100 * 1000 * 1000};
    size_t r3 = r2;
    uint64_t rel3 = rel2;
    int waited;
    for (waited = 0; waited < 100; waited++) {
        r3 = rss();
        rel3 = released();
        if (r3 + 50 * MiB < r1 && rel3 >= rel0 + 50 * MiB)
            break;
        nanosleep(&ts, NULL);
    }
    printf("background scavenger: RSS %zu MiB live, %zu MiB just freed, %zu MiB after "
           "%d ms; heap_released %" PRIu64 " live, %" PRIu64 " just freed, %" PRIu64
           " MiB after\n",
           r1 / MiB, r2 / MiB, r3 / MiB, waited * 100, rel0 / MiB, rel2 / MiB, rel3 / MiB);
    CHECK_MSG(r3 + 50 * MiB < r1,
              "background scavenger: RSS %zu MiB with 100 MiB live, still %zu MiB 10 s "
              "after it was freed",
              r1 / MiB, r3 / MiB);
    CHECK_MSG(rel3 >= rel0 + 50 * MiB,
              "background scavenger: heap_released grew by only %" PRIu64 " MiB in 10 s",
              (rel3 - rel0) / MiB);
}

int main(void)
{
    os_page = (size_t)sysconf(_SC_PAGESIZE);
    setvbuf(stdout, NULL, _IONBF, 0);
    /* The bookkeeping array is resident before any measurement. */
    memset(objs, 0, sizeof objs);

    test_reuse_without_release();
    test_free_os_memory();
    test_background();
    return test_done();
}
