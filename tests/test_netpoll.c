/* test_netpoll.c - the netpoller and the goroutine I/O calls (netpoll.c).
 *
 * gort.h: in a goroutine, gort_read and friends park the goroutine, not the
 * thread, until the fd is ready. Checked here, on GOMAXPROCS=2:
 *   - an echo server with a goroutine per connection serves 10,000
 *     concurrent loopback connections from one process: the server counts
 *     all 10,000 accepted and open at once before the first echo, and
 *     again after the last; every echo comes back byte for byte; a
 *     goroutine runs collections all along. The clients are a second
 *     process (both ends in one would take 20,000 fds), forked before the
 *     runtime starts: plain blocking sockets on one thread, no runtime;
 *     they reset their connections at the end (SO_LINGER 0), so no
 *     TIME_WAIT uses up the ephemeral ports of repeated runs. Fewer only
 *     if the hard RLIMIT_NOFILE is too low, under GCC 12's TSan (5000, see
 *     ECHO_TSAN_CONNS; both said on stderr), or under valgrind and qemu
 *     (the scaled count: 1000 and 2000 by tests/run.sh);
 *   - gort_close while another goroutine is blocked reading wakes it with
 *     EBADF (pipe and socket), never a hang; so are a second reader queued
 *     behind the first and a writer blocked on a full buffer;
 *   - a read deadline fails the blocked read with ETIMEDOUT, no earlier
 *     than the deadline (no upper bound beyond the test's own timeout),
 *     and every later read too until it is cleared; a deadline set in the
 *     past wakes a blocked reader; a write deadline stops a writer whose
 *     peer does not read;
 *   - EOF and half-close (shutdown(SHUT_WR)) over TCP;
 *   - an fd number reused after gort_close gets no stale wake-up: neither
 *     the old fd's pending readiness nor its deadline reaches a reader of
 *     the new fd;
 *   - a pipe carries 1 MiB between two goroutines that both park often;
 *   - readv/writev, recv/send (flags pass through), recvfrom parked until
 *     a sendto arrives; a peer's reset (SO_LINGER 0) reads as ECONNRESET;
 *   - signals without SA_RESTART arriving all the time: no EINTR returned;
 *   - two goroutines bounce a byte over a socket on one P, long enough for
 *     sysmon to poll in the middle: no goroutine is stranded;
 *   - closes racing with readers and writers on both ends of sockets, fd
 *     numbers reused every round: every call ends with data, EOF, EBADF,
 *     EPIPE (no SIGPIPE) or ECONNRESET, and nothing hangs (a close racing
 *     with the first operation on an fd, which arms it, once left that
 *     operation parked for good, or the next fd of that number blocking);
 *   - under a low RLIMIT_NOFILE, dial and accept get EMFILE back while an
 *     established connection keeps working, and both work again once fds
 *     are freed;
 *   - bad input: EBADF for -1 and for a closed fd, ECONNREFUSED for a port
 *     nobody listens on; outside a goroutine the calls block the thread
 *     like the libc ones;
 *   - the only goroutine blocked reading, no timer anywhere: no deadlock
 *     is reported, and the process sleeps in the poller (CPU time over
 *     300 ms below 100 ms; 250 under valgrind or TSan) until a plain
 *     thread writes;
 *   - both Ps kept busy by goroutines that only yield (so no M ever runs
 *     out of work and polls): sysmon's poll still wakes the reader.
 *
 * GORT_TEST_SCALE (a positive number, default 1) scales the counts; without
 * it, under valgrind and TSan they are a tenth. The echo test's 10,000
 * connections scale up, never down, but under valgrind and qemu.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* errno around calls that may park: the goroutine may have moved to
 * another thread, and the compiler may keep the old thread's errno
 * address; reach it through functions it cannot see into. */
static __attribute__((noinline)) int err_now(void)
{
    __asm__ __volatile__("" ::: "memory");
    return errno;
}
#define ERRNO err_now()

static __attribute__((noinline)) void clear_errno(void)
{
    __asm__ __volatile__("" ::: "memory");
    errno = 0;
}

static int listener_port(int lfd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    REQUIRE(getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0);
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Read exactly n bytes (false on EOF or error). */
static bool read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = gort_read(fd, (char *)buf + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* ---- echo: many concurrent connections --------------------------------------- */

static _Atomic int live_conns;   /* server connections not yet closed */

static void echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = gort_read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        if (gort_write(fd, buf, (size_t)n) != n)
            break;
    }
    gort_close(fd);
    atomic_fetch_sub(&live_conns, 1);
}

typedef struct server {
    int lfd;
    _Atomic int accepted;
    _Atomic int emfile;      /* accepts that failed with EMFILE/ENFILE */
    _Atomic int other_err;
    gort_chan *done;         /* the acceptor says it stopped */
} server;

static void acceptor(void *arg)
{
    server *s = arg;
    for (;;) {
        int fd = gort_accept(s->lfd, NULL, NULL);
        if (fd >= 0) {
            atomic_fetch_add(&s->accepted, 1);
            atomic_fetch_add(&live_conns, 1);
            gort_go(echo_conn, (void *)(intptr_t)fd);
            continue;
        }
        if (ERRNO == EMFILE || ERRNO == ENFILE) {
            atomic_fetch_add(&s->emfile, 1);
            gort_sleep(MS);   /* as Go's http server: back off, try again */
            continue;
        }
        if (ERRNO != EBADF)
            atomic_fetch_add(&s->other_err, 1);
        break;   /* EBADF: the listener was closed */
    }
    int one = 1;
    gort_chan_send(s->done, &one);
}

static server *start_server(void)
{
    /* GC memory: it holds the channel, and malloc'd memory is no root */
    server *s = gort_gc_alloc(sizeof *s);
    REQUIRE(s);
    s->lfd = gort_listen_tcp("127.0.0.1", 0);
    REQUIRE(s->lfd >= 0);
    s->done = gort_chan_make(sizeof(int), 1);
    gort_go(acceptor, s);
    return s;
}

