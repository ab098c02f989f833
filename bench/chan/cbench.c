/* cbench.c - channel and sync benchmarks against gort (the twin of cbench.go).
 *
 *   cbench pingpong N  main and an echo goroutine bounce an int64 over two
 *                      unbuffered channels N times.
 *                      result: ns per round trip
 *   cbench buffered N  a producer sends 0..N-1 on a channel of capacity
 *                      1024 and closes it; main receives until closed.
 *                      result: ns per item
 *   cbench select4 N   4 producers each send N/4 values on their own
 *                      unbuffered channel and close it; main selects over
 *                      the 4 and drops (sets to NULL) each closed one.
 *                      result: ns per message
 *   cbench skynet N    skynet: each node spawns 10 children down to N
 *                      leaves (N a power of 10); each leaf sends its number,
 *                      each node sums its children's and sends that up.
 *                      result: total milliseconds
 *   cbench mutex N     8 goroutines each lock, increment a shared counter
 *                      and unlock N/8 times; main waits on a wait group.
 *                      result: ns per lock+unlock
 *
 * GOMAXPROCS comes from the environment, as in Go. The last line printed
 * on stdout is "result <number>"; details go to stderr. A wrong sum or count
 * exits with status 1. cbench.go does the same steps in the same order; keep
 * the two in step when editing.
 */
#include <gort.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    BUF_CAP = 1024,      /* buffered: channel capacity */
    SELECT_CHANS = 4,    /* select4: producers and channels */
    SELECT_CAP = 0,      /* select4: capacity of each channel */
    SKYNET_DIV = 10,     /* skynet: children per node */
    MUTEX_WORKERS = 8,   /* mutex: goroutines sharing the lock */
};

struct args {
    const char *mode;
    int64_t n;
};

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* ---- pingpong ----------------------------------------------------------- */

struct pingpong {
    gort_chan *ping, *pong;
    int64_t n;
};

static void pingpong_echo(void *arg)
{
    struct pingpong *p = arg;
    for (int64_t i = 0; i < p->n; i++) {
        int64_t v;
        gort_chan_recv(p->ping, &v);
        v++;
        gort_chan_send(p->pong, &v);
    }
}

static void bench_pingpong(int64_t n)
{
    struct pingpong p = { gort_chan_make(sizeof(int64_t), 0), gort_chan_make(sizeof(int64_t), 0), n };
    int64_t sum = 0;
    int64_t t0 = gort_nanotime();
    gort_go(pingpong_echo, &p);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = i;
        gort_chan_send(p.ping, &v);
        gort_chan_recv(p.pong, &v);
        sum += v;
    }
    int64_t t1 = gort_nanotime();
    if (sum != n * (n + 1) / 2)
        fail("pingpong: sum %lld, want %lld", (long long)sum, (long long)(n * (n + 1) / 2));
    fprintf(stderr, "pingpong: %lld round trips in %.3f s\n", (long long)n, (double)(t1 - t0) / 1e9);
    printf("result %.2f\n", (double)(t1 - t0) / (double)n);
}

/* ---- buffered ----------------------------------------------------------- */

struct producer {
    gort_chan *c;
    int64_t n;
};

static void buffered_producer(void *arg)
{
    struct producer *p = arg;
    for (int64_t i = 0; i < p->n; i++) {
        int64_t v = i;
        gort_chan_send(p->c, &v);
    }
    gort_chan_close(p->c);
}

static void bench_buffered(int64_t n)
{
    struct producer p = { gort_chan_make(sizeof(int64_t), BUF_CAP), n };
    int64_t sum = 0, got = 0;
    int64_t t0 = gort_nanotime();
    gort_go(buffered_producer, &p);
    for (;;) {
        int64_t v;
        bool ok = gort_chan_recv(p.c, &v);
        if (!ok)
            break;
        sum += v;
        got++;
    }
    int64_t t1 = gort_nanotime();
    if (got != n || sum != n * (n - 1) / 2)
        fail("buffered: %lld items, sum %lld; want %lld, %lld", (long long)got, (long long)sum,
             (long long)n, (long long)(n * (n - 1) / 2));
    fprintf(stderr, "buffered: %lld items (cap %d) in %.3f s\n", (long long)n, BUF_CAP,
            (double)(t1 - t0) / 1e9);
    printf("result %.2f\n", (double)(t1 - t0) / (double)n);
}

/* ---- select4 ------------------------------------------------------------ */

static void select_producer(void *arg)
{
    struct producer *p = arg;
    for (int64_t i = 0; i < p->n; i++) {
        int64_t v = i;
        gort_chan_send(p->c, &v);
    }
    gort_chan_close(p->c);
}

