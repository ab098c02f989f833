/* echoload.c - a closed-loop load generator for a TCP echo server.
 *
 *   echoload [-c CONNS] [-t THREADS] [-d SECONDS] [-s SIZE] HOST PORT
 *
 * CONNS connections (default 100) are split over THREADS plain threads
 * (default 2, as wrk -t2). Each connection sends a SIZE-byte message
 * (default 64), waits until all SIZE bytes have come back, checks them, and
 * sends the next one at once: one request in flight per connection, as wrk
 * does for HTTP. Each thread waits on its connections with one epoll set
 * (level-triggered, non-blocking sockets), so a thread never blocks on a
 * single connection.
 *
 * Every connection is established before the clock starts; the run lasts
 * SECONDS (default 5). A request counts when its echo has fully arrived
 * inside the run; its latency is the time from the send to the last byte
 * back. Latencies go into a log-linear histogram (64 sub-buckets per power
 * of two of nanoseconds, so a percentile is within 1.6% of the true value),
 * one per thread, merged at the end.
 *
 * Each message carries its connection number and sequence number, so an
 * echo that comes back wrong (bytes from another connection, a stale or
 * duplicated message) is caught. A wrong echo, a connection the server
 * closes or resets, or a failed connect is an error: it is counted, the
 * connection is dropped, and the exit status is 1.
 *
 * Output: a human summary on stderr, and as the last stdout line
 *   result <requests/s> <p50 us> <p99 us> <max us> <errors>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 16384

/* ---- histogram ------------------------------------------------------------ */

#define SUB_BITS 6
#define SUB (1 << SUB_BITS)
#define NBUCKETS (64 * SUB)

typedef struct hist {
    uint64_t count[NBUCKETS];
    uint64_t total;
    uint64_t max;
} hist;

/* Values below SUB are exact; above, a value with its top bit at position
 * b lands in one of SUB buckets of width 2^(b - SUB_BITS). */
static int bucket_of(uint64_t v)
{
    if (v < SUB)
        return (int)v;
    int b = 63 - __builtin_clzll(v);
    int shift = b - SUB_BITS;
    return (shift + 1) * SUB + (int)((v >> shift) & (SUB - 1));
}

/* The largest value that maps to bucket i: a percentile is reported as the
 * upper edge of its bucket, never below the true value. */
static uint64_t bucket_top(int i)
{
    if (i < SUB)
        return (uint64_t)i;
    int shift = i / SUB - 1;
    uint64_t low = ((uint64_t)(SUB + i % SUB)) << shift;
    return low + ((uint64_t)1 << shift) - 1;
}

static void hist_add(hist *h, uint64_t v)
{
    h->count[bucket_of(v)]++;
    h->total++;
    if (v > h->max)
        h->max = v;
}

static uint64_t hist_percentile(const hist *h, double p)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->total + 0.5);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < NBUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank)
            return bucket_top(i) < h->max ? bucket_top(i) : h->max;
    }
    return h->max;
}

/* ---- connections ------------------------------------------------------------ */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct conn {
    int fd;
    int id;
    uint64_t seq;
    size_t got;           /* bytes of the current echo received */
    int64_t sent_at;
    char msg[MAX_SIZE];   /* the message in flight */
    char back[MAX_SIZE];  /* its echo so far */
} conn;

typedef struct worker {
    pthread_t thread;
    conn *conns;
    int n;
    hist h;
    uint64_t done;     /* requests completed inside the run */
    uint64_t errors;
} worker;

static size_t msg_size = 64;
static int64_t start_at, stop_at;
static pthread_barrier_t ready;

static void fill(conn *c)
{
    /* a readable, unique header, then a pattern that depends on it */
    int k = snprintf(c->msg, msg_size, "conn %d seq %llu ", c->id, (unsigned long long)c->seq);
    if (k < 0 || (size_t)k > msg_size)
        k = (int)msg_size;
    for (size_t i = (size_t)k; i < msg_size; i++)
        c->msg[i] = (char)('a' + (c->id + c->seq + i) % 26);
}

static int send_msg(conn *c)
{
    fill(c);
    c->got = 0;
    c->sent_at = now_ns();
    ssize_t n = send(c->fd, c->msg, msg_size, MSG_NOSIGNAL);
    /* The send buffer is empty (the previous echo is back), so a small
     * message always goes whole. */
    return n == (ssize_t)msg_size ? 0 : -1;
}

static void drop(worker *w, conn *c, const char *why)
{
    if (w->errors < 5)
        fprintf(stderr, "echoload: conn %d seq %llu: %s\n", c->id, (unsigned long long)c->seq, why);
    w->errors++;
    close(c->fd);
    c->fd = -1;
}

