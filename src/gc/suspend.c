/* suspend.c - stopping the world for the collector.
 *
 * Every thread that may hold pointers to GC objects is registered: each M
 * when it starts, and any other thread when it first allocates a GC object
 * or calls gort_gc_register_thread. The collector runs on a thread of its
 * own that is not registered, and stops all registered threads the way
 * Boehm GC does, not Go's way: Go stops goroutines at safe points that its
 * compiler guarantees, but a C loop has none, so a thread running user code
 * is interrupted by a signal (SIGPWR unless GORT_DEBUG=gcsignal=N) whose
 * handler records the interrupted registers and stack pointer and waits on a
 * futex until the world restarts. The handler runs on the thread's
 * sigaltstack when it has one, with SA_RESTART.
 *
 * Each registered thread has a state:
 *   RUN      running; must be stopped by a signal.
 *   BLOCKED  in a stretch that touches no GC state (a system call bracketed
 *            by gort_entersyscall, an idle M's futex sleep, waiting for a
 *            cycle): its registers and stack pointer were saved when it
 *            entered, so the collector scans them and does not signal it
 *            (a signal would make some system calls fail with EINTR).
 *   STOPPED  waiting in the signal handler; registers saved.
 * RUN -> BLOCKED -> RUN and RUN -> STOPPED -> RUN are the thread's own
 * moves. Leaving BLOCKED while the world is stopping goes back to BLOCKED
 * and waits: the thread stores RUN and then reads world_stopping, the
 * collector stores world_stopping and then reads the state, both
 * sequentially consistent, so one of them sees the other.
 *
 * A signal may land where stopping would deadlock or expose half-done work:
 * while the thread holds a runtime lock the collector needs, or is inside
 * the GC allocator (tls_nosuspend, runtime.h). The handler then only sets
 * tls_suspend_pending and returns; the thread stops itself when it leaves
 * the region (gc_suspend_pending). The collector resends the signal now and
 * then to threads that are still running, in case one was lost.
 *
 * The collector holds threads_lock while the world is stopped, so the list
 * is stable; a registered thread takes that lock only while BLOCKED.
 */
#define _GNU_SOURCE
#include "gc/gc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sched/ctx.h"

__thread gcthread *tls_gcthread __attribute__((tls_model("initial-exec")));

static rlock threads_lock;          /* protects threads; held by the collector while the world is stopped */
static gcthread *threads;
static _Atomic uint32_t world_stopping;   /* 1 from the start of a stop to the restart */
static _Atomic uint32_t restart_seq;      /* + 1 at each restart; stopped threads wait on it */
static _Atomic uint32_t stop_acks;        /* + 1 by each thread that stops; the collector waits on it */
static int sig_suspend;
static pthread_key_t gct_key;

gcthread *gcthread_list(void)
{
    return threads;
}

/* Stop until the world restarts. A thread may still be waking from one
 * stop when the next begins (cycles can follow each other closely): it
 * then stops again at once, with the registers it saved (it has run
 * nothing since). stop_seq tells the collector which stop a STOPPED state
 * belongs to: a stale one does not count. */
static void stop_here(gcthread *t)
{
    do {
        uint32_t seq = atomic_load(&restart_seq);
        atomic_store_explicit(&t->stop_seq, seq, memory_order_relaxed);
        atomic_store_explicit(&t->state, GCT_STOPPED, memory_order_seq_cst);
        atomic_fetch_add(&stop_acks, 1);
        os_futex_wake((uint32_t *)&stop_acks, 1);
        while (atomic_load(&restart_seq) == seq)
            os_futex_wait((uint32_t *)&restart_seq, seq, -1);
    } while (atomic_load_explicit(&world_stopping, memory_order_seq_cst));
    atomic_store_explicit(&t->state, GCT_RUN, memory_order_seq_cst);
}

static void suspend_handler(int sig, siginfo_t *info, void *uctx)
{
    (void)sig;
    (void)info;
    int saved = errno;
    gcthread *t = tls_gcthread;
    if (t && atomic_load(&world_stopping) &&
        atomic_load_explicit(&t->state, memory_order_relaxed) == GCT_RUN) {
        if (tls_nosuspend) {
            tls_suspend_pending = 1;
        } else {
            unsigned long sp;
            t->nregs = ctx_uctx_regs(uctx, (unsigned long *)t->regs, &sp);
            t->sp = sp - ctx_redzone;
            stop_here(t);
        }
    }
    errno = saved;
}

void gc_suspend_pending(void)
{
    tls_suspend_pending = 0;
    gcthread *t = tls_gcthread;
    if (!t || !atomic_load(&world_stopping) ||
        atomic_load_explicit(&t->state, memory_order_relaxed) != GCT_RUN)
        return;
    unsigned long sp;
    t->nregs = ctx_save_regs((unsigned long *)t->regs, &sp);
    t->sp = sp;
    stop_here(t);
}

static void thread_exit(void *arg)
{
    if (tls_gcthread == arg)
        gcthread_unregister();
}

