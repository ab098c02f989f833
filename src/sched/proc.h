/* proc.h - the scheduler's internal interface between its files.
 * See proc.c for the overview. */
#ifndef GORT_SCHED_PROC_H
#define GORT_SCHED_PROC_H

#include "runtime.h"

/* runq.c */
bool runq_empty(P *pp);
void runq_put(P *pp, G *gp, bool next);
G   *runq_get(P *pp, bool *inherit);
G   *runq_steal(P *pp, P *victim, bool steal_next);
void globrunq_put(G *gp);                 /* sched.lock held */
void globrunq_putbatch(G **batch, int32_t n);          /* sched.lock held */
G   *globrunq_get(P *pp, int32_t max);    /* sched.lock held; max 1 unless pp's ring is empty */

/* proc.c */
void goready(G *gp);                      /* WAITING -> RUNNABLE, runs soon */
/* Park the running goroutine. On g0, after it is off its stack and marked
 * WAITING, fn(gp, arg) runs (e.g. to release the lock its waker takes). */
void gopark(void (*fn)(G *gp, void *arg), void *arg);
void wakep(void);
void wake_timer_m(int64_t when);          /* a timer was added for when */
G   *need_g(const char *what);            /* the running G, or a fatal error */
void preempt_check(void);
P   *sched_getp(void);                    /* the P of the running M (NULL outside) */

/* timer.c */
void timer_add(P *pp, timer *t);          /* queue t on pp */
bool timer_del(timer *t);                 /* unqueue; false if not queued */
void timer_run(P *pp, int64_t now);       /* run every timer of pp due by now */
void timer_move_all(P *from, P *to);      /* procresize: a P goes away */
static inline int64_t timer_next(P *pp)
{
    return atomic_load_explicit(&pp->timer0when, memory_order_acquire);
}

void handoffp(P *pp);                     /* pp lost its M: find it one, or idle it */
bool sched_running(void);                 /* gort_main running, main not returned */
int  sched_errno_get(void);               /* errno across a park or a syscall bracket (proc.c) */
void sched_errno_set(int e);

/* sysmon.c */
void sysmon_start(void);
void sysmon_wake(void);

#endif
