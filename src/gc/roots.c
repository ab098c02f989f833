/* roots.c - where the mark starts (Go's markroot).
 *
 * The roots, all scanned conservatively, split into jobs that the mark
 * workers take one at a time (an atomic counter over a job array built
 * with the world stopped):
 *
 *   globals    the writable PT_LOAD segments (data, bss) of the executable
 *              and of every loaded shared object, found with
 *              dl_iterate_phdr before the world stops (the loader's lock
 *              may be held by a thread we are about to stop), cut into
 *              256 KiB jobs. gort's own page map (arena_l1, 32 MiB of bss
 *              holding no GC pointers) is cut out.
 *   threads    each registered thread: the registers it saved when it
 *              stopped or blocked, and its stack from the saved stack
 *              pointer up. The stack is the goroutine's when the pointer
 *              lies in the stack of the goroutine its M runs, else the
 *              thread's own.
 *   goroutines every goroutine that is not dead, from its saved stack
 *              pointer to the top of its stack, and the G struct above it
 *              (which holds the function argument of a goroutine that has
 *              not started yet). A running goroutine's saved pointer is
 *              stale but inside its stack; its thread's job covers the live
 *              part below.
 *   runtime    each P's timer heap (a timer's channel lives in the GC heap,
 *              and the timer itself is referenced only from there), the
 *              explicit roots (gort_gc_add_roots), the finalizer table's
 *              referents and the queue of finalizers not yet run.
 *
 * Memory from malloc (glibc's or gort's manual heap) is not scanned: a GC
 * pointer kept only there does not keep its object alive (Boehm's rule).
 */
#define _GNU_SOURCE
#include "gc/gc.h"

#include <link.h>
#include <string.h>

#include "sched/ctx.h"
#include "sched/stack.h"

enum { JOB_RANGE, JOB_THREAD, JOB_GS, JOB_FINREFS, JOB_FINQUEUE };
#define RANGE_JOB_BYTES ((uintptr_t)256 << 10)
#define GS_PER_JOB 128

typedef struct rootjob {
    int kind;
    uintptr_t a, b;
} rootjob;

static rootjob *jobs;            /* written by the collector with the world stopped */
static size_t njobs, jobscap;
static _Atomic size_t next_job;

/* every G ever made (Gs are never freed, only reused) */
static rlock allglock;
static G **allgs;
static size_t nallgs, allgscap;

/* explicit roots. Protected by rootslock */
static rlock rootslock;
static uintptr_t (*xroots)[2];
static size_t nxroots, xrootscap;

/* writable segments, found before the stop. Owned by the collector */
static uintptr_t (*segs)[2];
static size_t nsegs, segscap;

void roots_add_g(G *gp)
{
    lock(&allglock);
    if (nallgs == allgscap) {
        size_t cap = allgscap ? allgscap * 2 : 1024;
        G **v = gort_realloc(allgs, cap * sizeof *v);
        if (!v)
            throw("gc: out of memory recording a goroutine");
        allgs = v;
        allgscap = cap;
    }
    allgs[nallgs++] = gp;
    unlock(&allglock);
}

static void grow(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return;
    size_t c = *cap ? *cap * 2 : 256;
    void *p = gort_realloc(*v, c * elem);
    if (!p)
        throw("gc: out of memory for the root set");
    *v = p;
    *cap = c;
}

static void add_job(int kind, uintptr_t a, uintptr_t b)
{
    grow((void **)&jobs, &jobscap, njobs, sizeof *jobs);
    jobs[njobs++] = (rootjob){kind, a, b};
}

static void add_range(uintptr_t lo, uintptr_t hi)
{
    for (uintptr_t p = lo; p < hi; p += RANGE_JOB_BYTES)
        add_job(JOB_RANGE, p, hi - p > RANGE_JOB_BYTES ? p + RANGE_JOB_BYTES : hi);
}

/* [lo, hi) minus gort's page map */
static void add_global_range(uintptr_t lo, uintptr_t hi)
{
    uintptr_t xlo = (uintptr_t)arena_l1, xhi = xlo + sizeof arena_l1;
    if (xhi <= lo || xlo >= hi) {
        add_range(lo, hi);
        return;
    }
    if (lo < xlo)
        add_range(lo, xlo);
    if (xhi < hi)
        add_range(xhi, hi);
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || !ph->p_memsz)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        grow((void **)&segs, &segscap, nsegs, sizeof *segs);
        segs[nsegs][0] = lo;
        segs[nsegs][1] = lo + ph->p_memsz;
        nsegs++;
    }
    return 0;
}