static void stop_server(server *s)
{
    CHECK(gort_close(s->lfd) == 0);
    CHECK(gort_chan_recv(s->done, NULL));
    CHECK(atomic_load(&s->other_err) == 0);
    /* the clients have closed their ends: the server's follow */
    int64_t end = gort_nanotime() + 30 * SEC;
    while (atomic_load(&live_conns) > 0 && gort_nanotime() < end)
        gort_sleep(MS);
    CHECK(atomic_load(&live_conns) == 0);
}

/* The clients: another process, forked at the start of main before the
 * runtime starts a thread (the child of a threaded program may not
 * allocate, and qemu-user cannot re-execute the test). Both ends of 10,000
 * connections in this process would need 20,000 fds, the whole hard limit
 * on many machines; and clients here would share the server's two Ps. The
 * child is plain C with blocking sockets on its one thread, no runtime,
 * and talks with the test over a socketpair, an int at a time:
 *   test -> child   the listener's port and the count n (none: exit)
 *   child -> test   how many it connected (it stops at the first failure)
 *   test -> child   go: the server holds every one of them, open at once
 *   child -> test   how many connections failed an echo: ECHO_ROUNDS
 *                   rounds of a message on every connection, then every
 *                   echo read back and compared byte for byte
 *   test -> child   close: the server still held every connection
 * Then it resets every connection (SO_LINGER 0: no TIME_WAIT on either
 * side, so repeated runs do not run out of ephemeral ports) and exits,
 * 0 if every connection echoed every round. It inherits the RLIMIT_NOFILE
 * that main raised before the fork. */

#define ECHO_CONNS 10000
#define ECHO_ROUNDS 5

/* GCC 12's TSan runtime (older than LLVM 14's) dies past 8128 threads, a
 * goroutine's fiber counting as one, and its vector clocks grow with the
 * fibers, so every synchronisation costs time in proportion to them: there
 * the server takes 5000 connections (20 s; 7000 take a minute). Clang's
 * TSan takes all 10,000 in seconds. */
#if defined(GORT_TSAN) && !defined(__clang__) && __GNUC__ < 13
#define ECHO_TSAN_CONNS 5000
#endif

static pid_t echo_child = -1;   /* the client process */
static int echo_ctl = -1;       /* the test's end of the socketpair */

/* The child's I/O: the thread blocks. */
static bool plain_read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static bool plain_write_full(int fd, const void *buf, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = write(fd, (const char *)buf + put, n - put);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        put += (size_t)r;
    }
    return true;
}

/* Connection conn's message in round r: its name, then 1 to 200 bytes of
 * a pattern that differs from connection to connection and round to round. */
static size_t echo_msg(char *buf, size_t cap, int conn, int r)
{
    int len = snprintf(buf, cap, "conn %d round %d:", conn, r);
    size_t want = (size_t)len + 1 + (size_t)(conn * 7 + r * 13) % 200;
    for (size_t k = (size_t)len; k < want && k < cap; k++)
        buf[k] = (char)('a' + ((size_t)(conn + r) * 31 + k) % 26);
    return want < cap ? want : cap;
}

static __attribute__((noreturn)) void echo_client_process(int ctl)
{
    int hello[2];   /* port, n */
    if (!plain_read_full(ctl, hello, sizeof hello) || hello[1] <= 0)
        _exit(0);   /* the test ended, or has no connections for us */
    int port = hello[0], n = hello[1];
    int *fds = malloc((size_t)n * sizeof *fds);
    bool *bad = calloc((size_t)n, sizeof *bad);
    if (!fds || !bad)
        _exit(3);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int connected = 0;
    while (connected < n) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            fprintf(stderr, "echo client: connection %d of %d: %s\n", connected, n,
                    strerror(errno));
            if (fd >= 0)
                close(fd);
            break;
        }
        fds[connected++] = fd;
    }
    int go = 0;
    if (!plain_write_full(ctl, &connected, sizeof connected) ||
        !plain_read_full(ctl, &go, sizeof go))
        _exit(4);
    int failures = 0;
    char msg[256], back[256];
    for (int r = 0; r < ECHO_ROUNDS && go; r++) {
        for (int i = 0; i < connected; i++) {
            size_t len = echo_msg(msg, sizeof msg, i, r);
            if (!bad[i] && !plain_write_full(fds[i], msg, len)) {
                fprintf(stderr, "echo client: connection %d round %d: write: %s\n", i, r,
                        strerror(errno));
                bad[i] = true;
                failures++;
            }
        }
        for (int i = 0; i < connected; i++) {
            size_t len = echo_msg(msg, sizeof msg, i, r);
            if (bad[i])
                continue;
            bool got = plain_read_full(fds[i], back, len);
            if (!got || memcmp(msg, back, len) != 0) {
                fprintf(stderr, "echo client: connection %d round %d: %s\n", i, r,
                        got ? "the echo differs" : "no echo (EOF or error)");
                bad[i] = true;
                failures++;
            }
        }
    }
    if (!plain_write_full(ctl, &failures, sizeof failures) ||
        !plain_read_full(ctl, &go, sizeof go))
        _exit(5);
    struct linger reset = {1, 0};
    for (int i = 0; i < connected; i++) {
        setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(fds[i]);
    }
    free(fds);
    free(bad);
    _exit(connected == n && failures == 0 ? 0 : 1);
}

/* Called first thing in main: no thread but this one yet. */
static void fork_echo_client(void)
{
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        echo_client_process(sv[1]);
    }
    close(sv[1]);
    echo_child = pid;
    echo_ctl = sv[0];
}

/* Collections all through the echo test: the world stops while Ms block
 * in the poller and goroutines park and wake. One every 10 ms: each scans
 * 10,000 goroutine stacks, and back to back they would take both Ps. */
static _Atomic bool collector_stop;

