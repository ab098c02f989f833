/* test_sched_million.c - a million goroutines alive at once.
 *
 * 1,000,000 goroutines (default stack size) each start, count themselves and
 * park in a gort_sleep loop until the main goroutine releases them; the main
 * goroutine checks gort_num_goroutine() == 1,000,001 while all are parked,
 * and that the process's memory mappings stay under the default
 * vm.max_map_count (65530): the runtime must not give each stack mappings of
 * its own. Then they are released and must all finish, leaving main alone.
 *
 * The full million runs in a plain (release) build. Under valgrind or a
 * sanitizer the count is scaled down (GORT_SCHED_MILLION_N overrides it);
 * GORT_TEST_SCALE (a positive number, default 1) scales it as well.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <gort.h>
#include "test.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

static int under_valgrind(void)
{
#ifdef HAVE_VALGRIND_H
    if (RUNNING_ON_VALGRIND)
        return 1;
#endif
    const char *m = getenv("GORT_TEST_MODE");
    return m && strcmp(m, "valgrind") == 0;
}

static long goroutine_count(void)
{
    const char *s = getenv("GORT_SCHED_MILLION_N");
    if (s && atol(s) > 0)
        return atol(s);
    long n = 1000000;
#if defined(GORT_ASAN)
    n = 100000;
#elif defined(GORT_TSAN)
    n = 2000; /* TSan counts each goroutine as a thread (at most 8128) */
#endif
    if (under_valgrind())
        n = 10000;
    const char *sc = getenv("GORT_TEST_SCALE");
    double scale = sc ? atof(sc) : 1.0;
    if (scale > 0)
        n = (long)((double)n * scale);
    return n < 1 ? 1 : n;
}

static atomic_long started, finished;
static atomic_int release;

static void parker(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
    /* Long naps: a million goroutines polling every 500 ms would be two
     * million timer wake-ups a second, more than two cores keep up with. */
    while (!atomic_load_explicit(&release, memory_order_acquire))
        gort_sleep(2 * SEC);
    atomic_fetch_add_explicit(&finished, 1, memory_order_relaxed);
}

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = getc(f)) != EOF)
        if (c == '\n')
            n++;
    fclose(f);
    return n;
}

/* Sleeps in 10 ms steps until *v >= want or `secs` pass. */
static int wait_ge(atomic_long *v, long want, int secs)
{
    int64_t deadline = gort_nanotime() + secs * SEC;
    while (atomic_load(v) < want) {
        if (gort_nanotime() > deadline)
            return 0;
        gort_sleep(10 * MS);
    }
    return 1;
}

static void real_main(void *arg)
{
    long n = *(long *)arg;
    int64_t t0 = gort_nanotime();
    for (long i = 0; i < n; i++)
        gort_go(parker, NULL);
    int64_t t1 = gort_nanotime();

    CHECK_MSG(wait_ge(&started, n, 45), "only %ld of %ld goroutines started",
              atomic_load(&started), n);
    int64_t t2 = gort_nanotime();
    int ng = gort_num_goroutine();
    CHECK_MSG(ng == n + 1, "num_goroutine %d with %ld parked, want %ld", ng, n, n + 1);
    int maps = count_maps();
    CHECK_MSG(maps > 0 && maps < 65530,
              "%d memory mappings with %ld goroutines alive (vm.max_map_count default 65530)",
              maps, n);

    atomic_store_explicit(&release, 1, memory_order_release);
    CHECK_MSG(wait_ge(&finished, n, 45), "only %ld of %ld goroutines finished",
              atomic_load(&finished), n);
    int64_t deadline = gort_nanotime() + 30 * SEC;
    while (gort_num_goroutine() > 1 && gort_nanotime() < deadline)
        gort_sleep(10 * MS);
    CHECK_MSG(gort_num_goroutine() == 1, "num_goroutine %d after all finished",
              gort_num_goroutine());
    int64_t t3 = gort_nanotime();

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%ld goroutines: created in %.2f s, all started after %.2f s, "
           "%d mappings, released and finished in %.2f s, max RSS %ld MiB\n",
           n, (double)(t1 - t0) / SEC, (double)(t2 - t0) / SEC, maps,
           (double)(t3 - t2) / SEC, ru.ru_maxrss / 1024);
}

int main(void)
{
    static long n;
    n = goroutine_count();
    CHECK(gort_main(real_main, &n) == 0);
    return test_done();
}
