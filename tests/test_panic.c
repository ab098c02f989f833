/* test_panic.c - defer, panic and recover in one process (gort.h).
 *
 * Deferred calls run LIFO when a gort_call frame returns, when a
 * goroutine's function returns (the main goroutine's included: before
 * gort_main returns), when a panic unwinds the frame, and on gort_goexit
 * (every frame's, innermost first; nothing after gort_goexit runs, and
 * recover returns NULL during it). gort_recover returns NULL outside a
 * deferred call, when nothing panics, in a deferred call run by a normal
 * return, and a second time after a recovery; inside a deferred call run
 * by a panic it returns the message (formatted as printf would) and stops
 * the panic: the frame that deferred that call returns normally to its
 * caller, after its remaining deferred calls ran; the panicking code's
 * rest does not run. A panic unwinds through inner frames (running their
 * deferred calls) to the frame whose deferred call recovers. A panic in a
 * deferred call replaces the first: recover then returns the second
 * message. Many deferred calls in one frame; many goroutines panicking
 * and recovering at once keep their own panics apart.
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

/* ---- an event log: what ran, in order ------------------------------------------ */

typedef struct {
    char s[256];
    int n;
} tlog;

static void log_add(tlog *l, const char *what)
{
    int k = snprintf(l->s + l->n, sizeof l->s - (size_t)l->n, "%s%s", l->n ? " " : "", what);
    if (k > 0 && l->n + k < (int)sizeof l->s)
        l->n += k;
}

static void log_reset(tlog *l)
{
    l->s[0] = 0;
    l->n = 0;
}

#define CHECK_LOG(l, want) \
    CHECK_MSG(strcmp((l)->s, want) == 0, "ran \"%s\", want \"%s\"", (l)->s, want)

typedef struct {
    tlog *log;
    const char *name;
} ev_t;

static void ev_fn(void *arg)
{
    ev_t *e = arg;
    log_add(e->log, e->name);
}

/* a deferred call that logs "name" and, when recover returns something,
 * "name=msg" */
typedef struct {
    tlog *log;
    const char *name;
    char msg[128];
    int got;
    int again;      /* a second recover in the same call returned non-NULL */
} rec_t;

static void rec_fn(void *arg)
{
    rec_t *r = arg;
    const char *m = gort_recover();
    if (m) {
        r->got = 1;
        snprintf(r->msg, sizeof r->msg, "%s", m);
        char buf[200];
        snprintf(buf, sizeof buf, "%s=%s", r->name, m);
        log_add(r->log, buf);
        if (gort_recover() != NULL)
            r->again = 1;
    } else {
        log_add(r->log, r->name);
    }
}

/* ---- normal return -------------------------------------------------------------------- */

static tlog L;

static void three_defers(void *arg)
{
    (void)arg;
    static ev_t a = {&L, "a"}, b = {&L, "b"}, c = {&L, "c"};
    log_add(&L, "body");
    gort_defer(ev_fn, &a);
    gort_defer(ev_fn, &b);
    gort_defer(ev_fn, &c);
    log_add(&L, "end");
}

static void test_return_lifo(void)
{
    log_reset(&L);
    gort_call(three_defers, NULL);
    log_add(&L, "after");
    CHECK_LOG(&L, "body end c b a after");

    /* nothing deferred: a plain call */
    log_reset(&L);
    static ev_t x = {&L, "x"};
    gort_call(ev_fn, &x);
    CHECK_LOG(&L, "x");
}

/* many deferred calls in one frame */
static int many_order[2000];
static int many_n;

static void many_fn(void *arg)
{
    many_order[many_n++] = (int)(intptr_t)arg;
}

static void many_defers(void *arg)
{
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++)
        gort_defer(many_fn, (void *)(intptr_t)i);
}

static void test_many_defers(void)
{
    many_n = 0;
    gort_call(many_defers, (void *)(intptr_t)2000);
    int bad = 0;
    for (int i = 0; i < 2000; i++)
        bad += many_order[i] != 1999 - i;
    CHECK_MSG(many_n == 2000 && bad == 0, "2000 defers: %d ran, %d out of order", many_n, bad);
}

/* nested frames: each owns its own */
static void inner_frame(void *arg)
{
    (void)arg;
    static ev_t i1 = {&L, "i1"}, i2 = {&L, "i2"};
    gort_defer(ev_fn, &i1);
    gort_defer(ev_fn, &i2);
    log_add(&L, "inner");
}