static void collector(void *arg)
{
    gort_chan *done = arg;
    while (!atomic_load(&collector_stop)) {
        void *p = gort_gc_alloc(64);   /* something to collect */
        (void)p;
        gort_gc_collect();
        gort_sleep(10 * MS);
    }
    int one = 1;
    gort_chan_send(done, &one);
}

/* Under valgrind or qemu, which emulate every instruction. */
static bool emulated(void)
{
#ifdef HAVE_VALGRIND_H
    if (RUNNING_ON_VALGRIND)
        return true;
#endif
    const char *m = getenv("GORT_TEST_MODE");
    return m && (strcmp(m, "valgrind") == 0 || strcmp(m, "qemu") == 0);
}

/* The connections RLIMIT_NOFILE leaves room for: one server fd each (main
 * raised the soft limit to the hard one, up to 65536). */
static int max_conns(void)
{
    struct rlimit rl;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    return rl.rlim_cur > 64 ? (int)(rl.rlim_cur - 64) : 0;
}

static bool ctl_send(int v)
{
    return gort_write(echo_ctl, &v, sizeof v) == (ssize_t)sizeof v;
}

static bool ctl_recv(int *v)
{
    return read_full(echo_ctl, v, sizeof *v);
}

/* Closes the test's end (a child still waiting for its orders exits) and
 * waits for the child to exit. */
