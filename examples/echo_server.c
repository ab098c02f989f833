/* echo_server.c - a TCP echo server with a goroutine per connection.
 *
 *   echo_server [PORT]         serve on PORT (default 7007) until killed
 *   echo_server selftest [N]   serve on a free port and check N clients
 *
 * The Go way: one goroutine accepts, and each connection gets a goroutine
 * that reads and writes as if the calls blocked. They do block the
 * goroutine, not the thread: gort_read parks it until the socket is
 * readable, and a few threads (GOMAXPROCS) serve thousands of connections.
 * A connection idle for 60 s is dropped with a read deadline, as a Go
 * server would do with SetReadDeadline. The self-test dials N connections
 * from goroutines of the same process and checks every echo.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gort.h"

#define SEC 1000000000LL

static void serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    for (;;) {
        gort_fd_set_read_deadline(fd, gort_nanotime() + 60 * SEC);
        ssize_t n = gort_read(fd, buf, sizeof buf);
        if (n <= 0)   /* EOF, a reset or the idle deadline */
            break;
        if (gort_write(fd, buf, (size_t)n) != n)
            break;
    }
    gort_close(fd);
}

static void accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = gort_accept(lfd, NULL, NULL);
        if (fd >= 0) {
            gort_go(serve_conn, (void *)(intptr_t)fd);
        } else if (errno == EMFILE || errno == ENFILE) {
            gort_sleep(SEC / 100);   /* out of fds: back off, as net/http does */
        } else {
            return;   /* the listener was closed */
        }
    }
}

/* ---- the self-test ------------------------------------------------------- */

static int port;
static gort_waitgroup clients;
static int failures;
static gort_mutex mu;

static void client(void *arg)
{
    int id = (int)(intptr_t)arg;
    int fd = gort_dial_tcp("127.0.0.1", port);
    bool ok = fd >= 0;
    for (int round = 0; ok && round < 5; round++) {
        char msg[64], back[64];
        int len = snprintf(msg, sizeof msg, "hello from client %d, round %d", id, round);
        ok = gort_write(fd, msg, (size_t)len) == len;
        for (int got = 0; ok && got < len;) {
            ssize_t n = gort_read(fd, back + got, (size_t)(len - got));
            ok = n > 0;
            got += ok ? (int)n : 0;
        }
        ok = ok && memcmp(msg, back, (size_t)len) == 0;
    }
    if (fd >= 0)
        gort_close(fd);
    if (!ok) {
        gort_mutex_lock(&mu);
        failures++;
        gort_mutex_unlock(&mu);
    }
    gort_waitgroup_done(&clients);
}

typedef struct opts {
    bool selftest;
    int n;
} opts;

static void run(void *arg)
{
    opts *o = arg;
    int lfd = gort_listen_tcp(o->selftest ? "127.0.0.1" : NULL, o->selftest ? 0 : port);
    if (lfd < 0) {
        fprintf(stderr, "echo_server: listen: %s\n", strerror(errno));
        exit(1);
    }
    if (!o->selftest) {
        printf("echo_server: listening on port %d\n", port);
        fflush(stdout);
        accept_loop((void *)(intptr_t)lfd);
        return;
    }
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    port = ntohs(sa.sin_port);
    gort_go(accept_loop, (void *)(intptr_t)lfd);
    gort_waitgroup_add(&clients, o->n);
    for (int i = 0; i < o->n; i++)
        gort_go(client, (void *)(intptr_t)i);
    gort_waitgroup_wait(&clients);
    gort_close(lfd);
    if (failures) {
        printf("echo_server: %d of %d clients failed\n", failures, o->n);
        exit(1);
    }
    printf("echo_server: %d clients, every echo matched\n", o->n);
}

int main(int argc, char **argv)
{
    opts o = {false, 100};
    port = 7007;
    if (argc > 1 && strcmp(argv[1], "selftest") == 0) {
        o.selftest = true;
        if (argc > 2)
            o.n = atoi(argv[2]);
    } else if (argc > 1) {
        port = atoi(argv[1]);
    }
    return gort_main(run, &o);
}
