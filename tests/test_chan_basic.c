/* test_chan_basic.c - channels (gort.h, Go's chan).
 *
 * Unbuffered handoff: a send completes only once a receiver has taken the
 * value (and a receive only once a sender came), and the receiver's
 * destination holds the value when the send returns. Buffered channels are
 * FIFO, also across the ring's wrap-around and with a sender blocked on a
 * full buffer; len and cap; a closed channel drains its buffer, then
 * receives return false with the element zeroed (again and again); elem
 * NULL on receive discards the value; zero-size elements; send on a
 * closed channel, close of a closed channel and close of a NULL channel
 * panic with Go's messages and can be recovered; close wakes every blocked
 * receiver (false, zeroed) and every blocked sender (which panics); many
 * senders and receivers at GOMAXPROCS 1 and 2 lose and duplicate nothing
 * and keep each sender's order; a NULL channel blocks forever (send,
 * receive, select) while the main goroutine returns normally.
 *
 * Where a test needs a goroutine to be blocked before it acts, it runs at
 * GOMAXPROCS=1: the scheduler does not preempt, so when the main goroutine
 * runs again after the other one raised its flag, the other one has parked.
 *
 * GORT_TEST_SCALE (a positive number, default 1) scales the counts; without
 * it, under valgrind and TSan they are a tenth.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"
#include "gort_test.h"

static void check_panics(const char *what, gort_fn fn, void *arg, const char *want)
{
    bool completed = true;
    char *m = try_call(fn, arg, &completed);
    CHECK_MSG(m && strcmp(m, want) == 0, "%s: recovered \"%s\", want \"%s\"", what,
              m ? m : "(nothing)", want);
    CHECK_MSG(!completed, "%s: the code after the panicking call ran", what);
    free(m);
}

/* ---- unbuffered handoff --------------------------------------------------- */

static gort_chan *hc;
static atomic_int h_before, h_after;
static int64_t h_val;

static void handoff_sender(void *arg)
{
    int64_t v = (int64_t)(intptr_t)arg;
    atomic_store(&h_before, 1);
    gort_chan_send(hc, &v);
    atomic_store(&h_after, 1);
}

static void handoff_receiver(void *arg)
{
    (void)arg;
    atomic_store(&h_before, 1);
    bool ok = gort_chan_recv(hc, &h_val);
    atomic_store(&h_after, ok ? 1 : 2);
}

static void test_unbuffered_handoff(void)
{
    gort_gomaxprocs(1);
    hc = gort_chan_make(sizeof(int64_t), 0);
    REQUIRE(hc);
    CHECK(gort_chan_len(hc) == 0);
    CHECK(gort_chan_cap(hc) == 0);

    /* send blocks until the receive */
    atomic_store(&h_before, 0);
    atomic_store(&h_after, 0);
    gort_go(handoff_sender, (void *)(intptr_t)7);
    CHECK(wait_ge(&h_before, 1, 30));
    gort_sleep(20 * MS);
    CHECK_MSG(atomic_load(&h_after) == 0, "unbuffered send completed with no receiver");
    CHECK(gort_chan_len(hc) == 0);
    int64_t v = 0;
    CHECK(gort_chan_recv(hc, &v));
    CHECK_MSG(v == 7, "received %" PRId64 ", want 7", v);
    CHECK(wait_ge(&h_after, 1, 30));

    /* receive blocks until the send; the value is in place when the send
     * returns (the receive is synchronized before the send completes) */
    atomic_store(&h_before, 0);
    atomic_store(&h_after, 0);
    h_val = 0;
    gort_go(handoff_receiver, NULL);
    CHECK(wait_ge(&h_before, 1, 30));
    gort_sleep(20 * MS);
    CHECK_MSG(atomic_load(&h_after) == 0, "unbuffered receive completed with no sender");
    v = 9;
    gort_chan_send(hc, &v);
    CHECK_MSG(h_val == 9, "after the send returned the receiver's element holds %" PRId64
              ", want 9", h_val);
    CHECK(wait_ge(&h_after, 1, 30));
    CHECK(atomic_load(&h_after) == 1);
}

