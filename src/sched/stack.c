/* stack.c - goroutine stacks: reserved big, committed on touch, guarded.
 *
 * C cannot move a stack (nothing knows where its pointers are), so gort
 * keeps Go's promise of stacks that start tiny and may grow large with
 * virtual memory instead of copying: each goroutine gets a reservation
 * (256 KiB by default; GORT_STACK_SIZE or gort_set_stack_size) whose pages
 * the kernel commits on first touch. A new goroutine touches one page.
 *
 * Layout of one stack (sizes a power of two, stacks aligned to their size,
 * carved from 64 MiB chunks so that adjacent stacks share one VMA):
 *
 *     base                                                     base + size
 *     | guard page | ...... usable stack, grows down ...... | G struct |
 *
 * The G lives in the top bytes of its own stack: a parked goroutine whose
 * frames fit in the rest of that page costs exactly one page of memory,
 * and G and stack are allocated, pooled and reused as one unit.
 *
 * Guard page: on Linux >= 6.13 madvise(MADV_GUARD_INSTALL) puts a guard
 * marker in the page tables: no extra VMA, so a million guarded stacks fit
 * under the default vm.max_map_count of 65530. On older kernels mprotect
 * guards are used while under a budget of half the spare map count (each
 * splits a VMA in three); past it, a canary word at the bottom is checked
 * at every switch (it costs the bottom page, and catches an overflow only
 * after the fact). An overflow into a guard faults; the SIGSEGV handler
 * (on a per-thread sigaltstack) prints "goroutine N stack overflow" and
 * exits 2. A frame larger than a page could jump over the guard; code built
 * with -fstack-clash-protection probes every page and cannot.
 *
 * Reuse and release: dead Gs go on per-P and global free lists with their
 * stacks. Pages a goroutine touched stay committed for the next one, except
 * that a stack that went deep (its lowest SP seen at a switch is more than
 * two pages below the top) is given back with madvise when its G dies: the
 * analogue of Go's stack shrinking. Deep recursion that unwinds before any
 * switch is not seen; its pages are reused by the next goroutine.
 */
#define _GNU_SOURCE
#include "sched/stack.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gc/gc.h"
#include "sched/sanitize.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define CHUNK_BYTES ((size_t)64 << 20)
#define MIN_STACK ((size_t)16 << 10)
#define STACK_CANARY 0x5354414b43414e59ull  /* "STAKCANY" */

static rlock stacklock;          /* protects the fields below */
static size_t stack_size = 0;    /* current size for new stacks; 0: not read yet */
static _Atomic size_t stack_size_now;   /* the same, for readers without the lock */
static uintptr_t chunk_next, chunk_end;   /* unused stacks of the current chunk */
static size_t chunk_size;        /* stack size of the current chunk */
static int guard_mode;           /* 0 unknown, 1 MADV_GUARD_INSTALL, 2 mprotect */
static long guard_budget;        /* mprotect guards left */
static size_t sys_page;

size_t stack_g_size(void)
{
    return (sizeof(G) + 63) & ~(size_t)63;
}

static size_t round_pow2(size_t n)
{
    size_t r = MIN_STACK;
    while (r < n && r)
        r <<= 1;
    return r ? r : MIN_STACK;
}

static size_t parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return 0;
    if (!strcmp(end, "KiB") || !strcmp(end, "K") || !strcmp(end, "k"))
        v <<= 10;
    else if (!strcmp(end, "MiB") || !strcmp(end, "M"))
        v <<= 20;
    else if (!strcmp(end, "GiB") || !strcmp(end, "G"))
        v <<= 30;
    else if (*end)
        return 0;
    return (size_t)v;
}

static void stack_init_locked(void)
{
    if (stack_size)
        return;
    sys_page = (size_t)sysconf(_SC_PAGESIZE);
    const char *e = getenv("GORT_STACK_SIZE");
    size_t n = e ? parse_size(e) : 0;
    stack_size = round_pow2(n ? n : (size_t)256 << 10);
    atomic_store(&stack_size_now, stack_size);
    long maxmap = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &maxmap) != 1)
            maxmap = 65530;
        fclose(f);
    }
    guard_budget = (maxmap - 8192) / 4;
    if (guard_budget < 0)
        guard_budget = 0;
}

size_t gort_set_stack_size(size_t bytes)
{
    lock(&stacklock);
    stack_init_locked();
    size_t old = stack_size;
    if (bytes) {
        stack_size = round_pow2(bytes);
        atomic_store(&stack_size_now, stack_size);
    }
    unlock(&stacklock);
    return old;
}

