/* test_chan_model.c - random channel programs checked against Go's rules.
 *
 * Each program has 1-4 channels (unbuffered or buffered), 1-6 senders and
 * 1-4 receivers. A sender sends its sequence of values (sender id, seq no)
 * with plain sends and with selects over a random set of its channels
 * (blocking, non-blocking retried until done, non-blocking tried once;
 * sometimes with a NULL channel case). A receiver receives from its
 * channels with plain receives and selects (blocking or not; with a
 * channel repeated in several cases, sometimes a NULL case) until every
 * one of them is closed and drained. When all senders are done, the last
 * one closes every channel; in some programs one channel is closed early,
 * while senders still use it: their sends on it panic ("send on closed
 * channel", recovered through gort_call + gort_defer + gort_recover) and
 * they go on with their other channels.
 *
 * Checked at the end, against Go's semantics:
 *   - every value whose send completed was received exactly once, on the
 *     channel it was sent on; a send that panicked or a non-blocking
 *     select that returned -1 delivered nothing (its seq no is reused,
 *     so a delivery would show as a duplicate);
 *   - each receiver sees each sender's values on one channel in the
 *     order sent (FIFO per sender per channel);
 *   - elements arrive intact, and a select writes only the chosen case's
 *     element;
 *   - a receive that reports !ok finds the channel drained (len 0) with
 *     the element zeroed, and the channel stays ready with !ok;
 *   - a panic happens only for a send that involved the early-closed
 *     channel after it was closed, and says "send on closed channel";
 *   - a blocking select never returns -1 and NULL-channel cases are never
 *     chosen.
 *
 * Programs run at GOMAXPROCS 1, 2 and 3 in turn. GORT_TEST_SEED picks the
 * base seed (default: from the clock; it is printed). GORT_TEST_SCALE (a
 * positive number, default 1) scales the number of programs; without it,
 * under valgrind and TSan there are a tenth.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

static uint64_t rnd(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t seed_mix(uint64_t a, uint64_t b)
{
    uint64_t x = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return x ? x : 1;
}

enum { MAXCH = 4, MAXS = 6, MAXR = 4, MAXCASES = 2 * MAXCH + 2 };

typedef struct {
    int32_t s, seq;
    uint64_t check;
} elem_t;

static uint64_t elem_check(int32_t s, int32_t seq)
{
    return seed_mix((uint64_t)s + 1, (uint64_t)seq + 7);
}

typedef struct prog {
    uint64_t seed;
    int procs;
    int nch, nsend, nrecv;
    gort_chan *ch[MAXCH];
    size_t cap[MAXCH];
    int early;               /* channel closed early, or -1 */
    long early_after;        /* after this many completed sends in all */
    atomic_int early_closed;
    int ops[MAXS];
    uint32_t smask[MAXS], rmask[MAXR];
    long nsent[MAXS];
    int8_t *sentch[MAXS];        /* [ops]: channel each seq went on */
    atomic_int *rcount[MAXS];    /* [ops]: times received */
    _Atomic int8_t *rch[MAXS];   /* [ops]: channel received on */
    atomic_long total_sent;
    atomic_int senders_finished, senders_done, receivers_done;
    atomic_int errors;
    atomic_long panics;
} prog_t;

static atomic_long stat_sends, stat_panics, stat_dropped, stat_early;

static void perr(prog_t *p, const char *fmt, ...)
{
    if (atomic_fetch_add(&p->errors, 1) >= 20)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "seed %#" PRIx64 " (GOMAXPROCS=%d): ", p->seed, p->procs);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- senders ----------------------------------------------------------------- */

enum { K_PLAIN, K_SEL_BLOCK, K_SEL_SPIN, K_SEL_ONCE };

typedef struct {
    prog_t *p;
    int kind;
    int n;
    gort_case cs[MAXCASES];
    int casech[MAXCASES];    /* channel of each case; -1: NULL */
    int plain_ch;
    elem_t v;
    int result;              /* case done, -1 none */
    char *panic_msg;
} sop_t;

static void sop_recover(void *arg)
{
    sop_t *o = arg;
    const char *m = gort_recover();
    if (m)
        o->panic_msg = strdup(m);
}

