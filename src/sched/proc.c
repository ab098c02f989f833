/* proc.c - the goroutine scheduler: G, M, P (Go's proc.go, in C).
 *
 * G is a goroutine: a stack (stack.c), a saved context (ctx.h) and a
 * status. M is an OS thread; its own pthread stack is its g0, where the
 * scheduler runs. P is a processor: a run queue (runq.c), a timer heap
 * (timer.c), a free list of dead Gs and the allocator cache goroutine code
 * uses. GOMAXPROCS Ps exist; an M must hold a P to run goroutines, so at
 * most GOMAXPROCS goroutines run at once however many threads are blocked
 * in system calls.
 *
 * Switching: a goroutine that yields, parks or exits switches to its M's
 * g0 (mcall), and g0 finishes the job there, off the goroutine's stack:
 * marks it runnable, waiting or dead, releases the lock its waker will take
 * (gopark's callback), frees it. Only then can another M see it, so a
 * goroutine is never resumed while still on its stack. g0 then picks the
 * next goroutine and switches to it (execute). Two switches per goroutine
 * change, as in Go; each is a few nanoseconds (switch.S).
 *
 * Finding work (findrunnable), in Go's order: the P's due timers; the
 * global queue every 61st schedule (fairness); runnext and the local
 * queue; the global queue; then, if few enough Ms are spinning already
 * (2 * spinning < busy Ps), spin: steal half of a random victim's queue,
 * four passes over all Ps, runnext only on the last pass, running due
 * timers of other Ps on the way. An M that finds nothing gives its P back
 * and parks on a futex; the first of them sleeps only until the earliest
 * timer of any P (the timer M), the others until woken.
 *
 * Waking: a goroutine made runnable (gort_go, goready) goes to the current
 * P's runnext; if a P is idle and no M is spinning, one M is woken to spin
 * (wakep). Spinning Ms that find work wake another before running it, so
 * work spreads without a thundering herd. The lost-wake-up race between
 * publishing work and an M going idle is closed as in Go: an M that stops
 * spinning re-checks every run queue after its decrement of nmspinning, and
 * both sides pass a sequentially consistent atomic in between.
 *
 * System calls: gort_entersyscall leaves the P in P_SYSCALL with no M; if
 * the call is short, exitsyscall takes it back with one CAS. sysmon
 * (sysmon.c) hands a P that stays in P_SYSCALL for more than 20 us to
 * another M (handoffp), so the other goroutines keep running.
 *
 * Preemption is cooperative: sysmon marks a goroutine that ran for more
 * than 10 ms and it yields at its next runtime call (gort_yield, gort_go,
 * gort_sleep, gort_entersyscall/exitsyscall, and later channel and sync
 * operations). A loop that never calls the runtime is not preempted: a
 * signal handler may not switch goroutines while the interrupted code may
 * hold a lock (libc's, the user's or ours), so gort does not do that.
 *
 * lock_os_thread wires a G to its M as Go does: the M runs only that G and
 * hands its P away while the G waits; whoever finds the G runnable hands a P
 * to its M (startlockedm). A goroutine that exits while locked takes its
 * thread with it (the thread may hold state the G changed).
 *
 * Deadlock: when the last M goes idle (checkdead) with no goroutine
 * runnable, none in a system call and no timer pending, nothing can ever
 * run again: "fatal error: all goroutines are asleep - deadlock!".
 *
 * Exit: when the main goroutine's function returns, sched.exiting is set;
 * every M parks for good at its next schedule, and m0 (gort_main's thread)
 * returns from gort_main. A goroutine running user code at that moment
 * finishes its stretch up to its next runtime call.
 *
 * errno belongs to the goroutine: it is saved when a goroutine switches out
 * and restored, through a function the compiler cannot see into, when it
 * resumes, perhaps on another thread. The same hazard hits any thread-local
 * whose address user code caches across a call that may switch; the
 * remedy is gort_lock_os_thread (README: "Goroutines and thread-locals").
 *
 * Locks: sched.lock protects the idle lists, the global queue, the free-G
 * pool and the counters that say otherwise; a P's timers have their own
 * lock; the run queues are lock-free. Order: sched.lock before a P's
 * timerslock; the allocator's locks come after both.
 */
#define _GNU_SOURCE
#include "sched/proc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/malloc.h"
#include "chan/panic.h"
#include "gc/gc.h"
#include "sched/ctx.h"
#include "sched/netpoll.h"
#include "sched/sanitize.h"
#include "sched/stack.h"

schedt sched;
__thread M *tls_m __attribute__((tls_model("initial-exec")));

__attribute__((noinline)) M *getm(void)
{
    __asm__ __volatile__("" ::: "memory");
    return tls_m;
}

static M m0;
static G m0_g0;
static _Atomic(M *) allm;
static _Atomic int runtime_state;     /* 0 never started, 1 running, 2 main returned */
static _Atomic int64_t mnextid;
static int initial_procs;             /* gort_gomaxprocs before gort_main */
static G *main_g;

enum { PEND_NONE = 0, PEND_YIELD, PEND_PREEMPT, PEND_PARK, PEND_EXIT, PEND_EXITSYSCALL };

#define NS_PER_MS 1000000LL

static void schedule(void);
static void stopm(M *mp, int64_t until);
static void checkdead(void);

/* ---- small helpers -------------------------------------------------------- */

static inline void set_status(G *gp, uint32_t st)
{
    atomic_store_explicit(&gp->status, st, memory_order_release);
}

static uint32_t fastrand(M *mp)
{
    uint32_t x = mp->fastrand;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return mp->fastrand = x ? x : 0x9e3779b9u;
}

/* GOMAXPROCS. Changed only with the world stopped, but read by Ms on
 * their way to sleep and by sysmon at any time: always through an atomic. */
static inline int32_t nprocs(void)
{
    return __atomic_load_n(&sched.gomaxprocs, __ATOMIC_ACQUIRE);
}

/* Goroutine counts live in the Ps (a shared counter would bounce between
 * CPUs on every spawn and exit); the sum is exact once nothing runs. */