/* ping-pong: two unbuffered channels, values in order */

typedef struct {
    gort_chan *ping, *pong;
    long n;
    atomic_int done;
    int bad;
} pp_t;

static void pp_echo(void *arg)
{
    pp_t *p = arg;
    for (long i = 0; i < p->n; i++) {
        int64_t v = -1;
        if (!gort_chan_recv(p->ping, &v) || v != i)
            p->bad++;
        v = i * 2;
        gort_chan_send(p->pong, &v);
    }
    atomic_store(&p->done, 1);
}

static void test_pingpong(int procs)
{
    gort_gomaxprocs(procs);
    pp_t p = {gort_chan_make(sizeof(int64_t), 0), gort_chan_make(sizeof(int64_t), 0),
              scaled(20000), 0, 0};
    gort_go(pp_echo, &p);
    int bad = 0;
    for (long i = 0; i < p.n; i++) {
        gort_chan_send(p.ping, &(int64_t){i});
        int64_t v = -1;
        if (!gort_chan_recv(p.pong, &v) || v != i * 2)
            bad++;
    }
    CHECK(wait_ge(&p.done, 1, 30));
    CHECK_MSG(bad == 0 && p.bad == 0, "ping-pong at GOMAXPROCS=%d: %d/%d wrong values", procs,
              bad, p.bad);
}

/* ---- buffered --------------------------------------------------------------- */

static void test_buffered_fifo(void)
{
    gort_gomaxprocs(1);
    gort_chan *c = gort_chan_make(sizeof(int), 5);
    REQUIRE(c);
    CHECK(gort_chan_cap(c) == 5);
    CHECK(gort_chan_len(c) == 0);
    for (int i = 0; i < 5; i++) {
        gort_chan_send(c, &i);
        CHECK(gort_chan_len(c) == (size_t)i + 1);
    }
    CHECK(gort_chan_cap(c) == 5);
    for (int i = 0; i < 5; i++) {
        int v = -1;
        CHECK(gort_chan_recv(c, &v));
        CHECK_MSG(v == i, "buffered receive %d got %d", i, v);
        CHECK(gort_chan_len(c) == (size_t)(4 - i));
    }

    /* wrap around the ring many times with a varying fill */
    int next_send = 0, next_recv = 0, bad = 0;
    unsigned r = 12345;
    for (int round = 0; round < 2000; round++) {
        r = r * 1103515245u + 12345u;
        int ns = (int)((r >> 16) % 6);
        for (int k = 0; k < ns && gort_chan_len(c) < 5; k++) {
            gort_chan_send(c, &next_send);
            next_send++;
        }
        r = r * 1103515245u + 12345u;
        int nr = (int)((r >> 16) % 6);
        for (int k = 0; k < nr && gort_chan_len(c) > 0; k++) {
            int v = -1;
            if (!gort_chan_recv(c, &v) || v != next_recv)
                bad++;
            next_recv++;
        }
        if (gort_chan_len(c) != (size_t)(next_send - next_recv))
            bad++;
    }
    CHECK_MSG(bad == 0, "buffered ring: %d mismatches", bad);
    while (gort_chan_len(c) > 0) {
        int v = -1;
        CHECK(gort_chan_recv(c, &v) && v == next_recv);
        next_recv++;
    }
    CHECK(next_recv == next_send);
}

static gort_chan *bc;
static atomic_int b_before, b_after;

static void full_sender(void *arg)
{
    int v = (int)(intptr_t)arg;
    atomic_store(&b_before, 1);
    gort_chan_send(bc, &v);
    atomic_store(&b_after, 1);
}

static int b_got;
static void empty_receiver(void *arg)
{
    (void)arg;
    atomic_store(&b_before, 1);
    bool ok = gort_chan_recv(bc, &b_got);
    atomic_store(&b_after, ok ? 1 : 2);
}