static void reap_echo_child(void)
{
    CHECK(gort_close(echo_ctl) == 0);
    echo_ctl = -1;
    int st = 0;
    pid_t w;
    gort_entersyscall();   /* waitpid blocks the thread */
    while ((w = waitpid(echo_child, &st, 0)) < 0 && errno == EINTR)
        ;
    gort_exitsyscall();
    CHECK_MSG(w == echo_child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "echo client: %s %d",
              WIFEXITED(st) ? "exit status" : "killed by signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    echo_child = -1;
}

static void test_echo_many(void)
{
    /* the full count at every scale but under emulation, TSan included */
    long want = scaled(ECHO_CONNS);
    if (want < ECHO_CONNS && !emulated())
        want = ECHO_CONNS;
#ifdef ECHO_TSAN_CONNS
    if (want > ECHO_TSAN_CONNS) {
        fprintf(stderr, "echo: %d connections, not %ld: GCC 12's TSan runtime allows 8128 "
                "threads and fibers, and slows down with each\n", ECHO_TSAN_CONNS, want);
        want = ECHO_TSAN_CONNS;
    }
#endif
    int n = want < max_conns() ? (int)want : max_conns();
    if (n < want) {
        struct rlimit rl;
        REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
        fprintf(stderr, "echo: RLIMIT_NOFILE (soft %llu, hard %llu) allows %d connections, not %ld\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, n, want);
    }
    REQUIRE(echo_ctl >= 0);
    if (n < 1) {
        fprintf(stderr, "echo: skipped\n");
        reap_echo_child();
        return;
    }
    server *s = start_server();
    int port = listener_port(s->lfd);
    gort_chan *cdone = gort_chan_make(sizeof(int), 1);
    atomic_store(&collector_stop, false);
    gort_go(collector, cdone);

    int hello[2] = {port, n};
    CHECK(gort_write(echo_ctl, hello, sizeof hello) == (ssize_t)sizeof hello);
    int connected = -1;
    CHECK(ctl_recv(&connected));
    CHECK_MSG(connected == n, "the client connected %d of %d", connected, n);
    /* the acceptor catches up: then the server holds them all at once */
    int64_t end = gort_nanotime() + 60 * SEC;
    while (atomic_load(&s->accepted) < connected && gort_nanotime() < end)
        gort_sleep(MS);
    CHECK_MSG(atomic_load(&s->accepted) == connected, "accepted %d of %d",
              atomic_load(&s->accepted), connected);
    int open = atomic_load(&live_conns);
    CHECK_MSG(open == n, "%d connections open at once on the server, not %d", open, n);
    CHECK(ctl_send(1));   /* go */
    int failures = -1;
    CHECK(ctl_recv(&failures));
    CHECK_MSG(failures == 0, "%d of %d connections failed an echo", failures, connected);
    open = atomic_load(&live_conns);
    CHECK_MSG(open == n, "%d connections open on the server after the echoes, not %d", open, n);
    CHECK(ctl_send(1));   /* close */
    reap_echo_child();
    atomic_store(&collector_stop, true);
    CHECK(gort_chan_recv(cdone, NULL));
    CHECK(atomic_load(&s->accepted) == n);
    stop_server(s);   /* the resets reach every connection's goroutine */
}

/* ---- close while another goroutine is blocked reading ------------------------ */

typedef struct blocked {
    int fd;
    _Atomic int state;   /* 0 not yet reading, 1 reading, 2 returned */
    ssize_t ret;
    int err;
    gort_chan *done;
} blocked;

static void blocked_reader(void *arg)
{
    blocked *b = arg;
    char c;
    atomic_store(&b->state, 1);
    b->ret = gort_read(b->fd, &c, 1);
    b->err = ERRNO;
    atomic_store(&b->state, 2);
    int one = 1;
    gort_chan_send(b->done, &one);
}

static void close_while_reading(int rfd)
{
    blocked b = {.fd = rfd, .done = gort_chan_make(sizeof(int), 1)};
    gort_go(blocked_reader, &b);
    while (atomic_load(&b.state) == 0)
        gort_sleep(MS);
    gort_sleep(20 * MS);   /* let it park */
    CHECK(atomic_load(&b.state) == 1);
    CHECK(gort_close(rfd) == 0);
    CHECK(gort_chan_recv(b.done, NULL));
    CHECK(b.ret == -1);
    CHECK_MSG(b.err == EBADF, "errno %d (%s)", b.err, strerror(b.err));
    /* and any call after the close */
    char c;
    clear_errno();
    CHECK(gort_read(rfd, &c, 1) == -1 && ERRNO == EBADF);
}

typedef struct bwriter {
    int fd;
    _Atomic int state;   /* 0 starting, 1 the buffer is full, 2 returned */
    int err;
    gort_chan *done;
} bwriter;

static void blocked_writer(void *arg)
{
    bwriter *w = arg;
    static char chunk[4096];
    for (;;) {
        /* a non-blocking probe tells when the next write will park */
        struct pollfd pfd = {w->fd, POLLOUT, 0};
        if (poll(&pfd, 1, 0) == 0)
            atomic_store(&w->state, 1);
        if (gort_write(w->fd, chunk, sizeof chunk) < 0)
            break;
    }
    w->err = ERRNO;
    atomic_store(&w->state, 2);
    int one = 1;
    gort_chan_send(w->done, &one);
}

/* Every goroutine blocked on the fd wakes: a reader, a second reader
 * queued behind it, and a writer whose peer never reads. */
static void test_close_wakes_all(void)
{
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    blocked r1 = {.fd = sv[0], .done = gort_chan_make(sizeof(int), 1)};
    blocked r2 = {.fd = sv[0], .done = gort_chan_make(sizeof(int), 1)};
    bwriter w = {.fd = sv[0], .done = gort_chan_make(sizeof(int), 1)};
    gort_go(blocked_reader, &r1);
    gort_go(blocked_reader, &r2);
    gort_go(blocked_writer, &w);
    while (atomic_load(&r1.state) == 0 || atomic_load(&r2.state) == 0 || atomic_load(&w.state) == 0)
        gort_sleep(MS);
    gort_sleep(20 * MS);
    CHECK(atomic_load(&r1.state) == 1 && atomic_load(&r2.state) == 1 && atomic_load(&w.state) == 1);
    CHECK(gort_close(sv[0]) == 0);
    CHECK(gort_chan_recv(r1.done, NULL));
    CHECK(gort_chan_recv(r2.done, NULL));
    CHECK(gort_chan_recv(w.done, NULL));
    CHECK(r1.ret == -1 && r1.err == EBADF);
    CHECK(r2.ret == -1 && r2.err == EBADF);
    CHECK_MSG(w.err == EBADF, "writer: errno %d (%s)", w.err, strerror(w.err));
    CHECK(gort_close(sv[1]) == 0);
}

static void test_close_wakes(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    close_while_reading(p[0]);
    CHECK(gort_close(p[1]) == 0);
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    close_while_reading(sv[0]);
    CHECK(gort_close(sv[1]) == 0);
}

/* ---- deadlines ------------------------------------------------------------------ */

static void test_deadlines(void)
{
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    char c;
    /* read deadline: the blocked read fails with ETIMEDOUT, not early */
    int64_t t0 = gort_nanotime();
    CHECK(gort_fd_set_read_deadline(sv[0], t0 + 50 * MS) == 0);
    clear_errno();
    CHECK(gort_read(sv[0], &c, 1) == -1);
    CHECK_MSG(ERRNO == ETIMEDOUT, "errno %d (%s)", ERRNO, strerror(ERRNO));
    int64_t el = gort_nanotime() - t0;
    CHECK_MSG(el >= 50 * MS, "timed out after %" PRId64 " us", el / 1000);
    /* expired: later reads fail at once, even with data there */
    CHECK(gort_write(sv[1], "x", 1) == 1);
    clear_errno();
    CHECK(gort_read(sv[0], &c, 1) == -1 && ERRNO == ETIMEDOUT);
    /* cleared: the data is read */
    CHECK(gort_fd_set_read_deadline(sv[0], 0) == 0);
    CHECK(gort_read(sv[0], &c, 1) == 1 && c == 'x');

    /* a deadline set in the past wakes a goroutine blocked reading */
    blocked b = {.fd = sv[0], .done = gort_chan_make(sizeof(int), 1)};
    gort_go(blocked_reader, &b);
    while (atomic_load(&b.state) == 0)
        gort_sleep(MS);
    gort_sleep(20 * MS);
    CHECK(atomic_load(&b.state) == 1);
    CHECK(gort_fd_set_deadline(sv[0], gort_nanotime() - 1) == 0);
    CHECK(gort_chan_recv(b.done, NULL));
    CHECK(b.ret == -1 && b.err == ETIMEDOUT);
    CHECK(gort_fd_set_deadline(sv[0], 0) == 0);

    /* write deadline: the peer never reads, the buffer fills */
    CHECK(gort_fd_set_write_deadline(sv[1], gort_nanotime() + 30 * MS) == 0);
    static char big[1 << 16];
    int64_t total = 0;
    for (int i = 0; i < 10000; i++) {
        ssize_t n = gort_write(sv[1], big, sizeof big);
        if (n < 0) {
            CHECK_MSG(ERRNO == ETIMEDOUT, "errno %d (%s)", ERRNO, strerror(ERRNO));
            break;
        }
        total += n;
    }
    CHECK(total > 0 && total < 10000 * (int64_t)sizeof big);
    CHECK(gort_close(sv[0]) == 0);
    CHECK(gort_close(sv[1]) == 0);
}

/* ---- EOF and half-close over TCP ---------------------------------------------- */

typedef struct halfclose {
    int lfd;
    bool ok;
    gort_chan *done;
} halfclose;

static void halfclose_server(void *arg)
{
    halfclose *h = arg;
    int fd = gort_accept(h->lfd, NULL, NULL);
    char buf[64];
    h->ok = fd >= 0 && read_full(fd, buf, 5) && memcmp(buf, "hello", 5) == 0 &&
            gort_read(fd, buf, sizeof buf) == 0 &&   /* the client's SHUT_WR: EOF */
            gort_write(fd, "bye", 3) == 3;           /* our direction still open */
    if (fd >= 0)
        gort_close(fd);
    int one = 1;
    gort_chan_send(h->done, &one);
}

static void test_half_close(void)
{
    halfclose h = {.lfd = gort_listen_tcp("127.0.0.1", 0), .done = gort_chan_make(sizeof(int), 1)};
    REQUIRE(h.lfd >= 0);
    gort_go(halfclose_server, &h);
    int fd = gort_dial_tcp("127.0.0.1", listener_port(h.lfd));
    REQUIRE(fd >= 0);
    CHECK(gort_write(fd, "hello", 5) == 5);
    CHECK(shutdown(fd, SHUT_WR) == 0);
    char buf[16];
    CHECK(read_full(fd, buf, 3) && memcmp(buf, "bye", 3) == 0);
    CHECK(gort_read(fd, buf, sizeof buf) == 0);   /* the server closed: EOF */
    CHECK(gort_read(fd, buf, sizeof buf) == 0);   /* and it stays so */
    CHECK(gort_chan_recv(h.done, NULL));
    CHECK(h.ok);
    CHECK(gort_close(fd) == 0);
    CHECK(gort_close(h.lfd) == 0);
}

/* ---- fd reuse ------------------------------------------------------------------- */

static void test_fd_reuse(void)
{
    int p1[2];
    REQUIRE(pipe(p1) == 0);
    /* the old read end: readiness pending that nobody consumed, and a
     * deadline that will pass while the new fd is in use */
    CHECK(gort_fd_set_read_deadline(p1[0], gort_nanotime() + 30 * MS) == 0);
    CHECK(gort_write(p1[1], "old", 3) == 3);
    gort_sleep(5 * MS);
    CHECK(gort_close(p1[0]) == 0);
    CHECK(gort_close(p1[1]) == 0);
    int p2[2];
    REQUIRE(pipe(p2) == 0);
    if (p2[0] != p1[0] && p2[1] != p1[0])
        fprintf(stderr, "fd reuse: the kernel did not reuse fd %d (got %d, %d)\n", p1[0], p2[0], p2[1]);
    int rfd = p2[0] == p1[0] ? p2[0] : p2[1] == p1[0] ? p2[1] : p2[0];
    int wfd = rfd == p2[0] ? p2[1] : p2[0];
    if (rfd == p2[1]) {
        /* the reused number is the write end of the new pipe: make it a
         * socketpair instead, readable on either side */
        close(p2[0]);
        close(p2[1]);
        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        rfd = sv[0];
        wfd = sv[1];
    }
    blocked b = {.fd = rfd, .done = gort_chan_make(sizeof(int), 1)};
    gort_go(blocked_reader, &b);
    while (atomic_load(&b.state) == 0)
        gort_sleep(MS);
    gort_sleep(80 * MS);   /* past the old deadline */
    CHECK_MSG(atomic_load(&b.state) == 1, "the reader of the new fd returned %zd (%s)", b.ret,
              strerror(b.err));
    CHECK(gort_write(wfd, "n", 1) == 1);
    CHECK(gort_chan_recv(b.done, NULL));
    CHECK(b.ret == 1);
    CHECK(gort_close(rfd) == 0);
    CHECK(gort_close(wfd) == 0);
}

/* ---- a pipe between two goroutines ------------------------------------------------- */

typedef struct piper {
    int fd;
    size_t total;
    uint64_t sum;
    gort_chan *done;
} piper;

static void pipe_writer(void *arg)
{
    piper *p = arg;
    unsigned char buf[3000];
    size_t sent = 0;
    uint64_t sum = 0;
    while (sent < p->total) {
        size_t n = p->total - sent < sizeof buf ? p->total - sent : sizeof buf;
        for (size_t i = 0; i < n; i++) {
            buf[i] = (unsigned char)((sent + i) * 7 + 3);
            sum += buf[i];
        }
        if (gort_write(p->fd, buf, n) != (ssize_t)n)
            break;
        sent += n;
    }
    p->sum = sum;
    gort_close(p->fd);
    int one = 1;
    gort_chan_send(p->done, &one);
}

static void test_pipe(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    piper w = {.fd = p[1], .total = (size_t)scaled(1 << 20), .done = gort_chan_make(sizeof(int), 1)};
    gort_go(pipe_writer, &w);
    unsigned char buf[1000];
    size_t got = 0;
    uint64_t sum = 0;
    bool inorder = true;
    for (;;) {
        ssize_t n = gort_read(p[0], buf, sizeof buf);
        if (n <= 0) {
            CHECK(n == 0);
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != (unsigned char)((got + (size_t)i) * 7 + 3))
                inorder = false;
            sum += buf[i];
        }
        got += (size_t)n;
    }
    CHECK(gort_chan_recv(w.done, NULL));
    CHECK(got == w.total);
    CHECK(sum == w.sum);
    CHECK(inorder);
    CHECK(gort_close(p[0]) == 0);
}

/* ---- EMFILE ------------------------------------------------------------------------ */

static void test_emfile(void)
{
    server *s = start_server();
    int port = listener_port(s->lfd);
    /* one connection established before the limit bites */
    int keep = gort_dial_tcp("127.0.0.1", port);
    REQUIRE(keep >= 0);
    char buf[8];
    CHECK(gort_write(keep, "ping", 4) == 4 && read_full(keep, buf, 4));
    /* and a listener nobody accepts on, with a connection waiting in its
     * backlog: accepting it needs an fd */
    int lfd2 = gort_listen_tcp("127.0.0.1", 0);
    REQUIRE(lfd2 >= 0);
    int pending = gort_dial_tcp("127.0.0.1", listener_port(lfd2));
    REQUIRE(pending >= 0);

    struct rlimit old, low;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
    int maxfd = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            maxfd = fd;
    low = old;
    low.rlim_cur = (rlim_t)maxfd + 17;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    static int held[4096];
    int nheld = 0;
    int dial_err = 0;
    while (nheld < 4096) {
        int fd = gort_dial_tcp("127.0.0.1", port);
        if (fd < 0) {
            dial_err = ERRNO;
            break;
        }
        held[nheld++] = fd;
    }
    CHECK_MSG(dial_err == EMFILE, "dial failed with %d (%s) after %d connections", dial_err,
              strerror(dial_err), nheld);
    /* take whatever the acceptor left free, then accept: EMFILE */
    int dups[64], ndups = 0;
    while (ndups < 64 && (dups[ndups] = dup(keep)) >= 0)
        ndups++;
    clear_errno();
    CHECK(gort_accept(lfd2, NULL, NULL) == -1);
    CHECK_MSG(ERRNO == EMFILE, "accept: errno %d (%s)", ERRNO, strerror(ERRNO));
    /* the established connection still works */
    CHECK(gort_write(keep, "pong", 4) == 4 && read_full(keep, buf, 4) && memcmp(buf, "pong", 4) == 0);
    /* give the fds back: the pending connection is accepted, and the
     * acceptor catches up */
    for (int i = 0; i < ndups; i++)
        close(dups[i]);
    for (int i = 0; i < nheld; i++)
        CHECK(gort_close(held[i]) == 0);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &old) == 0);
    /* (valgrind emulates the limit after the kernel's accept: the pending
     * connection is gone there, so dial another that accept can take) */
    int second = gort_dial_tcp("127.0.0.1", listener_port(lfd2));
    CHECK(second >= 0);
    int afd = gort_accept(lfd2, NULL, NULL);
    CHECK(afd >= 0);
    if (afd >= 0)
        CHECK(gort_close(afd) == 0);
    if (second >= 0)
        CHECK(gort_close(second) == 0);
    CHECK(gort_close(pending) == 0);
    CHECK(gort_close(lfd2) == 0);
    int fd = gort_dial_tcp("127.0.0.1", port);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(gort_write(fd, "again", 5) == 5 && read_full(fd, buf, 5) && memcmp(buf, "again", 5) == 0);
        CHECK(gort_close(fd) == 0);
    }
    CHECK(gort_close(keep) == 0);
    stop_server(s);
}