size_t stack_current_size(void)
{
    size_t n = atomic_load_explicit(&stack_size_now, memory_order_relaxed);
    if (likely(n))
        return n;
    lock(&stacklock);
    stack_init_locked();
    n = stack_size;
    unlock(&stacklock);
    return n;
}

void stack_release_all(G *gp)
{
    uintptr_t keep = (gp->stack_hi & ~(uintptr_t)(sys_page - 1));
    if (keep > gp->stack_lo)
        os_release((void *)gp->stack_lo, keep - gp->stack_lo);
}

/* Guard the lowest page of the stack at base. Returns false if the stack
 * must rely on the canary instead. Caller holds stacklock. */
static bool install_guard(uintptr_t base)
{
    if (guard_mode != 2) {
        if (madvise((void *)base, sys_page, MADV_GUARD_INSTALL) == 0) {
            guard_mode = 1;
            return true;
        }
        if (guard_mode == 1)
            throwf("madvise(MADV_GUARD_INSTALL) failed: errno %d", errno);
        guard_mode = 2;
    }
    if (guard_budget > 0 && mprotect((void *)base, sys_page, PROT_NONE) == 0) {
        guard_budget--;
        return true;
    }
    return false;
}

G *stack_alloc_g(void)
{
    lock(&stacklock);
    stack_init_locked();
    size_t size = stack_size;
    if (chunk_next == chunk_end || chunk_size != size) {
        size_t bytes = CHUNK_BYTES > size * 16 ? CHUNK_BYTES : size * 16;
        char *p = mmap(NULL, bytes + size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            unlock(&stacklock);
            return NULL;
        }
        uintptr_t lo = ((uintptr_t)p + size - 1) & ~(uintptr_t)(size - 1);
        if (lo > (uintptr_t)p)
            munmap(p, lo - (uintptr_t)p);
        if ((uintptr_t)p + bytes + size > lo + bytes)
            munmap((void *)(lo + bytes), (uintptr_t)p + bytes + size - (lo + bytes));
        chunk_next = lo;
        chunk_end = lo + bytes;
        chunk_size = size;
    }
    uintptr_t base = chunk_next;
    chunk_next += size;
    bool guarded = install_guard(base);
    unlock(&stacklock);

    G *gp = (G *)(base + size - stack_g_size());
    /* fresh memory is zero; the G struct fills the top page */
    gp->magic = G_MAGIC;
    gp->stack_lo = base + sys_page;
    gp->stack_hi = (uintptr_t)gp;
    gp->minsp = gp->stack_hi;
    gp->stackmap = (void *)(uintptr_t)size;
    if (!guarded)
        *(uint64_t *)gp->stack_lo = STACK_CANARY;
    gp->has_canary = !guarded;
    san_new_stack(gp, true);
    roots_add_g(gp);
    return gp;
}

size_t stack_size_of(G *gp)
{
    return (size_t)(uintptr_t)gp->stackmap;
}

void stack_check(G *gp)
{
    if (unlikely(gp->has_canary) && *(uint64_t *)gp->stack_lo != STACK_CANARY)
        stack_overflow(gp);
}

void stack_release_deep(G *gp)
{
    /* Give back the pages below the two top ones if the goroutine went
     * deeper than that; keep the canary's page if there is a canary. */
    uintptr_t keep = (gp->stack_hi & ~(uintptr_t)(sys_page - 1)) - sys_page;
    if (gp->minsp < keep) {
        uintptr_t lo = gp->stack_lo + (gp->has_canary ? sys_page : 0);
        if (keep > lo)
            os_release((void *)lo, keep - lo);
    }
    gp->minsp = gp->stack_hi;
}

_Noreturn void stack_overflow(G *gp)
{
    printerr("runtime: goroutine stack exceeds %zu-byte limit\n", stack_size_of(gp));
    throwf("stack overflow\ngoroutine %d stack overflow", (int)gp->goid);
}

/* ---- the overflow handler ------------------------------------------------ */

static struct sigaction old_segv, old_bus;

static void segv_handler(int sig, siginfo_t *info, void *uctx)
{
    M *mp = tls_m;
    G *gp = mp ? mp->curg : NULL;
    uintptr_t a = (uintptr_t)info->si_addr;
    if (gp && gp->magic == G_MAGIC && a < gp->stack_lo && a >= gp->stack_lo - sys_page * 16)
        stack_overflow(gp);
    /* not ours: behave as if we were never here */
    struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, info, uctx);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);   /* the fault repeats and kills with the signal */
}

void stack_install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

void stack_altstack(M *mp)
{
    size_t n = 64 << 10;
    void *p = os_alloc(n);
    if (!p)
        return;
    stack_t ss = {.ss_sp = p, .ss_size = n, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) == 0)
        mp->altstack = p;
    else
        os_free(p, n);
}
