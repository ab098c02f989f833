/* test_select.c - gort_select (gort.h, Go's select).
 *
 * Non-blocking select returns -1 when no case is ready (Go's default),
 * including with no cases and with only NULL channels; a blocking select
 * wakes on the case whose channel became ready, with the right value and
 * ok, and leaves nothing behind on the other channels; among ready cases
 * the choice is uniform (each of 4 always-ready cases between 15% and 35%
 * of the time, receive and send alike); send and receive cases mix; the
 * same channel may appear in several cases, and a select never pairs with
 * itself; NULL channels are never ready; a receive case on a closed
 * channel is ready with ok == false and the element zeroed, also when the
 * close wakes a blocked select; a send case on a closed channel panics
 * "send on closed channel" (recoverable), also when the close wakes it;
 * blocking selects on both ends of the same channels pair up.
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

static gort_case rcase(gort_chan *c, void *elem)
{
    return (gort_case){c, GORT_RECV, elem, false};
}

static gort_case scase(gort_chan *c, void *elem)
{
    return (gort_case){c, GORT_SEND, elem, false};
}

/* ---- default ---------------------------------------------------------------- */

static void test_default(void)
{
    gort_chan *u = gort_chan_make(sizeof(int), 0);
    gort_chan *full = gort_chan_make(sizeof(int), 1);
    gort_chan *empty = gort_chan_make(sizeof(int), 3);
    int v = 1, w = 0;
    gort_chan_send(full, &v);

    gort_case cs[4] = {rcase(u, &w), scase(u, &v), scase(full, &v), rcase(empty, &w)};
    CHECK_MSG(gort_select(cs, 4, false) == -1, "nothing ready: want -1");
    CHECK(gort_chan_len(full) == 1 && gort_chan_len(empty) == 0);
    CHECK(gort_select(cs, 1, false) == -1);
    CHECK(gort_select(NULL, 0, false) == -1);

    gort_case nils[3] = {rcase(NULL, &w), scase(NULL, &v), rcase(NULL, NULL)};
    CHECK_MSG(gort_select(nils, 3, false) == -1, "only nil channels with default: want -1");

    /* one ready case is taken */
    gort_case one[3] = {rcase(u, &w), rcase(full, &w), rcase(empty, &w)};
    w = 0;
    int k = gort_select(one, 3, false);
    CHECK_MSG(k == 1, "the one ready case is 1, got %d", k);
    CHECK(w == 1 && one[1].ok);
    CHECK(gort_chan_len(full) == 0);
    CHECK(gort_select(one, 3, false) == -1);

    /* a send case with room */
    gort_case sc[2] = {scase(u, &v), scase(empty, &v)};
    v = 17;
    k = gort_select(sc, 2, false);
    CHECK(k == 1 && gort_chan_len(empty) == 1);
    w = 0;
    CHECK(gort_chan_recv(empty, &w) && w == 17);

    /* elem NULL in a receive case */
    v = 4;
    gort_chan_send(empty, &v);
    gort_case nr[1] = {rcase(empty, NULL)};
    CHECK(gort_select(nr, 1, false) == 0 && nr[0].ok);
    CHECK(gort_chan_len(empty) == 0);
}

/* ---- a blocking select wakes on the right case ----------------------------------- */

enum { NW = 4 };
static gort_chan *wch[NW];
static atomic_int w_go, w_done;

typedef struct {
    int idx;
    int dir;   /* GORT_SEND: the partner sends; GORT_RECV: the partner receives */
    int64_t got;
} partner_t;

static void partner_fn(void *arg)
{
    partner_t *p = arg;
    atomic_fetch_add(&w_go, 1);
    gort_sleep(MS);
    if (p->dir == GORT_SEND) {
        int64_t v = 1000 + p->idx;
        gort_chan_send(wch[p->idx], &v);
    } else {
        p->got = -1;
        if (!gort_chan_recv(wch[p->idx], &p->got))
            p->got = -2;
    }
    atomic_fetch_add(&w_done, 1);
}

