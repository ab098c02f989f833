/* sanitize.h - telling ASan, TSan and valgrind about goroutine switches.
 *
 * A goroutine switch moves the CPU to another stack, which the sanitizers
 * cannot see by themselves: ASan would take the new stack for a huge frame
 * and TSan would merge the histories of all goroutines of a thread. Each
 * hook below is empty in a normal build; the build defines GORT_ASAN or
 * GORT_TSAN for the sanitizer builds, and valgrind is told about stacks
 * always (its client requests cost a few instructions when not under it).
 */
#ifndef GORT_SCHED_SANITIZE_H
#define GORT_SCHED_SANITIZE_H

#include <stddef.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef VALGRIND_STACK_REGISTER
#define VALGRIND_STACK_REGISTER(lo, hi) 0u   /* no valgrind headers (cross builds) */
#define VALGRIND_DISABLE_ERROR_REPORTING do { } while (0)
#define VALGRIND_ENABLE_ERROR_REPORTING do { } while (0)
#endif

#include "runtime.h"

#if defined(GORT_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(GORT_TSAN)
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

/* The collector reads stacks, globals and objects word by word whatever
 * the program stored there (conservative scanning): uninitialised words,
 * red zones, memory other threads wrote without synchronisation it can
 * see. Functions that do are not instrumented, and the collector's own
 * threads do not report to valgrind. */
#define SAN_NO_INSTRUMENT __attribute__((no_sanitize_address, no_sanitize_thread, noinline))
static inline void san_quiet_thread(void)
{
    VALGRIND_DISABLE_ERROR_REPORTING;
}

/* The same for a stretch of a program thread that runs a collection. */
static inline void san_quiet_begin(void)
{
    VALGRIND_DISABLE_ERROR_REPORTING;
}

static inline void san_quiet_end(void)
{
    VALGRIND_ENABLE_ERROR_REPORTING;
}

/* g0 (an M's own thread stack) starts being a context. */
static inline void san_init_g0(G *g0)
{
#if defined(GORT_TSAN)
    g0->tsan_fiber = __tsan_get_current_fiber();
#else
    (void)g0;
#endif
}

/* A goroutine stack was created or is reused. */
static inline void san_new_stack(G *gp, bool fresh)
{
    if (fresh)
        gp->valgrind_id = VALGRIND_STACK_REGISTER(gp->stack_lo, gp->stack_hi);
#if defined(GORT_ASAN)
    ASAN_UNPOISON_MEMORY_REGION((void *)gp->stack_lo, gp->stack_hi - gp->stack_lo);
#endif
    gp->asan_fake_stack = NULL;   /* the last life's fake stack died with it */
#if defined(GORT_TSAN)
    /* A dead goroutine's fiber still holds the frames it never returned
     * from (it switched away for good), a few per life; creating a fiber
     * costs hundreds of microseconds. So a fiber serves 256 goroutines and
     * is then replaced, well before its shadow stack could fill. */
    if (!gp->tsan_fiber || ++gp->tsan_uses >= 256) {
        if (gp->tsan_fiber)
            __tsan_destroy_fiber(gp->tsan_fiber);
        gp->tsan_fiber = __tsan_create_fiber(0);
        gp->tsan_uses = 0;
    }
#endif
}

/* About to switch from the running context (whose G is `from`) to `to`.
 * `dying`: `from` never runs again on this stack. */
static inline void san_before_switch(G *from, G *to, bool dying)
{
#if defined(GORT_ASAN)
    __sanitizer_start_switch_fiber(dying ? NULL : &from->asan_fake_stack, (void *)to->stack_lo,
                                   to->stack_hi - to->stack_lo);
#endif
#if defined(GORT_TSAN)
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    (void)from;
    (void)to;
    (void)dying;
}

/* Just resumed as `self` after a switch. */
static inline void san_after_switch(G *self)
{
#if defined(GORT_ASAN)
    __sanitizer_finish_switch_fiber(self->asan_fake_stack, NULL, NULL);
#endif
    (void)self;
}

#endif