void gc_suspend_init(void)
{
    sig_suspend = (int)debug_int("gcsignal", SIGPWR);
    if (sig_suspend <= 0 || sig_suspend >= NSIG)
        throwf("GORT_DEBUG=gcsignal=%d is not a signal number", sig_suspend);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = suspend_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    sigdelset(&sa.sa_mask, SIGSEGV);   /* a stack overflow must still be reported */
    sigdelset(&sa.sa_mask, SIGBUS);
    if (sigaction(sig_suspend, &sa, NULL) != 0)
        throw("gc: cannot install the suspend signal handler");
    if (pthread_key_create(&gct_key, thread_exit) != 0)
        throw("gc: cannot create a thread key");
}

void gcthread_register(M *mp)
{
    gc_ensure_init();
    gcthread *t = tls_gcthread;
    if (t) {
        if (mp)
            t->m = mp;
        return;
    }
    t = gort_calloc(1, sizeof *t);
    if (!t)
        throw("gc: out of memory registering a thread");
    t->tid = (int)syscall(SYS_gettid);
    t->m = mp;
    os_thread_stack(&t->stack_lo, &t->stack_hi);
    atomic_store(&t->state, GCT_RUN);
    lock(&threads_lock);   /* not yet registered: the collector does not wait for us */
    t->next = threads;
    threads = t;
    tls_gcthread = t;
    unlock(&threads_lock);
    pthread_setspecific(gct_key, t);
}

void gcthread_unregister(void)
{
    gcthread *t = tls_gcthread;
    if (!t)
        return;
    gcthread_block();      /* take the list lock only while blocked (see the top) */
    lock(&threads_lock);
    for (gcthread **pp = &threads; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    tls_gcthread = NULL;
    unlock(&threads_lock);
    pthread_setspecific(gct_key, NULL);
    gort_free(t);
}

bool gcthread_block(void)
{
    gcthread *t = tls_gcthread;
    if (!t || atomic_load_explicit(&t->state, memory_order_relaxed) != GCT_RUN)
        return false;
    unsigned long sp;
    t->nregs = ctx_save_regs((unsigned long *)t->regs, &sp);
    t->sp = sp;
    atomic_store_explicit(&t->state, GCT_BLOCKED, memory_order_seq_cst);
    return true;
}

void gcthread_unblock(bool was)
{
    if (!was)
        return;
    gcthread *t = tls_gcthread;
    for (;;) {
        atomic_store_explicit(&t->state, GCT_RUN, memory_order_seq_cst);
        if (!atomic_load_explicit(&world_stopping, memory_order_seq_cst))
            return;
        /* a stop is under way: stay out of its way until the restart */
        atomic_store_explicit(&t->state, GCT_BLOCKED, memory_order_seq_cst);
        while (atomic_load(&world_stopping))
            os_futex_wait((uint32_t *)&world_stopping, 1, -1);
    }
}

static void signal_thread(gcthread *t)
{
    if (syscall(SYS_tgkill, getpid(), t->tid, sig_suspend) != 0 && errno != ESRCH)
        throwf("gc: cannot signal thread %d (errno %d)", t->tid, errno);
}

void gc_stop_world(void)
{
    lock(&threads_lock);
    atomic_store_explicit(&world_stopping, 1, memory_order_seq_cst);
    int64_t start = os_nanotime(), last_signal = start;
    bool first = true;
    for (;;) {
        uint32_t acks = atomic_load(&stop_acks);
        uint32_t seq = atomic_load(&restart_seq);
        int running = 0;
        for (gcthread *t = threads; t; t = t->next) {
            uint32_t st = atomic_load_explicit(&t->state, memory_order_seq_cst);
            if (st == GCT_RUN) {
                running++;
                if (first)
                    signal_thread(t);
            } else if (st == GCT_STOPPED &&
                       atomic_load_explicit(&t->stop_seq, memory_order_relaxed) != seq) {
                running++;   /* still waking from the last stop: it will stop again */
            }
        }
        if (!running)
            break;
        int64_t now = os_nanotime();
        if (!first && now - last_signal > 5000000) {   /* resend every 5 ms */
            for (gcthread *t = threads; t; t = t->next)
                if (atomic_load(&t->state) == GCT_RUN)
                    signal_thread(t);
            last_signal = now;
        }
        if (now - start > (int64_t)60 * 1000000000)
            throw("gc: a thread did not stop for the collector in 60 s (is the suspend signal blocked?)");
        first = false;
        os_futex_wait((uint32_t *)&stop_acks, acks, 1000000);
    }
}

void gc_start_world(void)
{
    atomic_store_explicit(&world_stopping, 0, memory_order_seq_cst);
    atomic_fetch_add(&restart_seq, 1);
    os_futex_wake((uint32_t *)&restart_seq, INT32_MAX);
    os_futex_wake((uint32_t *)&world_stopping, INT32_MAX);
    unlock(&threads_lock);
}

void gc_atfork_child(void)
{
    /* only the forking thread exists in the child */
    gcthread *self = tls_gcthread;
    threads = self;
    if (self)
        self->next = NULL;
    atomic_store(&threads_lock.key, 0);
    atomic_store(&world_stopping, 0);
}