static void test_buffered_blocking(void)
{
    gort_gomaxprocs(1);
    bc = gort_chan_make(sizeof(int), 2);
    int v = 0;
    gort_chan_send(bc, &v);
    v = 1;
    gort_chan_send(bc, &v);
    CHECK(gort_chan_len(bc) == 2);

    /* a send on a full buffer blocks; its value goes behind the buffer */
    atomic_store(&b_before, 0);
    atomic_store(&b_after, 0);
    gort_go(full_sender, (void *)(intptr_t)2);
    CHECK(wait_ge(&b_before, 1, 30));
    gort_sleep(20 * MS);
    CHECK_MSG(atomic_load(&b_after) == 0, "send on a full buffered channel did not block");
    CHECK(gort_chan_len(bc) == 2);
    for (int i = 0; i < 3; i++) {
        int got = -1;
        CHECK(gort_chan_recv(bc, &got));
        CHECK_MSG(got == i, "full buffer with a blocked sender: receive %d got %d", i, got);
    }
    CHECK(wait_ge(&b_after, 1, 30));
    CHECK(gort_chan_len(bc) == 0);

    /* a receive on an empty buffer blocks until a send */
    atomic_store(&b_before, 0);
    atomic_store(&b_after, 0);
    b_got = -1;
    gort_go(empty_receiver, NULL);
    CHECK(wait_ge(&b_before, 1, 30));
    gort_sleep(20 * MS);
    CHECK_MSG(atomic_load(&b_after) == 0, "receive on an empty buffered channel did not block");
    v = 42;
    gort_chan_send(bc, &v);
    CHECK(wait_ge(&b_after, 1, 30));
    CHECK(atomic_load(&b_after) == 1 && b_got == 42);
    CHECK(gort_chan_len(bc) == 0);
}

/* large elements are copied whole, through the buffer and directly */
typedef struct {
    uint64_t w[129];
} big_t;

static void fill_big(big_t *b, uint64_t seed)
{
    for (int i = 0; i < 129; i++)
        b->w[i] = seed * 1000003u + (uint64_t)i * 7919u;
}

static int big_ok(const big_t *b, uint64_t seed)
{
    big_t want;
    fill_big(&want, seed);
    return memcmp(b, &want, sizeof want) == 0;
}

static gort_chan *bigc;
static atomic_int big_done;

static void big_sender(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        big_t b;
        fill_big(&b, (uint64_t)i);
        gort_chan_send(bigc, &b);
    }
    atomic_store(&big_done, 1);
}

static void test_big_elements(void)
{
    gort_gomaxprocs(2);
    for (int cap = 0; cap <= 3; cap += 3) {
        bigc = gort_chan_make(sizeof(big_t), (size_t)cap);
        long n = scaled(2000);
        atomic_store(&big_done, 0);
        gort_go(big_sender, (void *)(intptr_t)n);
        int bad = 0;
        for (long i = 0; i < n; i++) {
            big_t b;
            memset(&b, 0x5a, sizeof b);
            if (!gort_chan_recv(bigc, &b) || !big_ok(&b, (uint64_t)i))
                bad++;
        }
        CHECK_MSG(bad == 0, "cap %d: %d large elements corrupted or out of order", cap, bad);
        CHECK(wait_ge(&big_done, 1, 30));
    }
}

static void test_len_cap(void)
{
    gort_chan *u = gort_chan_make(sizeof(int), 0);
    CHECK(gort_chan_len(u) == 0 && gort_chan_cap(u) == 0);
    gort_chan *b = gort_chan_make(sizeof(int), 100);
    CHECK(gort_chan_cap(b) == 100 && gort_chan_len(b) == 0);
    for (int i = 0; i < 100; i++)
        gort_chan_send(b, &i);
    CHECK(gort_chan_len(b) == 100 && gort_chan_cap(b) == 100);
    gort_chan_close(b);
    CHECK_MSG(gort_chan_len(b) == 100, "close changed len to %zu", gort_chan_len(b));
    CHECK(gort_chan_cap(b) == 100);
    /* len and cap of a nil channel are 0, as in Go */
    CHECK(gort_chan_len(NULL) == 0);
    CHECK(gort_chan_cap(NULL) == 0);
}