static void test_blocking_wakes(int procs)
{
    gort_gomaxprocs(procs);
    for (int i = 0; i < NW; i++)
        wch[i] = gort_chan_make(sizeof(int64_t), 0);
    int reps = (int)scaled(50);
    int bad = 0;
    for (int r = 0; r < reps; r++) {
        int idx = r % NW;
        bool partner_sends = (r / NW) % 2 == 0;
        partner_t p = {idx, partner_sends ? GORT_SEND : GORT_RECV, 0};
        atomic_store(&w_go, 0);
        atomic_store(&w_done, 0);
        gort_go(partner_fn, &p);
        int64_t in[NW], out[NW];
        gort_case cs[NW];
        for (int i = 0; i < NW; i++) {
            in[i] = -1;
            out[i] = 2000 + i;
            cs[i] = partner_sends ? rcase(wch[i], &in[i]) : scase(wch[i], &out[i]);
        }
        int k = gort_select(cs, NW, true);
        if (k != idx) {
            bad++;
            fprintf(stderr, "GOMAXPROCS=%d rep %d: select chose %d, the partner used %d\n",
                    procs, r, k, idx);
        } else if (partner_sends && (in[idx] != 1000 + idx || !cs[idx].ok)) {
            bad++;
            fprintf(stderr, "rep %d: received %" PRId64 " ok=%d\n", r, in[idx], cs[idx].ok);
        }
        CHECK(wait_ge(&w_done, 1, 30));
        if (!partner_sends && p.got != 2000 + idx) {
            bad++;
            fprintf(stderr, "rep %d: partner received %" PRId64 "\n", r, p.got);
        }
        /* the finished select left no waiter behind on any channel */
        for (int i = 0; i < NW; i++) {
            int64_t v = 5;
            gort_case t[2] = {scase(wch[i], &v), rcase(wch[i], &v)};
            if (gort_select(t, 2, false) != -1) {
                bad++;
                fprintf(stderr, "rep %d: a stale waiter of a finished select on channel %d\n",
                        r, i);
            }
        }
    }
    CHECK_MSG(bad == 0, "GOMAXPROCS=%d: %d bad blocking selects", procs, bad);
}

/* ---- uniform choice ------------------------------------------------------------- */

static void test_uniform(bool block, bool sends)
{
    enum { K = 4 };
    gort_chan *c[K];
    int64_t val[K];
    gort_case cs[K];
    for (int i = 0; i < K; i++) {
        c[i] = gort_chan_make(sizeof(int64_t), 1);
        val[i] = i;
        if (!sends)
            gort_chan_send(c[i], &val[i]);
        cs[i] = sends ? scase(c[i], &val[i]) : rcase(c[i], &val[i]);
    }
    long n = scaled(10000);
    if (n < 1000)
        n = 1000;
    long count[K] = {0};
    int bad = 0;
    for (long it = 0; it < n; it++) {
        int k = gort_select(cs, K, block);
        if (k < 0 || k >= K) {
            bad++;
            continue;
        }
        count[k]++;
        /* restore: every case ready again */
        if (sends) {
            int64_t v;
            if (!gort_chan_recv(c[k], &v) || v != k)
                bad++;
        } else {
            if (val[k] != k || !cs[k].ok)
                bad++;
            gort_chan_send(c[k], &val[k]);
        }
    }
    CHECK_MSG(bad == 0, "%d bad selects", bad);
    for (int i = 0; i < K; i++) {
        double f = (double)count[i] / (double)n;
        CHECK_MSG(f >= 0.15 && f <= 0.35,
                  "%s %s select: case %d chosen %.1f%% of %ld times (counts %ld %ld %ld %ld)",
                  block ? "blocking" : "non-blocking", sends ? "send" : "receive", i, f * 100,
                  n, count[0], count[1], count[2], count[3]);
    }
}

/* ---- send and receive mixed ------------------------------------------------------- */

static gort_chan *mx_a, *mx_b;
static atomic_int mx_done;
static int64_t mx_got;

static void mx_receiver(void *arg)
{
    (void)arg;
    gort_sleep(MS);
    mx_got = -1;
    gort_chan_recv(mx_a, &mx_got);
    atomic_store(&mx_done, 1);
}

static void mx_sender(void *arg)
{
    (void)arg;
    gort_sleep(MS);
    int64_t v = 55;
    gort_chan_send(mx_b, &v);
    atomic_store(&mx_done, 1);
}