static void sop_body(void *arg)
{
    sop_t *o = arg;
    gort_defer(sop_recover, o);
    switch (o->kind) {
    case K_PLAIN:
        gort_chan_send(o->p->ch[o->plain_ch], &o->v);
        o->result = 0;
        break;
    case K_SEL_BLOCK:
        o->result = gort_select(o->cs, o->n, true);
        break;
    case K_SEL_SPIN:
        while ((o->result = gort_select(o->cs, o->n, false)) < 0)
            gort_yield();
        break;
    default:
        o->result = gort_select(o->cs, o->n, false);
        break;
    }
}

static int pick_bit(uint32_t mask, uint64_t *rs)
{
    int n = __builtin_popcount(mask);
    int k = (int)(rnd(rs) % (uint64_t)n);
    for (int i = 0; i < MAXCH; i++)
        if (mask & (1u << i)) {
            if (k-- == 0)
                return i;
        }
    return -1;
}

static void shuffle_cases(gort_case *cs, int *casech, int n, uint64_t *rs)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rnd(rs) % (uint64_t)(i + 1));
        gort_case t = cs[i];
        cs[i] = cs[j];
        cs[j] = t;
        int u = casech[i];
        casech[i] = casech[j];
        casech[j] = u;
    }
}

static void close_all(prog_t *p)
{
    uint64_t rs = seed_mix(p->seed, 999);
    int order[MAXCH];
    for (int i = 0; i < p->nch; i++)
        order[i] = i;
    for (int i = p->nch - 1; i > 0; i--) {
        int j = (int)(rnd(&rs) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < p->nch; i++) {
        int c = order[i];
        if (c == p->early && atomic_load(&p->early_closed))
            continue;
        gort_chan_close(p->ch[c]);
    }
}

typedef struct {
    prog_t *p;
    int id;
} garg_t;

static void sender(void *arg)
{
    garg_t *ga = arg;
    prog_t *p = ga->p;
    int s = ga->id;
    uint64_t rs = seed_mix(p->seed, 100 + (uint64_t)s);
    uint32_t mask = p->smask[s];
    int32_t seq = 0;
    for (int op = 0; op < p->ops[s] && mask; op++) {
        sop_t o;
        memset(&o, 0, sizeof o);
        o.p = p;
        o.result = -2;
        o.v = (elem_t){s, seq, elem_check(s, seq)};
        unsigned r = (unsigned)(rnd(&rs) % 10);
        o.kind = r < 3 ? K_PLAIN : r < 6 ? K_SEL_BLOCK : r < 8 ? K_SEL_SPIN : K_SEL_ONCE;
        bool involves_early = false;
        if (o.kind == K_PLAIN) {
            o.plain_ch = pick_bit(mask, &rs);
            involves_early = o.plain_ch == p->early;
        } else {
            uint32_t sub = (uint32_t)rnd(&rs) & mask;
            if (!sub)
                sub = 1u << pick_bit(mask, &rs);
            for (int c = 0; c < MAXCH; c++)
                if (sub & (1u << c)) {
                    o.cs[o.n] = (gort_case){p->ch[c], GORT_SEND, &o.v, false};
                    o.casech[o.n++] = c;
                    if (c == p->early)
                        involves_early = true;
                }
            if (rnd(&rs) % 4 == 0) {
                o.cs[o.n] = (gort_case){NULL, GORT_SEND, &o.v, false};
                o.casech[o.n++] = -1;
            }
            shuffle_cases(o.cs, o.casech, o.n, &rs);
        }
        gort_call(sop_body, &o);

        if (o.panic_msg) {
            atomic_fetch_add(&stat_panics, 1);
            if (strcmp(o.panic_msg, "send on closed channel") != 0)
                perr(p, "sender %d: panic \"%s\"", s, o.panic_msg);
            else if (!involves_early || !atomic_load(&p->early_closed))
                perr(p, "sender %d: send on closed channel, but no channel it used was closed",
                     s);
            free(o.panic_msg);
            if (p->early >= 0)
                mask &= ~(1u << p->early);
            continue;
        }
        if (o.result == -1) {
            if (o.kind != K_SEL_ONCE)
                perr(p, "sender %d: blocking send op returned -1", s);
            atomic_fetch_add(&stat_dropped, 1);
            continue;
        }
        int c;
        if (o.kind == K_PLAIN) {
            c = o.plain_ch;
        } else if (o.result < 0 || o.result >= o.n) {
            perr(p, "sender %d: select returned %d of %d cases", s, o.result, o.n);
            continue;
        } else {
            c = o.casech[o.result];
            if (c < 0) {
                perr(p, "sender %d: select chose the NULL channel case", s);
                continue;
            }
        }
        p->sentch[s][seq] = (int8_t)c;
        seq++;
        atomic_fetch_add(&stat_sends, 1);
        long total = atomic_fetch_add(&p->total_sent, 1) + 1;
        if (p->early >= 0 && total == p->early_after) {
            atomic_store(&p->early_closed, 1);
            gort_chan_close(p->ch[p->early]);
            atomic_fetch_add(&stat_early, 1);
        }
    }
    p->nsent[s] = seq;
    /* the last one closes; senders_done counts only senders that no longer
     * touch p */
    if (atomic_fetch_add(&p->senders_finished, 1) == p->nsend - 1)
        close_all(p);
    atomic_fetch_add(&p->senders_done, 1);
}

/* ---- receivers ------------------------------------------------------------------- */

static bool all_bytes(const void *b, size_t n, unsigned char v)
{
    const unsigned char *c = b;
    for (size_t i = 0; i < n; i++)
        if (c[i] != v)
            return false;
    return true;
}

static void receiver(void *arg)
{
    garg_t *ga = arg;
    prog_t *p = ga->p;
    int r = ga->id;
    uint64_t rs = seed_mix(p->seed, 200 + (uint64_t)r);
    uint32_t open = p->rmask[r];
    int32_t last[MAXS][MAXCH];
    for (int i = 0; i < MAXS; i++)
        for (int j = 0; j < MAXCH; j++)
            last[i][j] = -1;
    long spins = 0;

    while (open) {
        elem_t v;
        memset(&v, 0xa5, sizeof v);
        int c = -1;
        bool ok;
        unsigned kind = (unsigned)(rnd(&rs) % 4);
        if (__builtin_popcount(open) == 1 && kind == 0) {
            c = pick_bit(open, &rs);
            ok = gort_chan_recv(p->ch[c], &v);
        } else {
            gort_case cs[MAXCASES];
            int casech[MAXCASES];
            elem_t elems[MAXCASES];
            int n = 0;
            for (int i = 0; i < MAXCH; i++) {
                if (!(open & (1u << i)))
                    continue;
                int copies = rnd(&rs) % 5 == 0 ? 2 : 1;
                for (int k = 0; k < copies; k++) {
                    cs[n] = (gort_case){p->ch[i], GORT_RECV, &elems[n], false};
                    casech[n++] = i;
                }
            }
            if (rnd(&rs) % 4 == 0) {
                cs[n] = (gort_case){NULL, GORT_RECV, &elems[n], false};
                casech[n++] = -1;
            }
            shuffle_cases(cs, casech, n, &rs);
            for (int i = 0; i < n; i++) {
                cs[i].elem = &elems[i];
                memset(&elems[i], 0xa5, sizeof elems[i]);
            }
            bool block = kind != 1;
            int k = gort_select(cs, n, block);
            if (k < 0) {
                if (block)
                    perr(p, "receiver %d: blocking select returned %d", r, k);
                if (++spins % 16 == 0)
                    gort_sleep(MS / 20);
                else
                    gort_yield();
                continue;
            }
            if (k >= n) {
                perr(p, "receiver %d: select returned %d of %d cases", r, k, n);
                continue;
            }
            c = casech[k];
            if (c < 0) {
                perr(p, "receiver %d: select chose the NULL channel case", r);
                continue;
            }
            v = elems[k];
            ok = cs[k].ok;
            for (int i = 0; i < n; i++)
                if (i != k && !all_bytes(&elems[i], sizeof elems[i], 0xa5))
                    perr(p, "receiver %d: select wrote the element of case %d, chose %d", r,
                         i, k);
        }

        if (!ok) {
            if (!all_bytes(&v, sizeof v, 0))
                perr(p, "receiver %d: !ok receive on channel %d did not zero the element", r,
                     c);
            size_t len = gort_chan_len(p->ch[c]);
            if (len != 0)
                perr(p, "receiver %d: !ok on channel %d with %zu values still buffered", r, c,
                     len);
            elem_t again;
            memset(&again, 0xa5, sizeof again);
            gort_case one = {p->ch[c], GORT_RECV, &again, true};
            int k = gort_select(&one, 1, false);
            if (k != 0 || one.ok || !all_bytes(&again, sizeof again, 0))
                perr(p, "receiver %d: closed channel %d not ready with !ok again (%d, ok=%d)",
                     r, c, k, one.ok);
            open &= ~(1u << c);
            continue;
        }
        if (v.s < 0 || v.s >= p->nsend || v.seq < 0 || v.seq >= p->ops[v.s] ||
            v.check != elem_check(v.s, v.seq)) {
            perr(p, "receiver %d: garbage value (%d, %d, %#" PRIx64 ") on channel %d", r, v.s,
                 v.seq, v.check, c);
            continue;
        }
        if (v.seq <= last[v.s][c])
            perr(p, "receiver %d: channel %d: sender %d's seq %d after %d", r, c, v.s, v.seq,
                 last[v.s][c]);
        last[v.s][c] = v.seq;
        atomic_fetch_add(&p->rcount[v.s][v.seq], 1);
        atomic_store(&p->rch[v.s][v.seq], (int8_t)c);
    }
    atomic_fetch_add(&p->receivers_done, 1);
}

/* ---- one program -------------------------------------------------------------------- */

static int wait_eq(atomic_int *v, int want, int secs)
{
    int64_t deadline = gort_nanotime() + secs * SEC;
    for (long i = 0; atomic_load(v) < want; i++) {
        if (gort_nanotime() > deadline)
            return 0;
        if (i < 200)
            gort_yield();
        else
            gort_sleep(MS / 2);
    }
    return 1;
}

static int run_program(uint64_t seed, int procs)
{
    /* the program holds the channels: it lives in the GC heap, where the
     * collector sees them (malloc'd memory is not scanned) */
    prog_t *p = gort_gc_alloc(sizeof *p);
    REQUIRE(p);
    p->seed = seed;
    p->procs = procs;
    uint64_t rs = seed;
    static const size_t caps[] = {0, 0, 1, 2, 3, 8};
    p->nch = 1 + (int)(rnd(&rs) % MAXCH);
    p->nsend = 1 + (int)(rnd(&rs) % MAXS);
    p->nrecv = 1 + (int)(rnd(&rs) % MAXR);
    for (int c = 0; c < p->nch; c++) {
        p->cap[c] = caps[rnd(&rs) % 6];
        p->ch[c] = gort_chan_make(sizeof(elem_t), p->cap[c]);
        REQUIRE(p->ch[c]);
    }
    uint32_t all = (1u << p->nch) - 1;
    long sum_ops = 0;
    for (int s = 0; s < p->nsend; s++) {
        p->smask[s] = (uint32_t)rnd(&rs) & all;
        if (!p->smask[s])
            p->smask[s] = 1u << (rnd(&rs) % (uint64_t)p->nch);
        p->ops[s] = 1 + (int)(rnd(&rs) % 150);
        sum_ops += p->ops[s];
        p->sentch[s] = calloc((size_t)p->ops[s], 1);
        p->rcount[s] = calloc((size_t)p->ops[s], sizeof(atomic_int));
        p->rch[s] = calloc((size_t)p->ops[s], sizeof(_Atomic int8_t));
        REQUIRE(p->sentch[s] && p->rcount[s] && p->rch[s]);
    }
    uint32_t covered = 0;
    for (int r = 0; r < p->nrecv; r++) {
        p->rmask[r] = (uint32_t)rnd(&rs) & all;
        covered |= p->rmask[r];
    }
    for (int c = 0; c < p->nch; c++)
        if (!(covered & (1u << c)))
            p->rmask[rnd(&rs) % (uint64_t)p->nrecv] |= 1u << c;
    p->early = rnd(&rs) % 3 == 0 ? (int)(rnd(&rs) % (uint64_t)p->nch) : -1;
    p->early_after = 1 + (long)(rnd(&rs) % (uint64_t)(sum_ops / 2 + 1));

    gort_gomaxprocs(procs);
    garg_t sa[MAXS], ra[MAXR];
    for (int r = 0; r < p->nrecv; r++) {
        ra[r] = (garg_t){p, r};
        if (p->rmask[r] == 0)
            atomic_fetch_add(&p->receivers_done, 1);
        else
            gort_go(receiver, &ra[r]);
    }
    for (int s = 0; s < p->nsend; s++) {
        sa[s] = (garg_t){p, s};
        gort_go(sender, &sa[s]);
    }
    if (!wait_eq(&p->senders_done, p->nsend, 60) ||
        !wait_eq(&p->receivers_done, p->nrecv, 60)) {
        fprintf(stderr, "seed %#" PRIx64 " (GOMAXPROCS=%d): hung: %d/%d senders, %d/%d "
                "receivers done; %ld values sent\n", seed, procs,
                atomic_load(&p->senders_done), p->nsend, atomic_load(&p->receivers_done),
                p->nrecv, atomic_load(&p->total_sent));
        fflush(NULL);
        _exit(1); /* goroutines still use p: nothing sane to go on with */
    }

    /* every completed send received exactly once, on its channel */
    long lost = 0, dup = 0, wrongch = 0, phantom = 0;
    for (int s = 0; s < p->nsend; s++) {
        for (long q = 0; q < p->ops[s]; q++) {
            int n = atomic_load(&p->rcount[s][q]);
            if (q >= p->nsent[s]) {
                if (n)
                    phantom++;
                continue;
            }
            if (n == 0)
                lost++;
            else if (n > 1)
                dup++;
            else if (atomic_load(&p->rch[s][q]) != p->sentch[s][q])
                wrongch++;
        }
    }
    if (lost || dup || wrongch || phantom)
        perr(p, "%ld values lost, %ld duplicated, %ld on the wrong channel, %ld received "
             "though their send did not complete", lost, dup, wrongch, phantom);
    for (int c = 0; c < p->nch; c++)
        if (gort_chan_len(p->ch[c]) != 0)
            perr(p, "channel %d: %zu values left at the end", c, gort_chan_len(p->ch[c]));

    int errors = atomic_load(&p->errors);
    if (errors) {
        fprintf(stderr, "  program: %d channels (caps", p->nch);
        for (int c = 0; c < p->nch; c++)
            fprintf(stderr, " %zu", p->cap[c]);
        fprintf(stderr, "), %d senders, %d receivers, early close %d after %ld sends\n",
                p->nsend, p->nrecv, p->early, p->early_after);
    }
    for (int s = 0; s < p->nsend; s++) {
        free(p->sentch[s]);
        free((void *)p->rcount[s]);
        free((void *)p->rch[s]);
    }
    gort_gc_free(p);
    return errors;
}

static uint64_t base_seed;

static void main_fn(void *arg)
{
    (void)arg;
    long n = scaled(400);
    int failed = 0;
    for (long i = 0; i < n && failed < 5; i++) {
        int procs = 1 + (int)(i % 3);
        if (run_program(seed_mix(base_seed, (uint64_t)i), procs))
            failed++;
    }
    CHECK_MSG(failed == 0, "%d programs broke Go's channel rules (base seed %#" PRIx64 ")",
              failed, base_seed);
    printf("%ld programs, %ld sends, %ld sends dropped by default, %ld early closes, %ld "
           "recovered panics\n", n, atomic_load(&stat_sends), atomic_load(&stat_dropped),
           atomic_load(&stat_early), atomic_load(&stat_panics));
}

int main(void)
{
    const char *s = getenv("GORT_TEST_SEED");
    if (s)
        base_seed = strtoull(s, NULL, 0);
    else
        base_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    printf("GORT_TEST_SEED=%#" PRIx64 "\n", base_seed);
    fflush(stdout);
    int rc = gort_main(main_fn, NULL);
    CHECK_MSG(rc == 0, "gort_main returned %d", rc);
    return test_done();
}
