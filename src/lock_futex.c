/* lock_futex.c - the runtime lock: a futex mutex (Go's lock_futex.go).
 *
 * States: 0 unlocked, 1 locked, 2 locked and somebody may sleep. Acquire
 * tries a CAS, spins (critical sections are short: a free list operation,
 * a span split, a channel's buffer slot) in four rounds of 30 pauses, then
 * yields the CPU once in case the holder was preempted, and only then marks
 * the lock contended and sleeps on the futex (Go's active and passive
 * spinning). Sleeping is what costs: the unlocker then has to make a
 * system call to wake it. Release wakes one sleeper only if the state said there might be
 * one, so an uncontended lock/unlock is two atomic operations and no system
 * call. It blocks the whole thread, so it is for runtime critical sections
 * only; goroutine-level sync (gort_mutex) parks goroutines instead.
 *
 * A thread holding a runtime lock is never stopped for the collector
 * (see "no suspension" in runtime.h): the count goes up before the lock
 * is tried, so no signal can stop the thread between taking the lock and
 * counting it; a thread still waiting for the lock stops once it has
 * taken and released it.
 */
#include "runtime.h"

#define ACTIVE_SPIN 4
#define ACTIVE_SPIN_CNT 30
#define PASSIVE_SPIN 1

__thread int tls_nosuspend __attribute__((tls_model("initial-exec")));
__thread volatile int tls_suspend_pending __attribute__((tls_model("initial-exec")));

static bool try_acquire(rlock *l)
{
    uint32_t z = 0;
    return atomic_compare_exchange_strong_explicit(&l->key, &z, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

bool trylock(rlock *l)
{
    nosuspend_enter();
    if (try_acquire(l))
        return true;
    nosuspend_leave();
    return false;
}

static __attribute__((noinline)) void lock_slow(rlock *l)
{
    for (int i = 0; i < ACTIVE_SPIN; i++) {
        for (int k = 0; k < ACTIVE_SPIN_CNT; k++)
            cpu_relax();
        if (atomic_load_explicit(&l->key, memory_order_relaxed) == 0 && try_acquire(l))
            return;
    }
    for (int i = 0; i < PASSIVE_SPIN; i++) {
        os_yield();
        if (atomic_load_explicit(&l->key, memory_order_relaxed) == 0 && try_acquire(l))
            return;
    }
    /* Contended: announce a sleeper, then sleep until we take it from 0. */
    while (atomic_exchange_explicit(&l->key, 2, memory_order_acquire) != 0)
        os_futex_wait((uint32_t *)&l->key, 2, -1);
}

void lock(rlock *l)
{
    nosuspend_enter();
    uint32_t z = 0;
    if (unlikely(!atomic_compare_exchange_weak_explicit(&l->key, &z, 1, memory_order_acquire,
                                                        memory_order_relaxed)))
        lock_slow(l);
}

void unlock(rlock *l)
{
    if (atomic_exchange_explicit(&l->key, 0, memory_order_release) == 2)
        os_futex_wake((uint32_t *)&l->key, 1);
    nosuspend_leave();
}
