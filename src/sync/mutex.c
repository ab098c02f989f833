/* mutex.c - gort_mutex and gort_rwmutex (Go's sync/mutex.go, rwmutex.go).
 *
 * gort_mutex is Go's mutex: a state word (locked, woken, starving bits and
 * a count of waiters) and a semaphore. Normal mode: waiters queue FIFO, but
 * a woken waiter competes with goroutines that just arrived (and are on the
 * CPU, so they tend to win); a goroutine may spin briefly first when other
 * Ps are busy (the holder is probably running). Starvation mode: a waiter
 * that failed to get the lock for more than 1 ms switches the mutex to
 * handing ownership straight from the unlocker to the first waiter
 * (semrelease with handoff); newcomers queue at the tail. The mutex goes
 * back to normal mode when a waiter gets it after waiting less than 1 ms or
 * is the last waiter. Unlock of an unlocked mutex is a fatal error.
 *
 * gort_rwmutex is Go's writer-preferring reader/writer lock: a pending
 * writer makes reader_count negative so new readers wait, and it waits only
 * for the readers that were inside (reader_wait).
 */
#include "gort.h"
#include "runtime.h"
#include "sched/proc.h"
#include "sync/sema.h"

enum {
    MUTEX_LOCKED = 1,
    MUTEX_WOKEN = 2,
    MUTEX_STARVING = 4,
    MUTEX_WAITER_SHIFT = 3,
};
#define STARVATION_NS 1000000

static int32_t load32(int32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static bool cas32(int32_t *p, int32_t old, int32_t new)
{
    return __atomic_compare_exchange_n(p, &old, new, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static int32_t add32(int32_t *p, int32_t d) { return __atomic_add_fetch(p, d, __ATOMIC_ACQ_REL); }

/* Go's runtime_canSpin: a few rounds, only if another P could be running
 * the holder and ours has nothing else to do. */
static bool can_spin(int iter)
{
    if (iter >= 4 || os_ncpu() <= 1)
        return false;
    int32_t procs = __atomic_load_n(&sched.gomaxprocs, __ATOMIC_RELAXED);
    if (procs <= atomic_load(&sched.npidle) + atomic_load(&sched.nmspinning) + 1)
        return false;
    P *pp = sched_getp();
    return pp && runq_empty(pp);
}

static void lock_slow(gort_mutex *m)
{
    int64_t wait_start = 0;
    bool starving = false, awoke = false;
    int iter = 0;
    int32_t old = load32(&m->state);
    for (;;) {
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == MUTEX_LOCKED && can_spin(iter)) {
            if (!awoke && !(old & MUTEX_WOKEN) && (old >> MUTEX_WAITER_SHIFT) != 0 &&
                cas32(&m->state, old, old | MUTEX_WOKEN))
                awoke = true;
            for (int i = 0; i < 30; i++)
                cpu_relax();
            iter++;
            old = load32(&m->state);
            continue;
        }
        int32_t new = old;
        if (!(old & MUTEX_STARVING))
            new |= MUTEX_LOCKED;
        if (old & (MUTEX_LOCKED | MUTEX_STARVING))
            new += 1 << MUTEX_WAITER_SHIFT;
        if (starving && (old & MUTEX_LOCKED))
            new |= MUTEX_STARVING;
        if (awoke) {
            if (!(new & MUTEX_WOKEN))
                throw("sync: inconsistent mutex state");
            new &= ~MUTEX_WOKEN;
        }
        if (cas32(&m->state, old, new)) {
            if (!(old & (MUTEX_LOCKED | MUTEX_STARVING)))
                return;   /* locked it */
            bool lifo = wait_start != 0;
            if (!wait_start)
                wait_start = os_nanotime();
            semacquire(&m->sema, lifo);
            starving = starving || os_nanotime() - wait_start > STARVATION_NS;
            old = load32(&m->state);
            if (old & MUTEX_STARVING) {
                /* handed to us directly; fix up the state */
                if ((old & (MUTEX_LOCKED | MUTEX_WOKEN)) || (old >> MUTEX_WAITER_SHIFT) == 0)
                    throw("sync: inconsistent mutex state");
                int32_t delta = MUTEX_LOCKED - (1 << MUTEX_WAITER_SHIFT);
                if (!starving || (old >> MUTEX_WAITER_SHIFT) == 1)
                    delta -= MUTEX_STARVING;   /* leave starvation mode */
                add32(&m->state, delta);
                return;
            }
            awoke = true;
            iter = 0;
        } else {
            old = load32(&m->state);
        }
    }
}

void gort_mutex_lock(gort_mutex *m)
{
    if (cas32(&m->state, 0, MUTEX_LOCKED))
        return;
    need_g("gort_mutex_lock");
    lock_slow(m);
}

bool gort_mutex_trylock(gort_mutex *m)
{
    int32_t old = load32(&m->state);
    if (old & (MUTEX_LOCKED | MUTEX_STARVING))
        return false;
    return cas32(&m->state, old, old | MUTEX_LOCKED);
}

static void unlock_slow(gort_mutex *m, int32_t new)
{
    if (!((new + MUTEX_LOCKED) & MUTEX_LOCKED))
        throw("sync: unlock of unlocked mutex");
    if (!(new & MUTEX_STARVING)) {
        int32_t old = new;
        for (;;) {
            /* nobody to wake, or somebody already woken or got the lock */
            if ((old >> MUTEX_WAITER_SHIFT) == 0 || (old & (MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING)))
                return;
            new = (old - (1 << MUTEX_WAITER_SHIFT)) | MUTEX_WOKEN;
            if (cas32(&m->state, old, new)) {
                semrelease(&m->sema, false);
                return;
            }
            old = load32(&m->state);
        }
    }
    /* starvation: hand ownership to the next waiter */
    semrelease(&m->sema, true);
}

void gort_mutex_unlock(gort_mutex *m)
{
    int32_t new = add32(&m->state, -MUTEX_LOCKED);
    if (new != 0)
        unlock_slow(m, new);
}

/* ---- rwmutex ---------------------------------------------------------------- */

#define RW_MAX_READERS (1 << 30)

void gort_rwmutex_rlock(gort_rwmutex *rw)
{
    if (add32(&rw->reader_count, 1) < 0)
        semacquire(&rw->reader_sem, false);   /* a writer is pending */
}

void gort_rwmutex_runlock(gort_rwmutex *rw)
{
    int32_t r = add32(&rw->reader_count, -1);
    if (r < 0) {
        if (r + 1 == 0 || r + 1 == -RW_MAX_READERS)
            throw("sync: RUnlock of unlocked RWMutex");
        if (add32(&rw->reader_wait, -1) == 0)
            semrelease(&rw->writer_sem, false);   /* the last reader lets the writer in */
    }
}

void gort_rwmutex_lock(gort_rwmutex *rw)
{
    gort_mutex_lock(&rw->w);
    int32_t r = add32(&rw->reader_count, -RW_MAX_READERS) + RW_MAX_READERS;
    if (r != 0 && add32(&rw->reader_wait, r) != 0)
        semacquire(&rw->writer_sem, false);
}

void gort_rwmutex_unlock(gort_rwmutex *rw)
{
    int32_t r = add32(&rw->reader_count, RW_MAX_READERS);
    if (r >= RW_MAX_READERS)
        throw("sync: Unlock of unlocked RWMutex");
    for (int32_t i = 0; i < r; i++)
        semrelease(&rw->reader_sem, false);
    gort_mutex_unlock(&rw->w);
}
