/* test_sched_fatal.c - the scheduler's fatal errors.
 *
 * gort.h: fatal errors print "fatal error: ..." on stderr and exit with
 * status 2; a goroutine that overflows its stack prints "goroutine N stack
 * overflow" and exits 2; calling gort_main a second time is a fatal error;
 * functions that need a goroutine, called outside one, are a fatal error
 * with a clear message, never a hang; more threads than gort_set_max_threads
 * allows is "fatal error: thread exhaustion".
 *
 * Run with no arguments, the program re-executes itself once per mode (the
 * mode is argv[1]) with stdout and stderr captured, and checks the exit
 * status and the message. A child that runs on past the bad call exits
 * with a status of its own (never 2), so a missing fatal error shows.
 *
 * Deadlock: "all goroutines are asleep - deadlock!" needs something a
 * goroutine can block on forever (a channel, a mutex), which the API does not
 * have yet. The one deadlock reachable today is Go's special case: the main
 * goroutine calls gort_goexit, the others run on, and once they are gone the
 * program dies ("fatal error: no goroutines (main called ...) - deadlock!").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* ---- child modes -------------------------------------------------------- */

static void nothing_fn(void *arg)
{
    (void)arg;
}

static volatile int stop_recursion; /* never set: keeps the compiler from
                                       calling the recursion infinite */

static long __attribute__((noinline)) overflow(long n)
{
    volatile char buf[512];
    if (stop_recursion)
        return n;
    buf[0] = (char)n;
    buf[511] = (char)n;
    return overflow(n + 1) + buf[0] + buf[511];
}

static void overflow_fn(void *arg)
{
    (void)arg;
    printf("goid=%" PRId64 "\n", gort_goid());
    fflush(stdout);
    overflow(0);
}

static void overflow_main(void *arg)
{
    int in_main = *(int *)arg;
    if (in_main) {
        overflow_fn(NULL);
        return;
    }
    gort_go(overflow_fn, NULL);
    for (;;)
        gort_sleep(10 * MS);
}

static void nested_main(void *arg)
{
    (void)arg;
    gort_main(nothing_fn, NULL);
}

static void go_null_main(void *arg)
{
    (void)arg;
    gort_go(NULL, NULL);
    gort_sleep(100 * MS);
}

static void *pthread_yield_fn(void *arg)
{
    (void)arg;
    gort_yield();
    return NULL;
}

static void pthread_main(void *arg)
{
    (void)arg;
    pthread_t t;
    if (pthread_create(&t, NULL, pthread_yield_fn, NULL) != 0)
        exit(5);
    /* Sleep, not join: the runtime must be free to act meanwhile. */
    for (int i = 0; i < 500; i++)
        gort_sleep(10 * MS);
}

static void after_main_exit_fn(void *arg)
{
    (void)arg;
    gort_sleep(50 * MS);
    printf("other goroutine ran on\n");
    fflush(stdout);
}

static void goexit_main(void *arg)
{
    (void)arg;
    gort_go(after_main_exit_fn, NULL);
    gort_goexit();
}

static atomic_long sys_done;

static void blocking_fn(void *arg)
{
    (void)arg;
    gort_entersyscall();
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    gort_exitsyscall();
    atomic_fetch_add(&sys_done, 1);
}

static void threads_main(void *arg)
{
    (void)arg;
    gort_set_max_threads(5);
    for (int i = 0; i < 20; i++)
        gort_go(blocking_fn, NULL);
    /* 20 threads are needed to block 20 system calls at once: past 5 the
     * runtime must die. Give it 10 s. */
    for (int i = 0; i < 1000 && atomic_load(&sys_done) < 20; i++)
        gort_sleep(10 * MS);
    gort_sleep(SEC);
}

static atomic_long ok_done;

static void yielder_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        if (i % 100 == 0)
            gort_sleep(MS / 10);
        else
            gort_yield();
    }
    atomic_fetch_add(&ok_done, 1);
}

static int threads_ok_rc;

static void threads_ok_main(void *arg)
{
    (void)arg;
    gort_gomaxprocs(2);
    int prev = gort_set_max_threads(5);
    if (prev < 5)
        threads_ok_rc = 6;
    if (gort_set_max_threads(5) != 5)
        threads_ok_rc = 7;
    for (int i = 0; i < 20; i++)
        gort_go(yielder_fn, NULL);
    while (atomic_load(&ok_done) < 20)
        gort_sleep(MS);
}

/* Runs in the child. A mode that should have died returns 42. */
static int run_mode(const char *mode)
{
    alarm(30); /* a hang must not hang the test */

    if (strcmp(mode, "ok") == 0)
        return gort_main(nothing_fn, NULL);
    if (strcmp(mode, "overflow") == 0 || strcmp(mode, "overflow_main") == 0) {
        static int in_main;
        in_main = strcmp(mode, "overflow_main") == 0;
        gort_main(overflow_main, &in_main);
    } else if (strcmp(mode, "main_twice") == 0) {
        if (gort_main(nothing_fn, NULL) != 0)
            return 3;
        fprintf(stderr, "first gort_main returned\n");
        gort_main(nothing_fn, NULL);
    } else if (strcmp(mode, "main_nested") == 0) {
        gort_main(nested_main, NULL);
    } else if (strcmp(mode, "yield_outside") == 0) {
        gort_yield();
    } else if (strcmp(mode, "sleep_outside") == 0) {
        gort_sleep(MS);
    } else if (strcmp(mode, "goexit_outside") == 0) {
        gort_goexit();
    } else if (strcmp(mode, "yield_after") == 0) {
        if (gort_main(nothing_fn, NULL) != 0)
            return 3;
        fprintf(stderr, "gort_main returned\n");
        gort_yield();
    } else if (strcmp(mode, "sleep_after") == 0) {
        if (gort_main(nothing_fn, NULL) != 0)
            return 3;
        fprintf(stderr, "gort_main returned\n");
        gort_sleep(MS);
    } else if (strcmp(mode, "yield_pthread") == 0) {
        gort_main(pthread_main, NULL);
    } else if (strcmp(mode, "go_null") == 0) {
        gort_main(go_null_main, NULL);
    } else if (strcmp(mode, "main_goexit") == 0) {
        gort_main(goexit_main, NULL);
        fprintf(stderr, "gort_main returned\n");
    } else if (strcmp(mode, "threads") == 0) {
        gort_main(threads_main, NULL);
    } else if (strcmp(mode, "threads_ok") == 0) {
        int rc = gort_main(threads_ok_main, NULL);
        return rc ? rc : threads_ok_rc;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 4;
    }
    fprintf(stderr, "mode %s: still alive\n", mode);
    return 42;
}

