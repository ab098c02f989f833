/* sysmon.c - the system monitor: a thread without a P.
 *
 * It sleeps 20 us at first and doubles its sleep after 50 idle rounds, up
 * to 10 ms, and on each round:
 *   - retakes Ps from system calls: a P that stayed in P_SYSCALL across a
 *     whole round (so for at least 20 us) goes to another M (handoffp),
 *     unless it has nothing queued and spinning or idle Ps can take care of
 *     new work anyway, in which case it waits up to 10 ms;
 *   - marks for preemption a goroutine that has run for 10 ms without the
 *     scheduler running on its P (it yields at its next runtime call);
 *   - polls the network (netpoll.c) if nobody has for 10 ms, so goroutines
 *     whose fds became ready are not held back by Ms that are all busy
 *     running goroutines (which poll only when they run out of work).
 * When every P is idle and no goroutine is in a system call, there is
 * nothing to watch: sysmon sleeps on a futex until an M takes a P (pidleget
 * wakes it), so an idle program costs no CPU. The collector's forced cycle
 * and the scavenger will be driven from here too.
 *
 * It reads the Ps' tick counters without locks (atomics); its own notes of
 * what it saw last live in the P (sm_*), written only here.
 */
#define _GNU_SOURCE
#include "sched/proc.h"
#include "sched/netpoll.h"

#include <pthread.h>
#include <signal.h>

#define FORCE_PREEMPT_NS (10 * 1000000LL)
#define NETPOLL_STALE_NS (10 * 1000000LL)

static void poll_network(int64_t now)
{
    if (!netpoll_inited())
        return;
    int64_t lp = atomic_load(&sched.lastpoll);
    if (lp == 0 || lp + NETPOLL_STALE_NS > now ||
        !atomic_compare_exchange_strong(&sched.lastpoll, &lp, now))
        return;
    glist l = netpoll_poll(0);
    if (l.head)
        netpoll_inject(&l, NULL);
}

static void retake(int64_t now, int *retaken)
{
    int32_t procs = __atomic_load_n(&sched.gomaxprocs, __ATOMIC_ACQUIRE);
    for (int32_t i = 0; i < procs; i++) {
        P *pp = sched.allp[i];
        if (!pp)
            continue;
        uint32_t s = atomic_load(&pp->status);
        if (s == P_RUNNING || s == P_SYSCALL) {
            uint32_t t = __atomic_load_n(&pp->schedtick, __ATOMIC_RELAXED);
            if (pp->sm_schedtick != t) {
                pp->sm_schedtick = t;
                pp->sm_schedwhen = now;
            } else if (s == P_RUNNING && now - pp->sm_schedwhen >= FORCE_PREEMPT_NS) {
                M *mp = __atomic_load_n(&pp->m, __ATOMIC_ACQUIRE);
                G *gp = mp ? __atomic_load_n(&mp->curg, __ATOMIC_ACQUIRE) : NULL;
                if (gp)
                    atomic_store(&gp->preempt, true);
            }
        }
        if (s != P_SYSCALL)
            continue;
        uint32_t t = atomic_load(&pp->syscalltick);
        if (pp->sm_syscalltick != t) {
            pp->sm_syscalltick = t;
            pp->sm_syscallwhen = now;
            continue;
        }
        if (runq_empty(pp) &&
            atomic_load(&sched.nmspinning) + atomic_load(&sched.npidle) > 0 &&
            pp->sm_syscallwhen + 10 * 1000000LL > now)
            continue;
        uint32_t exp = P_SYSCALL;
        if (atomic_compare_exchange_strong(&pp->status, &exp, P_IDLE)) {
            atomic_fetch_add(&pp->syscalltick, 1);
            (*retaken)++;
            handoffp(pp);
        }
    }
}

void sysmon_wake(void)
{
    uint32_t one = 1;
    if (atomic_compare_exchange_strong(&sched.sysmonwait, &one, 0))
        os_futex_wake((uint32_t *)&sched.sysmonwait, 1);
}

static bool nothing_to_watch(void)
{
    int32_t procs = __atomic_load_n(&sched.gomaxprocs, __ATOMIC_ACQUIRE);
    return atomic_load(&sched.npidle) == procs && atomic_load(&sched.nsyscall) == 0;
}

static void *sysmon(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    uint32_t idle = 0, delay = 20;
    for (;;) {
        if (idle == 0)
            delay = 20;
        else if (idle > 50)
            delay *= 2;
        if (delay > 10000)
            delay = 10000;
        os_usleep(delay);
        if (!sched_running()) {
            /* the program is done with goroutines */
            for (;;)
                os_futex_wait((uint32_t *)&sched.sysmonwait, 0, -1);
        }
        if (nothing_to_watch() && !atomic_load(&sched.gcwaiting)) {
            atomic_store(&sched.sysmonwait, 1);
            full_fence();
            if (nothing_to_watch())
                os_futex_wait((uint32_t *)&sched.sysmonwait, 1, -1);
            atomic_store(&sched.sysmonwait, 0);
            idle = 0;
            continue;
        }
        int retaken = 0;
        int64_t now = os_nanotime();
        poll_network(now);
        retake(now, &retaken);
        idle = retaken ? 0 : idle + 1;
    }
    return NULL;
}

void sysmon_start(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t t;
    if (pthread_create(&t, &attr, sysmon, NULL) != 0)
        throw("cannot start sysmon");
    pthread_attr_destroy(&attr);
}
