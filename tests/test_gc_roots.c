/* test_gc_roots.c - every kind of root keeps an object alive, and only roots do.
 *
 * gort.h: the roots are the stacks and registers of goroutines and of
 * registered threads, the data and bss of the program and its shared
 * libraries, and explicit roots; memory from malloc is not scanned;
 * gort_gc_alloc's objects are scanned conservatively, _noscan's never,
 * _typed's by their pointer mask; interior pointers keep an object alive;
 * what a finalizable object points to stays alive until its finalizer ran.
 *
 * Each case puts K "leaves" (gc_test.h: checksummed objects with a
 * finalizer) where only one kind of root refers to them. While the root
 * holds them, cycles with garbage allocated in between (so a slot freed by
 * mistake is reused and its checksum breaks) must finalize none; once the
 * root lets go, the next cycles must finalize most (three quarters: a
 * stale copy of a pointer may keep one alive, the scan being conservative).
 *
 * Everything runs in gort_main (the finalizers on their goroutine), except
 * the threads of the "running thread" cases, which are plain pthreads.
 *
 * GORT_TEST_SCALE scales the garbage made between cycles.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gort.h>
#include "test.h"
#include "gort_test.h"
#include "gc_test.h"

#define K 64                  /* objects per case */

/* ---- (a) a parked goroutine's stack ------------------------------------------ */

static probe pa = {.name = "parked goroutine's stack"};
static gort_chan *park_go, *park_back;

static void parked_fn(void *arg)
{
    (void)arg;
    void *volatile slots[K];
    make_leaves(slots, K, 1, &pa);
    int v = 0;
    gort_chan_send(park_back, &v);
    gort_chan_recv(park_go, &v);        /* parked while main collects */
    int bad = count_bad(slots, K, 1);
    clear_slots(slots, K, 1);
    scrub_stack();
    gort_chan_send(park_back, &bad);
    gort_chan_recv(park_go, &v);        /* parked again, holding nothing */
    gort_chan_send(park_back, &v);
}

static void test_parked_goroutine(void)
{
    park_go = gort_chan_make(sizeof(int), 0);
    park_back = gort_chan_make(sizeof(int), 0);
    int v = 0, bad = -1;
    gort_go(parked_fn, NULL);
    gort_chan_recv(park_back, &v);
    expect_alive(&pa);
    gort_chan_send(park_go, &v);
    gort_chan_recv(park_back, &bad);
    CHECK_MSG(bad == 0, "%s: %d objects corrupt after the cycles", pa.name, bad);
    expect_collected(&pa, K);
    gort_chan_send(park_go, &v);
    gort_chan_recv(park_back, &v);
}

/* ---- (b) a running foreign thread: its stack, and a register --------------- */

static probe pb = {.name = "running thread's stack"};
static atomic_int spin_phase;      /* 1 holding, 2 drop them, 3 dropped, 4 exit */
static atomic_int spin_bad;

static void *spinner(void *arg)
{
    (void)arg;
    gort_gc_register_thread();
    void *volatile slots[K];
    make_leaves(slots, K, 1, &pb);
    scrub_stack();
    int bad = 0;
    atomic_store(&spin_phase, 1);
    /* the tight loop: no runtime call, the collector must stop it by signal */
    while (atomic_load_explicit(&spin_phase, memory_order_relaxed) == 1) {
        for (int i = 0; i < K; i++)
            bad += !leaf_ok(slots[i]);
    }
    atomic_store(&spin_bad, bad);
    clear_slots(slots, K, 1);
    scrub_stack();
    atomic_store(&spin_phase, 3);
    while (atomic_load_explicit(&spin_phase, memory_order_relaxed) == 3)
        ;
    gort_gc_unregister_thread();
    return NULL;
}

static void test_running_thread(void)
{
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, spinner, NULL) == 0);
    while (atomic_load(&spin_phase) != 1)
        gort_yield();
    expect_alive(&pb);
    atomic_store(&spin_phase, 2);
    while (atomic_load(&spin_phase) != 3)
        gort_yield();
    CHECK_MSG(atomic_load(&spin_bad) == 0, "%s: corrupt objects seen %d times", pb.name,
              atomic_load(&spin_bad));
    expect_collected(&pb, K);
    atomic_store(&spin_phase, 4);
    pthread_join(t, NULL);
}

