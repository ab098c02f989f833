/* timechan.c - time.After, time.Timer and time.Ticker on the P timer heaps.
 *
 * A gort_timer is a runtime timer (timer.c) whose function sends the
 * current nanotime on a channel of capacity 1 without blocking: a value
 * nobody took yet is kept and the new one dropped, as Go's sendTime does,
 * so a slow reader of a ticker sees ticks dropped, never the timer stuck.
 * The timer runs on g0 of whichever M runs the P's timers; the channel
 * operation there is the same non-blocking send a select with a default
 * case makes, and it readies a goroutine parked on the channel.
 *
 * Timers are GC objects: a queued timer is reached through its P's timer
 * heap (a root, gc/roots.c) and keeps its channel alive; once it is off
 * every heap and nobody holds it, the collector takes it and its channel.
 */
#include <stdlib.h>

#include "chan/chan.h"
#include "sched/proc.h"

struct gort_timer {
    timer t;
    hchan *c;
};

static void send_time(void *arg, uintptr_t seq)
{
    (void)seq;
    gort_timer *gt = arg;
    int64_t now = os_nanotime();
    chan_trysend(gt->c, &now);
}

static gort_timer *newtimer(int64_t ns, int64_t period)
{
    need_g(period ? "gort_ticker_new" : "gort_timer_new");
    if (period < 0 || (period == 0 && ns < 0))
        ns = 0;
    gort_timer *gt = gort_gc_alloc(sizeof *gt);
    if (!gt)
        throw("out of memory making a timer");
    gt->c = (hchan *)gort_chan_make(sizeof(int64_t), 1);
    int64_t now = os_nanotime();
    gt->t.when = now + ns < now ? INT64_MAX : now + ns;
    gt->t.period = period;
    gt->t.f = send_time;
    gt->t.arg = gt;
    timer_add(sched_getp(), &gt->t);
    return gt;
}

gort_chan *gort_after(int64_t ns)
{
    return (gort_chan *)newtimer(ns, 0)->c;
}

gort_timer *gort_timer_new(int64_t ns)
{
    return newtimer(ns, 0);
}

gort_chan *gort_timer_chan(gort_timer *gt)
{
    return (gort_chan *)gt->c;
}

bool gort_timer_stop(gort_timer *gt)
{
    return timer_del(&gt->t);
}

bool gort_timer_reset(gort_timer *gt, int64_t ns)
{
    need_g("gort_timer_reset");
    bool active = timer_del(&gt->t);
    int64_t now = os_nanotime();
    gt->t.when = now + (ns > 0 ? ns : 0);
    timer_add(sched_getp(), &gt->t);
    return active;
}

gort_timer *gort_ticker_new(int64_t period_ns)
{
    if (period_ns <= 0)
        gort_panic("non-positive interval for gort_ticker_new");
    return newtimer(period_ns, period_ns);
}

void gort_ticker_stop(gort_timer *gt)
{
    timer_del(&gt->t);
}

void gort_ticker_reset(gort_timer *gt, int64_t period_ns)
{
    if (period_ns <= 0)
        gort_panic("non-positive interval for gort_ticker_reset");
    need_g("gort_ticker_reset");
    timer_del(&gt->t);
    gt->t.period = period_ns;
    gt->t.when = os_nanotime() + period_ns;
    timer_add(sched_getp(), &gt->t);
}
