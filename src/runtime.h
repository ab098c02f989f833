/* runtime.h - gort's core structures and the rules they share.
 *
 * The names are Go's (runtime/runtime2.go, mheap.go, mcache.go) so that a
 * reader can hold gort and Go side by side. This header holds what more than
 * one part of the runtime needs: the runtime lock, throw, debug checks, and
 * the allocator's structures (mspan, mheap, mcache). Each structure says
 * what protects each of its fields. src/HACKING.md states the rules.
 */
#ifndef GORT_RUNTIME_H
#define GORT_RUNTIME_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/sizeclasses.h"
#include "gort.h"
#include "os/os.h"

#ifndef GORT_DEBUG_LEVEL
#define GORT_DEBUG_LEVEL 0
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define CACHE_LINE 64

/* A hint inside spin loops. */
#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

/* ---- fatal errors -------------------------------------------------------
 * throw: an unrecoverable runtime error. Prints "fatal error: <msg>" and
 * exits with status 2, allocating nothing (it may be called with the heap
 * lock held or the heap corrupt). throwf takes a printf-like format with
 * only %s, %d, %u, %x, %p and %zu. */
_Noreturn void throw(const char *msg);
_Noreturn void throwf(const char *fmt, ...);
/* print to stderr without allocating (same formats as throwf) */
void printerr(const char *fmt, ...);
/* Load the unwinder now so that throw can print a goroutine's traceback
 * later without allocating (called by gort_main). */
void throw_prime_traceback(void);

