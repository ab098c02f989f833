/* test_panic_fatal.c - the ways a program dies: unrecovered panics, the
 * sync fatal errors, deadlock.
 *
 * gort.h: an unrecovered panic prints "panic: <msg>" and "goroutine N
 * [running]:" on stderr and exits with status 2, after the deferred calls
 * of the panicking goroutine ran (innermost frame first); the runtime's
 * panics ("send on closed channel", "close of closed channel", "close of
 * nil channel", "sync: negative WaitGroup counter") are no different.
 * "sync: unlock of unlocked mutex", "sync: RUnlock of unlocked RWMutex" and
 * "sync: Unlock of unlocked RWMutex" are fatal errors: "fatal error: ..."
 * and exit status 2, not recoverable (a deferred recover never sees them).
 * When every goroutine is blocked (channels, NULL channels, select with no
 * cases, mutex, rwmutex, waitgroup, cond), "fatal error: all goroutines are
 * asleep - deadlock!" and exit status 2, also with several goroutines
 * blocked besides main. Not a deadlock: main waiting for a timer, for a
 * sleeping goroutine or for one in a system call; main returning while
 * others are blocked forever. And one that needs a process of its own, as
 * getting it wrong kills it: a panic raised and recovered inside a deferred
 * call run by an earlier panic leaves the earlier panic recoverable by a
 * later deferred call (Go semantics).
 *
 * Run with no arguments, the program re-executes itself once per mode (the
 * mode is argv[1], up to 4 children at a time) with stdout and stderr
 * captured, then checks each. A child that runs on past the point where it
 * should have died exits with status 42; one that hangs dies of SIGALRM
 * after 20 s.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
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

/* ---- child helpers ---------------------------------------------------------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void say_fn(void *arg)
{
    say("%s\n", (const char *)arg);
}

static void recover_and_say(void *arg)
{
    (void)arg;
    const char *m = gort_recover();
    if (m)
        say("recovered: %s\n", m);
}

/* ---- unrecovered panics ---------------------------------------------------------- */

static void panic_main(void *arg)
{
    (void)arg;
    say("goid=%" PRId64 "\n", gort_goid());
    gort_defer(say_fn, "deferred ran");
    gort_panic("boom %d", 42);
}

static void pg_fn(void *arg)
{
    (void)arg;
    say("goid=%" PRId64 "\n", gort_goid());
    gort_defer(say_fn, "deferred ran");
    gort_panic("boom %d", 42);
}

static void panic_goroutine(void *arg)
{
    (void)arg;
    gort_go(pg_fn, NULL);
    for (int i = 0; i < 1000; i++)
        gort_sleep(10 * MS);
}

static void pn_inner(void *arg)
{
    (void)arg;
    gort_defer(say_fn, "d-inner");
    gort_panic("nested boom");
}

static void pn_middle(void *arg)
{
    (void)arg;
    gort_defer(say_fn, "d-middle");
    gort_call(pn_inner, NULL);
    say("middle went on\n");
}

static void panic_nested(void *arg)
{
    (void)arg;
    say("goid=%" PRId64 "\n", gort_goid());
    gort_defer(say_fn, "d-outer");
    gort_call(pn_middle, NULL);
    say("outer went on\n");
}

static void pdd_second(void *arg)
{
    (void)arg;
    gort_panic("second");
}

static void panic_in_defer(void *arg)
{
    (void)arg;
    say("goid=%" PRId64 "\n", gort_goid());
    gort_defer(pdd_second, NULL);
    gort_panic("first");
}

static void repanic_fn(void *arg)
{
    (void)arg;
    const char *m = gort_recover();
    say("recovered: %s\n", m ? m : "(null)");
    gort_panic("again after %s", m ? m : "(null)");
}

static void panic_repanic(void *arg)
{
    (void)arg;
    say("goid=%" PRId64 "\n", gort_goid());
    gort_defer(repanic_fn, NULL);
    gort_panic("first");
}

static void panic_send_closed(void *arg)
{
    (void)arg;
    say("goid=%" PRId64 "\n", gort_goid());
    gort_chan *c = gort_chan_make(sizeof(int), 1);
    gort_chan_close(c);
    int v = 1;
    gort_chan_send(c, &v);
}