/* The only pointer to a holder of K leaves sits in one callee-saved
 * register of a thread spinning in assembly: its stack holds no copy. */
static probe pr = {.name = "register of a running thread"};
static atomic_int reg_ready, reg_release, reg_bad = -1;

#if defined(__x86_64__)
#define HAVE_REG_TEST 1
static NOINLINE void hold_in_register(void **cell, atomic_int *ready, atomic_int *release)
{
    __asm__ volatile("movq (%0), %%r12\n\t"
                     "movq $0, (%0)\n\t"
                     "movl $1, (%1)\n\t"
                     "1:\n\t"
                     "pause\n\t"
                     "cmpl $0, (%2)\n\t"
                     "je 1b\n\t"
                     "movq %%r12, (%0)\n\t"
                     "xorl %%r12d, %%r12d\n\t"
                     :
                     : "r"(cell), "r"(ready), "r"(release)
                     : "r12", "memory", "cc");
}
#elif defined(__aarch64__)
#define HAVE_REG_TEST 1
static NOINLINE void hold_in_register(void **cell, atomic_int *ready, atomic_int *release)
{
    __asm__ volatile("ldr x27, [%0]\n\t"
                     "str xzr, [%0]\n\t"
                     "mov w9, #1\n\t"
                     "str w9, [%1]\n\t"
                     "1:\n\t"
                     "yield\n\t"
                     "ldr w9, [%2]\n\t"
                     "cbz w9, 1b\n\t"
                     "str x27, [%0]\n\t"
                     "mov x27, xzr\n\t"
                     :
                     : "r"(cell), "r"(ready), "r"(release)
                     : "x9", "x27", "memory", "cc");
}
#endif

#ifdef HAVE_REG_TEST
static NOINLINE void make_holder(void **cell)
{
    void *volatile *h = gort_gc_alloc(K * sizeof(void *));
    REQUIRE(h);
    make_leaves(h, K, 1, &pr);
    *cell = (void *)h;
}

static void *reg_holder_thread(void *arg)
{
    (void)arg;
    gort_gc_register_thread();
    void **cell = malloc(sizeof *cell);   /* not scanned */
    REQUIRE(cell);
    make_holder(cell);
    scrub_stack();
    hold_in_register(cell, &reg_ready, &reg_release);
    void *volatile *h = *cell;
    atomic_store(&reg_bad, h ? count_bad(h, K, 1) : K);
    *cell = NULL;
    h = NULL;
    free(cell);
    gort_gc_unregister_thread();
    return NULL;
}
#endif

static void test_register(void)
{
#ifdef GORT_TSAN
    /* TSan handles a signal only when the thread next enters its runtime,
     * which a loop in assembly never does: the collector would wait forever */
    printf("register case: skipped under TSan\n");
    return;
#endif
#ifdef HAVE_REG_TEST
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, reg_holder_thread, NULL) == 0);
    while (atomic_load(&reg_ready) == 0)
        gort_yield();
    expect_alive(&pr);
    atomic_store(&reg_release, 1);
    pthread_join(t, NULL);
    CHECK_MSG(atomic_load(&reg_bad) == 0, "%s: %d objects corrupt", pr.name,
              atomic_load(&reg_bad));
    expect_collected(&pr, K);
#else
    printf("register case: no assembly for this architecture, skipped\n");
#endif
}

/* ---- (c) globals of a shared object loaded with dlopen ------------------- */

static probe pc_data = {.name = "shared object's .data"};
static probe pc_bss = {.name = "shared object's .bss"};