/* ---- close and receive ------------------------------------------------------- */

static void test_closed_drain(void)
{
    gort_chan *c = gort_chan_make(sizeof(int64_t), 3);
    int64_t v = 11;
    gort_chan_send(c, &v);
    v = 22;
    gort_chan_send(c, &v);
    gort_chan_close(c);
    CHECK(gort_chan_len(c) == 2);
    v = -1;
    CHECK(gort_chan_recv(c, &v) && v == 11);
    v = -1;
    CHECK(gort_chan_recv(c, &v) && v == 22);
    for (int i = 0; i < 3; i++) {
        v = 0x7777;
        bool ok = gort_chan_recv(c, &v);
        CHECK_MSG(!ok, "receive %d from a closed, drained channel returned true", i);
        CHECK_MSG(v == 0, "receive from a closed channel left %" PRId64 ", want zeroed", v);
    }
    CHECK(!gort_chan_recv(c, NULL));
    CHECK(gort_chan_len(c) == 0);

    /* unbuffered: closed means an immediate false */
    gort_chan *u = gort_chan_make(24, 0);
    gort_chan_close(u);
    char buf[24];
    memset(buf, 0xee, sizeof buf);
    CHECK(!gort_chan_recv(u, buf));
    int nz = 0;
    for (size_t i = 0; i < sizeof buf; i++)
        nz += buf[i] != 0;
    CHECK_MSG(nz == 0, "closed unbuffered receive left %d nonzero bytes", nz);

    /* elem NULL discards the value but still takes it */
    gort_chan *d = gort_chan_make(sizeof(int), 2);
    int x = 5;
    gort_chan_send(d, &x);
    x = 6;
    gort_chan_send(d, &x);
    CHECK(gort_chan_recv(d, NULL));
    CHECK(gort_chan_len(d) == 1);
    x = -1;
    CHECK(gort_chan_recv(d, &x) && x == 6);
    gort_chan_close(d);
    CHECK(!gort_chan_recv(d, NULL));
}

static gort_chan *nc;
static atomic_int n_sent;
static void null_elem_sender(void *arg)
{
    (void)arg;
    int v = 77;
    gort_chan_send(nc, &v);
    atomic_store(&n_sent, 1);
}

static void test_recv_null_elem_unbuffered(void)
{
    gort_gomaxprocs(2);
    nc = gort_chan_make(sizeof(int), 0);
    atomic_store(&n_sent, 0);
    gort_go(null_elem_sender, NULL);
    CHECK(gort_chan_recv(nc, NULL));
    CHECK(wait_ge(&n_sent, 1, 30));
}

/* ---- zero-size elements ------------------------------------------------------- */

static gort_chan *zc;
static atomic_int z_count;
static void zero_sender(void *arg)
{
    long n = (long)(intptr_t)arg;
    char dummy = 0;
    for (long i = 0; i < n; i++)
        gort_chan_send(zc, &dummy);
    atomic_fetch_add(&z_count, 1);
}

static void test_zero_size(void)
{
    gort_gomaxprocs(2);
    char dummy = 'q';
    gort_chan *b = gort_chan_make(0, 4);
    REQUIRE(b);
    CHECK(gort_chan_cap(b) == 4);
    for (int i = 0; i < 4; i++)
        gort_chan_send(b, &dummy);
    CHECK(gort_chan_len(b) == 4);
    CHECK(gort_chan_recv(b, &dummy));
    CHECK(gort_chan_recv(b, NULL));
    CHECK(gort_chan_len(b) == 2);
    CHECK_MSG(dummy == 'q', "receiving a zero-size element wrote to the destination");
    gort_chan_close(b);
    CHECK(gort_chan_recv(b, &dummy));
    CHECK(gort_chan_recv(b, &dummy));
    CHECK(!gort_chan_recv(b, &dummy));
    CHECK(dummy == 'q');

    /* unbuffered zero-size: a pure synchronization */
    zc = gort_chan_make(0, 0);
    CHECK(gort_chan_cap(zc) == 0);
    long n = scaled(5000);
    atomic_store(&z_count, 0);
    gort_go(zero_sender, (void *)(intptr_t)n);
    gort_go(zero_sender, (void *)(intptr_t)n);
    long got = 0;
    for (long i = 0; i < 2 * n; i++)
        got += gort_chan_recv(zc, i & 1 ? NULL : &dummy);
    CHECK(got == 2 * n);
    CHECK(wait_ge(&z_count, 2, 30));
    gort_chan_close(zc);
    CHECK(!gort_chan_recv(zc, NULL));
}