static void *work(void *arg)
{
    worker *w = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("echoload: epoll_create1");
        exit(2);
    }
    for (int i = 0; i < w->n; i++) {
        if (w->conns[i].fd < 0)
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, w->conns[i].fd, &ev);
    }
    pthread_barrier_wait(&ready);
    for (int i = 0; i < w->n; i++)
        if (w->conns[i].fd >= 0 && send_msg(&w->conns[i]) < 0)
            drop(w, &w->conns[i], "send failed");

    struct epoll_event evs[256];
    for (;;) {
        int64_t t = now_ns();
        if (t >= stop_at)
            break;
        int timeout_ms = (int)((stop_at - t) / 1000000) + 1;
        if (timeout_ms > 50)
            timeout_ms = 50;
        int k = epoll_wait(ep, evs, 256, timeout_ms);
        if (k < 0 && errno != EINTR) {
            perror("echoload: epoll_wait");
            exit(2);
        }
        for (int e = 0; e < k; e++) {
            conn *c = evs[e].data.ptr;
            if (c->fd < 0)
                continue;
            ssize_t n = recv(c->fd, c->back + c->got, msg_size - c->got, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n <= 0) {
                drop(w, c, n == 0 ? "closed by the server" : strerror(errno));
                continue;
            }
            c->got += (size_t)n;
            if (c->got < msg_size)
                continue;
            int64_t done_at = now_ns();
            if (memcmp(c->msg, c->back, msg_size) != 0) {
                drop(w, c, "wrong echo");
                continue;
            }
            if (done_at <= stop_at) {
                w->done++;
                hist_add(&w->h, (uint64_t)(done_at - c->sent_at));
            }
            c->seq++;
            if (send_msg(c) < 0)
                drop(w, c, "send failed");
        }
    }
    close(ep);
    return NULL;
}

static int dial(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void usage(void)
{
    fprintf(stderr, "usage: echoload [-c CONNS] [-t THREADS] [-d SECONDS] [-s SIZE] HOST PORT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int nconn = 100, nthreads = 2;
    double seconds = 5;
    int opt;
    while ((opt = getopt(argc, argv, "c:t:d:s:")) != -1) {
        switch (opt) {
        case 'c': nconn = atoi(optarg); break;
        case 't': nthreads = atoi(optarg); break;
        case 'd': seconds = atof(optarg); break;
        case 's': msg_size = (size_t)atol(optarg); break;
        default: usage();
        }
    }
    if (argc - optind != 2 || nconn < 1 || nthreads < 1 || seconds <= 0 || msg_size < 1 ||
        msg_size > MAX_SIZE)
        usage();
    if (nthreads > nconn)
        nthreads = nconn;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "echoload: %s:%s: %s\n", argv[optind], argv[optind + 1], gai_strerror(rc));
        return 2;
    }

    conn *conns = calloc((size_t)nconn, sizeof *conns);
    worker *workers = calloc((size_t)nthreads, sizeof *workers);
    if (!conns || !workers) {
        fprintf(stderr, "echoload: out of memory\n");
        return 2;
    }
    uint64_t connect_errors = 0;
    for (int i = 0; i < nconn; i++) {
        conns[i].id = i;
        conns[i].fd = dial(ai);
        if (conns[i].fd < 0) {
            if (connect_errors++ < 5)
                fprintf(stderr, "echoload: connect %d: %s\n", i, strerror(errno));
        }
    }
    freeaddrinfo(ai);

    /* Each worker gets a contiguous slice of the connections. */
    int per = nconn / nthreads, extra = nconn % nthreads, at = 0;
    for (int t = 0; t < nthreads; t++) {
        workers[t].conns = conns + at;
        workers[t].n = per + (t < extra);
        at += workers[t].n;
    }

    pthread_barrier_init(&ready, NULL, (unsigned)nthreads + 1);
    for (int t = 0; t < nthreads; t++)
        pthread_create(&workers[t].thread, NULL, work, &workers[t]);
    start_at = now_ns();
    stop_at = start_at + (int64_t)(seconds * 1e9);
    pthread_barrier_wait(&ready);
    for (int t = 0; t < nthreads; t++)
        pthread_join(workers[t].thread, NULL);
    int64_t elapsed = stop_at - start_at;

    hist *all = calloc(1, sizeof *all);
    uint64_t done = 0, errors = connect_errors;
    for (int t = 0; t < nthreads; t++) {
        done += workers[t].done;
        errors += workers[t].errors;
        for (int i = 0; i < NBUCKETS; i++)
            all->count[i] += workers[t].h.count[i];
        all->total += workers[t].h.total;
        if (workers[t].h.max > all->max)
            all->max = workers[t].h.max;
    }
    for (int i = 0; i < nconn; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);

    double rps = (double)done / ((double)elapsed / 1e9);
    double p50 = (double)hist_percentile(all, 50) / 1e3;
    double p99 = (double)hist_percentile(all, 99) / 1e3;
    double p90 = (double)hist_percentile(all, 90) / 1e3;
    double p999 = (double)hist_percentile(all, 99.9) / 1e3;
    double mx = (double)all->max / 1e3;
    fprintf(stderr,
            "echoload: %d conns, %d threads, %.1f s, %zu-byte messages: %llu requests, "
            "%.0f req/s, latency p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us, "
            "%llu errors\n",
            nconn, nthreads, seconds, msg_size, (unsigned long long)done, rps, p50, p90, p99, p999, mx,
            (unsigned long long)errors);
    printf("result %.0f %.1f %.1f %.1f %llu\n", rps, p50, p99, mx, (unsigned long long)errors);
    return errors || done == 0 ? 1 : 0;
}