static void panic_close_closed(void *arg)
{
    (void)arg;
    say("goid=%" PRId64 "\n", gort_goid());
    gort_chan *c = gort_chan_make(sizeof(int), 0);
    gort_chan_close(c);
    gort_chan_close(c);
}

static void panic_close_nil(void *arg)
{
    (void)arg;
    say("goid=%" PRId64 "\n", gort_goid());
    gort_chan_close(NULL);
}

static void panic_wg_negative(void *arg)
{
    (void)arg;
    say("goid=%" PRId64 "\n", gort_goid());
    gort_waitgroup wg = {0};
    gort_waitgroup_done(&wg);
}

/* ---- fatal errors: not recoverable ---------------------------------------------------- */

static void unlock_body(void *arg)
{
    int which = (int)(intptr_t)arg;
    static gort_mutex m;
    static gort_rwmutex rw;
    gort_defer(recover_and_say, NULL);
    switch (which) {
    case 0:
        gort_mutex_unlock(&m);
        break;
    case 1:
        gort_mutex_lock(&m);
        gort_mutex_unlock(&m);
        gort_mutex_unlock(&m);
        break;
    case 2:
        gort_rwmutex_runlock(&rw);
        break;
    case 3:
        gort_rwmutex_unlock(&rw);
        break;
    }
}

static void fatal_unlock(void *arg)
{
    gort_call(unlock_body, arg);
    say("still alive\n");
}

/* ---- deadlocks ------------------------------------------------------------------------- */

static void dl_recv(void *arg)
{
    (void)arg;
    gort_chan *c = gort_chan_make(sizeof(int), 0);
    int v;
    gort_chan_recv(c, &v);
}

static void dl_recv_buffered(void *arg)
{
    (void)arg;
    gort_chan *c = gort_chan_make(sizeof(int), 4);
    int v;
    gort_chan_recv(c, &v);
}

static void dl_send(void *arg)
{
    (void)arg;
    gort_chan *c = gort_chan_make(sizeof(int), 1);
    int v = 1;
    gort_chan_send(c, &v);
    gort_chan_send(c, &v); /* full */
}

static void dl_nil(void *arg)
{
    (void)arg;
    int v;
    gort_chan_recv(NULL, &v);
}

static void dl_select_empty(void *arg)
{
    (void)arg;
    gort_select(NULL, 0, true);
}

static void dl_select(void *arg)
{
    (void)arg;
    gort_chan *a = gort_chan_make(sizeof(int), 0);
    gort_chan *b = gort_chan_make(sizeof(int), 0);
    int x = 1, y;
    gort_case cs[3] = {{a, GORT_SEND, &x, false}, {b, GORT_RECV, &y, false},
                       {NULL, GORT_RECV, &y, false}};
    gort_select(cs, 3, true);
}

static void dl_mutex(void *arg)
{
    (void)arg;
    static gort_mutex m;
    gort_mutex_lock(&m);
    gort_mutex_lock(&m);
}

static void dl_wg(void *arg)
{
    (void)arg;
    static gort_waitgroup wg;
    gort_waitgroup_add(&wg, 1);
    gort_waitgroup_wait(&wg);
}

static void dl_cond(void *arg)
{
    (void)arg;
    static gort_mutex m;
    static gort_cond c;
    gort_mutex_lock(&m);
    gort_cond_wait(&c, &m);
}

/* many goroutines blocked on everything, main last */

static gort_chan *dm_unbuf, *dm_full;
static gort_mutex dm_m, dm_cm;
static gort_rwmutex dm_rw;
static gort_waitgroup dm_wg;
static gort_cond dm_c;
static atomic_int dm_started;

static void dm_chan_recv(void *arg)
{
    (void)arg;
    atomic_fetch_add(&dm_started, 1);
    gort_chan_recv(dm_unbuf, NULL);
}

static void dm_chan_send(void *arg)
{
    (void)arg;
    atomic_fetch_add(&dm_started, 1);
    int v = 3;
    gort_chan_send(dm_full, &v);
}

static void dm_mutex(void *arg)
{
    (void)arg;
    atomic_fetch_add(&dm_started, 1);
    gort_mutex_lock(&dm_m); /* main holds it */
}