/* ---- panics ------------------------------------------------------------------------ */

static void do_send_int(void *arg)
{
    int v = 1;
    gort_chan_send(arg, &v);
}

static void do_close(void *arg)
{
    gort_chan_close(arg);
}

static void test_panics(void)
{
    gort_chan *u = gort_chan_make(sizeof(int), 0);
    gort_chan_close(u);
    check_panics("send on closed unbuffered", do_send_int, u, "send on closed channel");
    check_panics("close of closed unbuffered", do_close, u, "close of closed channel");

    gort_chan *b = gort_chan_make(sizeof(int), 4);
    int v = 3;
    gort_chan_send(b, &v);
    gort_chan_close(b);
    /* room in the buffer does not matter */
    check_panics("send on closed buffered", do_send_int, b, "send on closed channel");
    CHECK_MSG(gort_chan_len(b) == 1, "a send that panicked left len %zu, want 1",
              gort_chan_len(b));
    check_panics("close of closed buffered", do_close, b, "close of closed channel");
    v = -1;
    CHECK(gort_chan_recv(b, &v) && v == 3);
    CHECK(!gort_chan_recv(b, &v));

    check_panics("close of nil", do_close, NULL, "close of nil channel");

    /* the goroutine is fine afterwards: channels still work */
    gort_chan *c = gort_chan_make(sizeof(int), 1);
    v = 8;
    gort_chan_send(c, &v);
    v = 0;
    CHECK(gort_chan_recv(c, &v) && v == 8);
}

/* ---- close wakes everyone blocked ----------------------------------------------------- */

static gort_chan *wc;
static atomic_int w_started, w_done;
static atomic_int w_ok_true, w_nonzero, w_panicked, w_wrongmsg, w_completed;

static void blocked_receiver(void *arg)
{
    (void)arg;
    int64_t v = 0x1234;
    atomic_fetch_add(&w_started, 1);
    bool ok = gort_chan_recv(wc, &v);
    if (ok)
        atomic_fetch_add(&w_ok_true, 1);
    if (v != 0)
        atomic_fetch_add(&w_nonzero, 1);
    atomic_fetch_add(&w_done, 1);
}

static void send_one(void *arg)
{
    (void)arg;
    int64_t v = 5;
    gort_chan_send(wc, &v);
}

static void blocked_sender(void *arg)
{
    (void)arg;
    atomic_fetch_add(&w_started, 1);
    bool completed = false;
    char *m = try_call(send_one, NULL, &completed);
    if (completed)
        atomic_fetch_add(&w_completed, 1);
    if (m) {
        atomic_fetch_add(&w_panicked, 1);
        if (strcmp(m, "send on closed channel") != 0)
            atomic_fetch_add(&w_wrongmsg, 1);
        free(m);
    }
    atomic_fetch_add(&w_done, 1);
}

static void reset_w(void)
{
    atomic_store(&w_started, 0);
    atomic_store(&w_done, 0);
    atomic_store(&w_ok_true, 0);
    atomic_store(&w_nonzero, 0);
    atomic_store(&w_panicked, 0);
    atomic_store(&w_wrongmsg, 0);
    atomic_store(&w_completed, 0);
}