static void test_mixed(void)
{
    gort_chan *a = gort_chan_make(sizeof(int64_t), 1);
    gort_chan *b = gort_chan_make(sizeof(int64_t), 1);
    int64_t s = 10, r = -1;
    gort_case cs[2] = {scase(a, &s), rcase(b, &r)};

    gort_chan_send(a, &(int64_t){1}); /* a full, b empty: nothing ready */
    CHECK(gort_select(cs, 2, false) == -1);
    gort_chan_send(b, &(int64_t){2}); /* b has a value */
    CHECK(gort_select(cs, 2, false) == 1 && r == 2 && cs[1].ok);
    int64_t t;
    CHECK(gort_chan_recv(a, &t) && t == 1); /* a has room, b empty */
    CHECK(gort_select(cs, 2, false) == 0);
    CHECK(gort_chan_recv(a, &t) && t == 10);

    /* blocking, unbuffered: the partner decides which case */
    mx_a = gort_chan_make(sizeof(int64_t), 0);
    mx_b = gort_chan_make(sizeof(int64_t), 0);
    gort_case bc[2] = {scase(mx_a, &s), rcase(mx_b, &r)};
    atomic_store(&mx_done, 0);
    gort_go(mx_receiver, NULL);
    s = 33;
    int k = gort_select(bc, 2, true);
    CHECK_MSG(k == 0, "a receiver on the send case's channel: select chose %d", k);
    CHECK(wait_ge(&mx_done, 1, 30));
    CHECK(mx_got == 33);

    atomic_store(&mx_done, 0);
    gort_go(mx_sender, NULL);
    r = -1;
    k = gort_select(bc, 2, true);
    CHECK_MSG(k == 1 && r == 55 && bc[1].ok, "a sender on the receive case's channel: select "
              "chose %d, got %" PRId64, k, r);
    CHECK(wait_ge(&mx_done, 1, 30));
}

/* ---- the same channel in several cases ----------------------------------------------- */

static gort_chan *sm_c;
static atomic_int sm_done;
static int64_t sm_got;

static void sm_send_fn(void *arg)
{
    int64_t v = (int64_t)(intptr_t)arg;
    gort_sleep(MS);
    gort_chan_send(sm_c, &v);
    atomic_fetch_add(&sm_done, 1);
}

static void sm_recv_fn(void *arg)
{
    (void)arg;
    gort_sleep(MS);
    sm_got = -1;
    gort_chan_recv(sm_c, &sm_got);
    atomic_fetch_add(&sm_done, 1);
}

static void test_same_channel(void)
{
    /* buffered, one value of two: both directions ready */
    gort_chan *c = gort_chan_make(sizeof(int64_t), 2);
    gort_chan_send(c, &(int64_t){7});
    int64_t r0 = -1, s1 = 7, r2 = -1;
    gort_case cs[3] = {rcase(c, &r0), scase(c, &s1), rcase(c, &r2)};
    long count[3] = {0};
    long n = 3000;
    int bad = 0;
    for (long i = 0; i < n; i++) {
        int k = gort_select(cs, 3, false);
        if (k < 0) {
            bad++;
            continue;
        }
        count[k]++;
        if (k == 1) {
            int64_t t;
            if (!gort_chan_recv(c, &t) || t != 7)
                bad++;
        } else {
            if ((k == 0 ? r0 : r2) != 7)
                bad++;
            gort_chan_send(c, &(int64_t){7});
        }
        if (gort_chan_len(c) != 1)
            bad++;
    }
    CHECK_MSG(bad == 0, "same channel, several cases: %d bad", bad);
    for (int i = 0; i < 3; i++)
        CHECK_MSG(count[i] >= n / 10, "same channel: case %d chosen %ld of %ld times", i,
                  count[i], n);

    /* unbuffered: a select does not pair with itself */
    sm_c = gort_chan_make(sizeof(int64_t), 0);
    int64_t sv = 1, rv = -1;
    gort_case self[2] = {scase(sm_c, &sv), rcase(sm_c, &rv)};
    CHECK_MSG(gort_select(self, 2, false) == -1, "a select paired its send and receive cases");

    /* blocking: the partner picks the direction */
    gort_gomaxprocs(2);
    atomic_store(&sm_done, 0);
    gort_go(sm_send_fn, (void *)(intptr_t)99);
    int k = gort_select(self, 2, true);
    CHECK_MSG(k == 1 && rv == 99, "partner sends: chose %d, got %" PRId64, k, rv);
    CHECK(wait_ge(&sm_done, 1, 30));

    atomic_store(&sm_done, 0);
    sv = 44;
    gort_go(sm_recv_fn, NULL);
    k = gort_select(self, 2, true);
    CHECK_MSG(k == 0, "partner receives: chose %d", k);
    CHECK(wait_ge(&sm_done, 1, 30));
    CHECK(sm_got == 44);

    /* three receive cases on one channel, one value: exactly one case wins,
     * nothing is left waiting */
    int64_t a = -1, b = -1, d = -1;
    gort_case three[3] = {rcase(sm_c, &a), rcase(sm_c, &b), rcase(sm_c, &d)};
    atomic_store(&sm_done, 0);
    gort_go(sm_send_fn, (void *)(intptr_t)5);
    k = gort_select(three, 3, true);
    CHECK(k >= 0 && k < 3);
    CHECK_MSG((a == 5) + (b == 5) + (d == 5) == 1 && (a == -1) + (b == -1) + (d == -1) == 2,
              "three cases on one channel: elems %" PRId64 " %" PRId64 " %" PRId64, a, b, d);
    CHECK(wait_ge(&sm_done, 1, 30));
    CHECK_MSG(gort_select(self, 2, false) == -1, "a stale waiter left on the channel");
}