static void outer_frame(void *arg)
{
    (void)arg;
    static ev_t o1 = {&L, "o1"}, o2 = {&L, "o2"};
    gort_defer(ev_fn, &o1);
    gort_call(inner_frame, NULL);
    log_add(&L, "back");
    gort_defer(ev_fn, &o2);
}

static void test_nested_return(void)
{
    log_reset(&L);
    gort_call(outer_frame, NULL);
    CHECK_LOG(&L, "inner i2 i1 back o2 o1");
}

/* a goroutine's function is a frame */
static tlog GL;
static atomic_int g_done;

static void goroutine_with_defers(void *arg)
{
    (void)arg;
    static ev_t a = {&GL, "a"}, b = {&GL, "b"};
    static ev_t fin = {&GL, "fin"};
    gort_defer(ev_fn, &fin);
    gort_defer(ev_fn, &a);
    gort_defer(ev_fn, &b);
    log_add(&GL, "body");
}

static void mark_done(void *arg)
{
    (void)arg;
    atomic_store(&g_done, 1);
}

static void goroutine_outer(void *arg)
{
    gort_defer(mark_done, NULL); /* runs last */
    goroutine_with_defers(arg);  /* same frame: a plain C call */
}

static void test_goroutine_return(void)
{
    log_reset(&GL);
    atomic_store(&g_done, 0);
    gort_go(goroutine_outer, NULL);
    CHECK(wait_ge(&g_done, 1, 30));
    CHECK_LOG(&GL, "body b a fin");
}

/* ---- recover returns NULL where it must ---------------------------------------------------- */

static int null_recover_bad;

static void recover_in_deferred_normal(void *arg)
{
    (void)arg;
    if (gort_recover() != NULL)
        null_recover_bad++;
}

static void frame_no_panic(void *arg)
{
    (void)arg;
    if (gort_recover() != NULL)
        null_recover_bad++;
    gort_defer(recover_in_deferred_normal, NULL);
}

static void test_recover_null(void)
{
    null_recover_bad = 0;
    CHECK_MSG(gort_recover() == NULL, "recover in the main goroutine's body, no panic");
    gort_call(frame_no_panic, NULL);
    CHECK_MSG(null_recover_bad == 0, "recover returned non-NULL with no panic (%d times)",
              null_recover_bad);
}

/* ---- panic and recover --------------------------------------------------------------------- */

static rec_t R;

static void panicking_frame(void *arg)
{
    (void)arg;
    static ev_t d1 = {&L, "d1"}, d2 = {&L, "d2"};
    gort_defer(rec_fn, &R);
    gort_defer(ev_fn, &d1);
    gort_defer(ev_fn, &d2);
    log_add(&L, "before");
    gort_panic("boom %d %s", 42, "x");
    log_add(&L, "AFTER-PANIC");
}

static void test_panic_recover(void)
{
    log_reset(&L);
    R = (rec_t){&L, "rec", "", 0, 0};
    gort_call(panicking_frame, NULL);
    log_add(&L, "returned");
    CHECK_LOG(&L, "before d2 d1 rec=boom 42 x returned");
    CHECK_MSG(R.got && strcmp(R.msg, "boom 42 x") == 0, "recover returned \"%s\"", R.msg);
    CHECK_MSG(!R.again, "a second recover after the recovery returned the message");
    CHECK_MSG(gort_recover() == NULL, "recover after the recovered gort_call returned");
}

/* remaining deferred calls of the recovering frame still run */
static void recover_middle_frame(void *arg)
{
    (void)arg;
    static ev_t a = {&L, "a"}, b = {&L, "b"};
    gort_defer(ev_fn, &a);
    gort_defer(rec_fn, &R);
    gort_defer(ev_fn, &b);
    gort_panic("mid");
}

static void test_remaining_defers(void)
{
    log_reset(&L);
    R = (rec_t){&L, "rec", "", 0, 0};
    gort_call(recover_middle_frame, NULL);
    log_add(&L, "returned");
    CHECK_LOG(&L, "b rec=mid a returned");
}