static void test_close_wakes(void)
{
    gort_gomaxprocs(1);
    enum { N = 8 };
    for (int cap = 0; cap <= 2; cap += 2) {
        /* receivers on an empty channel */
        reset_w();
        wc = gort_chan_make(sizeof(int64_t), (size_t)cap);
        for (int i = 0; i < N; i++)
            gort_go(blocked_receiver, NULL);
        CHECK(wait_ge(&w_started, N, 30));
        gort_sleep(10 * MS);
        CHECK_MSG(atomic_load(&w_done) == 0, "cap %d: a receiver did not block", cap);
        gort_chan_close(wc);
        CHECK_MSG(wait_ge(&w_done, N, 30), "cap %d: close woke %d of %d blocked receivers", cap,
                  atomic_load(&w_done), N);
        CHECK_MSG(atomic_load(&w_ok_true) == 0, "cap %d: %d receivers woken by close got ok",
                  cap, atomic_load(&w_ok_true));
        CHECK_MSG(atomic_load(&w_nonzero) == 0, "cap %d: %d receivers woken by close got a "
                  "non-zero element", cap, atomic_load(&w_nonzero));

        /* senders on a full channel */
        reset_w();
        wc = gort_chan_make(sizeof(int64_t), (size_t)cap);
        for (int i = 0; i < cap; i++)
            gort_chan_send(wc, &(int64_t){100 + i});
        for (int i = 0; i < N; i++)
            gort_go(blocked_sender, NULL);
        CHECK(wait_ge(&w_started, N, 30));
        gort_sleep(10 * MS);
        CHECK_MSG(atomic_load(&w_done) == 0, "cap %d: a sender did not block", cap);
        gort_chan_close(wc);
        CHECK_MSG(wait_ge(&w_done, N, 30), "cap %d: close woke %d of %d blocked senders", cap,
                  atomic_load(&w_done), N);
        CHECK_MSG(atomic_load(&w_panicked) == N, "cap %d: %d of %d blocked senders panicked",
                  cap, atomic_load(&w_panicked), N);
        CHECK(atomic_load(&w_wrongmsg) == 0);
        CHECK(atomic_load(&w_completed) == 0);
        /* the buffered values are still there, then false */
        for (int i = 0; i < cap; i++) {
            int64_t v = -1;
            CHECK(gort_chan_recv(wc, &v) && v == 100 + i);
        }
        int64_t v = 3;
        CHECK(!gort_chan_recv(wc, &v) && v == 0);
    }
}

/* ---- many senders and receivers -------------------------------------------------------- */

enum { MS_SENDERS = 8, MS_RECEIVERS = 4 };

typedef struct {
    gort_chan *c, *done;
    long per_sender;
    atomic_int senders_left;
    atomic_uchar *seen;   /* [MS_SENDERS * per_sender] */
    atomic_int order_bad, range_bad;
} many_t;

static many_t mt;

static void many_sender(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (long i = 0; i < mt.per_sender; i++) {
        uint64_t v = (uint64_t)id << 32 | (uint64_t)i;
        gort_chan_send(mt.c, &v);
        if ((i & 63) == 0)
            gort_yield();
    }
    if (atomic_fetch_sub(&mt.senders_left, 1) == 1)
        gort_chan_close(mt.c);
}

static void many_receiver(void *arg)
{
    (void)arg;
    long last[MS_SENDERS];
    for (int i = 0; i < MS_SENDERS; i++)
        last[i] = -1;
    uint64_t v;
    long n = 0;
    while (gort_chan_recv(mt.c, &v)) {
        int id = (int)(v >> 32);
        long seq = (long)(uint32_t)v;
        if (id < 0 || id >= MS_SENDERS || seq >= mt.per_sender) {
            atomic_fetch_add(&mt.range_bad, 1);
            continue;
        }
        if (seq <= last[id])
            atomic_fetch_add(&mt.order_bad, 1);
        last[id] = seq;
        atomic_fetch_add(&mt.seen[id * mt.per_sender + seq], 1);
        n++;
    }
    gort_chan_send(mt.done, &n);
}

