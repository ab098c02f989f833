/* fetch_many.c - plain blocking C code, run by a thousand goroutines.
 *
 *   fetch_many [N]                      N fetches (default 1000) from a server
 *                                       this program runs itself
 *   fetch_many N HOST PORT [PATH]       N fetches of http://HOST:PORT/PATH
 *
 * http_get below is what C code talking to a server has always looked
 * like: getaddrinfo, socket, connect, write, read until EOF, close - every
 * call blocking, nothing of gort in it. Run from goroutines, gort's
 * transparent mode makes each of those calls park its goroutine instead of
 * its thread (README: "Transparent mode"), so N fetches are in flight at
 * once on GOMAXPROCS threads. The local server is written the same way:
 * accept, read, write, close.
 */
#define _GNU_SOURCE
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gort.h"

/* ---- ordinary blocking code ---------------------------------------------- */

/* GET path from host:port over HTTP/1.0; the response's length, or -1. */
static long http_get(const char *host, const char *port, const char *path)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    char req[512];
    int n = snprintf(req, sizeof req, "GET /%s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    long total = 0;
    char buf[4096];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        total += r;
    close(fd);
    return r < 0 ? -1 : total;
}

static void serve_one(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static const char resp[] = "HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n";
    char buf[1024];
    size_t got = 0;
    ssize_t r;
    /* the request ends with a blank line */
    while (got < sizeof buf - 1 && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0) {
        got += (size_t)r;
        buf[got] = 0;
        if (strstr(buf, "\r\n\r\n")) {
            if (write(fd, resp, sizeof resp - 1) < 0)
                break;
            break;
        }
    }
    close(fd);
}

static void serve(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (int fd; (fd = accept(lfd, NULL, NULL)) >= 0;)
        gort_go(serve_one, (void *)(intptr_t)fd);
}

/* ---- a goroutine per fetch -------------------------------------------------- */

typedef struct job {
    const char *host, *port, *path;
    gort_waitgroup *wg;
    gort_mutex *mu;
    long *ok, *bytes;
} job;

static void fetch(void *arg)
{
    job *j = arg;
    long n = http_get(j->host, j->port, j->path);
    gort_mutex_lock(j->mu);
    if (n > 0) {
        ++*j->ok;
        *j->bytes += n;
    }
    gort_mutex_unlock(j->mu);
    gort_waitgroup_done(j->wg);
}

typedef struct opts {
    int n;
    const char *host, *port, *path;
} opts;

static void main_goroutine(void *arg)
{
    opts *o = arg;
    char port[16];
    int lfd = -1;
    if (!o->host) {
        /* our own server, on a port the kernel picks */
        lfd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof sa;
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 4096) != 0 ||
            getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
            perror("fetch_many: listen");
            exit(1);
        }
        snprintf(port, sizeof port, "%d", ntohs(sa.sin_port));
        o->host = "127.0.0.1";
        o->port = port;
        gort_go(serve, (void *)(intptr_t)lfd);
    }
    gort_waitgroup wg = {0};
    gort_mutex mu = {0};
    long ok = 0, bytes = 0;
    job *jobs = calloc((size_t)o->n, sizeof *jobs);
    int64_t t0 = gort_nanotime();
    gort_waitgroup_add(&wg, o->n);
    for (int i = 0; i < o->n; i++) {
        jobs[i] = (job){o->host, o->port, o->path, &wg, &mu, &ok, &bytes};
        gort_go(fetch, &jobs[i]);
    }
    gort_waitgroup_wait(&wg);
    double ms = (double)(gort_nanotime() - t0) / 1e6;
    printf("fetch_many: %ld of %d fetches answered (%ld bytes), GOMAXPROCS=%d, %.0f ms\n", ok,
           o->n, bytes, gort_gomaxprocs(0), ms);
    if (lfd >= 0)
        close(lfd);
    free(jobs);
}

int main(int argc, char **argv)
{
    opts o = {1000, NULL, NULL, ""};
    if (argc > 1)
        o.n = atoi(argv[1]);
    if (argc > 3) {
        o.host = argv[2];
        o.port = argv[3];
        if (argc > 4)
            o.path = argv[4][0] == '/' ? argv[4] + 1 : argv[4];
    }
    if (o.n <= 0 || argc == 3) {
        fprintf(stderr, "usage: fetch_many [N [HOST PORT [PATH]]]\n");
        return 2;
    }
    return gort_main(main_goroutine, &o);
}