static void test_shared_object(void)
{
    void *h = dlopen(GC_LIB_PATH, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(h);
    void *volatile *data = dlsym(h, "gc_lib_data");
    void *volatile *bss = dlsym(h, "gc_lib_bss");
    REQUIRE(data && bss);
    make_leaves(data, K, 1, &pc_data);
    make_leaves(bss, K, 1, &pc_bss);
    scrub_stack();
    expect_alive(&pc_data);
    expect_alive(&pc_bss);
    CHECK_MSG(count_bad(data, K, 1) == 0, "%s: corrupt objects", pc_data.name);
    CHECK_MSG(count_bad(bss, K, 1) == 0, "%s: corrupt objects", pc_bss.name);
    clear_slots(data, K, 1);
    clear_slots(bss, K, 1);
    scrub_stack();
    expect_collected(&pc_data, K);
    expect_collected(&pc_bss, K);
}

/* ---- (d) the argument of goroutines not started yet ------------------------ */

/* Each goroutine's argument is the head of a chain of nodes without
 * finalizers (a finalizer would keep the chain alive by itself): a chain
 * freed by mistake is reused by the garbage and fails its check. */
#define CHAIN 16
typedef struct cnode {
    struct cnode *next;
    uint64_t id;
    uint64_t check;
    uint64_t pad;
} cnode;

static probe pd = {.name = "argument of a goroutine not started"};
static atomic_int d_started, d_done, d_bad;

static uint64_t cnode_check(uint64_t id, int i)
{
    return (id * 0x2545F4914F6CDD1Dull + (uint64_t)i) | 0x8000000000000000ull;
}

static NOINLINE cnode *make_chain(void)
{
    uint64_t id = atomic_fetch_add(&next_leaf_id, 1);
    cnode *head = NULL;
    for (int i = CHAIN - 1; i >= 0; i--) {
        cnode *n = gort_gc_alloc(sizeof *n);
        REQUIRE(n);
        n->next = head;
        n->id = id;
        n->check = cnode_check(id, i);
        head = n;
    }
    return head;
}

static bool chain_ok(const cnode *c)
{
    if (!c)
        return false;
    uint64_t id = c->id;
    for (int i = 0; i < CHAIN; i++, c = c->next)
        if (!c || c->id != id || c->check != cnode_check(id, i))
            return false;
    return c == NULL;
}

static void fin_chain(void *obj, void *arg)
{
    probe *p = arg;
    if (!chain_ok(obj))
        atomic_fetch_add(&p->corrupt, 1);
    atomic_fetch_add(&p->finalized, 1);
}

static void not_started_fn(void *arg)
{
    atomic_fetch_add(&d_started, 1);
    if (!chain_ok(arg))
        atomic_fetch_add(&d_bad, 1);
    else
        gort_gc_set_finalizer(arg, fin_chain, &pd);
    atomic_fetch_add(&d_done, 1);
}

static void noop_fn(void *arg)
{
    (void)arg;
}

static NOINLINE void spawn_not_started(void)
{
    void *volatile heads[K];
    for (int i = 0; i < K; i++)
        heads[i] = make_chain();
    /* gort_go yields when the goroutine has a preemption request: take
     * any pending one now (gort_gomaxprocs' stop of the world leaves one
     * on its caller), and start a fresh time slice */
    gort_go(noop_fn, NULL);
    gort_yield();
    for (int i = 0; i < K; i++) {
        gort_go(not_started_fn, heads[i]);
        heads[i] = NULL;
    }
}

static void test_not_started(void)
{
    int old = gort_gomaxprocs(1);
    /* gort_gc_alloc and gort_gc_collect never yield: until this goroutine
     * parks, the new ones stay in the run queue */
    spawn_not_started();
    scrub_stack();
    for (int c = 0; c < 3; c++) {
        churn();
        gort_gc_collect();
    }
    /* sysmon may ask a goroutine that ran 10 ms to yield at its next
     * gort_go: those started early held their chain on their stack instead */
    int early = atomic_load(&d_started);
    if (early)
        printf("note: %d of %d goroutines started before the collections\n", early, K);
    CHECK(wait_ge(&d_done, K, 60));
    CHECK_MSG(atomic_load(&d_bad) == 0, "%s: %d of %d chains corrupt when their goroutine ran",
              pd.name, atomic_load(&d_bad), K);
    gort_gomaxprocs(old);
    expect_collected(&pd, K - atomic_load(&d_bad));
}

/* ---- (e) values in a channel's buffer -------------------------------------- */

static probe pe = {.name = "channel buffer"};
static probe pe2 = {.name = "buffer of an unreachable channel"};
static probe pe3 = {.name = "received values, channel still alive (the receive must clear the slot)"};

static NOINLINE void fill_chan(gort_chan *c, probe *p)
{
    for (int i = 0; i < K; i++) {
        leaf *l = new_leaf(p);
        gort_chan_send(c, &l);
    }
}

static NOINLINE void fill_dropped_chan(probe *p)
{
    gort_chan *c = gort_chan_make(sizeof(void *), K);
    REQUIRE(c);
    fill_chan(c, p);
}

static NOINLINE int drain_chan(gort_chan *c)
{
    int bad = 0;
    for (int i = 0; i < K; i++) {
        leaf *l = NULL;
        CHECK(gort_chan_recv(c, &l));
        bad += !leaf_ok(l);
    }
    return bad;
}

static NOINLINE void channel_round_trip(void)
{
    gort_chan *c = gort_chan_make(sizeof(void *), K);
    REQUIRE(c);
    fill_chan(c, &pe);
    scrub_stack();
    expect_alive(&pe);
    CHECK(gort_chan_len(c) == K);
    CHECK_MSG(drain_chan(c) == 0, "%s: corrupt objects received", pe.name);
}

static gort_chan *volatile live_chan;

static void test_channel_buffer(void)
{
    /* values in the buffer live; received and dropped, with the channel
     * gone too, they go */
    channel_round_trip();
    scrub_stack();
    expect_collected(&pe, K);

    /* the values of a channel nobody refers to die with it */
    fill_dropped_chan(&pe2);
    expect_collected(&pe2, K);

    /* A value received from a channel that is still alive is no longer
     * referenced by it: Go clears the buffer slot on receive. (Fails while
     * the receive leaves the value in its slot: the channel then keeps up to
     * cap received objects alive.) */
    live_chan = gort_chan_make(sizeof(void *), K);
    REQUIRE(live_chan);
    fill_chan(live_chan, &pe3);
    CHECK_MSG(drain_chan(live_chan) == 0, "%s: corrupt objects received", pe3.name);
    scrub_stack();
    expect_collected(&pe3, K);
    CHECK(gort_chan_len(live_chan) == 0);
    live_chan = NULL;
}

/* ---- (f) referents of an object with a finalizer --------------------------- */

typedef struct pair {
    leaf *b;
    uint64_t idx;
} pair;

static probe pf_a = {.name = "finalizable object (A)"};
static probe pf_b = {.name = "object reachable only from a finalizable object (B)"};
static atomic_int b_done[K];
static atomic_int f_order_bad, f_b_bad;

static void fin_b(void *obj, void *arg)
{
    leaf *l = obj;
    if (!leaf_ok(l))
        atomic_fetch_add(&pf_b.corrupt, 1);
    atomic_store(&b_done[(uintptr_t)arg], 1);
    atomic_fetch_add(&pf_b.finalized, 1);
}

static void fin_a(void *obj, void *arg)
{
    (void)arg;
    pair *p = obj;
    if (p->idx < K && atomic_load(&b_done[p->idx]))
        atomic_fetch_add(&f_order_bad, 1);
    if (!leaf_ok(p->b))
        atomic_fetch_add(&f_b_bad, 1);
    atomic_fetch_add(&pf_a.finalized, 1);
}

static NOINLINE void make_pairs(void)
{
    for (int i = 0; i < K; i++) {
        pair *a = gort_gc_alloc(sizeof *a);
        REQUIRE(a);
        a->b = new_leaf(NULL);
        a->idx = (uint64_t)i;
        gort_gc_set_finalizer(a->b, fin_b, (void *)(uintptr_t)i);
        gort_gc_set_finalizer(a, fin_a, NULL);
    }
}

static void test_finalizer_referents(void)
{
    make_pairs();   /* every A is unreachable at once */
    churn();
    expect_collected(&pf_a, K);
    CHECK_MSG(atomic_load(&f_order_bad) == 0, "%s: %d finalized before the A pointing to them",
              pf_b.name, atomic_load(&f_order_bad));
    CHECK_MSG(atomic_load(&f_b_bad) == 0, "%s: %d corrupt when A's finalizer ran", pf_b.name,
              atomic_load(&f_b_bad));
    /* A's finalizer has run: A and then B go */
    expect_collected(&pf_b, atomic_load(&pf_a.finalized));
}

/* ---- (g) explicit roots; malloc'd memory is not a root ---------------------- */

static probe pg = {.name = "explicit root range"};
static probe pg_removed = {.name = "removed explicit root range"};
static probe pg_kept = {.name = "explicit root range still registered"};
static probe pm_libc = {.name = "libc malloc'd block (not a root)"};
static probe pm_gort = {.name = "gort_malloc'd block (not a root)"};

static void test_explicit_roots(void)
{
    void *volatile *block = calloc(2 * K, sizeof(void *));
    REQUIRE(block);
    gort_gc_add_roots((void *)block, (void *)(block + K));
    make_leaves(block, K, 1, &pg);
    scrub_stack();
    expect_alive(&pg);
    CHECK_MSG(count_bad(block, K, 1) == 0, "%s: corrupt objects", pg.name);
    /* the pointers stay in the block; the block is no longer a root */
    gort_gc_remove_roots((void *)block, (void *)(block + K));
    scrub_stack();
    expect_collected(&pg, K);

    /* two ranges; removing one leaves the other */
    gort_gc_add_roots((void *)block, (void *)(block + K));
    gort_gc_add_roots((void *)(block + K), (void *)(block + 2 * K));
    make_leaves(block, K, 1, &pg_removed);
    make_leaves(block + K, K, 1, &pg_kept);
    scrub_stack();
    gort_gc_remove_roots((void *)block, (void *)(block + K));
    expect_collected(&pg_removed, K);
    expect_alive(&pg_kept);
    CHECK_MSG(count_bad(block + K, K, 1) == 0, "%s: corrupt objects", pg_kept.name);
    gort_gc_remove_roots((void *)block, (void *)(block + 2 * K));
    scrub_stack();
    expect_collected(&pg_kept, K);
    free((void *)block);

    /* memory from malloc is not scanned: pointers there keep nothing */
    void *volatile *m = calloc(K, sizeof(void *));
    void *volatile *g = gort_calloc(K, sizeof(void *));
    REQUIRE(m && g);
    make_leaves(m, K, 1, &pm_libc);
    make_leaves(g, K, 1, &pm_gort);
    expect_collected(&pm_libc, K);
    expect_collected(&pm_gort, K);
    free((void *)m);
    gort_free((void *)g);
}

/* ---- interior pointers ------------------------------------------------------ */

static probe pi = {.name = "interior pointers"};
static probe pi_large = {.name = "interior pointer into a large object"};
static void *volatile interior[K];
static void *volatile interior_large;

static NOINLINE void make_interior(void)
{
    for (int i = 0; i < K; i++)
        interior[i] = (char *)new_leaf(&pi) + 8 + (size_t)(i % 7) * 8;
    unsigned char *big = gort_gc_alloc(1 << 20);
    REQUIRE(big);
    memset(big + 700 * 1024, 0x77, 64);
    gort_gc_set_finalizer(big, fin_count, &pi_large);
    interior_large = big + 700 * 1024 + 13;
}

static NOINLINE void check_interior(void)
{
    int bad = 0;
    for (int i = 0; i < K; i++)
        bad += !leaf_ok((leaf *)((char *)interior[i] - 8 - (size_t)(i % 7) * 8));
    CHECK_MSG(bad == 0, "%s: %d corrupt objects", pi.name, bad);
    const unsigned char *b = (const unsigned char *)interior_large - 13;
    for (int i = 0; i < 64; i++)
        if (b[i] != 0x77) {
            CHECK_MSG(0, "%s: contents changed", pi_large.name);
            break;
        }
}

static void test_interior(void)
{
    make_interior();
    scrub_stack();
    expect_alive(&pi);
    expect_alive(&pi_large);
    check_interior();
    clear_slots(interior, K, 1);
    scrub_stack();
    expect_collected(&pi, K);
    interior_large = NULL;
    /* one object: whether it went is not asserted (a stale copy may hold it) */
}

/* ---- noscan and typed objects ------------------------------------------------ */

static probe pn = {.name = "pointed to only from a noscan object"};
static probe pn_ctl = {.name = "pointed to from a scanned object"};
static probe pn_holder = {.name = "noscan holder itself"};
static void *volatile noscan_holder, *scan_holder;

static NOINLINE void make_holders(void)
{
    void *volatile *ns = gort_gc_alloc_noscan(K * sizeof(void *));
    void *volatile *sc = gort_gc_alloc(K * sizeof(void *));
    REQUIRE(ns && sc);
    make_leaves(ns, K, 1, &pn);
    make_leaves(sc, K, 1, &pn_ctl);
    gort_gc_set_finalizer((void *)ns, fin_count, &pn_holder);
    noscan_holder = (void *)ns;
    scan_holder = (void *)sc;
}

/* 4-word elements; words 0 and 2 hold pointers, 1 and 3 are not scanned */
static const unsigned char typed_mask[1] = {0x05};
static const gort_gc_type typed4 = {4 * sizeof(void *), typed_mask};
static probe pt_scanned = {.name = "typed object, pointer words"};
static probe pt_skipped = {.name = "typed object, words the mask leaves out"};
static void *volatile typed_holder;

static NOINLINE void make_typed(void)
{
    void *volatile *t = gort_gc_alloc_typed(K * 4 * sizeof(void *), &typed4);
    REQUIRE(t);
    make_leaves(t, K, 4, &pt_scanned);
    make_leaves(t + 2, K, 4, &pt_scanned);
    make_leaves(t + 1, K, 4, &pt_skipped);
    make_leaves(t + 3, K, 4, &pt_skipped);
    typed_holder = (void *)t;
}

static NOINLINE int typed_bad(void)
{
    void *volatile *t = typed_holder;
    return count_bad(t, K, 4) + count_bad(t + 2, K, 4);
}

/* Overwrite the pointers the holders keep: one by one, their objects go. */
static NOINLINE void clear_holders(void)
{
    void *volatile *t = typed_holder;
    clear_slots(t, K, 4);
    clear_slots(t + 2, K, 4);
    clear_slots(scan_holder, K, 1);
}

static void test_noscan_typed(void)
{
    make_holders();
    make_typed();
    scrub_stack();
    expect_collected(&pn, K);
    expect_collected(&pt_skipped, 2 * K);
    expect_alive(&pn_ctl);
    expect_alive(&pt_scanned);
    CHECK_MSG(atomic_load(&pn_holder.finalized) == 0, "the noscan holder was finalized while "
              "a global referred to it");
    CHECK_MSG(typed_bad() == 0, "%s: corrupt objects", pt_scanned.name);
    CHECK_MSG(count_bad(scan_holder, K, 1) == 0, "%s: corrupt objects", pn_ctl.name);
    clear_holders();
    scrub_stack();
    expect_collected(&pn_ctl, K);
    expect_collected(&pt_scanned, 2 * K);
    scan_holder = NULL;
    typed_holder = NULL;
    noscan_holder = NULL;
}

/* ---- main -------------------------------------------------------------------- */

static void main_fn(void *arg)
{
    (void)arg;
    test_parked_goroutine();
    test_running_thread();
    test_register();
    test_shared_object();
    test_not_started();
    test_finalizer_referents();
    test_explicit_roots();
    test_interior();
    test_noscan_typed();
    test_channel_buffer();
}

int main(void)
{
    REQUIRE(gort_main(main_fn, NULL) == 0);
    return test_done();
}