/* ---- parent ----------------------------------------------------------------- */

static char *slurp(FILE *f)
{
    static char buf[3][65536];
    static int next;
    char *b = buf[next++ % 3];
    size_t n;
    rewind(f);
    n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = 0;
    return b;
}

static const char *self;

/* Runs the child in one mode; returns its stderr (and stdout in *out). */
static char *run_child(const char *mode, int *status, char **out)
{
    FILE *o = tmpfile(), *e = tmpfile();
    REQUIRE(o && e);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fileno(o), 1);
        dup2(fileno(e), 2);
        execl(self, self, mode, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *status = st;
    *out = slurp(o);
    char *err = slurp(e);
    fclose(o);
    fclose(e);
    return err;
}

static void describe(char *buf, size_t n, int st)
{
    if (WIFEXITED(st))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, n, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, n, "status %#x", st);
}

static void expect_ok(const char *mode)
{
    int st;
    char *out, *err = run_child(mode, &st, &out);
    char how[64];
    describe(how, sizeof how, st);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mode %s: %s, want 0; stderr:\n%s", mode,
              how, err);
    CHECK_MSG(strstr(err, "fatal error") == NULL, "mode %s: unexpected fatal error:\n%s", mode,
              err);
}

/* want: text that must appear on stderr; NULL: "fatal error: " followed by
 * some message. */
static void expect_fatal(const char *mode, const char *want)
{
    int st;
    char *out, *err = run_child(mode, &st, &out);
    char how[64];
    describe(how, sizeof how, st);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 2, "mode %s: %s, want exit status 2; "
              "stderr:\n%s", mode, how, err);
    if (want) {
        CHECK_MSG(strstr(err, want) != NULL, "mode %s: no \"%s\" on stderr; stderr was:\n%s",
                  mode, want, err);
    } else {
        const char *m = strstr(err, "fatal error: ");
        CHECK_MSG(m != NULL, "mode %s: no \"fatal error: \" on stderr; stderr was:\n%s", mode,
                  err);
        if (m) {
            m += strlen("fatal error: ");
            CHECK_MSG(*m && *m != '\n', "mode %s: \"fatal error: \" with no message", mode);
            printf("%s: %.*s\n", mode, (int)strcspn(m, "\n"), m);
        }
    }
}

static void expect_main_goexit(void)
{
    const char *mode = "main_goexit";
    int st;
    char *out, *err = run_child(mode, &st, &out);
    char how[64];
    describe(how, sizeof how, st);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 2, "mode %s: %s, want exit status 2; "
              "stderr:\n%s", mode, how, err);
    CHECK_MSG(strstr(out, "other goroutine ran on") != NULL,
              "mode %s: after main's gort_goexit the other goroutine did not run on", mode);
    const char *m = strstr(err, "fatal error: ");
    CHECK_MSG(m && strstr(m, "deadlock"), "mode %s: no \"fatal error: ... deadlock\" on "
              "stderr; stderr was:\n%s", mode, err);
}

static void expect_overflow(const char *mode)
{
    int st;
    char *out, *err = run_child(mode, &st, &out);
    char how[64];
    describe(how, sizeof how, st);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 2, "mode %s: %s, want exit status 2; "
              "stderr:\n%s", mode, how, err);
    const char *g = strstr(out, "goid=");
    CHECK_MSG(g != NULL, "mode %s: the goroutine printed no goid; stdout:\n%s", mode, out);
    if (!g)
        return;
    char want[64];
    snprintf(want, sizeof want, "goroutine %lld stack overflow", atoll(g + 5));
    CHECK_MSG(strstr(err, want) != NULL, "mode %s: no \"%s\" on stderr; stderr was:\n%s", mode,
              want, err);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return run_mode(argv[1]);

    static char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    REQUIRE(n > 0);
    buf[n] = 0;
    self = buf;

    expect_ok("ok");
    expect_ok("threads_ok");
    expect_overflow("overflow");
    expect_overflow("overflow_main");
    expect_fatal("main_twice", NULL);
    expect_fatal("main_nested", NULL);
    expect_fatal("yield_outside", NULL);
    expect_fatal("sleep_outside", NULL);
    expect_fatal("goexit_outside", NULL);
    expect_fatal("yield_after", NULL);
    expect_fatal("sleep_after", NULL);
    expect_fatal("yield_pthread", NULL);
    expect_fatal("go_null", NULL);
    expect_fatal("threads", "fatal error: thread exhaustion");
    expect_main_goexit();
    return test_done();
}