static void dm_rlock(void *arg)
{
    (void)arg;
    atomic_fetch_add(&dm_started, 1);
    gort_rwmutex_rlock(&dm_rw); /* main holds it for writing */
}

static void dm_wg_wait(void *arg)
{
    (void)arg;
    atomic_fetch_add(&dm_started, 1);
    gort_waitgroup_wait(&dm_wg);
}

static void dm_cond(void *arg)
{
    (void)arg;
    gort_mutex_lock(&dm_cm);
    atomic_fetch_add(&dm_started, 1);
    gort_cond_wait(&dm_c, &dm_cm);
}

static void dm_select(void *arg)
{
    (void)arg;
    int v = 0;
    gort_case cs[2] = {{dm_unbuf, GORT_SEND, &v, false}, {dm_full, GORT_SEND, &v, false}};
    atomic_fetch_add(&dm_started, 1);
    gort_select(cs, 2, true);
}

static void dm_nil(void *arg)
{
    (void)arg;
    atomic_fetch_add(&dm_started, 1);
    gort_chan_send(NULL, &(int){1});
}

static void dm_worker(void *arg)
{
    (void)arg;
    /* does some real work with the others first, then blocks */
    gort_chan *c = gort_chan_make(sizeof(int), 2);
    for (int i = 0; i < 100; i++) {
        gort_chan_send(c, &i);
        gort_chan_recv(c, NULL);
    }
    atomic_fetch_add(&dm_started, 1);
    gort_chan_recv(c, NULL);
}

static void dl_many(void *arg)
{
    gort_gomaxprocs((int)(intptr_t)arg);
    dm_unbuf = gort_chan_make(sizeof(int), 0);
    dm_full = gort_chan_make(sizeof(int), 1);
    gort_chan_send(dm_full, &(int){1});
    gort_mutex_lock(&dm_m);
    gort_rwmutex_lock(&dm_rw);
    gort_waitgroup_add(&dm_wg, 1);
    static const gort_fn fns[] = {dm_chan_recv, dm_chan_send, dm_mutex, dm_rlock,
                                  dm_wg_wait,   dm_cond,      dm_select, dm_nil, dm_worker};
    int n = (int)(sizeof fns / sizeof fns[0]);
    for (int rep = 0; rep < 2; rep++)
        for (int i = 0; i < n; i++)
            gort_go(fns[i], NULL);
    while (atomic_load(&dm_started) < 2 * n)
        gort_sleep(MS);
    gort_sleep(20 * MS);
    say("main blocks\n");
    gort_chan *never = gort_chan_make(sizeof(int), 0);
    gort_chan_recv(never, NULL);
}

/* ---- not deadlocks ---------------------------------------------------------------------- */

static void ok_timer(void *arg)
{
    (void)arg;
    int64_t v;
    gort_chan_recv(gort_after(50 * MS), &v);
    gort_chan *never = gort_chan_make(sizeof(int), 0);
    gort_case cs[2] = {{never, GORT_RECV, NULL, false}, {gort_after(30 * MS), GORT_RECV, &v, false}};
    if (gort_select(cs, 2, true) != 1)
        exit(3);
    gort_timer *t = gort_timer_new(20 * MS);
    gort_chan_recv(gort_timer_chan(t), &v);
    gort_timer *tk = gort_ticker_new(10 * MS);
    gort_chan_recv(gort_timer_chan(tk), &v);
    gort_chan_recv(gort_timer_chan(tk), &v);
    gort_ticker_stop(tk);
}

static gort_chan *ok_c;

static void ok_sleeper_fn(void *arg)
{
    (void)arg;
    gort_sleep(50 * MS);
    gort_chan_send(ok_c, &(int){5});
}

static void ok_sleeper(void *arg)
{
    (void)arg;
    ok_c = gort_chan_make(sizeof(int), 0);
    gort_go(ok_sleeper_fn, NULL);
    int v = 0;
    gort_chan_recv(ok_c, &v);
    if (v != 5)
        exit(3);
}

static void ok_syscall_fn(void *arg)
{
    (void)arg;
    gort_entersyscall();
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    gort_exitsyscall();
    gort_chan_send(ok_c, &(int){6});
}

static void ok_syscall(void *arg)
{
    (void)arg;
    ok_c = gort_chan_make(sizeof(int), 0);
    gort_go(ok_syscall_fn, NULL);
    int v = 0;
    gort_chan_recv(ok_c, &v);
    if (v != 6)
        exit(3);
}