/* a panic unwinds inner frames to the one whose deferred call recovers */
static void deep_inner(void *arg)
{
    (void)arg;
    static ev_t x = {&L, "x"};
    gort_defer(ev_fn, &x);
    gort_panic("deep");
}

static void deep_middle(void *arg)
{
    (void)arg;
    static ev_t m1 = {&L, "m1"};
    gort_defer(ev_fn, &m1);
    gort_call(deep_inner, NULL);
    log_add(&L, "MIDDLE-AFTER");
}

static void deep_outer(void *arg)
{
    (void)arg;
    static ev_t o = {&L, "o"};
    gort_defer(ev_fn, &o);
    gort_defer(rec_fn, &R);
    gort_call(deep_middle, NULL);
    log_add(&L, "OUTER-AFTER");
}

static void test_unwind_frames(void)
{
    log_reset(&L);
    R = (rec_t){&L, "rec", "", 0, 0};
    gort_call(deep_outer, NULL);
    log_add(&L, "returned");
    CHECK_LOG(&L, "x m1 rec=deep o returned");
}

/* a panic in a deferred call replaces the first */
static void second_panic(void *arg)
{
    (void)arg;
    log_add(&L, "p2");
    gort_panic("second %d", 2);
}

static void replace_frame(void *arg)
{
    (void)arg;
    gort_defer(rec_fn, &R);
    gort_defer(second_panic, NULL);
    gort_panic("first");
}

static void test_panic_in_defer(void)
{
    log_reset(&L);
    R = (rec_t){&L, "rec", "", 0, 0};
    gort_call(replace_frame, NULL);
    log_add(&L, "returned");
    CHECK_LOG(&L, "p2 rec=second 2 returned");
    CHECK(gort_recover() == NULL);
}

/* a panic in a deferred call run by a normal return, recovered further out */
static void normal_then_panic(void *arg)
{
    (void)arg;
    gort_defer(second_panic, NULL);
    log_add(&L, "body");
}

static void catch_frame(void *arg)
{
    (void)arg;
    gort_defer(rec_fn, &R);
    gort_call(normal_then_panic, NULL);
    log_add(&L, "CATCH-AFTER");
}

static void test_panic_in_return_defer(void)
{
    log_reset(&L);
    R = (rec_t){&L, "rec", "", 0, 0};
    gort_call(catch_frame, NULL);
    log_add(&L, "returned");
    CHECK_LOG(&L, "body p2 rec=second 2 returned");
}

/* after a recovery, the same goroutine can panic and recover again */
static void panic_n(void *arg)
{
    gort_panic("round %d", (int)(intptr_t)arg);
}

typedef struct {
    int i;
    char got[64];
} round_t;

static void round_rec(void *arg)
{
    round_t *r = arg;
    const char *m = gort_recover();
    snprintf(r->got, sizeof r->got, "%s", m ? m : "(null)");
}

static void round_frame(void *arg)
{
    round_t *r = arg;
    gort_defer(round_rec, r);
    panic_n((void *)(intptr_t)r->i);
}

static void test_repeated(void)
{
    int bad = 0;
    for (int i = 0; i < 1000; i++) {
        round_t r = {i, ""};
        gort_call(round_frame, &r);
        char want[64];
        snprintf(want, sizeof want, "round %d", i);
        if (strcmp(r.got, want) != 0)
            bad++;
    }
    CHECK_MSG(bad == 0, "%d of 1000 panic/recover rounds wrong", bad);
}

/* a long message is kept whole */
static void long_panic(void *arg)
{
    gort_panic("%s", (const char *)arg);
}

typedef struct {
    char *got;
} long_t;

static void long_rec(void *arg)
{
    long_t *l = arg;
    const char *m = gort_recover();
    l->got = m ? strdup(m) : NULL;
}

static void long_frame(void *arg)
{
    long_t *l = arg;
    gort_defer(long_rec, l);
    static char msg[5001];
    for (int i = 0; i < 5000; i++)
        msg[i] = (char)('a' + i % 26);
    msg[5000] = 0;
    long_panic(msg);
}

static void test_long_message(void)
{
    long_t l = {NULL};
    gort_call(long_frame, &l);
    CHECK_MSG(l.got && strlen(l.got) == 5000 && l.got[4999] == (char)('a' + 4999 % 26),
              "a 5000-byte panic message came back with %zu bytes", l.got ? strlen(l.got) : 0);
    free(l.got);
}