/* ---- the other calls: readv/writev, recv/send, recvfrom/sendto; reset -------- */

typedef struct udpwait {
    int fd;
    char buf[64];
    ssize_t n;
    struct sockaddr_in from;
    gort_chan *done;
} udpwait;

static void udp_receiver(void *arg)
{
    udpwait *u = arg;
    socklen_t fl = sizeof u->from;
    u->n = gort_recvfrom(u->fd, u->buf, sizeof u->buf, 0, (struct sockaddr *)&u->from, &fl);
    int one = 1;
    gort_chan_send(u->done, &one);
}

static void test_other_calls(void)
{
    /* readv/writev and recv/send over a socketpair */
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    char a[3] = "abc", b[4] = "defg", x[3], y[4];
    struct iovec wv[2] = {{a, 3}, {b, 4}}, rv[2] = {{x, 3}, {y, 4}};
    CHECK(gort_writev(sv[0], wv, 2) == 7);
    CHECK(gort_readv(sv[1], rv, 2) == 7 && memcmp(x, "abc", 3) == 0 && memcmp(y, "defg", 4) == 0);
    CHECK(gort_send(sv[1], "hi", 2, 0) == 2);
    char c2[2];
    CHECK(gort_recv(sv[0], c2, 2, MSG_PEEK) == 2);   /* flags pass through */
    CHECK(gort_recv(sv[0], c2, 2, 0) == 2 && memcmp(c2, "hi", 2) == 0);
    CHECK(gort_close(sv[0]) == 0);
    CHECK(gort_close(sv[1]) == 0);

    /* recvfrom parks until sendto delivers a datagram */
    int u1 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), u2 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(u1 >= 0 && u2 >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    REQUIRE(bind(u1, (struct sockaddr *)&sa, sizeof sa) == 0);
    socklen_t sl = sizeof sa;
    REQUIRE(getsockname(u1, (struct sockaddr *)&sa, &sl) == 0);
    udpwait u = {.fd = u1, .done = gort_chan_make(sizeof(int), 1)};
    gort_go(udp_receiver, &u);
    gort_sleep(10 * MS);
    CHECK(gort_sendto(u2, "datagram", 8, 0, (struct sockaddr *)&sa, sizeof sa) == 8);
    CHECK(gort_chan_recv(u.done, NULL));
    CHECK(u.n == 8 && memcmp(u.buf, "datagram", 8) == 0);
    CHECK(u.from.sin_family == AF_INET && u.from.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    CHECK(gort_close(u1) == 0);
    CHECK(gort_close(u2) == 0);
}

typedef struct resetter {
    int lfd;
    gort_chan *done;
} resetter;

/* Accept, then close with SO_LINGER 0: the peer gets a reset. */
static void reset_server(void *arg)
{
    resetter *r = arg;
    int fd = gort_accept(r->lfd, NULL, NULL);
    if (fd >= 0) {
        char c;
        gort_read(fd, &c, 1);   /* wait until the client is reading */
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        gort_close(fd);
    }
    int one = 1;
    gort_chan_send(r->done, &one);
}

static void test_reset(void)
{
    resetter r = {.lfd = gort_listen_tcp("127.0.0.1", 0), .done = gort_chan_make(sizeof(int), 1)};
    REQUIRE(r.lfd >= 0);
    gort_go(reset_server, &r);
    int fd = gort_dial_tcp("127.0.0.1", listener_port(r.lfd));
    REQUIRE(fd >= 0);
    CHECK(gort_write(fd, "x", 1) == 1);
    char buf[8];
    clear_errno();
    CHECK(gort_read(fd, buf, sizeof buf) == -1);
    CHECK_MSG(ERRNO == ECONNRESET, "errno %d (%s)", ERRNO, strerror(ERRNO));
    CHECK(gort_chan_recv(r.done, NULL));
    CHECK(gort_close(fd) == 0);
    CHECK(gort_close(r.lfd) == 0);
}

/* Signals without SA_RESTART hit the threads while goroutines and a plain
 * thread move data through pipes: no call returns EINTR. */
static void on_usr1(int sig)
{
    (void)sig;
}

static _Atomic bool signals_stop;

static void *signaller(void *arg)
{
    (void)arg;
    while (!atomic_load(&signals_stop)) {
        kill(getpid(), SIGUSR1);
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_eintr(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;   /* no SA_RESTART: blocking calls fail with EINTR */
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, &old) == 0);
    atomic_store(&signals_stop, false);
    pthread_t t;
    gort_entersyscall();
    int rc = pthread_create(&t, NULL, signaller, NULL);
    gort_exitsyscall();
    REQUIRE(rc == 0);
    for (int round = 0; round < 3; round++) {
        int p[2];
        REQUIRE(pipe(p) == 0);
        piper w = {.fd = p[1], .total = (size_t)scaled(1 << 18), .done = gort_chan_make(sizeof(int), 1)};
        gort_go(pipe_writer, &w);
        unsigned char buf[512];
        size_t got = 0;
        ssize_t n;
        while ((n = gort_read(p[0], buf, sizeof buf)) > 0)
            got += (size_t)n;
        CHECK_MSG(n == 0, "read: errno %d (%s)", ERRNO, strerror(ERRNO));
        CHECK(gort_chan_recv(w.done, NULL));
        CHECK(got == w.total);
        CHECK(gort_close(p[0]) == 0);
        gort_sleep(MS);   /* a poller that blocks gets signals too */
    }
    atomic_store(&signals_stop, true);
    gort_entersyscall();
    pthread_join(t, NULL);
    gort_exitsyscall();
    /* the last signal may still be pending (its thread not yet scheduled):
     * ignoring the signal discards it, where restoring the default
     * disposition at once would let it kill the process */
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGUSR1, &ign, NULL);
    sigaction(SIGUSR1, &old, NULL);
}