static void ok_blocked_fn(void *arg)
{
    (void)arg;
    gort_chan_recv(ok_c, NULL);
}

static void ok_blocked_others(void *arg)
{
    (void)arg;
    ok_c = gort_chan_make(sizeof(int), 0);
    for (int i = 0; i < 4; i++)
        gort_go(ok_blocked_fn, NULL);
    gort_sleep(20 * MS);
}

static void ok_recovered_fn(void *arg)
{
    (void)arg;
    gort_defer(recover_and_say, NULL);
    gort_panic("caught");
}

static void ok_recovered_g(void *arg)
{
    (void)arg;
    gort_call(ok_recovered_fn, NULL);
    gort_chan_send(ok_c, &(int){7});
}

static void ok_recovered(void *arg)
{
    (void)arg;
    ok_c = gort_chan_make(sizeof(int), 0);
    gort_go(ok_recovered_g, NULL);
    int v = 0;
    gort_chan_recv(ok_c, &v);
    if (v != 7)
        exit(3);
}

/* A panic raised and recovered inside a deferred call that an earlier
 * panic is running leaves the earlier panic going: a later deferred call
 * recovers it (Go: "inner: second", then "outer: first"). */
static void nr_say_recover(void *arg)
{
    const char *m = gort_recover();
    say("%s: %s\n", (const char *)arg, m ? m : "(null)");
}

static void nr_nested(void *arg)
{
    (void)arg;
    gort_defer(nr_say_recover, "inner");
    gort_panic("second");
}

static void nr_handler(void *arg)
{
    (void)arg;
    gort_call(nr_nested, NULL);
    say("handler went on\n");
}

static void nr_frame(void *arg)
{
    (void)arg;
    gort_defer(nr_say_recover, "outer");
    gort_defer(nr_handler, NULL);
    gort_panic("first");
}

static void ok_nested_recover(void *arg)
{
    (void)arg;
    gort_call(nr_frame, NULL);
    say("returned\n");
}

static const struct {
    const char *name;
    gort_fn fn;
    void *arg;
} modes[] = {
    {"panic_main", panic_main, NULL},
    {"panic_goroutine", panic_goroutine, NULL},
    {"panic_nested", panic_nested, NULL},
    {"panic_in_defer", panic_in_defer, NULL},
    {"panic_repanic", panic_repanic, NULL},
    {"panic_send_closed", panic_send_closed, NULL},
    {"panic_close_closed", panic_close_closed, NULL},
    {"panic_close_nil", panic_close_nil, NULL},
    {"panic_wg_negative", panic_wg_negative, NULL},
    {"unlock_unlocked", fatal_unlock, (void *)0},
    {"unlock_twice", fatal_unlock, (void *)1},
    {"runlock_unlocked", fatal_unlock, (void *)2},
    {"rwunlock_unlocked", fatal_unlock, (void *)3},
    {"deadlock_recv", dl_recv, NULL},
    {"deadlock_recv_buffered", dl_recv_buffered, NULL},
    {"deadlock_send", dl_send, NULL},
    {"deadlock_nil", dl_nil, NULL},
    {"deadlock_select_empty", dl_select_empty, NULL},
    {"deadlock_select", dl_select, NULL},
    {"deadlock_mutex", dl_mutex, NULL},
    {"deadlock_wg", dl_wg, NULL},
    {"deadlock_cond", dl_cond, NULL},
    {"deadlock_many1", dl_many, (void *)1},
    {"deadlock_many2", dl_many, (void *)2},
    {"ok_timer", ok_timer, NULL},
    {"ok_sleeper", ok_sleeper, NULL},
    {"ok_syscall", ok_syscall, NULL},
    {"ok_blocked_others", ok_blocked_others, NULL},
    {"ok_recovered", ok_recovered, NULL},
    {"ok_nested_recover", ok_nested_recover, NULL},
};

static int run_mode(const char *mode)
{
    alarm(20); /* a missed deadlock must not hang the test */
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (strcmp(mode, modes[i].name) == 0) {
            int rc = gort_main(modes[i].fn, modes[i].arg);
            fflush(stdout);
            if (strncmp(mode, "ok_", 3) == 0)
                return rc;
            fprintf(stderr, "mode %s: still alive (gort_main returned %d)\n", mode, rc);
            return 42;
        }
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 4;
}