/* ---- nil channels ------------------------------------------------------------------ */

static gort_chan *nl_c;
static void nl_sender(void *arg)
{
    (void)arg;
    gort_sleep(MS);
    gort_chan_send(nl_c, &(int64_t){12});
}

static void test_nil_cases(void)
{
    gort_chan *c = gort_chan_make(sizeof(int64_t), 1);
    int64_t v = 0, s = 1;
    gort_case cs[4] = {rcase(NULL, &v), scase(NULL, &s), rcase(c, &v), rcase(NULL, NULL)};
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        gort_chan_send(c, &(int64_t){i});
        int k = gort_select(cs, 4, i & 1);
        if (k != 2 || v != i)
            bad++;
    }
    CHECK_MSG(bad == 0, "nil channel cases were chosen %d times", bad);

    /* blocking with nil cases around the one that becomes ready */
    nl_c = gort_chan_make(sizeof(int64_t), 0);
    gort_case bc[3] = {rcase(NULL, &v), rcase(nl_c, &v), scase(NULL, &s)};
    gort_go(nl_sender, NULL);
    v = 0;
    int k = gort_select(bc, 3, true);
    CHECK(k == 1 && v == 12);
}

/* ---- closed channels ------------------------------------------------------------------- */

static gort_chan *cl_a, *cl_b;
static atomic_int cl_state;
static int cl_idx;
static bool cl_ok;
static int64_t cl_val;

static void cl_selector(void *arg)
{
    (void)arg;
    int64_t x = 111, y = 222;
    gort_case cs[2] = {rcase(cl_a, &x), rcase(cl_b, &y)};
    atomic_store(&cl_state, 1);
    cl_idx = gort_select(cs, 2, true);
    cl_ok = cs[cl_idx < 0 ? 0 : cl_idx].ok;
    cl_val = cl_idx == 1 ? y : x;
    atomic_store(&cl_state, 2);
}

typedef struct {
    gort_case *cs;
    int n;
    bool block;
} sel_args;

static void do_select(void *arg)
{
    sel_args *a = arg;
    gort_select(a->cs, a->n, a->block);
}

static atomic_int cs_state;
static char *cs_msg;
static bool cs_completed;

static void cs_selector(void *arg)
{
    (void)arg;
    int64_t x = 1, y = 0;
    gort_case cs[2] = {scase(cl_a, &x), rcase(cl_b, &y)};
    sel_args a = {cs, 2, true};
    atomic_store(&cs_state, 1);
    cs_msg = try_call(do_select, &a, &cs_completed);
    atomic_store(&cs_state, 2);
}

static void test_closed(void)
{
    gort_chan *c = gort_chan_make(sizeof(int64_t), 0);
    gort_chan *open = gort_chan_make(sizeof(int64_t), 0);
    gort_chan_close(c);
    int64_t v = 77, w = 88;
    gort_case cs[2] = {rcase(open, &w), rcase(c, &v)};
    cs[1].ok = true;
    int k = gort_select(cs, 2, false);
    CHECK_MSG(k == 1, "receive case on a closed channel not ready: %d", k);
    CHECK_MSG(!cs[1].ok, "receive case on a closed channel: ok true");
    CHECK_MSG(v == 0, "receive case on a closed channel: elem %" PRId64 ", want 0", v);
    v = 77;
    cs[1].ok = true;
    CHECK(gort_select(cs, 2, true) == 1 && !cs[1].ok && v == 0);

    /* a closed buffered channel gives its values first, with ok */
    gort_chan *b = gort_chan_make(sizeof(int64_t), 2);
    gort_chan_send(b, &(int64_t){31});
    gort_chan_close(b);
    gort_case bc[1] = {rcase(b, &v)};
    CHECK(gort_select(bc, 1, false) == 0 && bc[0].ok && v == 31);
    CHECK(gort_select(bc, 1, false) == 0 && !bc[0].ok && v == 0);

    /* a close wakes a blocked select with ok == false */
    gort_gomaxprocs(1);
    cl_a = gort_chan_make(sizeof(int64_t), 0);
    cl_b = gort_chan_make(sizeof(int64_t), 0);
    atomic_store(&cl_state, 0);
    gort_go(cl_selector, NULL);
    CHECK(wait_ge(&cl_state, 1, 30));
    gort_sleep(5 * MS);
    CHECK(atomic_load(&cl_state) == 1);
    gort_chan_close(cl_b);
    CHECK(wait_ge(&cl_state, 2, 30));
    CHECK_MSG(cl_idx == 1 && !cl_ok && cl_val == 0, "select woken by close: case %d ok %d "
              "elem %" PRId64, cl_idx, cl_ok, cl_val);

    /* send case on a closed channel panics, blocking or not */
    int64_t x = 5;
    gort_case sc[2] = {rcase(open, &w), scase(c, &x)};
    for (int blk = 0; blk <= 1; blk++) {
        sel_args a = {sc, 2, blk};
        bool completed = true;
        char *m = try_call(do_select, &a, &completed);
        CHECK_MSG(m && strcmp(m, "send on closed channel") == 0,
                  "%s select with a send case on a closed channel: recovered \"%s\"",
                  blk ? "blocking" : "non-blocking", m ? m : "(nothing)");
        CHECK(!completed);
        free(m);
    }

    /* a close wakes a select blocked on a send case: it panics */
    cl_a = gort_chan_make(sizeof(int64_t), 0);
    cl_b = gort_chan_make(sizeof(int64_t), 0);
    atomic_store(&cs_state, 0);
    gort_go(cs_selector, NULL);
    CHECK(wait_ge(&cs_state, 1, 30));
    gort_sleep(5 * MS);
    CHECK(atomic_load(&cs_state) == 1);
    gort_chan_close(cl_a);
    CHECK(wait_ge(&cs_state, 2, 30));
    CHECK_MSG(cs_msg && strcmp(cs_msg, "send on closed channel") == 0 && !cs_completed,
              "select blocked on a send case woken by close: recovered \"%s\"",
              cs_msg ? cs_msg : "(nothing)");
    free(cs_msg);
}

