/* gc.h - the collector's internal interface between its files.
 * See gc.c for the overview. */
#ifndef GORT_GC_GC_H
#define GORT_GC_GC_H

#include "alloc/malloc.h"

/* ---- the collector's global state (gc.c) ---------------------------------- */
typedef struct gcstate {
    /* Go's mheap_.sweepgen: +2 at each cycle, with the world stopped. A
     * span's sweepgen is sg-2 (needs sweeping), sg-1 (being swept) or sg
     * (swept). Written with the world stopped; read anywhere. */
    _Atomic uint32_t sweepgen;
    _Atomic uint64_t heap_live;     /* bytes: marked at the last cycle + handed out since (span granular) */
    _Atomic uint64_t trigger;       /* start a cycle when heap_live reaches this (the heap goal) */
    uint64_t heap_marked;           /* bytes marked by the last cycle. Written by the collector */
    _Atomic int32_t percent;        /* GOGC; < 0: off */
    _Atomic int64_t memlimit;       /* GOMEMLIMIT in bytes; INT64_MAX: none */
    _Atomic bool enabled;           /* the collector may run (initialised, GOGC not off or a limit) */
    bool stoptheworld_sweep;        /* GORT_DEBUG=gcstoptheworld=1 */
    int32_t trace;                  /* GORT_DEBUG=gctrace */
    int64_t stress;                 /* GORT_DEBUG=gcstress=N: a cycle every N large or span allocations */
    _Atomic int64_t stress_count;
    /* statistics (memstats): written by the collector, read racily */
    _Atomic uint32_t num_gc, num_forced_gc;
    _Atomic uint64_t pause_total_ns;
    _Atomic uint64_t pause_ns[256], pause_end[256];
    _Atomic int64_t last_gc;        /* unix nanoseconds of the end of the last cycle */
    _Atomic int64_t last_gc_mono;   /* nanotime of the same */
    _Atomic uint64_t gc_cpu_ns;     /* CPU time spent in the collector (pauses * workers + sweep) */
    int64_t start_mono;             /* nanotime the collector was initialised */
    /* objects allocated and freed by class (small GC objects), cumulative */
    _Atomic uint64_t nmalloc[NUM_SIZE_CLASSES];
    _Atomic uint64_t nfree[NUM_SIZE_CLASSES];
} gcstate;

extern gcstate gc;

void gc_init(void);                  /* idempotent: the first GC allocation calls it */
extern _Atomic int gc_inited;        /* 2 once initialised */
static inline void gc_ensure_init(void)
{
    if (unlikely(atomic_load_explicit(&gc_inited, memory_order_acquire) != 2))
        gc_init();
}
/* Allocation crossed the trigger: start a cycle and wait for its mark.
 * Called outside any nosuspend region. */
void gc_trigger(void);
/* Is a cycle due? (heap_live, trigger, stress) */
static inline bool gc_due(void)
{
    return atomic_load_explicit(&gc.heap_live, memory_order_relaxed) >=
               atomic_load_explicit(&gc.trigger, memory_order_relaxed) ||
           unlikely(gc.stress > 0);
}
void gc_alloc_check(void);           /* after a span or large allocation: gc_due -> gc_trigger */
void gc_fill_memstats(gort_memstats *m);
uint32_t gc_marked_done(void);       /* cycles whose mark has finished */
/* A mark helper that just finished: wait (briefly) for the cycle after
 * `done` to restart the world, then sweep in the background. */
void gc_sweep_after_mark(uint32_t done);
uint64_t gc_heap_goal(uint64_t marked, int32_t pct, int64_t limit, uint64_t other);

/* ---- mcentral.c (src/alloc): GC spans no cache holds ---------------------- */
typedef struct mcentral {
    rlock lock;
    /* [sg/2 % 2]: swept; [1 - sg/2 % 2]: unswept (Go's trick: adding 2 to
     * sweepgen turns every swept list into an unswept one). Doubly linked
     * through s->next/prev. Protected by lock. Class 0 holds large spans
     * (on the full lists only). */
    mspan *partial[2];
    mspan *full[2];
    _Atomic uint32_t n[2];   /* spans on partial[i] and full[i]: the sweeper peeks without the lock */
} mcentral;

extern mcentral mcentrals[NUM_GC_KINDS][NUM_SIZE_CLASSES];
static inline int swept_index(uint32_t sg)
{
    return (int)((sg >> 1) & 1);
}
mspan *mcentral_cache_span(uint8_t kind, uint8_t cls);   /* a swept span with a free object, incache */
void mcentral_uncache_span(mspan *s);                    /* back from a cache */
void mcentral_put_swept(mspan *s);                       /* a swept span goes on its list */
mspan *mcentral_take_unswept(int k, int cls);            /* claimed (sg-1), or NULL */
void mcache_release_gc(mcache *c);                       /* uncache every GC span */
void gc_span_free(mspan *s);                             /* a GC span back to the heap */
size_t gc_nbitwords(const mspan *s);
void *gc_alloc_large(size_t n, uint8_t kind, const struct gort_gc_type *t);
void gc_free_large(mspan *s);                            /* gort_gc_free of a large object */

/* ---- sweep.c --------------------------------------------------------------- */
/* s->sweepgen == sg-1 (claimed). Sweeps it: the span is either freed
 * (returns false; never when preserve) or swept (sweepgen sg, true). */