/* ---- parent ------------------------------------------------------------------------------ */

static char *slurp(FILE *f)
{
    size_t cap = 65536, n;
    char *b = malloc(cap);
    REQUIRE(b);
    rewind(f);
    n = fread(b, 1, cap - 1, f);
    b[n] = 0;
    return b;
}

static const char *self;

/* Every mode's child runs up to PAR at a time (under TSan each takes about
 * a second just to start); the checks then read the results. */
enum { NMODES = sizeof modes / sizeof modes[0], PAR = 4 };

static struct {
    pid_t pid;
    FILE *o, *e;
    int status;
    char *out, *err;
} res[NMODES];

static void start_child(size_t i)
{
    res[i].o = tmpfile();
    res[i].e = tmpfile();
    REQUIRE(res[i].o && res[i].e);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fileno(res[i].o), 1);
        dup2(fileno(res[i].e), 2);
        execl(self, self, modes[i].name, (char *)NULL);
        _exit(127);
    }
    res[i].pid = pid;
}

static void run_all(void)
{
    size_t next = 0, done = 0;
    int running = 0;
    while (done < NMODES) {
        while (running < PAR && next < NMODES) {
            start_child(next++);
            running++;
        }
        int st = 0;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            REQUIRE(errno == EINTR);
            continue;
        }
        for (size_t i = 0; i < NMODES; i++) {
            if (res[i].pid == pid) {
                res[i].status = st;
                res[i].out = slurp(res[i].o);
                res[i].err = slurp(res[i].e);
                fclose(res[i].o);
                fclose(res[i].e);
                res[i].pid = 0;
                running--;
                done++;
                break;
            }
        }
    }
}

/* The child's stderr (and stdout in *out) for a mode. */
static char *run_child(const char *mode, int *status, char **out)
{
    for (size_t i = 0; i < NMODES; i++) {
        if (strcmp(modes[i].name, mode) == 0) {
            *status = res[i].status;
            *out = res[i].out;
            return res[i].err;
        }
    }
    fprintf(stderr, "no mode %s\n", mode);
    exit(1);
}

static void describe(char *buf, size_t n, int st)
{
    if (WIFEXITED(st))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, n, "killed by signal %d%s", WTERMSIG(st),
                 WTERMSIG(st) == 14 ? " (alarm: hung)" : "");
    else
        snprintf(buf, n, "status %#x", st);
}

/* Runs the mode; checks exit status 2 and that `want` is on stderr. */
static char *expect_exit2(const char *mode, const char *want, char **out)
{
    int st;
    char *err = run_child(mode, &st, out);
    char how[64];
    describe(how, sizeof how, st);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 2, "mode %s: %s, want exit status 2; "
              "stdout:\n%s\nstderr:\n%s", mode, how, *out, err);
    CHECK_MSG(strstr(err, want) != NULL, "mode %s: no \"%s\" on stderr; stderr was:\n%s", mode,
              want, err);
    return err;
}

static long child_goid(const char *mode, const char *out)
{
    const char *g = strstr(out, "goid=");
    CHECK_MSG(g != NULL, "mode %s: the child printed no goid; stdout:\n%s", mode, out);
    return g ? atol(g + 5) : -1;
}

/* returns the child's stdout */
static char *expect_panic(const char *mode, const char *msg)
{
    char want[256], *out;
    snprintf(want, sizeof want, "panic: %s", msg);
    char *err = expect_exit2(mode, want, &out);
    long id = child_goid(mode, out);
    if (id > 0) {
        char g[64];
        snprintf(g, sizeof g, "goroutine %ld [running]:", id);
        CHECK_MSG(strstr(err, g) != NULL, "mode %s: no \"%s\" on stderr; stderr was:\n%s",
                  mode, g, err);
    }
    CHECK_MSG(strstr(err, "fatal error") == NULL, "mode %s: a panic reported as a fatal "
              "error:\n%s", mode, err);
    return out;
}