/* ---- select against select ------------------------------------------------------------- */

enum { SS_K = 3 };
static gort_chan *ss_c[SS_K];
static atomic_int ss_done;
static long ss_n;
static atomic_long ss_sum_sent;

static void ss_sender(void *arg)
{
    long base = (long)(intptr_t)arg;
    for (long i = 0; i < ss_n; i++) {
        int64_t v = base + i;
        gort_case cs[SS_K];
        for (int j = 0; j < SS_K; j++)
            cs[j] = scase(ss_c[j], &v);
        if (i % 3 == 0) {
            while (gort_select(cs, SS_K, false) < 0)
                gort_yield();
        } else {
            gort_select(cs, SS_K, true);
        }
        atomic_fetch_add(&ss_sum_sent, v);
    }
    atomic_fetch_add(&ss_done, 1);
}

static void test_select_pairs(int procs)
{
    gort_gomaxprocs(procs);
    for (int j = 0; j < SS_K; j++)
        ss_c[j] = gort_chan_make(sizeof(int64_t), j == 2 ? 2 : 0);
    ss_n = scaled(10000);
    atomic_store(&ss_done, 0);
    atomic_store(&ss_sum_sent, 0);
    enum { NS = 3 };
    for (int s = 0; s < NS; s++)
        gort_go(ss_sender, (void *)(intptr_t)(s * 1000000L));
    long got = 0, sum = 0;
    long per[SS_K] = {0};
    for (long i = 0; i < NS * ss_n; i++) {
        int64_t vals[SS_K];
        gort_case cs[SS_K];
        for (int j = 0; j < SS_K; j++)
            cs[j] = rcase(ss_c[j], &vals[j]);
        int k = gort_select(cs, SS_K, true);
        if (k < 0 || !cs[k].ok)
            continue;
        per[k]++;
        got++;
        sum += vals[k];
    }
    CHECK(wait_ge(&ss_done, NS, 30));
    CHECK_MSG(got == NS * ss_n && sum == atomic_load(&ss_sum_sent),
              "GOMAXPROCS=%d select to select: got %ld of %ld, sum %ld vs %ld", procs, got,
              NS * ss_n, sum, atomic_load(&ss_sum_sent));
    for (int j = 0; j < SS_K; j++)
        CHECK_MSG(per[j] > 0, "channel %d never used", j);
}

static void main_fn(void *arg)
{
    (void)arg;
    test_default();
    test_blocking_wakes(1);
    test_blocking_wakes(2);
    test_uniform(false, false);
    test_uniform(true, false);
    test_uniform(false, true);
    test_uniform(true, true);
    test_mixed();
    test_same_channel();
    test_nil_cases();
    test_closed();
    test_select_pairs(1);
    test_select_pairs(2);
}

int main(void)
{
    int rc = gort_main(main_fn, NULL);
    CHECK_MSG(rc == 0, "gort_main returned %d", rc);
    return test_done();
}