/* ---- torture: closes racing with reads and writes ------------------------------- */

typedef struct racer {
    int fd;
    int role;                /* 0 reads, 1 writes */
    _Atomic int *bad;        /* calls that failed with an unexpected errno */
    gort_waitgroup *wg;
} racer;

static void race_io(void *arg)
{
    racer *r = arg;
    char buf[2048];
    memset(buf, 'r', sizeof buf);
    for (int i = 0; i < 1000; i++) {
        ssize_t n = r->role ? gort_write(r->fd, buf, sizeof buf) : gort_read(r->fd, buf, sizeof buf);
        if (n > 0)
            continue;
        if (n == 0)
            break;   /* EOF */
        int e = ERRNO;
        if (e != EBADF && e != EPIPE && e != ECONNRESET) {
            fprintf(stderr, "race: %s failed with %d (%s)\n", r->role ? "write" : "read", e, strerror(e));
            atomic_fetch_add(r->bad, 1);
        }
        break;
    }
    gort_waitgroup_done(r->wg);
}

/* Rounds of: a socketpair, a reader and a writer on each end, and both
 * ends closed after a moment, while they run or wait. Every goroutine must
 * finish with data, EOF, EBADF, EPIPE (never SIGPIPE) or ECONNRESET; fd
 * numbers are reused from round to round. */
