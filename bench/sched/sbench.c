/* sbench.c - scheduler benchmarks against gort (the twin of sbench.go).
 *
 *   sbench spawn  N   spawn N goroutines that each add 1 to a shared
 *                     counter; main yields until the counter reaches N.
 *                     result: ns per goroutine
 *   sbench yield  K   two goroutines each yield K times.
 *                     result: ns per yield (total time / 2K)
 *   sbench parked N   N goroutines each sleep for an hour; main measures
 *                     resident memory before and after they are all parked.
 *                     result: bytes of RSS per parked goroutine
 *
 * GOMAXPROCS comes from the environment, as in Go. The last line printed
 * on stdout is "result <number>"; details go to stderr. sbench.go does the
 * same steps in the same order; keep the two in step when editing.
 */
#include <gort.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MILLISECOND 1000000LL
#define HOUR (3600LL * 1000 * MILLISECOND)

struct args {
    const char *mode;
    long n;
};

/* ---- helpers ------------------------------------------------------------ */

/* Resident set size in bytes, from /proc/self/statm (second field, pages). */
static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f == NULL || fscanf(f, "%ld %ld", &size, &resident) != 2) {
        fprintf(stderr, "sbench: cannot read /proc/self/statm\n");
        exit(1);
    }
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* ---- spawn -------------------------------------------------------------- */

static atomic_long spawn_count;

static void spawn_worker(void *arg)
{
    atomic_fetch_add((atomic_long *)arg, 1);
}

static void bench_spawn(long n)
{
    int64_t t0 = gort_nanotime();
    for (long i = 0; i < n; i++)
        gort_go(spawn_worker, &spawn_count);
    while (atomic_load(&spawn_count) < n)
        gort_yield();
    int64_t t1 = gort_nanotime();
    fprintf(stderr, "spawn: %ld goroutines in %.3f s\n", n, (double)(t1 - t0) / 1e9);
    printf("result %.2f\n", (double)(t1 - t0) / (double)n);
}

/* ---- yield -------------------------------------------------------------- */

static atomic_long yield_done;
static _Atomic int64_t yield_end;

static void yield_worker(void *arg)
{
    long k = *(long *)arg;
    for (long i = 0; i < k; i++)
        gort_yield();
    if (atomic_fetch_add(&yield_done, 1) + 1 == 2)
        atomic_store(&yield_end, gort_nanotime());
}

static void bench_yield(long k)
{
    int64_t t0 = gort_nanotime();
    gort_go(yield_worker, &k);
    gort_go(yield_worker, &k);
    while (atomic_load(&yield_done) < 2)
        gort_sleep(MILLISECOND);
    int64_t t1 = atomic_load(&yield_end);
    fprintf(stderr, "yield: 2 x %ld yields in %.3f s\n", k, (double)(t1 - t0) / 1e9);
    printf("result %.2f\n", (double)(t1 - t0) / (double)(2 * k));
}

/* ---- parked ------------------------------------------------------------- */

static atomic_long parked_started;

static void parked_worker(void *arg)
{
    (void)arg;
    atomic_fetch_add(&parked_started, 1);
    gort_sleep(HOUR);
}

static void bench_parked(long n)
{
    long before = rss_bytes();
    int64_t t0 = gort_nanotime();
    for (long i = 0; i < n; i++)
        gort_go(parked_worker, NULL);
    while (atomic_load(&parked_started) < n || gort_num_goroutine() < n + 1)
        gort_sleep(MILLISECOND);
    int64_t t1 = gort_nanotime();
    gort_sleep(100 * MILLISECOND);
    long after = rss_bytes();
    fprintf(stderr, "parked: %ld goroutines parked in %.3f s; rss %.1f MiB -> %.1f MiB; goroutines %d\n",
            n, (double)(t1 - t0) / 1e9, before / 1048576.0, after / 1048576.0,
            gort_num_goroutine());
    printf("result %.1f\n", (double)(after - before) / (double)n);
}

/* ---- main --------------------------------------------------------------- */

static void main_goroutine(void *arg)
{
    struct args *a = arg;
    fprintf(stderr, "gort: GOMAXPROCS=%d\n", gort_gomaxprocs(0));
    if (strcmp(a->mode, "spawn") == 0)
        bench_spawn(a->n);
    else if (strcmp(a->mode, "yield") == 0)
        bench_yield(a->n);
    else if (strcmp(a->mode, "parked") == 0)
        bench_parked(a->n);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "spawn") != 0 && strcmp(argv[1], "yield") != 0 &&
                      strcmp(argv[1], "parked") != 0)) {
        fprintf(stderr, "usage: %s spawn|yield|parked N\n", argv[0]);
        return 2;
    }
    struct args a = { argv[1], atol(argv[2]) };
    if (a.n < 1) {
        fprintf(stderr, "sbench: N must be positive\n");
        return 2;
    }
    return gort_main(main_goroutine, &a);
}