static void test_many(int procs, size_t cap)
{
    gort_gomaxprocs(procs);
    mt.c = gort_chan_make(sizeof(uint64_t), cap);
    mt.done = gort_chan_make(sizeof(long), 0);
    mt.per_sender = scaled(5000);
    atomic_store(&mt.senders_left, MS_SENDERS);
    atomic_store(&mt.order_bad, 0);
    atomic_store(&mt.range_bad, 0);
    size_t total = (size_t)MS_SENDERS * (size_t)mt.per_sender;
    mt.seen = calloc(total, sizeof *mt.seen);
    REQUIRE(mt.seen);
    for (int i = 0; i < MS_RECEIVERS; i++)
        gort_go(many_receiver, NULL);
    for (int i = 0; i < MS_SENDERS; i++)
        gort_go(many_sender, (void *)(intptr_t)i);
    long sum = 0;
    for (int i = 0; i < MS_RECEIVERS; i++) {
        long n = 0;
        CHECK(gort_chan_recv(mt.done, &n));
        sum += n;
    }
    long lost = 0, dup = 0;
    for (size_t i = 0; i < total; i++) {
        lost += mt.seen[i] == 0;
        dup += mt.seen[i] > 1;
    }
    CHECK_MSG(sum == (long)total && lost == 0 && dup == 0 && mt.range_bad == 0,
              "GOMAXPROCS=%d cap %zu: received %ld of %zu, %ld lost, %ld duplicated, %d "
              "garbage", procs, cap, sum, total, lost, dup, atomic_load(&mt.range_bad));
    CHECK_MSG(mt.order_bad == 0, "GOMAXPROCS=%d cap %zu: %d values out of their sender's "
              "order", procs, cap, atomic_load(&mt.order_bad));
    free(mt.seen);
}

/* ---- nil channels block forever ---------------------------------------------------------- */

static atomic_int nil_started, nil_returned;

static void nil_recv_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&nil_started, 1);
    int v;
    gort_chan_recv(NULL, &v);
    atomic_fetch_add(&nil_returned, 1);
}

static void nil_send_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&nil_started, 1);
    int v = 1;
    gort_chan_send(NULL, &v);
    atomic_fetch_add(&nil_returned, 1);
}

static void nil_select_fn(void *arg)
{
    (void)arg;
    int v = 0;
    gort_case cs[2] = {{NULL, GORT_RECV, &v, false}, {NULL, GORT_SEND, &v, false}};
    atomic_fetch_add(&nil_started, 1);
    gort_select(cs, 2, true);
    atomic_fetch_add(&nil_returned, 1);
}

static void test_nil_blocks(void)
{
    gort_gomaxprocs(2);
    gort_go(nil_recv_fn, NULL);
    gort_go(nil_send_fn, NULL);
    gort_go(nil_select_fn, NULL);
    CHECK(wait_ge(&nil_started, 3, 30));
    gort_sleep(50 * MS);
    CHECK_MSG(atomic_load(&nil_returned) == 0, "%d operations on a nil channel returned",
              atomic_load(&nil_returned));
    /* main returns now with them blocked: gort_main must return 0 */
}

static void main_fn(void *arg)
{
    (void)arg;
    test_unbuffered_handoff();
    test_pingpong(1);
    test_pingpong(2);
    test_buffered_fifo();
    test_buffered_blocking();
    test_big_elements();
    test_len_cap();
    test_closed_drain();
    test_recv_null_elem_unbuffered();
    test_zero_size();
    test_panics();
    test_close_wakes();
    size_t caps[] = {0, 1, 16};
    for (int p = 1; p <= 2; p++)
        for (int k = 0; k < 3; k++)
            test_many(p, caps[k]);
    test_nil_blocks();
}

int main(void)
{
    int rc = gort_main(main_fn, NULL);
    CHECK_MSG(rc == 0, "gort_main returned %d", rc);
    CHECK(atomic_load(&nil_returned) == 0);
    return test_done();
}