/* ---- goexit ---------------------------------------------------------------------------------- */

static tlog XL;
static atomic_int x_done;
static int x_recover_nonnull;

static void x_check_recover(void *arg)
{
    (void)arg;
    if (gort_recover() != NULL)
        x_recover_nonnull = 1;
    log_add(&XL, "r");
}

static void x_inner(void *arg)
{
    (void)arg;
    static ev_t c = {&XL, "C"};
    gort_defer(ev_fn, &c);
    gort_defer(x_check_recover, NULL);
    log_add(&XL, "exit");
    gort_goexit();
    log_add(&XL, "INNER-AFTER");
}

static void x_middle(void *arg)
{
    (void)arg;
    static ev_t b = {&XL, "B"};
    gort_defer(ev_fn, &b);
    gort_call(x_inner, NULL);
    log_add(&XL, "MIDDLE-AFTER");
}

static void x_done_fn(void *arg)
{
    (void)arg;
    atomic_store(&x_done, 1);
}

static void x_goroutine(void *arg)
{
    (void)arg;
    static ev_t a = {&XL, "A"};
    gort_defer(x_done_fn, NULL);
    gort_defer(ev_fn, &a);
    gort_call(x_middle, NULL);
    log_add(&XL, "GOROUTINE-AFTER");
}

/* goexit while a recovered panic frame is around: nothing resurrects */
static void test_goexit(void)
{
    log_reset(&XL);
    atomic_store(&x_done, 0);
    gort_go(x_goroutine, NULL);
    CHECK(wait_ge(&x_done, 1, 30));
    CHECK_LOG(&XL, "exit r C B A");
    CHECK_MSG(!x_recover_nonnull, "recover returned non-NULL during gort_goexit");
}

/* ---- many goroutines panicking at once ------------------------------------------------------- */

static atomic_int pg_bad, pg_done;
static long pg_rounds;

typedef struct {
    int id;
    long round;
    char got[64];
} pg_t;

static void pg_rec(void *arg)
{
    pg_t *p = arg;
    const char *m = gort_recover();
    snprintf(p->got, sizeof p->got, "%s", m ? m : "(null)");
}

static void pg_frame(void *arg)
{
    pg_t *p = arg;
    gort_defer(pg_rec, p);
    if (p->round % 7 == 3)
        gort_yield(); /* maybe move to another thread mid-frame */
    gort_panic("g%d r%ld", p->id, p->round);
}

static void pg_goroutine(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (long r = 0; r < pg_rounds; r++) {
        pg_t p = {id, r, ""};
        gort_call(pg_frame, &p);
        char want[64];
        snprintf(want, sizeof want, "g%d r%ld", id, r);
        if (strcmp(p.got, want) != 0)
            atomic_fetch_add(&pg_bad, 1);
    }
    atomic_fetch_add(&pg_done, 1);
}

static void test_parallel_panics(void)
{
    gort_gomaxprocs(2);
    enum { G = 8 };
    pg_rounds = scaled(2000);
    for (int i = 0; i < G; i++)
        gort_go(pg_goroutine, (void *)(intptr_t)i);
    CHECK(wait_ge(&pg_done, G, 60));
    CHECK_MSG(atomic_load(&pg_bad) == 0, "%d recovered messages belonged to another panic",
              atomic_load(&pg_bad));
}

/* ---- the main goroutine's deferred calls run before gort_main returns ---------------------- */

static tlog ML;

static void main_fn(void *arg)
{
    (void)arg;
    static ev_t m1 = {&ML, "m1"}, m2 = {&ML, "m2"};
    gort_defer(ev_fn, &m1);
    gort_defer(ev_fn, &m2);
    test_return_lifo();
    test_many_defers();
    test_nested_return();
    test_goroutine_return();
    test_recover_null();
    test_panic_recover();
    test_remaining_defers();
    test_unwind_frames();
    test_panic_in_defer();
    test_panic_in_return_defer();
    test_repeated();
    test_long_message();
    test_goexit();
    test_parallel_panics();
    log_add(&ML, "main-end");
}

int main(void)
{
    int rc = gort_main(main_fn, NULL);
    CHECK_MSG(rc == 0, "gort_main returned %d", rc);
    CHECK_LOG(&ML, "main-end m2 m1");
    return test_done();
}