bool sweep_span(mspan *s, bool preserve);
/* Claim and sweep one span; false when nothing is left to sweep. */
bool sweep_one(void);
void sweep_all(void);                /* finish sweeping (the collector, gort_gc_collect) */
void sweep_atfork_child(void);
extern bool gc_clobberfree;          /* GORT_DEBUG=clobberfree (sweep.c) */

/* ---- suspend.c: stopping the world --------------------------------------- */
enum { GCT_RUN = 0, GCT_BLOCKED = 1, GCT_STOPPED = 2 };
#define GCT_NREGS 32
typedef struct gcthread {
    _Atomic uint32_t state;        /* GCT_*: written by the thread */
    _Atomic uint32_t stop_seq;     /* STOPPED: the restart_seq of the stop it belongs to */
    int tid;                       /* kernel thread id (tgkill) */
    uintptr_t stack_lo, stack_hi;  /* its own (pthread) stack */
    uintptr_t sp;                  /* BLOCKED/STOPPED: lowest live stack address */
    uintptr_t regs[GCT_NREGS];     /* BLOCKED/STOPPED: registers that may hold pointers */
    int nregs;
    M *m;                          /* the M it is, or NULL for a foreign thread */
    struct gcthread *next;         /* list of threads. Protected by threads_lock */
} gcthread;

extern __thread gcthread *tls_gcthread __attribute__((tls_model("initial-exec")));
void gcthread_register(M *mp);       /* this thread holds GC pointers (idempotent) */
void gcthread_unregister(void);
/* Bracket a stretch in which this thread neither allocates GC objects nor
 * changes pointers the collector must see (a blocking system call, a
 * futex sleep): the collector scans its saved state instead of stopping
 * it. Returns whether it was marked blocked (false: not registered, or
 * already blocked). */
bool gcthread_block(void);
void gcthread_unblock(bool was);
/* Stop every registered thread but the caller (the collector is not
 * registered) / let them go. stw_lock_threads holds the thread list. */
void gc_stop_world(void);
void gc_start_world(void);
gcthread *gcthread_list(void);
void gc_suspend_init(void);
void gc_atfork_child(void);

/* ---- mark.c --------------------------------------------------------------- */
void mark_init(int nworkers);
void mark_atfork_child(void);
void mark_wake_helpers(void);        /* the mark is near: get the helpers onto a CPU */
/* A thread waiting for a mark to finish (blocked) works on it meanwhile:
 * returns whether it joined one. */
bool mark_help(void);
/* Mark from the roots (a list of ranges and the finalizer work, see
 * roots.c) with nworkers in parallel; the world is stopped. Returns the
 * bytes marked. */
uint64_t mark_run(void);
/* For roots.c, called by mark workers: scan [lo, hi) conservatively. */
void mark_scan_range(void *w, uintptr_t lo, uintptr_t hi);
void mark_object_noscan_self(void *w, uintptr_t obj);   /* scan obj's referents without marking it */
bool mark_is_marked(uintptr_t obj);    /* obj: an object's base */
void mark_set(void *w, uintptr_t obj);  /* mark obj (and scan it) */
void mark_drain(void *w);            /* until every worker is out of work */
void mark_drain_local(void *w);      /* until this worker is out of work */

/* ---- roots.c --------------------------------------------------------------- */
/* Build the list of root jobs for this cycle (world stopped); the
 * writable segments are listed before the stop (roots_find_globals). */
void roots_find_globals(void);
void roots_prepare(void);
void roots_add_g(G *gp);             /* a new G (stack.c) */
/* Take and run root jobs until none is left. */
void roots_scan(void *w);

/* ---- finalizer.c ----------------------------------------------------------- */
/* Mark phase: the referents of every object with a finalizer. */
void finalizer_mark_referents(void *w);
/* After the mark: objects with a finalizer found unmarked are queued
 * (and marked, so that they live until it has run). The queue is a root. */
void finalizer_queue_unreachable(void *w);
void finalizer_mark_queue(void *w);
void finalizer_wake(void);           /* after the world restarts */
void finalizer_forget(uintptr_t obj);/* gort_gc_free */
uint64_t finalizer_count(void);

/* ---- object lookup --------------------------------------------------------- */
/* The base of the GC object holding address p, and its span, or 0. Only
 * meaningful with the world stopped (or for pointers the caller owns). */
static inline uintptr_t gc_object_of(uintptr_t p, mspan **sp, uint32_t *idxp)
{
    arena_meta *a = arena_of(p);
    if (!a)
        return 0;
    mspan *s = __atomic_load_n(&a->spans[(p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)],
                               __ATOMIC_RELAXED);
    if (!s || s->kind == HEAP_MANUAL ||
        atomic_load_explicit(&s->state, memory_order_relaxed) != SPAN_INUSE || p >= s->limit ||
        p < s->base)
        return 0;
    uint32_t idx = 0;
    uintptr_t base = s->base;
    if (s->sizeclass) {
        idx = (uint32_t)(((p - s->base) * s->divmagic) >> 32);
        base += (uintptr_t)idx * s->elemsize;
    }
    *sp = s;
    *idxp = idx;
    return base;
}

static inline bool bit_get(const uint64_t *bits, uint32_t i)
{
    return (bits[i >> 6] >> (i & 63)) & 1;
}

/* Allocated: below freeindex, or allocated before the last sweep. */
static inline bool gc_is_allocated(const mspan *s, uint32_t idx)
{
    return idx < s->freeindex || bit_get(s->allocbits, idx);
}

static inline size_t gc_object_size(const mspan *s)
{
    return s->sizeclass ? s->elemsize : s->npages * PAGE_SIZE;
}

#endif