static void test_close_races(void)
{
    int rounds = (int)scaled(300);
    _Atomic int bad = 0;
    for (int round = 0; round < rounds; round++) {
        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        gort_waitgroup wg = {0};
        racer rs[4] = {{sv[0], 0, &bad, &wg}, {sv[0], 1, &bad, &wg}, {sv[1], 0, &bad, &wg}, {sv[1], 1, &bad, &wg}};
        gort_waitgroup_add(&wg, 4);
        for (int i = 0; i < 4; i++)
            gort_go(race_io, &rs[i]);
        switch (round % 3) {
        case 0: gort_yield(); break;
        case 1: gort_sleep(100000); break;
        default: break;
        }
        CHECK(gort_close(sv[round & 1]) == 0);
        gort_yield();
        CHECK(gort_close(sv[!(round & 1)]) == 0);
        gort_waitgroup_wait(&wg);
    }
    CHECK_MSG(atomic_load(&bad) == 0, "%d calls failed oddly", atomic_load(&bad));
}

/* ---- ping-pong on one P ------------------------------------------------------------ */

typedef struct pinger {
    int fd;
    int n;
    gort_chan *done;
} pinger;

static void pong(void *arg)
{
    pinger *p = arg;
    char c;
    for (int i = 0; i < p->n; i++)
        if (gort_read(p->fd, &c, 1) != 1 || gort_write(p->fd, &c, 1) != 1)
            break;
    int one = 1;
    gort_chan_send(p->done, &one);
}

/* Two goroutines bounce a byte on GOMAXPROCS=1 for longer than sysmon's
 * 10 ms: sysmon's polls take readiness and queue goroutines globally
 * while the only M goes idle. (A stale count of idle Ps once stranded
 * them there, with the M blocked in the poller for good.) */
static void test_pingpong_one_p(void)
{
    int prev = gort_gomaxprocs(1);
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    pinger p = {sv[1], (int)scaled(30000), gort_chan_make(sizeof(int), 1)};
    gort_go(pong, &p);
    char c = 'x';
    int i;
    for (i = 0; i < p.n; i++)
        if (gort_write(sv[0], &c, 1) != 1 || gort_read(sv[0], &c, 1) != 1)
            break;
    CHECK(i == p.n);
    CHECK(gort_chan_recv(p.done, NULL));
    CHECK(gort_close(sv[0]) == 0);
    CHECK(gort_close(sv[1]) == 0);
    gort_gomaxprocs(prev);
}

/* ---- bad input -------------------------------------------------------------------------- */

