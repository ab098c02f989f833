/* panic.c - defer, panic and recover (Go's panic.go, for C frames).
 *
 * C has no function epilogues the runtime can hook, so the frames gort
 * knows of are explicit: every goroutine's entry function, and any call
 * made through gort_call. A frame (gframe, on the C stack of the call)
 * holds the calls deferred in it (gort_defer pushes on the innermost one)
 * and a jmp_buf to return through.
 *
 *   return    gort_call runs the frame's deferred calls, LIFO, and returns.
 *   panic     gort_panic formats the message and runs deferred calls, LIFO,
 *             frame after frame outwards, on top of the panicking stack
 *             (as Go does). A deferred call that calls gort_recover stops
 *             the panic: the frame that deferred it then returns normally
 *             to its caller (longjmp to its gort_call, which runs its
 *             remaining deferred calls), and gort_recover returned the
 *             message. A panic in a deferred call replaces the one that was
 *             running (Go prints both). Nothing recovered: "panic: msg",
 *             "goroutine N [running]:", a traceback, exit status 2.
 *   goexit    gort_goexit runs every frame's deferred calls, then ends the
 *             goroutine; it cannot be recovered.
 *
 * recover returns the message only while a deferred call run by a panic is
 * on the stack, and only once; Go further requires the deferred function
 * to call recover itself, not through a helper, which C cannot tell apart.
 *
 * Deferred calls are small records from the manual heap; messages are
 * formatted with vsnprintf into the manual heap and stay valid after
 * recovery (recover's result must outlive the panic).
 */
#define _GNU_SOURCE
#include "chan/panic.h"

#include <execinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "sched/proc.h"

typedef struct gdefer {
    gort_fn fn;
    void *arg;
    struct gdefer *link;
} gdefer;

struct gpanic {
    char *msg;
    bool recovered;
    bool aborted;       /* a later panic took over */
    bool goexit;        /* gort_goexit: runs defers, cannot be recovered */
    bool indefer;       /* a deferred call it started is running */
    gframe *frame;      /* the frame whose deferred calls it is running */
    struct gpanic *link;
};

void gframe_push(G *gp, gframe *fr)
{
    fr->defers = NULL;
    fr->parent = gp->frames;
    gp->frames = fr;
}

void gframe_run_defers(G *gp, gframe *fr)
{
    (void)gp;
    while (fr->defers) {
        gdefer *d = fr->defers;
        fr->defers = d->link;
        gort_fn fn = d->fn;
        void *arg = d->arg;
        gort_gc_free(d);
        fn(arg);
    }
}

void gframe_pop(G *gp, gframe *fr)
{
    gp->frames = fr->parent;
}

void gort_call(gort_fn fn, void *arg)
{
    G *gp = need_g("gort_call");
    if (!fn)
        gort_panic("gort_call of nil func value");
    gframe fr;
    gframe_push(gp, &fr);
    if (setjmp(fr.jb) == 0)
        fn(arg);
    /* a normal return, or a recovered panic landing here: either way this
     * frame returns to its caller after its deferred calls */
    gp = getg();
    gframe_run_defers(gp, &fr);
    gframe_pop(gp, &fr);
}

void gort_defer(gort_fn fn, void *arg)
{
    G *gp = need_g("gort_defer");
    if (!gp->frames)
        throw("gort_defer with no frame (call it from a goroutine or inside gort_call)");
    /* in the GC heap: the record may hold the only pointer to a GC object
     * (its argument) until the call runs */
    gdefer *d = gort_gc_alloc(sizeof *d);
    if (!d)
        throw("out of memory for a deferred call");
    d->fn = fn;
    d->arg = arg;
    d->link = gp->frames->defers;
    gp->frames->defers = d;
}

const char *gort_recover(void)
{
    G *gp = getg();
    if (!gp)
        return NULL;
    gpanic *p = gp->panicking;
    if (!p || p->goexit || p->recovered || p->aborted || !p->indefer)
        return NULL;
    p->recovered = true;
    return p->msg;
}

static char *format(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    char *s = gort_malloc((size_t)n + 1);
    if (!s)
        throw("out of memory formatting a panic");
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static _Noreturn void die_unrecovered(G *gp, gpanic *p)
{
    /* oldest first, as Go prints a panic that interrupted another */
    gpanic *chain[64];
    int n = 0;
    for (gpanic *q = p; q && n < 64; q = q->link)
        if (!q->goexit)
            chain[n++] = q;
    for (int i = n - 1; i >= 0; i--)
        printerr("%spanic: %s%s\n", i == n - 1 ? "" : "\t", chain[i]->msg,
                 chain[i]->recovered ? " [recovered]" : "");
    printerr("\ngoroutine %d [running]:\n", (int)gp->goid);
    void *pcs[64];
    int depth = backtrace(pcs, 64);
    backtrace_symbols_fd(pcs, depth, 2);
    os_exit(2);
}

/* Run deferred calls outward for panic p until one recovers it or no frame
 * is left. Returns only for a goexit whose frames are all done. */
static void unwind(G *gp, gpanic *p)
{
    for (;;) {
        gframe *fr = gp->frames;
        if (!fr)
            break;
        /* An earlier panic whose deferred call belongs to this frame is
         * being unwound past that call: it is aborted (replaced by p). An
         * earlier panic recovered or unwound entirely above it stays. */
        for (gpanic *q = p->link; q; q = q->link)
            if (q->indefer && q->frame == fr)
                q->aborted = true;
        while (fr->defers) {
            gdefer *d = fr->defers;
            fr->defers = d->link;
            gort_fn fn = d->fn;
            void *arg = d->arg;
            gort_gc_free(d);
            p->indefer = true;
            p->frame = fr;
            fn(arg);
            p->indefer = false;
            gp = getg();   /* the deferred call may have switched threads */
            if (p->recovered) {
                /* done: drop this panic and the ones it had aborted */
                gpanic *q = p->link;
                while (q && q->aborted)
                    q = q->link;
                gp->panicking = q;
                longjmp(fr->jb, 1);
            }
        }
        if (p->goexit && !fr->parent)
            return;   /* the goroutine's own frame: goexit1 ends it */
        gp->frames = fr->parent;   /* this frame is unwound */
    }
    if (p->goexit)
        return;
    die_unrecovered(gp, p);
}

_Noreturn void gort_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    G *gp = getg();
    if (!gp) {
        /* a plain thread has no frames to unwind: it dies as Go would */
        char buf[512];
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        printerr("panic: %s\n\n(outside a goroutine)\n", buf);
        os_exit(2);
    }
    gpanic p = {.msg = format(fmt, ap)};
    va_end(ap);
    p.link = gp->panicking;
    gp->panicking = &p;
    unwind(gp, &p);
    throw("unreachable: panic unwound");
}

/* goexit: run every deferred call, outermost frame last, then return to
 * let the caller end the goroutine. */
void goexit_run_defers(G *gp)
{
    gpanic p = {.msg = NULL, .goexit = true, .link = gp->panicking};
    gp->panicking = &p;
    unwind(gp, &p);
    gp = getg();
    gframe *fr = gp->frames;
    if (fr)
        gframe_run_defers(gp, fr);
    gp->panicking = p.link;
}