void roots_find_globals(void)
{
    nsegs = 0;
    dl_iterate_phdr(phdr_cb, NULL);
}

void roots_prepare(void)
{
    njobs = 0;
    atomic_store(&next_job, 0);
    for (size_t i = 0; i < nsegs; i++)
        add_global_range(segs[i][0], segs[i][1]);
    lock(&rootslock);
    for (size_t i = 0; i < nxroots; i++)
        add_range(xroots[i][0], xroots[i][1]);
    unlock(&rootslock);
    for (gcthread *t = gcthread_list(); t; t = t->next)
        add_job(JOB_THREAD, (uintptr_t)t, 0);
    /* allglock cannot be held by a stopped thread (runtime locks defer
     * the stop); an unregistered thread may hold it briefly */
    lock(&allglock);
    size_t ng = nallgs;
    unlock(&allglock);
    for (size_t i = 0; i < ng; i += GS_PER_JOB)
        add_job(JOB_GS, i, i + GS_PER_JOB < ng ? i + GS_PER_JOB : ng);
    if (sched.allp) {
        for (int32_t i = 0; i < sched.allplen; i++) {
            P *pp = sched.allp[i];
            if (pp && pp->timers && pp->ntimers > 0)
                add_range((uintptr_t)pp->timers, (uintptr_t)(pp->timers + pp->ntimers));
        }
    }
    add_job(JOB_FINREFS, 0, 0);
    add_job(JOB_FINQUEUE, 0, 0);
}

static void scan_thread(void *w, gcthread *t)
{
    uintptr_t regs[GCT_NREGS];
    int n = t->nregs;
    memcpy(regs, t->regs, sizeof regs);
    mark_scan_range(w, (uintptr_t)regs, (uintptr_t)(regs + (n < GCT_NREGS ? n : GCT_NREGS)));
    uintptr_t sp = t->sp;
    M *mp = t->m;
    G *cg = mp ? mp->curg : NULL;
    if (cg && sp >= cg->stack_lo && sp <= cg->stack_hi) {
        mark_scan_range(w, sp, cg->stack_hi + stack_g_size());
    } else if (sp >= t->stack_lo && sp <= t->stack_hi) {
        mark_scan_range(w, sp, t->stack_hi);
    }
    /* else: on a stack gort does not know (a user's own context switching):
     * only the registers are seen */
}

static void scan_gs(void *w, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        G *gp = allgs[i];
        if (atomic_load_explicit(&gp->status, memory_order_relaxed) == G_DEAD)
            continue;
        uintptr_t lo = (uintptr_t)gp->sp;
        if (lo < gp->stack_lo || lo > gp->stack_hi)
            lo = gp->stack_lo;   /* never switched yet: whole stack (it is one page) */
        mark_scan_range(w, lo, gp->stack_hi + stack_g_size());
    }
}

void roots_scan(void *w)
{
    for (;;) {
        size_t i = atomic_fetch_add(&next_job, 1);
        if (i >= njobs)
            return;
        rootjob *j = &jobs[i];
        switch (j->kind) {
        case JOB_RANGE:
            mark_scan_range(w, j->a, j->b);
            break;
        case JOB_THREAD:
            scan_thread(w, (gcthread *)j->a);
            break;
        case JOB_GS:
            scan_gs(w, j->a, j->b);
            break;
        case JOB_FINREFS:
            finalizer_mark_referents(w);
            break;
        case JOB_FINQUEUE:
            finalizer_mark_queue(w);
            break;
        }
        mark_drain_local(w);
    }
}

void gort_gc_add_roots(void *lo, void *hi)
{
    if ((uintptr_t)hi < (uintptr_t)lo)
        throw("gort_gc_add_roots: hi below lo");
    lock(&rootslock);
    grow((void **)&xroots, &xrootscap, nxroots, sizeof *xroots);
    xroots[nxroots][0] = (uintptr_t)lo;
    xroots[nxroots][1] = (uintptr_t)hi;
    nxroots++;
    unlock(&rootslock);
}

void gort_gc_remove_roots(void *lo, void *hi)
{
    /* remove every registered range inside [lo, hi), as Boehm's GC_remove_roots */
    lock(&rootslock);
    size_t k = 0;
    for (size_t i = 0; i < nxroots; i++)
        if (!(xroots[i][0] >= (uintptr_t)lo && xroots[i][1] <= (uintptr_t)hi))
            memcpy(xroots[k++], xroots[i], sizeof xroots[i]);
    nxroots = k;
    unlock(&rootslock);
}