static inline void ngo_add(P *pp, int64_t d)
{
    atomic_store_explicit(&pp->ngo, atomic_load_explicit(&pp->ngo, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

static int64_t count_goroutines(void)
{
    int64_t n = atomic_load_explicit(&sched.ngo_dead, memory_order_relaxed);
    int32_t procs = __atomic_load_n(&sched.gomaxprocs, __ATOMIC_ACQUIRE);
    for (int32_t i = 0; i < procs; i++)
        n += atomic_load_explicit(&sched.allp[i]->ngo, memory_order_relaxed);
    return n < 0 ? 0 : n;
}

/* errno through functions the compiler cannot inline: a goroutine may
 * resume on another thread, whose errno lives elsewhere, and glibc's
 * __errno_location is const, so a caller could keep the old address. */
__attribute__((noinline)) int sched_errno_get(void)
{
    __asm__ __volatile__("" ::: "memory");
    return errno;
}

__attribute__((noinline)) void sched_errno_set(int e)
{
    __asm__ __volatile__("" ::: "memory");
    errno = e;
}

int64_t gort_nanotime(void)
{
    return os_nanotime();
}

G *need_g(const char *what)
{
    /* A direct read of the thread pointer is safe here: nothing has
     * switched since this call began, and callers that switch re-read it
     * through getm() afterwards. */
    M *cur = tls_m;
    G *gp = cur ? cur->curg : NULL;
    if (unlikely(!gp)) {
        if (atomic_load(&runtime_state) == 0)
            throwf("%s called before gort_main (it needs a goroutine)", what);
        throwf("%s called outside a goroutine", what);
    }
    return gp;
}

P *sched_getp(void)
{
    M *mp = getm();
    return mp ? mp->p : NULL;
}

/* ---- notes: one futex word per M ----------------------------------------- */

/* An M asleep here holds no GC state: the collector scans what it saved
 * instead of stopping it (gc/suspend.c). */
static void notesleep(M *mp, int64_t ns)
{
    bool b = gcthread_block();
    if (ns < 0) {
        while (atomic_load(&mp->note) == 0)
            os_futex_wait((uint32_t *)&mp->note, 0, -1);
    } else if (atomic_load(&mp->note) == 0) {
        os_futex_wait((uint32_t *)&mp->note, 0, ns);
    }
    gcthread_unblock(b);
}

static void notewakeup(M *mp)
{
    atomic_store(&mp->note, 1);
    os_futex_wake((uint32_t *)&mp->note, 1);
}

/* ---- Ps and Ms: idle lists (sched.lock held) ----------------------------- */

static void pidleput(P *pp)
{
    assert_lock_held(&sched.lock);
    atomic_store(&pp->status, P_IDLE);
    pp->link = sched.pidle;
    sched.pidle = pp;
    atomic_fetch_add(&sched.npidle, 1);
}

static P *pidleget(void)
{
    assert_lock_held(&sched.lock);
    P *pp = sched.pidle;
    if (pp) {
        sched.pidle = pp->link;
        pp->link = NULL;
        atomic_fetch_sub(&sched.npidle, 1);
        if (atomic_load(&sched.sysmonwait))
            sysmon_wake();
    }
    return pp;
}

static void mput(M *mp)
{
    assert_lock_held(&sched.lock);
    mp->schedlink = sched.midle;
    sched.midle = mp;
    sched.nmidle++;
    checkdead();
}

static M *mget(void)
{
    assert_lock_held(&sched.lock);
    M *mp = sched.midle;
    if (mp) {
        sched.midle = mp->schedlink;
        mp->schedlink = NULL;
        sched.nmidle--;
    }
    return mp;
}

static void mremove(M *mp)
{
    for (M **pm = &sched.midle; *pm; pm = &(*pm)->schedlink)
        if (*pm == mp) {
            *pm = mp->schedlink;
            mp->schedlink = NULL;
            sched.nmidle--;
            return;
        }
}

static void acquirep(M *mp, P *pp)
{
    mp->p = pp;
    __atomic_store_n(&pp->m, mp, __ATOMIC_RELEASE);
    atomic_store(&pp->status, P_RUNNING);
    mcache_use(pp->mcache);
}

static P *releasep(M *mp)
{
    P *pp = mp->p;
    __atomic_store_n(&pp->m, NULL, __ATOMIC_RELEASE);
    mp->p = NULL;
    atomic_store(&pp->status, P_IDLE);
    mcache_use(NULL);
    return pp;
}

/* ---- creating Ms ---------------------------------------------------------- */

static void g0_bounds(G *g0)
{
    os_thread_stack(&g0->stack_lo, &g0->stack_hi);
    g0->magic = G_MAGIC;
    san_init_g0(g0);
}

/* The signal mask of gort_main's thread. A new M takes it, not the mask
 * of the thread that happened to start it: sysmon and the collector's
 * threads block every signal, and an M inheriting that would never see
 * SIGPIPE, a user's SIGALRM or the collector's stop signal (Go's
 * initSigmask, for the same reason). Written once before any M starts. */
static sigset_t initsigmask;

static void *mstart(void *arg)
{
    M *mp = arg;
    pthread_sigmask(SIG_SETMASK, &initsigmask, NULL);
    tls_m = mp;
    gcthread_register(mp);
    g0_bounds(mp->g0);
    stack_altstack(mp);
    mp->fastrand = (uint32_t)(uintptr_t)mp ^ (uint32_t)os_nanotime();
    if (mp->nextp) {
        acquirep(mp, mp->nextp);
        mp->nextp = NULL;
    }
    schedule();
    return NULL;
}

/* Start a new M that will run with pp. sched.mcount was already counted. */
static void newm(P *pp, bool spinning)
{
    M *mp = calloc(1, sizeof(M));
    G *g0 = calloc(1, sizeof(G));
    if (!mp || !g0)
        throw("out of memory creating a thread");
    mp->g0 = g0;
    mp->id = atomic_fetch_add(&mnextid, 1);
    mp->nextp = pp;
    mp->spinning = spinning;
    M *head = atomic_load(&allm);
    do {
        mp->alllink = head;
    } while (!atomic_compare_exchange_weak(&allm, &head, mp));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int err = pthread_create(&t, &attr, mstart, mp);
    pthread_attr_destroy(&attr);
    if (err)
        throwf("newm: pthread_create failed (errno %d)", err);
}

static void count_new_m_locked(void)
{
    assert_lock_held(&sched.lock);
    if (sched.mcount >= sched.maxmcount) {
        printerr("runtime: program exceeds %d-thread limit\n", (int)sched.maxmcount);
        throw("thread exhaustion");
    }
    sched.mcount++;
}

/* Get an M to run pp (an idle one, else a new one). pp == NULL: take an
 * idle P, or do nothing if there is none. */
static void startm(P *pp, bool spinning)
{
    lock(&sched.lock);
    if (atomic_load(&sched.exiting)) {
        unlock(&sched.lock);
        return;
    }
    if (!pp) {
        pp = pidleget();
        if (!pp) {
            unlock(&sched.lock);
            if (spinning)
                atomic_fetch_sub(&sched.nmspinning, 1);
            return;
        }
    }
    M *nmp = mget();
    if (nmp && nmp == sched.timerm)
        sched.timerm = NULL;   /* it will be busy: somebody else takes the duty */
    if (!nmp) {
        count_new_m_locked();
        unlock(&sched.lock);
        newm(pp, spinning);
        return;
    }
    nmp->spinning = spinning;
    nmp->nextp = pp;   /* under the lock: see stopm */
    unlock(&sched.lock);
    notewakeup(nmp);
}

void wakep(void)
{
    full_fence();
    if (atomic_load(&sched.npidle) == 0)
        return;
    int32_t z = 0;
    if (atomic_load(&sched.nmspinning) != 0 ||
        !atomic_compare_exchange_strong(&sched.nmspinning, &z, 1))
        return;
    startm(NULL, true);
}

static void resetspinning(M *mp)
{
    mp->spinning = false;
    int32_t n = atomic_fetch_sub(&sched.nmspinning, 1) - 1;
    /* the last spinner found work: there may be more, wake a replacement */
    if (n == 0)
        wakep();
}

/* Sleep until handed a P (returns with mp->p set), or until `until` (a
 * nanotime; 0: forever) if this M takes the timer duty, or until exit. */
static void stopm(M *mp, int64_t until)
{
    lock(&sched.lock);
    bool timer = false;
    M *replaced = NULL;
    if (until && (!sched.timerm || until < sched.timerm_until)) {
        /* the earliest deadline wins the duty; the old holder re-checks */
        replaced = sched.timerm;
        sched.timerm = mp;
        sched.timerm_until = until;
        timer = true;
    }
    mput(mp);
    unlock(&sched.lock);
    if (replaced)
        notewakeup(replaced);
    if (timer) {
        int64_t d = until - os_nanotime();
        notesleep(mp, d > 0 ? d : 0);
    } else {
        notesleep(mp, -1);
    }
    lock(&sched.lock);
    atomic_store(&mp->note, 0);
    if (sched.timerm == mp)
        sched.timerm = NULL;
    if (!mp->nextp) {
        /* timed out, or woken for the timers or for exit: still on the idle
         * list (nextp is set under the lock by whoever takes an M off it) */
        mremove(mp);
        if (!atomic_load(&sched.exiting) && !atomic_load(&sched.gcwaiting))
            mp->nextp = pidleget();
    }
    P *pp = mp->nextp;
    mp->nextp = NULL;
    unlock(&sched.lock);
    if (pp)
        acquirep(mp, pp);
}

void wake_timer_m(int64_t when)
{
    if (netpoll_inited() && atomic_load(&sched.lastpoll) == 0) {
        /* an M blocks in the poller, covering the timers: if it would
         * sleep past this one, break its wait (it recomputes) */
        int64_t pu = atomic_load(&sched.pollUntil);
        if (pu == 0 || when < pu) {
            netpoll_break();
            return;
        }
    }
    lock(&sched.lock);
    M *tm = sched.timerm;
    if (tm) {
        if (when < sched.timerm_until) {
            sched.timerm_until = when;
            unlock(&sched.lock);
            notewakeup(tm);
            return;
        }
        unlock(&sched.lock);
        return;
    }
    unlock(&sched.lock);
    wakep();
}

/* ---- stop the world (cooperative) ---------------------------------------- */

static void preempt_all(void)
{
    for (int32_t i = 0; i < nprocs(); i++) {
        P *pp = sched.allp[i];
        M *mp = __atomic_load_n(&pp->m, __ATOMIC_ACQUIRE);
        if (!mp)
            continue;
        G *gp = __atomic_load_n(&mp->curg, __ATOMIC_ACQUIRE);
        if (gp)
            atomic_store(&gp->preempt, true);
    }
}

/* On g0 or in a goroutine: this M stops its P for a stop-the-world. */
static void gcstopm(M *mp)
{
    if (mp->spinning) {
        mp->spinning = false;
        atomic_fetch_sub(&sched.nmspinning, 1);
    }
    P *pp = releasep(mp);
    lock(&sched.lock);
    atomic_store(&pp->status, P_STOPPED);
    if (atomic_fetch_sub(&sched.stopwait, 1) == 1) {
        atomic_store(&sched.stopnote, 1);
        os_futex_wake((uint32_t *)&sched.stopnote, 1);
    }
    unlock(&sched.lock);
    stopm(mp, 0);
}

/* Only one stop-the-world at a time (Go's worldsema). Taken by yielding,
 * not by blocking the thread, so a goroutine waiting for it lets its P
 * stop for the one in progress. */
static _Atomic int stw_owner;

static void stw_acquire(void)
{
    int z = 0;
    while (!atomic_compare_exchange_weak(&stw_owner, &z, 1)) {
        z = 0;
        gort_yield();
    }
}

static void stw_release(void)
{
    atomic_store(&stw_owner, 0);
}

/* Returns false if the program is exiting (main returned): the world
 * will not stop then, and gcwaiting is withdrawn. */
static bool stoptheworld(void)
{
    M *mp = getm();
    lock(&sched.lock);
    atomic_store(&sched.stopnote, 0);
    atomic_store(&sched.stopwait, (uint32_t)nprocs());
    atomic_store(&sched.gcwaiting, true);
    preempt_all();
    atomic_store(&mp->p->status, P_STOPPED);
    atomic_fetch_sub(&sched.stopwait, 1);
    for (int32_t i = 0; i < nprocs(); i++) {
        P *pp = sched.allp[i];
        uint32_t s = P_SYSCALL;
        if (atomic_compare_exchange_strong(&pp->status, &s, P_STOPPED)) {
            atomic_fetch_add(&pp->syscalltick, 1);
            atomic_fetch_sub(&sched.stopwait, 1);
        }
    }
    P *pp;
    while ((pp = sched.pidle)) {
        sched.pidle = pp->link;
        atomic_fetch_sub(&sched.npidle, 1);
        atomic_store(&pp->status, P_STOPPED);
        atomic_fetch_sub(&sched.stopwait, 1);
    }
    unlock(&sched.lock);
    while (atomic_load(&sched.stopwait) > 0) {
        if (atomic_load(&sched.exiting)) {
            atomic_store(&sched.gcwaiting, false);
            return false;
        }
        os_futex_wait((uint32_t *)&sched.stopnote, 0, 100000);
        preempt_all();
    }
    return true;
}

/* ---- Ps: creation, destruction, GOMAXPROCS -------------------------------- */

static P *newp(int32_t id)
{
    P *pp = calloc(1, sizeof(P));
    if (!pp)
        throw("out of memory creating a P");
    pp->id = id;
    return pp;
}

static void destroyp(P *pp, P *heir)
{
    /* its runnable Gs go to the global queue, in order */
    bool inherit;
    G *gp;
    while ((gp = runq_get(pp, &inherit)))
        globrunq_put(gp);
    timer_move_all(pp, heir);
    while ((gp = pp->gfree)) {
        pp->gfree = gp->schedlink;
        gp->schedlink = sched.gfree;
        sched.gfree = gp;
        __atomic_store_n(&sched.ngfree, sched.ngfree + 1, __ATOMIC_RELAXED);
    }
    pp->gfreecnt = 0;
    atomic_fetch_add(&sched.ngo_dead, atomic_exchange(&pp->ngo, 0));
    if (pp->mcache) {
        mcache_release_p(pp->mcache);
        pp->mcache = NULL;
    }
    atomic_store(&pp->status, P_DEAD);
}

/* Resize to `want` Ps. The world is stopped (or not started) and
 * sched.lock is held. The calling M ends up holding a P. Returns the Ps
 * that have work and need an M, linked through ->link. */
static P *procresize(int32_t want)
{
    assert_lock_held(&sched.lock);
    int32_t old = sched.gomaxprocs;   /* we are the writer */
    if (!sched.allp) {
        /* fixed capacity: sysmon walks it without the lock */
        sched.allp = calloc(MAX_PROCS, sizeof(P *));
        if (!sched.allp)
            throw("out of memory allocating allp");
        sched.allplen = MAX_PROCS;
    }
    for (int32_t i = 0; i < want; i++) {
        if (!sched.allp[i])
            sched.allp[i] = newp(i);
        if (!sched.allp[i]->mcache && !(sched.allp[i]->mcache = mcache_for_p()))
            throw("out of memory creating a P's cache");
    }
    M *self = getm();
    if (self->p && self->p->id >= want) {
        /* our P goes away: stop allocating through its cache first */
        __atomic_store_n(&self->p->m, NULL, __ATOMIC_RELEASE);
        self->p = NULL;
        mcache_use(NULL);
    }
    for (int32_t i = want; i < old; i++)
        destroyp(sched.allp[i], sched.allp[0]);
    __atomic_store_n(&sched.gomaxprocs, want, __ATOMIC_RELEASE);

    M *mp = getm();
    if (mp->p && mp->p->id < want) {
        atomic_store(&mp->p->status, P_RUNNING);
    } else {
        if (mp->p) {
            __atomic_store_n(&mp->p->m, NULL, __ATOMIC_RELEASE);
            mp->p = NULL;
        }
        acquirep(mp, sched.allp[0]);
    }
    P *runnable = NULL;
    for (int32_t i = want - 1; i >= 0; i--) {
        P *pp = sched.allp[i];
        if (pp == mp->p)
            continue;
        if (runq_empty(pp)) {
            pidleput(pp);
        } else {
            atomic_store(&pp->status, P_IDLE);
            pp->link = runnable;
            runnable = pp;
        }
    }
    return runnable;
}

int gort_gomaxprocs(int n)
{
    if (atomic_load(&runtime_state) == 0) {
        int old = initial_procs > 0 ? initial_procs : os_ncpu();
        if (n >= 1)
            initial_procs = n;
        return old;
    }
    lock(&sched.lock);
    int old = nprocs();
    unlock(&sched.lock);
    if (n < 1 || n == old)
        return old;
    if (n > MAX_PROCS)
        n = MAX_PROCS;
    need_g("gort_gomaxprocs");
    stw_acquire();
    lock(&sched.lock);
    old = nprocs();
    unlock(&sched.lock);
    if (n == old || !stoptheworld()) {
        stw_release();
        return old;
    }
    lock(&sched.lock);
    P *runnable = procresize(n);
    atomic_store(&sched.gcwaiting, false);
    unlock(&sched.lock);
    stw_release();
    while (runnable) {
        P *pp = runnable;
        runnable = pp->link;
        pp->link = NULL;
        startm(pp, false);
    }
    wakep();
    return old;
}

/* ---- goroutines: creation, free list ------------------------------------- */

static G *gfget(P *pp)
{
    for (;;) {
        if (!pp->gfree && __atomic_load_n(&sched.ngfree, __ATOMIC_RELAXED) > 0) {
            lock(&sched.lock);
            while (pp->gfreecnt < 32 && sched.gfree) {
                G *gp = sched.gfree;
                sched.gfree = gp->schedlink;
                __atomic_store_n(&sched.ngfree, sched.ngfree - 1, __ATOMIC_RELAXED);
                gp->schedlink = pp->gfree;
                pp->gfree = gp;
                pp->gfreecnt++;
            }
            unlock(&sched.lock);
        }
        G *gp = pp->gfree;
        if (!gp)
            return NULL;
        pp->gfree = gp->schedlink;
        pp->gfreecnt--;
        if (likely(stack_size_of(gp) == stack_current_size()))
            return gp;
        stack_release_all(gp);   /* the stack size changed: retire it */
    }
}

static void gfput(P *pp, G *gp)
{
    stack_release_deep(gp);
    gp->schedlink = pp->gfree;
    pp->gfree = gp;
    if (++pp->gfreecnt >= 64) {
        lock(&sched.lock);
        while (pp->gfreecnt > 32) {
            G *g1 = pp->gfree;
            pp->gfree = g1->schedlink;
            pp->gfreecnt--;
            g1->schedlink = sched.gfree;
            sched.gfree = g1;
            __atomic_store_n(&sched.ngfree, sched.ngfree + 1, __ATOMIC_RELAXED);
        }
        unlock(&sched.lock);
    }
}

static _Noreturn void goexit1(void);

/* First frame of every goroutine: also its defer frame (panic.c). A panic
 * recovered in it lands back here, after which the goroutine's function
 * counts as returned. */
static void goentry(void *arg)
{
    G *gp = arg;
    san_after_switch(gp);
    sched_errno_set(0);
    gp->frames = NULL;
    gp->panicking = NULL;
    gframe fr;
    gframe_push(gp, &fr);
    if (setjmp(fr.jb) == 0)
        gp->fn(gp->arg);
    gp = getg();
    gframe_run_defers(gp, &fr);
    gframe_pop(gp, &fr);
    goexit1();
}

static G *newproc1(gort_fn fn, void *arg, P *pp)
{
    if (!fn)
        throw("go of nil func value");
    G *gp = gfget(pp);
    if (gp) {
        san_new_stack(gp, false);
    } else if (!(gp = stack_alloc_g())) {
        throw("out of memory allocating a goroutine stack");
    }
    gp->fn = fn;
    gp->arg = arg;
    gp->sp = ctx_init((void *)gp->stack_hi, goentry, gp);
    if (pp->goidcache == pp->goidcacheend) {
        /* a batch at a time: the shared counter would bounce between CPUs */
        pp->goidcache = atomic_fetch_add_explicit(&sched.goidgen, 16, memory_order_relaxed) + 1;
        pp->goidcacheend = pp->goidcache + 16;
    }
    gp->goid = pp->goidcache++;
    gp->m = NULL;
    gp->lockedm = NULL;
    gp->lockedcount = 0;
    gp->saved_errno = 0;
    atomic_store_explicit(&gp->preempt, false, memory_order_relaxed);
    gp->schedlink = NULL;
    set_status(gp, G_RUNNABLE);
    ngo_add(pp, 1);
    return gp;
}

void gort_go(gort_fn fn, void *arg)
{
    G *cur = need_g("gort_go");
    P *pp = cur->m->p;
    G *gp = newproc1(fn, arg, pp);
    runq_put(pp, gp, true);
    wakep();
    if (unlikely(atomic_load_explicit(&cur->preempt, memory_order_relaxed)))
        preempt_check();
}

int gort_num_goroutine(void)
{
    return (int)count_goroutines();
}

int64_t gort_goid(void)
{
    G *gp = getg();
    return gp ? gp->goid : 0;
}

/* ---- switching between a goroutine and g0 -------------------------------- */

/* In a goroutine: switch to g0, which does `action` for us. Returns when
 * the goroutine is resumed, perhaps on another M. */
static __attribute__((noinline)) void mcall(int action, void (*fn)(G *, void *), void *arg)
{
    M *mp = tls_m;   /* fresh: read before the switch, never after it */
    G *gp = mp->curg;
    mp->pending = action;
    mp->pending_fn = fn;
    mp->pending_arg = arg;
    gp->saved_errno = sched_errno_get();
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    if (sp < gp->minsp)
        gp->minsp = sp;
    stack_check(gp);
    san_before_switch(gp, mp->g0, action == PEND_EXIT);
    ctx_switch(&gp->sp, mp->g0->sp);
    /* resumed: mp is stale now */
    san_after_switch(gp);
    sched_errno_set(gp->saved_errno);
}

/* On g0: run gp until it switches back, then finish what it asked for. */
static void execute(M *mp, G *gp, bool inherit)
{
    P *pp = mp->p;
    __atomic_store_n(&mp->curg, gp, __ATOMIC_RELEASE);
    gp->m = mp;
    atomic_store_explicit(&gp->preempt, false, memory_order_relaxed);   /* a new time slice */
    set_status(gp, G_RUNNING);
    if (!inherit)
        __atomic_store_n(&pp->schedtick, pp->schedtick + 1, __ATOMIC_RELAXED);
    san_before_switch(mp->g0, gp, false);
    ctx_switch(&mp->g0->sp, gp->sp);
    san_after_switch(mp->g0);
    __atomic_store_n(&mp->curg, NULL, __ATOMIC_RELEASE);
    int action = mp->pending;
    mp->pending = PEND_NONE;
    switch (action) {
    case PEND_YIELD:
        /* to the back of the local queue (Go uses the global one; the
         * local ring is cheaper and stealing spreads it as well), and if a
         * P sits idle while we have a queue, get it spinning */
        set_status(gp, G_RUNNABLE);
        runq_put(mp->p, gp, false);
        if (atomic_load_explicit(&sched.npidle, memory_order_relaxed) > 0 &&
            atomic_load_explicit(&sched.nmspinning, memory_order_relaxed) == 0)
            wakep();
        break;
    case PEND_PREEMPT:
        /* preempted: to the back of the global queue, as Go does, so a
         * goroutine that keeps spawning waits behind what it spawned */
        set_status(gp, G_RUNNABLE);
        lock(&sched.lock);
        globrunq_put(gp);
        unlock(&sched.lock);
        break;
    case PEND_PARK:
        set_status(gp, G_WAITING);
        if (mp->pending_fn)
            mp->pending_fn(gp, mp->pending_arg);
        break;
    case PEND_EXIT:
        set_status(gp, G_DEAD);
        gp->m = NULL;
        ngo_add(mp->p, -1);
        if (gp->lockedm) {
            /* Go: a goroutine that exits locked takes its thread along */
            gp->lockedm = NULL;
            mp->lockedg = NULL;
            mp->exiting = true;
        }
        gfput(mp->p, gp);
        break;
    case PEND_EXITSYSCALL: {
        /* Back from a system call without a P. A P may have gone idle since
         * the goroutine looked: take it under the lock, or queue the G
         * under the same lock (an M giving up its P checks the global
         * queue under it too, so the G cannot be stranded). */
        set_status(gp, G_RUNNABLE);
        atomic_fetch_sub(&sched.nsyscall, 1);
        lock(&sched.lock);
        P *pp = atomic_load(&sched.gcwaiting) ? NULL : pidleget();
        if (!pp)
            globrunq_put(gp);
        unlock(&sched.lock);
        if (pp) {
            acquirep(mp, pp);
            runq_put(pp, gp, true);
        }
        break;
    }
    default:
        throw("execute: goroutine switched to g0 with no request");
    }
}

void gopark(void (*fn)(G *gp, void *arg), void *arg)
{
    mcall(PEND_PARK, fn, arg);
}

void goready(G *gp)
{
    uint32_t st = G_WAITING;
    if (!atomic_compare_exchange_strong(&gp->status, &st, G_RUNNABLE))
        throwf("goready: goroutine %d is not waiting (status %u)", (int)gp->goid, st);
    M *mp = getm();
    if (mp && mp->p) {
        runq_put(mp->p, gp, true);
    } else {
        lock(&sched.lock);
        globrunq_put(gp);
        unlock(&sched.lock);
    }
    wakep();
}

void gort_yield(void)
{
    need_g("gort_yield");
    mcall(PEND_YIELD, NULL, NULL);
}

void preempt_check(void)
{
    G *gp = getg();
    if (gp && atomic_load_explicit(&gp->preempt, memory_order_relaxed)) {
        atomic_store_explicit(&gp->preempt, false, memory_order_relaxed);
        mcall(PEND_PREEMPT, NULL, NULL);
    }
}

static void main_returned(void)
{
    atomic_store(&runtime_state, 2);
    atomic_store(&sched.exiting, true);
    notewakeup(&m0);
    netpoll_break();   /* m0 may be the M blocked in the poller */
}

static _Noreturn void goexit1(void)
{
    G *gp = getg();
    if (gp == main_g)
        main_returned();
    mcall(PEND_EXIT, NULL, NULL);
    throw("goexit: a dead goroutine resumed");
}

_Noreturn void gort_goexit(void)
{
    G *gp = need_g("gort_goexit");
    goexit_run_defers(gp);
    gp = getg();
    if (gp == main_g) {
        /* as Go: the program goes on until the other goroutines finish,
         * then dies of deadlock; gort_main does not return */
        main_g = NULL;
        mcall(PEND_EXIT, NULL, NULL);
    }
    goexit1();
}

/* ---- timers and sleep ----------------------------------------------------- */

static void sleep_ready(void *arg, uintptr_t seq)
{
    (void)seq;
    goready(arg);
}

static void sleep_park(G *gp, void *arg)
{
    (void)arg;
    timer_add(getm()->p, &gp->sleeptimer);
}

void gort_sleep(int64_t ns)
{
    G *gp = need_g("gort_sleep");
    if (ns <= 0) {
        mcall(PEND_YIELD, NULL, NULL);
        return;
    }
    timer *t = &gp->sleeptimer;
    t->when = os_nanotime() + ns;
    if (t->when < 0)
        t->when = INT64_MAX;
    t->period = 0;
    t->f = sleep_ready;
    t->arg = gp;
    gopark(sleep_park, NULL);
}

/* ---- finding work ---------------------------------------------------------- */

static int64_t earliest_timer(void)
{
    int64_t next = 0;
    for (int32_t i = 0; i < nprocs(); i++) {
        int64_t w = timer_next(sched.allp[i]);
        if (w && (!next || w < next))
            next = w;
    }
    return next;
}

/* Run the due timers of every P, ours first. The clock is read only if
 * some P has a timer at all. */
static void run_timers_all(P *pp)
{
    int64_t now = 0;
    int32_t procs = nprocs();
    for (int32_t i = -1; i < procs; i++) {
        P *p2 = i < 0 ? pp : sched.allp[i];
        if (i >= 0 && p2 == pp)
            continue;
        int64_t w = timer_next(p2);
        if (!w)
            continue;
        if (!now)
            now = os_nanotime();
        if (w <= now)
            timer_run(p2, now);
    }
}

/* Make the goroutines of l (WAITING, from a poll) runnable: one on the
 * global queue for each idle P, with an M started for it, the rest on pp's
 * run queue (all global when pp is NULL). */
void netpoll_inject(glist *l, P *pp)
{
    int32_t n = l->n;
    if (n <= 0)
        return;
    int32_t idle = atomic_load(&sched.npidle);
    int32_t nglob = pp ? (n < idle ? n : idle) : n;
    G *gp = l->head;
    if (nglob > 0) {
        lock(&sched.lock);
        for (int32_t i = 0; i < nglob; i++) {
            G *next = gp->schedlink;
            gp->schedlink = NULL;
            set_status(gp, G_RUNNABLE);
            globrunq_put(gp);
            gp = next;
        }
        unlock(&sched.lock);
        /* idle Ps counted after the put, not before: a P that went idle
         * in between (its M saw no global work under the lock, and may
         * now block in the poller) must be started, or the Gs strand */
        for (int32_t i = 0; i < nglob && atomic_load(&sched.npidle) > 0; i++)
            startm(NULL, false);
    }
    while (gp) {
        G *next = gp->schedlink;
        gp->schedlink = NULL;
        set_status(gp, G_RUNNABLE);
        runq_put(pp, gp, false);
        gp = next;
    }
    l->head = NULL;
    l->n = 0;
}

/* A poll's goroutines, pp held: the first to run now (RUNNABLE, for the
 * caller to execute), the others injected. */
static G *netpoll_take(glist *l, P *pp)
{
    G *gp = l->head;
    l->head = gp->schedlink;
    l->n--;
    gp->schedlink = NULL;
    set_status(gp, G_RUNNABLE);
    netpoll_inject(l, pp);
    return gp;
}

/* An M with nothing to run, holding no P, about to stop: if goroutines
 * wait on the network and no other M blocks in the poller, this M does,
 * until an event, the earliest timer, or a break. Returns true if it got
 * a P and should look for work again; *gpp is a goroutine to run (with a
 * P acquired) when the poll readied some. False with *gpp NULL: stop. */
static bool netpoll_block(M *mp, G **gpp)
{
    *gpp = NULL;
    if (!netpoll_inited() || netpoll_waiters() == 0)
        return false;
    int64_t lp = atomic_load(&sched.lastpoll);
    if (lp == 0 || !atomic_compare_exchange_strong(&sched.lastpoll, &lp, 0))
        return false;   /* another M is the poller */
    int64_t until = earliest_timer();
    atomic_store(&sched.pollUntil, until);
    int64_t delay = -1;
    if (until) {
        delay = until - os_nanotime();
        if (delay < 0)
            delay = 0;
    }
    if (atomic_load(&sched.exiting))
        delay = 0;
    glist l = netpoll_poll(delay);
    atomic_store(&sched.pollUntil, 0);
    atomic_store(&sched.lastpoll, os_nanotime());
    lock(&sched.lock);
    P *pp = atomic_load(&sched.gcwaiting) || atomic_load(&sched.exiting) ? NULL : pidleget();
    unlock(&sched.lock);
    if (!pp) {
        netpoll_inject(&l, NULL);
        return atomic_load(&sched.exiting);   /* back to schedule, which exits */
    }
    acquirep(mp, pp);
    if (l.head) {
        *gpp = netpoll_take(&l, pp);
        return false;
    }
    return true;
}

/* Returns a runnable G with mp->p set, or NULL when the M should go back
 * to schedule (exit, stop-the-world, or it lost its P). */
static G *findrunnable(M *mp, bool *inherit)
{
top:;
    P *pp = mp->p;
    if (!pp || atomic_load(&sched.exiting))
        return NULL;
    if (atomic_load(&sched.gcwaiting)) {
        gcstopm(mp);
        return NULL;
    }
    run_timers_all(pp);
    G *gp;
    *inherit = false;
    if (pp->schedtick % 61 == 0 && atomic_load(&sched.runqsize) > 0) {
        lock(&sched.lock);
        gp = globrunq_get(pp, 1);
        unlock(&sched.lock);
        if (gp)
            return gp;
    }
    if ((gp = runq_get(pp, inherit)))
        return gp;
    if (atomic_load(&sched.runqsize) > 0) {
        lock(&sched.lock);
        gp = globrunq_get(pp, 0);
        unlock(&sched.lock);
        if (gp)
            return gp;
    }
    int32_t procs = nprocs();
    if (mp->spinning ||
        2 * atomic_load(&sched.nmspinning) < procs - atomic_load(&sched.npidle)) {
        if (!mp->spinning) {
            mp->spinning = true;
            atomic_fetch_add(&sched.nmspinning, 1);
        }
        for (int pass = 0; pass < 4; pass++) {
            uint32_t off = fastrand(mp) % (uint32_t)procs;
            for (int32_t i = 0; i < procs; i++) {
                P *p2 = sched.allp[(off + (uint32_t)i) % (uint32_t)procs];
                if (p2 == pp)
                    continue;
                if ((gp = runq_steal(pp, p2, pass == 3))) {
                    *inherit = false;
                    return gp;
                }
            }
        }
    }
    /* the network, without blocking (skipped while another M blocks in
     * the poller: it has them). After stealing, unlike Go, which polls
     * first: goroutines queued on a P whose thread the kernel has
     * descheduled wait there until someone steals them, and an M that
     * keeps finding fresh network work first never does. Stealing first
     * cut the echo benchmark's p99 at 100 connections from 1.2x Go's to
     * 0.75-0.88x, at the same throughput (bench/net, docs/PERFORMANCE.md). */
    if (netpoll_inited() && netpoll_waiters() > 0 && atomic_load(&sched.lastpoll) != 0) {
        glist l = netpoll_poll(0);
        if (l.head) {
            *inherit = false;
            return netpoll_take(&l, pp);
        }
    }
    /* Nothing to do: give the P back. */
    lock(&sched.lock);
    if (atomic_load(&sched.gcwaiting) || atomic_load(&sched.exiting)) {
        unlock(&sched.lock);
        goto top;
    }
    if (atomic_load(&sched.runqsize) > 0) {
        gp = globrunq_get(pp, 0);
        unlock(&sched.lock);
        *inherit = false;
        return gp;
    }
    releasep(mp);
    pidleput(pp);
    unlock(&sched.lock);
    if (mp->spinning) {
        mp->spinning = false;
        atomic_fetch_sub(&sched.nmspinning, 1);
        full_fence();
        /* work published by someone who saw us spinning and did not wake
         * anybody: look once more before sleeping */
        for (int32_t i = 0; i < procs; i++) {
            if (!runq_empty(sched.allp[i])) {
                lock(&sched.lock);
                pp = pidleget();
                unlock(&sched.lock);
                if (pp) {
                    acquirep(mp, pp);
                    mp->spinning = true;
                    atomic_fetch_add(&sched.nmspinning, 1);
                    goto top;
                }
                break;
            }
        }
    }
    if (atomic_load(&sched.runqsize) > 0) {
        lock(&sched.lock);
        pp = pidleget();
        unlock(&sched.lock);
        if (pp) {
            acquirep(mp, pp);
            goto top;
        }
    }
    if (netpoll_block(mp, &gp))
        goto top;
    if (gp) {
        *inherit = false;
        return gp;
    }
    stopm(mp, earliest_timer());
    goto top;
}

/* ---- locked goroutines ----------------------------------------------------- */

/* This M's locked G is not runnable here: give the P away and wait until
 * somebody hands us one together with the G (startlockedm). */
static void stoplockedm(M *mp)
{
    if (mp->p)
        handoffp(releasep(mp));
    lock(&sched.lock);
    sched.nmidlelocked++;
    checkdead();
    unlock(&sched.lock);
    for (;;) {
        notesleep(mp, -1);
        lock(&sched.lock);
        atomic_store(&mp->note, 0);
        P *pp = mp->nextp;
        mp->nextp = NULL;
        bool exiting = atomic_load(&sched.exiting);
        unlock(&sched.lock);
        if (pp) {
            acquirep(mp, pp);
            return;
        }
        if (exiting)
            return;
        /* a stale wake-up: keep waiting for our goroutine */
    }
}

/* gp is locked to another M: hand it our P (it runs gp, its lockedg) and
 * stop. The locked M stops counting as idle here, under the lock, not when
 * it wakes: in between, checkdead must see it as running. */
static void startlockedm(M *mp, G *gp)
{
    M *lm = gp->lockedm;
    P *pp = releasep(mp);
    lock(&sched.lock);
    lm->nextp = pp;
    sched.nmidlelocked--;
    unlock(&sched.lock);
    notewakeup(lm);
    stopm(mp, 0);
}

void gort_lock_os_thread(void)
{
    G *gp = need_g("gort_lock_os_thread");
    gp->lockedcount++;
    gp->lockedm = gp->m;
    gp->m->lockedg = gp;
}

void gort_unlock_os_thread(void)
{
    G *gp = need_g("gort_unlock_os_thread");
    if (gp->lockedcount == 0)
        return;
    if (--gp->lockedcount == 0) {
        gp->m->lockedg = NULL;
        gp->lockedm = NULL;
    }
}

/* ---- the scheduler loop ---------------------------------------------------- */

static _Noreturn void park_forever(M *mp)
{
    for (;;) {
        atomic_store(&mp->note, 2);
        os_futex_wait((uint32_t *)&mp->note, 2, -1);
    }
}

/* On g0, forever. Returns only on m0 once the main goroutine returned. */
static void schedule(void)
{
    M *mp = getm();
    for (;;) {
        /* no runtime lock is held across a goroutine switch: each is
         * released on the thread that took it (runtime.h) */
        dassert(tls_nosuspend == 0);
        if (atomic_load(&sched.exiting)) {
            if (mp == &m0)
                return;
            park_forever(mp);
        }
        if (mp->exiting) {
            /* its locked goroutine exited: the thread goes too (but
             * gort_main's own thread stays and goes on scheduling) */
            mp->exiting = false;
            if (mp != &m0) {
                if (mp->p)
                    handoffp(releasep(mp));
                lock(&sched.lock);
                sched.mcount--;
                checkdead();
                unlock(&sched.lock);
                pthread_exit(NULL);
            }
        }
        if (mp->lockedg) {
            /* only our locked G may run here: wait until it is handed to
             * us with a P (startlockedm), then run it */
            stoplockedm(mp);
            if (mp->p && mp->lockedg)
                execute(mp, mp->lockedg, false);
            continue;
        }
        if (!mp->p) {
            stopm(mp, 0);
            continue;
        }
        if (atomic_load(&sched.gcwaiting)) {
            gcstopm(mp);
            continue;
        }
        bool inherit;
        G *gp = findrunnable(mp, &inherit);
        if (!gp)
            continue;
        if (mp->spinning)
            resetspinning(mp);
        if (gp->lockedm && gp->lockedm != mp) {
            startlockedm(mp, gp);
            continue;
        }
        execute(mp, gp, inherit);
    }
}

/* A P that has lost its M (syscall retake, locked M waiting, M leaving):
 * find it an M if there is anything to do, else make it idle. */
void handoffp(P *pp)
{
    if (!runq_empty(pp) || atomic_load(&sched.runqsize) > 0) {
        startm(pp, false);
        return;
    }
    int32_t z = 0;
    if (atomic_load(&sched.nmspinning) + atomic_load(&sched.npidle) == 0 &&
        atomic_compare_exchange_strong(&sched.nmspinning, &z, 1)) {
        startm(pp, true);
        return;
    }
    lock(&sched.lock);
    if (atomic_load(&sched.gcwaiting)) {
        atomic_store(&pp->status, P_STOPPED);
        if (atomic_fetch_sub(&sched.stopwait, 1) == 1) {
            atomic_store(&sched.stopnote, 1);
            os_futex_wake((uint32_t *)&sched.stopnote, 1);
        }
        unlock(&sched.lock);
        return;
    }
    if (atomic_load(&sched.runqsize) > 0) {
        unlock(&sched.lock);
        startm(pp, false);
        return;
    }
    pidleput(pp);
    unlock(&sched.lock);
    int64_t w = timer_next(pp);
    if (w)
        wake_timer_m(w);
}


/* ---- deadlock detection ---------------------------------------------------- */

static void checkdead(void)
{
    assert_lock_held(&sched.lock);
    if (atomic_load(&sched.exiting) || atomic_load(&runtime_state) != 1)
        return;
    int32_t run = sched.mcount - sched.nmidle - sched.nmidlelocked;
    if (run > 0)
        return;
    if (run < 0)
        throwf("checkdead: inconsistent M counts (mcount %d idle %d locked %d)",
               (int)sched.mcount, (int)sched.nmidle, (int)sched.nmidlelocked);
    if (atomic_load(&sched.nsyscall) > 0 || atomic_load(&sched.runqsize) > 0)
        return;
    /* goroutines parked on the network wait for the outside world (an M
     * blocks in the poller for them, so it does not count as idle) */
    if (netpoll_waiters() > 0)
        return;
    for (int32_t i = 0; i < nprocs(); i++) {
        P *pp = sched.allp[i];
        if (timer_next(pp) || !runq_empty(pp))
            return;
    }
    if (count_goroutines() == 0 || !main_g)
        throw("no goroutines (main called gort_goexit) - deadlock!");
    throw("all goroutines are asleep - deadlock!");
}

/* ---- system calls -------------------------------------------------------- */

void gort_entersyscall(void)
{
    G *gp = getg();
    if (!gp)
        return;   /* a plain thread: nothing to hand off */
    if (unlikely(atomic_load_explicit(&gp->preempt, memory_order_relaxed)))
        preempt_check();
    M *mp = gp->m;
    P *pp = mp->p;
    set_status(gp, G_SYSCALL);
    atomic_fetch_add(&sched.nsyscall, 1);
    atomic_fetch_add(&pp->syscalltick, 1);
    mp->oldp = pp;
    __atomic_store_n(&pp->m, NULL, __ATOMIC_RELEASE);
    mp->p = NULL;
    mcache_use(NULL);
    atomic_store(&pp->status, P_SYSCALL);
    if (atomic_load(&sched.sysmonwait))
        sysmon_wake();
    if (atomic_load(&sched.gcwaiting)) {
        uint32_t s = P_SYSCALL;
        lock(&sched.lock);
        if (atomic_compare_exchange_strong(&pp->status, &s, P_STOPPED) &&
            atomic_fetch_sub(&sched.stopwait, 1) == 1) {
            atomic_store(&sched.stopnote, 1);
            os_futex_wake((uint32_t *)&sched.stopnote, 1);
        }
        unlock(&sched.lock);
    }
    /* the collector scans this goroutine from here instead of stopping
     * the thread (a signal would interrupt the call) */
    mp->gcblocked = gcthread_block();
}

void gort_exitsyscall(void)
{
    G *gp = getg();
    if (!gp)
        return;
    M *mp = getm();
    gcthread_unblock(mp->gcblocked);
    mp->gcblocked = false;
    P *oldp = mp->oldp;
    mp->oldp = NULL;
    uint32_t s = P_SYSCALL;
    if (oldp && !atomic_load(&sched.gcwaiting) &&
        atomic_compare_exchange_strong(&oldp->status, &s, P_RUNNING)) {
        mp->p = oldp;
        __atomic_store_n(&oldp->m, mp, __ATOMIC_RELEASE);
        mcache_use(oldp->mcache);
        atomic_fetch_add(&oldp->syscalltick, 1);
        atomic_fetch_sub(&sched.nsyscall, 1);
        set_status(gp, G_RUNNING);
        if (unlikely(atomic_load_explicit(&gp->preempt, memory_order_relaxed)))
            preempt_check();
        return;
    }
    /* the P was taken: any idle P will do */
    if (!atomic_load(&sched.gcwaiting) && atomic_load(&sched.npidle) > 0) {
        lock(&sched.lock);
        P *pp = atomic_load(&sched.gcwaiting) ? NULL : pidleget();
        unlock(&sched.lock);
        if (pp) {
            acquirep(mp, pp);
            atomic_fetch_sub(&sched.nsyscall, 1);
            set_status(gp, G_RUNNING);
            return;
        }
    }
    /* none: queue this goroutine and let the M wait for work */
    mcall(PEND_EXITSYSCALL, NULL, NULL);
}

/* ---- gort_main ------------------------------------------------------------- */

typedef struct mainarg {
    gort_fn fn;
    void *arg;
} mainarg;

static void main_entry(void *arg)
{
    mainarg *ma = arg;
    ma->fn(ma->arg);
}

int gort_set_max_threads(int n)
{
    lock(&sched.lock);
    int old = sched.maxmcount ? sched.maxmcount : 10000;
    if (n > 0) {
        if (atomic_load(&runtime_state) == 1 && n < sched.mcount) {
            unlock(&sched.lock);
            printerr("runtime: program exceeds %d-thread limit\n", n);
            throw("thread exhaustion");
        }
        sched.maxmcount = n;
    }
    unlock(&sched.lock);
    return old;
}

static int env_procs(void)
{
    const char *e = getenv("GOMAXPROCS");
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end == 0 && v > 0)
            return v > MAX_PROCS ? MAX_PROCS : (int)v;
    }
    return 0;
}

int gort_main(gort_fn fn, void *arg)
{
    int z = 0;
    if (!atomic_compare_exchange_strong(&runtime_state, &z, 1))
        throw("gort_main called twice (the runtime runs once per process)");
    if (!fn)
        throw("gort_main: nil main function");
    gcthread_register(&m0);
    pthread_sigmask(SIG_SETMASK, NULL, &initsigmask);
    lock(&sched.lock);
    if (!sched.maxmcount)
        sched.maxmcount = 10000;
    sched.mcount = 1;   /* m0 */
    m0.g0 = &m0_g0;
    m0.id = atomic_fetch_add(&mnextid, 1);
    m0.fastrand = (uint32_t)os_nanotime() | 1;
    atomic_store(&allm, &m0);
    tls_m = &m0;
    g0_bounds(&m0_g0);
    int procs = env_procs();
    if (initial_procs > 0)
        procs = initial_procs;
    if (procs <= 0)
        procs = os_ncpu();
    if (procs > MAX_PROCS)
        procs = MAX_PROCS;
    procresize(procs);
    atomic_store(&sched.lastpoll, os_nanotime());
    unlock(&sched.lock);
    stack_install_handler();
    stack_altstack(&m0);
    throw_prime_traceback();

    mainarg ma = {fn, arg};
    main_g = newproc1(main_entry, &ma, m0.p);
    runq_put(m0.p, main_g, true);
    sysmon_start();
    schedule();
    /* the main goroutine returned; the others will not run again */
    return 0;
}

bool sched_running(void)
{
    return atomic_load(&runtime_state) == 1;
}