static void test_bad_input(void)
{
    char c;
    clear_errno();
    CHECK(gort_read(-1, &c, 1) == -1 && ERRNO == EBADF);
    int p[2];
    REQUIRE(pipe(p) == 0);
    close(p[0]);   /* never used through the runtime: a plain close is fine */
    clear_errno();
    CHECK(gort_read(p[0], &c, 1) == -1 && ERRNO == EBADF);
    clear_errno();
    CHECK(gort_close(p[0]) == -1 && ERRNO == EBADF);
    CHECK(gort_close(p[1]) == 0);
    /* a port nobody listens on */
    int lfd = gort_listen_tcp("127.0.0.1", 0);
    REQUIRE(lfd >= 0);
    int port = listener_port(lfd);
    CHECK(gort_close(lfd) == 0);
    clear_errno();
    CHECK(gort_dial_tcp("127.0.0.1", port) == -1);
    CHECK_MSG(ERRNO == ECONNREFUSED, "errno %d (%s)", ERRNO, strerror(ERRNO));
    clear_errno();
    CHECK(gort_dial_tcp("127.0.0.1", 70000) == -1 && ERRNO == EINVAL);
}

/* ---- blocked on the network alone; busy Ps ------------------------------------------ */

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * SEC +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

typedef struct later {
    int fd;
    int ms;
} later;

/* A plain thread: write one byte to fd after ms. */
static void *write_later(void *arg)
{
    later *l = arg;
    struct timespec ts = {l->ms / 1000, (long)(l->ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    ssize_t r = write(l->fd, "w", 1);
    (void)r;
    return NULL;
}

static void test_idle_in_poller(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    char c;
    CHECK(gort_fd_set_read_deadline(p[0], 0) == 0);   /* set up the fd: non-blocking now */
    later l = {p[1], 300};
    pthread_t t;
    gort_entersyscall();   /* pthread_create may block */
    int rc = pthread_create(&t, NULL, write_later, &l);
    gort_exitsyscall();
    REQUIRE(rc == 0);
    int64_t c0 = cpu_ns();
    CHECK(gort_read(p[0], &c, 1) == 1 && c == 'w');
    int64_t used = cpu_ns() - c0;
    int64_t bound = (slow_tool() ? 250 : 100) * MS;
    CHECK_MSG(used < bound, "blocked in the poller for 300 ms, used %" PRId64 " ms of CPU",
              used / MS);
    gort_entersyscall();
    pthread_join(t, NULL);
    gort_exitsyscall();
    CHECK(gort_close(p[0]) == 0);
    close(p[1]);
}

static _Atomic bool spin_stop;

static void yielder(void *arg)
{
    gort_waitgroup *wg = arg;
    while (!atomic_load(&spin_stop))
        gort_yield();
    gort_waitgroup_done(wg);
}

static void stopping_reader(void *arg)
{
    blocked *b = arg;
    char c;
    atomic_store(&b->state, 1);
    b->ret = gort_read(b->fd, &c, 1);
    atomic_store(&spin_stop, true);
    atomic_store(&b->state, 2);
    int one = 1;
    gort_chan_send(b->done, &one);
}

static void test_sysmon_poll(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    blocked b = {.fd = p[0], .done = gort_chan_make(sizeof(int), 1)};
    gort_go(stopping_reader, &b);
    while (atomic_load(&b.state) == 0)
        gort_sleep(MS);
    gort_sleep(10 * MS);   /* parked */
    gort_waitgroup wg = {0};
    gort_waitgroup_add(&wg, 2);
    atomic_store(&spin_stop, false);
    gort_go(yielder, &wg);
    gort_go(yielder, &wg);
    later l = {p[1], 50};
    pthread_t t;
    gort_entersyscall();
    int rc = pthread_create(&t, NULL, write_later, &l);
    gort_exitsyscall();
    REQUIRE(rc == 0);
    gort_waitgroup_wait(&wg);   /* the yielders stop once the reader ran */
    CHECK(gort_chan_recv(b.done, NULL));
    CHECK(b.ret == 1);
    gort_entersyscall();
    pthread_join(t, NULL);
    gort_exitsyscall();
    CHECK(gort_close(p[0]) == 0);
    close(p[1]);
}

/* GORT_TEST_VERBOSE=1: say which part runs (to find a hang) */
static void step(const char *name)
{
    if (getenv("GORT_TEST_VERBOSE"))
        fprintf(stderr, "test_netpoll: %s\n", name);
}

static void real_main(void *arg)
{
    (void)arg;
    CHECK(gort_gomaxprocs(0) == 2);
    step("test_bad_input");
    test_bad_input();
    step("test_close_wakes");
    test_close_wakes();
    step("test_close_wakes_all");
    test_close_wakes_all();
    step("test_deadlines");
    test_deadlines();
    step("test_half_close");
    test_half_close();
    step("test_fd_reuse");
    test_fd_reuse();
    step("test_pipe");
    test_pipe();
    step("test_other_calls");
    test_other_calls();
    step("test_reset");
    test_reset();
    step("test_eintr");
    test_eintr();
    step("test_pingpong_one_p");
    test_pingpong_one_p();
    step("test_close_races");
    test_close_races();
    step("test_echo_many");
    test_echo_many();
    step("test_emfile");
    test_emfile();
    step("test_idle_in_poller");
    test_idle_in_poller();
    step("test_sysmon_poll");
    test_sysmon_poll();
}

/* Before gort_main: the plain behaviour, blocking the thread. */
static void test_outside(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    char buf[4];
    CHECK(gort_write(p[1], "ab", 2) == 2);
    CHECK(gort_read(p[0], buf, sizeof buf) == 2 && memcmp(buf, "ab", 2) == 0);
    /* the fd is non-blocking now, but the call still waits (for its deadline) */
    CHECK(gort_fd_set_read_deadline(p[0], gort_nanotime() + 20 * MS) == 0);
    clear_errno();
    CHECK(gort_read(p[0], buf, sizeof buf) == -1 && ERRNO == ETIMEDOUT);
    CHECK(gort_close(p[0]) == 0);
    CHECK(gort_close(p[1]) == 0);
}

int main(void)
{
    /* room for the echo test's connections, in both processes */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    fork_echo_client();   /* before any thread */
    test_outside();
    gort_gomaxprocs(2);
    CHECK(gort_main(real_main, NULL) == 0);
    return test_done();
}