static void expect_fatal(const char *mode, const char *msg)
{
    char want[256], *out;
    snprintf(want, sizeof want, "fatal error: %s", msg);
    expect_exit2(mode, want, &out);
    CHECK_MSG(strstr(out, "recovered") == NULL, "mode %s: a fatal error was recovered:\n%s",
              mode, out);
    CHECK_MSG(strstr(out, "still alive") == NULL, "mode %s: the child went on", mode);
}

static void expect_ok(const char *mode)
{
    int st;
    char *out, *err = run_child(mode, &st, &out);
    char how[64];
    describe(how, sizeof how, st);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mode %s: %s, want 0; stderr:\n%s", mode,
              how, err);
    CHECK_MSG(strstr(err, "fatal error") == NULL && strstr(err, "panic") == NULL,
              "mode %s: unexpected on stderr:\n%s", mode, err);
}

static const char *DEADLOCK = "all goroutines are asleep - deadlock!";

int main(int argc, char **argv)
{
    if (argc > 1)
        return run_mode(argv[1]);

    static char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    REQUIRE(n > 0);
    buf[n] = 0;
    self = buf;
    char *out;
    run_all();

    /* unrecovered panics: the goroutine's deferred calls ran first */
    out = expect_panic("panic_main", "boom 42");
    CHECK_MSG(strstr(out, "deferred ran"), "panic_main: the deferred call did not run before "
              "the crash; stdout:\n%s", out);
    out = expect_panic("panic_goroutine", "boom 42");
    CHECK_MSG(strstr(out, "deferred ran"), "panic_goroutine: the deferred call did not run "
              "before the crash; stdout:\n%s", out);
    out = expect_panic("panic_nested", "nested boom");
    {
        const char *a = strstr(out, "d-inner"), *b = strstr(out, "d-middle"),
                   *c = strstr(out, "d-outer");
        CHECK_MSG(a && b && c && a < b && b < c, "panic_nested: deferred calls ran as:\n%s",
                  out);
        CHECK_MSG(!strstr(out, "went on"), "panic_nested: code after a panicking call ran");
    }
    expect_panic("panic_in_defer", "second");
    out = expect_panic("panic_repanic", "again after first");
    CHECK_MSG(strstr(out, "recovered: first"), "panic_repanic: stdout:\n%s", out);
    expect_panic("panic_send_closed", "send on closed channel");
    expect_panic("panic_close_closed", "close of closed channel");
    expect_panic("panic_close_nil", "close of nil channel");
    expect_panic("panic_wg_negative", "sync: negative WaitGroup counter");

    /* sync fatal errors */
    expect_fatal("unlock_unlocked", "sync: unlock of unlocked mutex");
    expect_fatal("unlock_twice", "sync: unlock of unlocked mutex");
    expect_fatal("runlock_unlocked", "sync: RUnlock of unlocked RWMutex");
    expect_fatal("rwunlock_unlocked", "sync: Unlock of unlocked RWMutex");

    /* deadlocks */
    expect_fatal("deadlock_recv", DEADLOCK);
    expect_fatal("deadlock_recv_buffered", DEADLOCK);
    expect_fatal("deadlock_send", DEADLOCK);
    expect_fatal("deadlock_nil", DEADLOCK);
    expect_fatal("deadlock_select_empty", DEADLOCK);
    expect_fatal("deadlock_select", DEADLOCK);
    expect_fatal("deadlock_mutex", DEADLOCK);
    expect_fatal("deadlock_wg", DEADLOCK);
    expect_fatal("deadlock_cond", DEADLOCK);
    expect_fatal("deadlock_many1", DEADLOCK);
    expect_fatal("deadlock_many2", DEADLOCK);

    /* not deadlocks */
    expect_ok("ok_timer");
    expect_ok("ok_sleeper");
    expect_ok("ok_syscall");
    expect_ok("ok_blocked_others");
    expect_ok("ok_recovered");
    {
        int st;
        char *err = run_child("ok_nested_recover", &st, &out);
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
                      strcmp(out, "inner: second\nhandler went on\nouter: first\nreturned\n") == 0,
                  "a panic recovered inside a deferred call run by an earlier panic: the "
                  "earlier one must stay recoverable; want stdout \"inner: second, handler "
                  "went on, outer: first, returned\", got (status %#x):\n%s\nstderr:\n%s",
                  st, out, err);
    }
    return test_done();
}