#define assert_always(cond)                                                  \
    do {                                                                     \
        if (unlikely(!(cond)))                                               \
            throwf("assertion failed: %s (%s:%d)", #cond, __FILE__, __LINE__); \
    } while (0)
#if GORT_DEBUG_LEVEL >= 1
#define dassert(cond) assert_always(cond)
#else
#define dassert(cond) ((void)0)
#endif

/* A full (StoreLoad) barrier. gcc's TSan rejects atomic_thread_fence, so
 * under TSan a sequentially consistent RMW on a local stands in for it. */
#if defined(GORT_TSAN)
#define full_fence()                                                         \
    do {                                                                     \
        int fence_word_ = 0;                                                 \
        __atomic_fetch_add(&fence_word_, 0, __ATOMIC_SEQ_CST);               \
    } while (0)
#else
#define full_fence() atomic_thread_fence(memory_order_seq_cst)
#endif

/* GORT_DEBUG=name=value,...: the integer for name, or def (env.c). */
int64_t debug_int(const char *name, int64_t def);

/* ---- runtime lock --------------------------------------------------------
 * A futex mutex (Go's lock_futex.go): a few spins, then sleep. Zero value is
 * unlocked. It blocks the thread, so it is held only for short, bounded
 * work, never across a goroutine switch or a system call that can block. */
typedef struct rlock {
    _Atomic uint32_t key;   /* 0 unlocked, 1 locked, 2 locked with sleepers */
} rlock;

void lock(rlock *l);
void unlock(rlock *l);
bool trylock(rlock *l);

/* ---- no suspension -------------------------------------------------------
 * The collector stops threads with a signal (gc/suspend.c). A thread that
 * holds a runtime lock, or is inside the GC allocator, must not stop there:
 * the collector may need that lock or that cache. tls_nosuspend counts such
 * regions (lock() and unlock() keep it); a signal that lands inside one
 * only sets tls_suspend_pending, and the thread stops itself when it
 * leaves the outermost region. Thread-local and touched only by its own
 * thread and its signal handler, so no atomics: compiler barriers. */
extern __thread int tls_nosuspend __attribute__((tls_model("initial-exec")));
extern __thread volatile int tls_suspend_pending __attribute__((tls_model("initial-exec")));
void gc_suspend_pending(void);   /* gc/suspend.c: stop now for the collector */

static inline void nosuspend_enter(void)
{
    tls_nosuspend++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline void nosuspend_leave(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (--tls_nosuspend == 0 && unlikely(tls_suspend_pending))
        gc_suspend_pending();
}
#define assert_lock_held(l) dassert(atomic_load_explicit(&(l)->key, memory_order_relaxed) != 0)

/* ---- the allocator's structures (src/alloc/, see malloc.c) -------------- */

#define ARENA_SHIFT 26                         /* 64 MiB arenas */
#define ARENA_BYTES ((uintptr_t)1 << ARENA_SHIFT)
#define PAGES_PER_ARENA (ARENA_BYTES >> PAGE_SHIFT)
#define ADDR_BITS 48
#define ARENA_L1_ENTRIES ((uintptr_t)1 << (ADDR_BITS - ARENA_SHIFT))

typedef struct mspan mspan;
typedef struct mcache mcache;

/* Span states. Legal transitions:
 *   DEAD -> FREE (heap grows or a span is split off)
 *   FREE -> INUSE (mheap_alloc) -> FREE (mheap_free)
 *   FREE -> DEAD (merged into a neighbour; the struct goes back to fixalloc)
 *   FREE -> SCAVENGING -> FREE (the scavenger releases it outside the lock) */
enum {
    SPAN_DEAD = 0,
    SPAN_FREE = 1,
    SPAN_INUSE = 2,          /* manual (malloc) memory */
    SPAN_SCAVENGING = 3,
};

/* What a span's objects are: manual (malloc/free) or garbage-collected
 * (scanned conservatively, never scanned, or scanned by a pointer bitmap).
 * Objects of different kinds never share a span, so free() can tell a GC
 * object from a malloc'd one by its page. Only manual objects go through
 * the caches' bins (NUM_BIN_KINDS); GC objects are allocated from a span
 * by bitmap (mcache.gcspans, see gc/gc.c). */
enum { HEAP_MANUAL = 0, HEAP_GC = 1, HEAP_GC_NOSCAN = 2, HEAP_GC_TYPED = 3, NUM_HEAP_KINDS = 4 };
#define NUM_BIN_KINDS 1
#define NUM_GC_KINDS 3     /* HEAP_GC .. HEAP_GC_TYPED, indexed kind - 1 */

/* Where an in-use small span sits within its owning mcache. */
enum {
    SPAN_IN_BIN = 0,         /* the class's current span (mcache.bins[c].span) */
    SPAN_IN_PARTIAL = 1,     /* on the class's partial list: has free objects */
    SPAN_IN_FULL = 2,        /* on no list: every object is out */
};

/* mspan: a run of pages. Three cache lines: the first is read by every free
 * (fixed while the span is in use), the second belongs to the owner, the
 * third to threads that free into the span remotely. */
struct mspan {
    /* Fixed while INUSE; written under h->lock when the span changes state. */
    uintptr_t base;            /* first byte */
    uintptr_t npages;
    uintptr_t limit;           /* base + nelems * elemsize (small spans) */
    mcache *owner;             /* small spans: the owning cache; NULL for large */
    uint32_t elemsize;         /* object size; for large spans npages*PAGE_SIZE */
    uint32_t divmagic;         /* offset * divmagic >> 32 == object index */
    uint32_t nelems;
    uint8_t sizeclass;         /* 0: large object */
    uint8_t kind;              /* HEAP_MANUAL, HEAP_GC, HEAP_GC_NOSCAN */
    _Atomic uint8_t state;     /* SPAN_*; atomic because lookups read it racily */
    uint8_t incache;           /* GC span: an mcache allocates from it. Protected by its central's lock / STW */
    uint8_t needzero;          /* memory may be dirty (large spans; GC spans: free objects) */
    _Atomic uint32_t sweepgen; /* GC spans: Go's sg-2 unswept, sg-1 being swept, sg swept (gc/sweep.c) */

    /* Owned by the owner mcache (no lock) while INUSE; by h->lock while FREE. */
    alignas(CACHE_LINE) mspan *next, *prev;  /* partial list, or heap free list */
    void *freelist;            /* objects freed by the owner (not the bin's) */
    uintptr_t carve;           /* next never-used object; carve..limit untouched */
    uint32_t nfreelist;        /* objects on freelist */
    uint32_t used;             /* objects neither on freelist nor uncarved */
    uint8_t where;             /* SPAN_IN_* */
    int64_t freetime;          /* FREE: nanotime when it became free */
    /* GC spans only. Objects below freeindex, and those whose allocbits bit
     * is set, are allocated (Go's freeindex/allocBits); alloccache holds
     * the inverted allocbits from freeindex to the next multiple of 64.
     * Owned by the caching mcache while incache, else by its central's lock;
     * read by the collector with the world stopped. */
    uint32_t freeindex;
    uint32_t alloccount;       /* objects allocated (as of the last sweep, plus since) */
    uint32_t cachecount;       /* alloccount when the span was cached (statistics) */
    uint64_t alloccache;
    uint64_t *allocbits;       /* [nbitwords] */
    _Atomic uint8_t *gcmark;   /* [nelems]: a byte per object, set by the mark (a store, no RMW) */
    uint64_t *freedbits;       /* [nbitwords]: gort_gc_free'd, reclaimed by the sweep; atomic */
    const struct gort_gc_type **types; /* HEAP_GC_TYPED: each object's type */

    /* Remote frees: any thread pushes here (Treiber stack, CAS). The owner
     * takes the whole list with one exchange. The thread that turns xfree
     * from empty to non-empty also pushes the span on owner->xspans. */
    alignas(CACHE_LINE) _Atomic(void *) xfree;
    mspan *xnext;              /* link on owner->xspans; written by that pusher */
};

/* One size class inside a cache: the hot part, 32 bytes.
 * The two counters are the statistics and, at the same time, the list
 * length: n = nfree - nmalloc + (max - limit), where limit moves only in
 * slow paths (refill: -k, return to spans: +k). So malloc bumps one counter
 * and free bumps one and compares: the bin overflows when
 * nfree - nmalloc > limit. */
typedef struct mbin {
    void *free;                /* objects ready to hand out, from any span */
    _Atomic uint64_t nmalloc;  /* cumulative mallocs from this bin; written by the owner only */
    _Atomic uint64_t nfree;    /* cumulative frees into this bin; written by the owner only */
    int64_t limit;             /* see above. Owned by the owner */
} mbin;

/* One size class inside a cache: the spans it owns (cold). */
typedef struct mclass {
    uint32_t max;              /* most objects the bin keeps */
    mspan *span;               /* current span (SPAN_IN_BIN) or NULL */
    mspan *partial;            /* owned spans with free objects (SPAN_IN_PARTIAL) */
} mclass;

/* mcache: per-thread (later per-P) allocation cache. Owned by one thread at
 * a time: no lock, no atomic on the fast path. A bin's list may hold objects
 * of any span, its own or other caches' (a free goes to the freeing
 * thread's bin); spans get objects back when a bin overflows. When its thread exits it is
 * flushed and parked on the idle list for the next thread; it is never
 * freed, so a remote free may always push to owner->xspans. */
struct mcache {
    mbin bins[NUM_BIN_KINDS][NUM_SIZE_CLASSES];        /* [HEAP_MANUAL] is malloc's */
    mclass classes[NUM_BIN_KINDS][NUM_SIZE_CLASSES];
    /* GC objects: the span each GC kind and class allocates from (Go's
     * mcache.alloc), or NULL. Owned by the thread; the collector empties it
     * with the world stopped (the thread is then outside the allocator). */
    mspan *gcspans[NUM_GC_KINDS][NUM_SIZE_CLASSES];
    alignas(CACHE_LINE) _Atomic(mspan *) xspans; /* spans with remote frees */
    mcache *next_idle;         /* idle list. Protected by the idle lock. */
    mcache *next_all;          /* list of all caches; append-only, atomic head */
    _Atomic int state;         /* MCACHE_* */
    bool for_p;                /* belongs to a P, not to a thread */
};

_Static_assert(sizeof(mbin) == 32, "mbin is indexed by a shift");

enum { MCACHE_ACTIVE = 1, MCACHE_IDLE = 2, MCACHE_ORPHAN = 3 };

/* ---- the scheduler's structures (src/sched/, see proc.c) ----------------- */

typedef struct G G;
typedef struct M M;
typedef struct P P;
typedef struct timer timer;

/* G status (Go's _G*). Legal transitions:
 *   DEAD -> RUNNABLE        newproc (a fresh or reused G)
 *   RUNNABLE -> RUNNING     execute, on the M that will run it
 *   RUNNING -> RUNNABLE     yield or preemption (done on g0 after the switch)
 *   RUNNING -> WAITING      park (done on g0 after the switch)
 *   RUNNING -> SYSCALL      entersyscall; SYSCALL -> RUNNING exitsyscall
 *   SYSCALL -> RUNNABLE     exitsyscall found no P (done on g0)
 *   WAITING -> RUNNABLE     ready, by whoever wakes it
 *   RUNNING -> DEAD         goexit (done on g0 after the switch)
 * A G is on a run queue only while RUNNABLE. */
enum { G_DEAD = 0, G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING };

/* P status. IDLE: on the idle list, no M. RUNNING: owned by an M.
 * SYSCALL: its M is in a system call and may lose it to sysmon.
 * STOPPED: held by a stop-the-world. DEAD: beyond GOMAXPROCS. */
enum { P_IDLE = 0, P_RUNNING, P_SYSCALL, P_STOPPED, P_DEAD };

typedef void (*timerfn)(void *arg, uintptr_t seq);

/* A timer on a P's heap (timer.c). */
struct timer {
    int64_t when;              /* nanotime to fire */
    int64_t period;            /* > 0: fires every period */
    timerfn f;
    void *arg;
    uintptr_t seq;
    P *pp;                     /* heap it is on; NULL when not queued. Protected by pp->timerslock */
    int32_t idx;               /* index in pp->timers. Protected by pp->timerslock */
};

struct G {
    void *sp;                  /* saved context (ctx.h); valid when not RUNNING */
    uintptr_t stack_lo;        /* lowest usable address; the guard is just below */
    uintptr_t stack_hi;        /* top of the stack (this G sits right above it) */
    uintptr_t minsp;           /* lowest SP seen at a switch: how deep the stack got */
    _Atomic uint32_t status;   /* G_* */
    uint32_t magic;            /* G_MAGIC while the struct is a G */
    int64_t goid;
    M *m;                      /* the M running it (RUNNING, SYSCALL) */
    M *lockedm;                /* lock_os_thread: only this M runs it */
    G *schedlink;              /* run queue, free list */
    gort_fn fn;                /* entry */
    void *arg;
    int saved_errno;           /* errno belongs to the goroutine */
    _Atomic bool preempt;      /* sysmon asks it to yield at the next runtime call */
    int lockedcount;           /* lock_os_thread nesting */
    timer sleeptimer;          /* gort_sleep; poll(2)'s timeout (netpoll.c) */
    _Atomic uintptr_t pollword;  /* poll(2) in a goroutine: PW_* (netpoll.c). Atomic */
    _Atomic uintptr_t pollseq;   /* + 1 at each wait of poll(2): stale timers are ignored. Atomic */
    _Atomic bool inhook;         /* inside a libc name's call (hook.c): a signal handler's nested call goes to libc. Relaxed */
    void *tsan_fiber;          /* sanitizer fiber handles (sanitize.h) */
    uint32_t tsan_uses;
    void *asan_fake_stack;
    void *stackmap;            /* stack size (stack.c) */
    uint32_t valgrind_id;
    bool has_canary;           /* no guard page: a canary word at stack_lo */
    _Atomic uint32_t selectdone; /* select: set by the case that wins */
    void *param;               /* what the waker left for it (the winning sudog) */
    struct gframe *frames;     /* defer/panic: innermost gort_call frame (panic.c) */
    struct gpanic *panicking;  /* innermost active panic (panic.c) */
};

#define G_MAGIC 0x676f726fu   /* "goro" */

struct M {
    G *g0;                     /* scheduler context: this thread's own stack */
    G *curg;                   /* the goroutine it runs, or NULL */
    P *p;                      /* attached P, or NULL */
    P *nextp;                  /* P handed over with a wake-up */
    P *oldp;                   /* P it had when it entered a syscall */
    int64_t id;
    bool spinning;             /* looking for work, not holding any */
    bool exiting;
    _Atomic uint32_t note;     /* futex: 1 = woken */
    M *schedlink;              /* idle list. Protected by sched.lock */
    M *alllink;                /* all Ms; append-only */
    G *lockedg;                /* lock_os_thread */
    /* what g0 does for the G that just switched to it */
    int pending;
    void (*pending_fn)(G *gp, void *arg);
    void *pending_arg;
    void *altstack;            /* sigaltstack for the overflow handler */
    bool gcblocked;            /* in a system call, blocked for the collector (gc/suspend.c) */
    void *tsan_fiber;
    uint32_t fastrand;
};

#define RUNQ_SIZE 256
#define MAX_PROCS 1024

typedef struct theap {
    int64_t when;
    timer *t;
} theap;

struct P {
    int32_t id;
    _Atomic uint32_t status;   /* P_* */
    P *link;                   /* idle list. Protected by sched.lock */
    M *m;                      /* owner when RUNNING */
    uint32_t schedtick;        /* bumped on each schedule; read by sysmon */
    _Atomic uint32_t syscalltick;
    /* sysmon's last observation (owned by sysmon) */
    uint32_t sm_schedtick, sm_syscalltick;
    int64_t sm_schedwhen, sm_syscallwhen;
    /* run queue: lock-free ring; the owner puts, anyone steals */
    _Atomic uint32_t runqhead;
    _Atomic uint32_t runqtail;
    G *_Atomic runq[RUNQ_SIZE];
    G *_Atomic runnext;        /* readied G that runs next, inheriting the time slice */
    G *gfree;                  /* dead Gs with stacks. Owned by the P */
    int32_t gfreecnt;
    mcache *mcache;            /* the allocator cache goroutine code uses on this P */
    int64_t goidcache, goidcacheend;  /* goids handed out in batches. Owned by the P */
    _Atomic int64_t ngo;       /* goroutines created minus exited here; owner writes, anyone sums */
    rlock timerslock;          /* protects timers, ntimers */
    theap *timers;             /* 4-ary min-heap on when */
    int32_t ntimers, timerscap;
    _Atomic int64_t timer0when;/* earliest when, 0 if none: read without the lock */
};

typedef struct schedt {
    rlock lock;
    M *midle;                  /* idle Ms waiting for work */
    int32_t nmidle;
    int32_t nmidlelocked;      /* Ms parked holding a locked G that waits */
    int32_t mcount;            /* Ms created */
    int32_t maxmcount;
    P *pidle;                  /* idle Ps */
    _Atomic int32_t npidle;
    _Atomic int32_t nmspinning;
    G **gq;                    /* global run queue: a ring of gqcap G pointers */
    uint32_t gqcap, gqhead;
    _Atomic int32_t runqsize;
    G *gfree;                  /* global pool of dead Gs */
    int32_t ngfree;
    _Atomic int64_t goidgen;   /* taken 16 at a time into a P's goid cache */
    _Atomic int64_t ngo_dead;  /* ngo of Ps that were destroyed */
    _Atomic int32_t nsyscall;  /* Gs in syscalls */
    _Atomic bool exiting;      /* the main goroutine returned */
    M *timerm;                 /* the idle M sleeping until the next timer */
    _Atomic int64_t lastpoll;  /* nanotime of the last network poll; 0 while an M blocks in it */
    _Atomic int64_t pollUntil; /* when the M blocked in the poller wakes (0: not before an event) */
    int64_t timerm_until;
    _Atomic uint32_t sysmonwait;   /* sysmon sleeps until woken */
    _Atomic uint32_t stopwait;     /* stop-the-world: Ps still to stop */
    _Atomic bool gcwaiting;
    _Atomic uint32_t stopnote;
    int32_t gomaxprocs;
    P **allp;                  /* [gomaxprocs]. Changed only with the world stopped */
    int32_t allplen;
} schedt;

extern schedt sched;
extern __thread M *tls_m __attribute__((tls_model("initial-exec")));

/* The current M and G. getm is a function the compiler cannot see into:
 * a goroutine may resume on another thread after any call that can switch,
 * and a thread pointer read before such a call must not be reused after it
 * (GCC keeps it in a register across calls on arm64). */
M *getm(void);

static inline G *getg(void)
{
    M *mp = getm();
    return mp ? mp->curg : NULL;
}

#endif
