/* lock_futex.c - the runtime lock: a futex mutex (Go's lock_futex.go).
 *
 * States: 0 unlocked, 1 locked, 2 locked and somebody may sleep. Acquire
 * tries a CAS, spins briefly (critical sections are short: a free list
 * operation, a span split), then marks the lock contended and sleeps on the
 * futex. Release wakes one sleeper only if the state said there might be
 * one, so an uncontended lock/unlock is two atomic operations and no system
 * call. It blocks the whole thread, so it is for runtime critical sections
 * only; goroutine-level sync (gort_mutex) parks goroutines instead.
 */
#include "runtime.h"

#define ACTIVE_SPIN 64

bool trylock(rlock *l)
{
    uint32_t z = 0;
    return atomic_compare_exchange_strong_explicit(&l->key, &z, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

void lock(rlock *l)
{
    uint32_t z = 0;
    if (likely(atomic_compare_exchange_weak_explicit(&l->key, &z, 1, memory_order_acquire,
                                                     memory_order_relaxed)))
        return;
    for (int i = 0; i < ACTIVE_SPIN; i++) {
        if (atomic_load_explicit(&l->key, memory_order_relaxed) == 0 && trylock(l))
            return;
        cpu_relax();
    }
    /* Contended: announce a sleeper, then sleep until we take it from 0. */
    while (atomic_exchange_explicit(&l->key, 2, memory_order_acquire) != 0)
        os_futex_wait((uint32_t *)&l->key, 2, -1);
}

void unlock(rlock *l)
{
    if (atomic_exchange_explicit(&l->key, 0, memory_order_release) == 2)
        os_futex_wake((uint32_t *)&l->key, 1);
}
