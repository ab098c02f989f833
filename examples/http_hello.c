/* http_hello.c - a minimal HTTP/1.1 keep-alive "Hello, World!" server.
 *
 *   http_hello [PORT [GOMAXPROCS]]   serve on PORT (default 8080) until killed
 *
 * GOMAXPROCS also comes from the environment, as in Go; the argument wins.
 *
 * The shape of a Go net/http server, without net/http: one goroutine
 * accepts, and each connection gets a goroutine that reads requests and
 * answers them as if the calls blocked (gort_read parks the goroutine until
 * the socket is readable, not the thread).
 *
 * The parsing is only what a load generator such as wrk needs. A request is
 * everything up to the blank line that ends its header ("\r\n\r\n"); the
 * method, path and headers are not looked at except for "Connection: close"
 * (answer with the same header, then close) and a body (Content-Length other than 0 or
 * Transfer-Encoding: not supported, answered 400 and closed). Every request
 * gets the same 200 response. Pipelined requests - several in one read -
 * are all answered, and their responses go out in one write; a request cut
 * in the middle by the end of a read waits for the next read. A header that
 * does not fit in the buffer is answered 431 and closed. A connection idle
 * for 60 s is dropped with a read deadline, as net/http's IdleTimeout would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gort.h"

#define SEC 1000000000LL
#define IN_SIZE 4096
#define OUT_SIZE 4096

static const char ok_response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Length: 13\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "Hello, World!";
static const char ok_close[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Length: 13\r\n"
    "Content-Type: text/plain\r\n"
    "Connection: close\r\n"
    "\r\n"
    "Hello, World!";
static const char bad_request[] =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char too_large[] =
    "HTTP/1.1 431 Request Header Fields Too Large\r\n"
    "Content-Length: 0\r\nConnection: close\r\n\r\n";

#define OK_LEN (sizeof ok_response - 1)

/* has_header reports whether the header block [p, end) has a line
 * "name: value" whose value starts with want (both compared without case).
 * The first line (the request line) is skipped. */
static int has_header(const char *p, const char *end, const char *name, const char *want)
{
    size_t nlen = strlen(name), wlen = strlen(want);
    const char *line = memchr(p, '\n', (size_t)(end - p));
    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
            line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            if ((size_t)(eol - v) >= wlen && strncasecmp(v, want, wlen) == 0)
                return 1;
        }
        line = eol < end ? eol : NULL;
    }
    return 0;
}

/* has_body reports whether the request announces a body. */
static int has_body(const char *p, const char *end)
{
    if (has_header(p, end, "Transfer-Encoding", ""))
        return 1;
    return has_header(p, end, "Content-Length", "") &&
           !has_header(p, end, "Content-Length", "0\r");
}

/* put appends a response to out, writing out first if it is full (a long
 * pipeline); -1 if that write failed. */
static int put(int fd, char *out, size_t *olen, const char *resp, size_t rlen)
{
    if (*olen + rlen > OUT_SIZE) {
        if (gort_write(fd, out, *olen) != (ssize_t)*olen)
            return -1;
        *olen = 0;
    }
    memcpy(out + *olen, resp, rlen);
    *olen += rlen;
    return 0;
}

static void serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char in[IN_SIZE], out[OUT_SIZE];
    size_t have = 0;   /* bytes in in[], the start of a request not yet answered */
    for (;;) {
        gort_fd_set_read_deadline(fd, gort_nanotime() + 60 * SEC);
        ssize_t n = gort_read(fd, in + have, sizeof in - have);
        if (n <= 0)   /* EOF, a reset or the idle deadline */
            break;
        have += (size_t)n;

        /* Answer every complete request in the buffer. */
        size_t start = 0, olen = 0;
        int close_after = 0;
        for (;;) {
            char *end = memmem(in + start, have - start, "\r\n\r\n", 4);
            if (!end)
                break;
            end += 4;
            if (has_body(in + start, end)) {
                if (put(fd, out, &olen, bad_request, sizeof bad_request - 1) < 0)
                    goto done;
                close_after = 1;
                break;
            }
            close_after = has_header(in + start, end, "Connection", "close");
            int r = close_after ? put(fd, out, &olen, ok_close, sizeof ok_close - 1)
                                : put(fd, out, &olen, ok_response, OK_LEN);
            if (r < 0)
                goto done;
            start = (size_t)(end - in);
            if (close_after)
                break;
        }
        if (!close_after && start == 0 && have == sizeof in) {
            if (put(fd, out, &olen, too_large, sizeof too_large - 1) < 0)
                goto done;
            close_after = 1;
        }
        if (olen > 0 && gort_write(fd, out, olen) != (ssize_t)olen)
            break;
        if (close_after)
            break;
        /* Keep the unanswered part of a request for the next read. */
        memmove(in, in + start, have - start);
        have -= start;
    }
done:
    gort_close(fd);
}

typedef struct opts {
    int port;
    int procs;
} opts;

static void run(void *arg)
{
    opts *o = arg;
    if (o->procs > 0)
        gort_gomaxprocs(o->procs);
    int lfd = gort_listen_tcp(NULL, o->port);
    if (lfd < 0) {
        fprintf(stderr, "http_hello: listen: %s\n", strerror(errno));
        exit(1);
    }
    printf("http_hello: listening on port %d, GOMAXPROCS %d\n", o->port, gort_gomaxprocs(0));
    fflush(stdout);
    for (;;) {
        int fd = gort_accept(lfd, NULL, NULL);
        if (fd >= 0) {
            gort_go(serve_conn, (void *)(intptr_t)fd);
        } else if (errno == EMFILE || errno == ENFILE) {
            gort_sleep(SEC / 100);   /* out of fds: back off, as net/http does */
        } else {
            fprintf(stderr, "http_hello: accept: %s\n", strerror(errno));
            return;
        }
    }
}

int main(int argc, char **argv)
{
    opts o = {8080, 0};
    if (argc > 1)
        o.port = atoi(argv[1]);
    if (argc > 2)
        o.procs = atoi(argv[2]);
    return gort_main(run, &o);
}