static void bench_select4(int64_t n)
{
    int64_t q = n / SELECT_CHANS;
    struct producer prod[SELECT_CHANS];
    for (int i = 0; i < SELECT_CHANS; i++)
        prod[i] = (struct producer){ gort_chan_make(sizeof(int64_t), SELECT_CAP), q };
    int64_t sum = 0, got = 0;
    int open = SELECT_CHANS;
    int64_t v;
    gort_case cases[SELECT_CHANS];
    for (int i = 0; i < SELECT_CHANS; i++)
        cases[i] = (gort_case){ .chan = prod[i].c, .dir = GORT_RECV, .elem = &v };
    int64_t t0 = gort_nanotime();
    for (int i = 0; i < SELECT_CHANS; i++)
        gort_go(select_producer, &prod[i]);
    /* A closed channel is replaced by NULL, which select never picks. */
    while (open > 0) {
        int k = gort_select(cases, SELECT_CHANS, true);
        if (!cases[k].ok) {
            cases[k].chan = NULL;
            open--;
            continue;
        }
        sum += v;
        got++;
    }
    int64_t t1 = gort_nanotime();
    if (got != SELECT_CHANS * q || sum != SELECT_CHANS * (q * (q - 1) / 2))
        fail("select4: %lld messages, sum %lld; want %lld, %lld", (long long)got, (long long)sum,
             (long long)(SELECT_CHANS * q), (long long)(SELECT_CHANS * (q * (q - 1) / 2)));
    fprintf(stderr, "select4: %lld messages from %d producers (cap %d) in %.3f s\n",
            (long long)got, SELECT_CHANS, SELECT_CAP, (double)(t1 - t0) / 1e9);
    printf("result %.2f\n", (double)(t1 - t0) / (double)got);
}

/* ---- skynet ------------------------------------------------------------- */

/* A node's arguments live in its parent's frame: the parent returns only
 * after every child has sent its sum, long after the child read them. */
struct skynet_node {
    gort_chan *out;
    int64_t num, size;
};

static void skynet(void *arg)
{
    struct skynet_node *nd = arg;
    gort_chan *out = nd->out;
    int64_t num = nd->num, size = nd->size;
    if (size == 1) {
        gort_chan_send(out, &num);
        return;
    }
    gort_chan *rc = gort_chan_make(sizeof(int64_t), 0);
    struct skynet_node kids[SKYNET_DIV];
    for (int64_t i = 0; i < SKYNET_DIV; i++) {
        kids[i] = (struct skynet_node){ rc, num + i * (size / SKYNET_DIV), size / SKYNET_DIV };
        gort_go(skynet, &kids[i]);
    }
    int64_t sum = 0;
    for (int i = 0; i < SKYNET_DIV; i++) {
        int64_t v;
        gort_chan_recv(rc, &v);
        sum += v;
    }
    gort_chan_send(out, &sum);
}

static void bench_skynet(int64_t n)
{
    for (int64_t s = n; s > 1; s /= SKYNET_DIV)
        if (s % SKYNET_DIV != 0)
            fail("skynet: N must be a power of %d", SKYNET_DIV);
    gort_chan *out = gort_chan_make(sizeof(int64_t), 0);
    struct skynet_node root = { out, 0, n };
    int64_t t0 = gort_nanotime();
    gort_go(skynet, &root);
    int64_t sum;
    gort_chan_recv(out, &sum);
    int64_t t1 = gort_nanotime();
    if (sum != n * (n - 1) / 2)
        fail("skynet: sum %lld, want %lld", (long long)sum, (long long)(n * (n - 1) / 2));
    fprintf(stderr, "skynet: %lld leaves, sum %lld in %.3f s\n", (long long)n, (long long)sum,
            (double)(t1 - t0) / 1e9);
    printf("result %.1f\n", (double)(t1 - t0) / 1e6);
}

/* ---- mutex -------------------------------------------------------------- */

struct mutex_shared {
    gort_mutex mu;
    gort_waitgroup wg;
    int64_t counter;
    int64_t per;
};

static void mutex_worker(void *arg)
{
    struct mutex_shared *s = arg;
    for (int64_t i = 0; i < s->per; i++) {
        gort_mutex_lock(&s->mu);
        s->counter++;
        gort_mutex_unlock(&s->mu);
    }
    gort_waitgroup_done(&s->wg);
}

static void bench_mutex(int64_t n)
{
    static struct mutex_shared s;
    s.per = n / MUTEX_WORKERS;
    int64_t total = s.per * MUTEX_WORKERS;
    int64_t t0 = gort_nanotime();
    gort_waitgroup_add(&s.wg, MUTEX_WORKERS);
    for (int i = 0; i < MUTEX_WORKERS; i++)
        gort_go(mutex_worker, &s);
    gort_waitgroup_wait(&s.wg);
    int64_t t1 = gort_nanotime();
    if (s.counter != total)
        fail("mutex: counter %lld, want %lld", (long long)s.counter, (long long)total);
    fprintf(stderr, "mutex: %d goroutines x %lld lock/unlock in %.3f s\n", MUTEX_WORKERS,
            (long long)s.per, (double)(t1 - t0) / 1e9);
    printf("result %.2f\n", (double)(t1 - t0) / (double)total);
}

/* ---- main --------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*fn)(int64_t);
} modes[] = {
    { "pingpong", bench_pingpong },
    { "buffered", bench_buffered },
    { "select4", bench_select4 },
    { "skynet", bench_skynet },
    { "mutex", bench_mutex },
};

static void (*bench)(int64_t);

static void main_goroutine(void *arg)
{
    struct args *a = arg;
    fprintf(stderr, "gort: GOMAXPROCS=%d\n", gort_gomaxprocs(0));
    bench(a->n);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc == 3)
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
            if (strcmp(argv[1], modes[i].name) == 0)
                bench = modes[i].fn;
    if (bench == NULL) {
        fprintf(stderr, "usage: %s pingpong|buffered|select4|skynet|mutex N\n", argv[0]);
        return 2;
    }
    struct args a = { argv[1], atoll(argv[2]) };
    if (a.n < 8) {
        fprintf(stderr, "cbench: N must be at least 8\n");
        return 2;
    }
    return gort_main(main_goroutine, &a);
}
