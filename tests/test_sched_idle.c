/* test_sched_idle.c - an idle runtime blocks instead of spinning.
 *
 * The main goroutine sleeps 1 s with nothing else to do; the process's CPU
 * time (user + system, all threads, getrusage RUSAGE_SELF) over that second
 * must stay small. The bound, 100 ms (a tenth of one CPU), is far above what
 * blocked threads cost and far below what one spinning thread costs; under
 * valgrind or TSan, whose own machinery runs too, it is 250 ms.
 *
 * Three situations: right after start; after a burst of work on all Ps (idle
 * Ms and sysmon must go back to sleep); and with one goroutine blocked in a
 * bracketed read on a pipe for the whole second (its thread is blocked in the
 * kernel; sysmon must not poll it hot).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * SEC +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static int64_t bound_ns;

static void idle_second(const char *what)
{
    gort_sleep(50 * MS); /* let spinning threads give up first */
    int64_t c0 = cpu_ns(), t0 = gort_nanotime();
    gort_sleep(SEC);
    int64_t c1 = cpu_ns(), t1 = gort_nanotime();
    int64_t used = c1 - c0;
    printf("%s: %.1f ms CPU over %.0f ms asleep\n", what, (double)used / MS,
           (double)(t1 - t0) / MS);
    CHECK_MSG(used < bound_ns,
              "%s: the process used %.1f ms of CPU while the only goroutine slept %.0f ms "
              "(bound %.0f ms): some thread spins",
              what, (double)used / MS, (double)(t1 - t0) / MS, (double)bound_ns / MS);
}

static atomic_int burst_stop;
static atomic_long burst_done;

static void burst_fn(void *arg)
{
    (void)arg;
    long i = 0;
    while (!atomic_load(&burst_stop)) {
        if (++i % 100 == 0)
            gort_sleep(MS / 10);
        else
            gort_yield();
    }
    atomic_fetch_add(&burst_done, 1);
}

static int pipe_r;
static atomic_int reader_in, reader_out;

static void reader_fn(void *arg)
{
    (void)arg;
    char c;
    atomic_store(&reader_in, 1);
    gort_entersyscall();
    ssize_t r = read(pipe_r, &c, 1);
    gort_exitsyscall();
    CHECK(r == 1);
    atomic_store(&reader_out, 1);
}

static void real_main(void *arg)
{
    (void)arg;
    idle_second("idle after start");

    /* A burst of work on every P, then idle again. */
    int procs = gort_gomaxprocs(0);
    for (int i = 0; i < 4 * procs; i++)
        gort_go(burst_fn, NULL);
    gort_sleep(200 * MS);
    atomic_store(&burst_stop, 1);
    while (atomic_load(&burst_done) < 4 * procs)
        gort_sleep(MS);
    while (gort_num_goroutine() > 1)
        gort_sleep(MS);
    idle_second("idle after a burst of work");

    /* One goroutine blocked in a bracketed read the whole time. */
    int fd[2];
    REQUIRE(pipe(fd) == 0);
    pipe_r = fd[0];
    gort_go(reader_fn, NULL);
    while (!atomic_load(&reader_in))
        gort_sleep(MS);
    idle_second("idle with a goroutine blocked in a system call");
    CHECK(!atomic_load(&reader_out));
    REQUIRE(write(fd[1], "x", 1) == 1);
    while (!atomic_load(&reader_out))
        gort_sleep(MS);
    close(fd[0]);
    close(fd[1]);
}

int main(void)
{
    bound_ns = slow_tool() ? 250 * MS : 100 * MS;
    CHECK(gort_main(real_main, NULL) == 0);
    return test_done();
}
