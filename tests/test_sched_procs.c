/* test_sched_procs.c - GOMAXPROCS: the environment, queries, and changes
 * while goroutines run.
 *
 * gort.h: gort_gomaxprocs(n) returns the previous value; n < 1 only queries;
 * changing it at run time redistributes the run queues.
 *
 * - The environment: the program re-executes itself with GOMAXPROCS=1 and
 *   GOMAXPROCS=3 and the child reports gort_gomaxprocs(0); without the
 *   variable it is the number of CPUs the process may run on (Go's rule);
 *   a value that is not a positive number is ignored (also Go's rule).
 * - Changes while running: goroutines count and yield in loops while the
 *   main goroutine switches between 1 and 2 (and 3) again and again; every
 *   call returns the value before it, and all the work gets done. Right
 *   after a switch to 1 the main goroutine holds the only P, so while it
 *   spins without calling the runtime no other goroutine may count.
 *
 * GORT_TEST_SCALE (a positive number, default 1) scales the loop counts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* ---- child: report GOMAXPROCS --------------------------------------------- */

static void report_fn(void *arg)
{
    (void)arg;
    printf("gomaxprocs=%d\n", gort_gomaxprocs(0));
    fflush(stdout);
}

/* Runs the program with GOMAXPROCS set to env (NULL: unset) and returns what
 * the child reported, or -1. Called before gort_main, while the process has
 * one thread, so the environment is changed here and put back after. */
static int child_gomaxprocs(const char *self, const char *env)
{
    const char *old = getenv("GOMAXPROCS");
    char *saved = old ? strdup(old) : NULL;
    if (env)
        setenv("GOMAXPROCS", env, 1);
    else
        unsetenv("GOMAXPROCS");
    int fd[2];
    REQUIRE(pipe(fd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 1);
        execl(self, self, "report", (char *)NULL);
        _exit(127);
    }
    if (saved)
        setenv("GOMAXPROCS", saved, 1);
    else
        unsetenv("GOMAXPROCS");
    free(saved);
    close(fd[1]);
    char buf[256];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && ((r = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0 ||
                                  (r < 0 && errno == EINTR)))
        if (r > 0)
            n += (size_t)r;
    buf[n] = 0;
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "GOMAXPROCS=%s: child status %#x",
              env ? env : "(unset)", st);
    const char *p = strstr(buf, "gomaxprocs=");
    CHECK_MSG(p != NULL, "GOMAXPROCS=%s: child printed %s", env ? env : "(unset)", buf);
    return p ? atoi(p + 11) : -1;
}

static void test_env(void)
{
    static char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0);
    self[n] = 0;

    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
    int ncpu = CPU_COUNT(&set);

    int v;
    CHECK_MSG((v = child_gomaxprocs(self, "1")) == 1, "GOMAXPROCS=1 gave %d", v);
    CHECK_MSG((v = child_gomaxprocs(self, "3")) == 3, "GOMAXPROCS=3 gave %d", v);
    CHECK_MSG((v = child_gomaxprocs(self, NULL)) == ncpu,
              "GOMAXPROCS unset gave %d, want the %d CPUs of the affinity mask", v, ncpu);
    CHECK_MSG((v = child_gomaxprocs(self, "0")) == ncpu, "GOMAXPROCS=0 gave %d, want %d", v,
              ncpu);
    CHECK_MSG((v = child_gomaxprocs(self, "junk")) == ncpu, "GOMAXPROCS=junk gave %d, want %d",
              v, ncpu);
}

/* ---- changes while running -------------------------------------------------- */

#define NW 16
static atomic_long counter, wdone;

static void worker(void *arg)
{
    long iters = (long)(intptr_t)arg;
    for (long i = 0; i < iters; i++) {
        atomic_fetch_add(&counter, 1);
        if (i % 500 == 499)
            gort_sleep(MS / 10);
        else
            gort_yield();
    }
    atomic_fetch_add(&wdone, 1);
}

static void real_main(void *arg)
{
    (void)arg;
    int start = gort_gomaxprocs(0);
    CHECK(start >= 1);
    CHECK(gort_gomaxprocs(-1) == start);
    CHECK(gort_gomaxprocs(0) == start);

    long iters = (long)(20000 * test_scale());
    if (iters < 1000)
        iters = 1000;
    CHECK(gort_gomaxprocs(2) == start);
    for (int i = 0; i < NW; i++)
        gort_go(worker, (void *)(intptr_t)iters);

    static const int seq[] = {1, 2, 1, 2, 3, 1, 2};
    int cur = 2, switches = 0, wrong_prev = 0, leaks = 0;
    int64_t limit = gort_nanotime() + 50 * SEC;
    while ((atomic_load(&wdone) < NW || switches < 20) && gort_nanotime() < limit) {
        int next = seq[switches % (int)(sizeof seq / sizeof seq[0])];
        int prev = gort_gomaxprocs(next);
        if (prev != cur) {
            if (!wrong_prev)
                fprintf(stderr, "gort_gomaxprocs(%d) returned %d, want %d\n", next, prev, cur);
            wrong_prev++;
        }
        cur = next;
        switches++;
        if (cur == 1) {
            /* We hold the only P: nobody else runs user code. */
            long c0 = atomic_load(&counter);
            for (volatile int k = 0; k < 200000; k++)
                ;
            long c1 = atomic_load(&counter);
            if (c1 != c0) {
                if (!leaks)
                    fprintf(stderr, "at GOMAXPROCS=1 the counter moved %ld -> %ld while main "
                                    "held the P\n", c0, c1);
                leaks++;
            }
        }
        CHECK(gort_gomaxprocs(0) == cur);
        for (int k = 0; k < 20; k++)
            gort_yield();
        gort_sleep(MS / 2);
    }
    CHECK_MSG(atomic_load(&wdone) == NW, "only %ld of %d workers finished (50 s)",
              atomic_load(&wdone), NW);
    CHECK_MSG(atomic_load(&counter) == NW * iters, "counter %ld, want %ld",
              atomic_load(&counter), NW * iters);
    CHECK_MSG(wrong_prev == 0, "%d of %d gort_gomaxprocs calls returned a wrong previous value",
              wrong_prev, switches);
    CHECK_MSG(leaks == 0, "%d times another goroutine ran while main held the only P", leaks);
    printf("%d GOMAXPROCS changes while %d goroutines ran %ld iterations each\n", switches, NW,
           iters);

    /* Many goroutines spread over 2 Ps, then everything squeezed into one:
     * the queued work of the removed P must not be lost. */
    atomic_store(&wdone, 0);
    atomic_store(&counter, 0);
    gort_gomaxprocs(2);
    for (int i = 0; i < 1000; i++)
        gort_go(worker, (void *)(intptr_t)20);
    gort_gomaxprocs(1);
    limit = gort_nanotime() + 30 * SEC;
    while (atomic_load(&wdone) < 1000 && gort_nanotime() < limit)
        gort_sleep(MS);
    CHECK_MSG(atomic_load(&wdone) == 1000, "after shrinking to 1 P only %ld of 1000 finished",
              atomic_load(&wdone));
    CHECK(atomic_load(&counter) == 1000 * 20);

    CHECK(gort_gomaxprocs(start) == 1);
    CHECK(gort_gomaxprocs(0) == start);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "report") == 0)
        return gort_main(report_fn, NULL);
    test_env();
    CHECK(gort_main(real_main, NULL) == 0);
    return test_done();
}
