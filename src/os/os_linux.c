/* os_linux.c - os.h for Linux. See os.h for the contract.
 *
 * Memory: reservations are PROT_NONE | MAP_NORESERVE, so they cost neither
 * RSS nor commit charge even under vm.overcommit_memory=2; os_commit turns a
 * range read/write with mprotect (contiguous commits merge into one VMA).
 * os_release uses MADV_DONTNEED rather than MADV_FREE: Go tried MADV_FREE in
 * 1.12 and went back in 1.16 because users saw RSS that did not fall, and a
 * released page reading as zero is what lets calloc skip zeroing.
 */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void *os_reserve(void *hint, size_t n)
{
    void *p = mmap(hint, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

bool os_commit(void *p, size_t n)
{
    return mprotect(p, n, PROT_READ | PROT_WRITE) == 0;
}

void *os_alloc(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void os_free(void *p, size_t n)
{
    munmap(p, n);
}

void os_release(void *p, size_t n)
{
    int saved = errno;
    madvise(p, n, MADV_DONTNEED);
    errno = saved;
}

size_t os_page_size(void)
{
    static size_t ps;
    if (!ps) {
        long v = sysconf(_SC_PAGESIZE);
        __atomic_store_n(&ps, v > 0 ? (size_t)v : 4096, __ATOMIC_RELAXED);
    }
    return __atomic_load_n(&ps, __ATOMIC_RELAXED);
}

void os_futex_wait(uint32_t *addr, uint32_t val, int64_t ns)
{
    struct timespec ts, *tsp = NULL;
    int saved = errno;
    if (ns >= 0) {
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        tsp = &ts;
    }
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
    errno = saved;
}

void os_futex_wake(uint32_t *addr, int n)
{
    int saved = errno;
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
    errno = saved;
}

int64_t os_nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void os_usleep(uint32_t us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    int saved = errno;
    /* the system call itself: nanosleep(3) is interposed in goroutines
     * (sched/hook.c), and the runtime's own waits must block the thread */
    while (syscall(SYS_nanosleep, &ts, &ts) != 0 && errno == EINTR)
        ;
    errno = saved;
}

void os_yield(void)
{
    sched_yield();
}

int os_ncpu(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int os_gettid(void)
{
    return (int)syscall(SYS_gettid);
}

void os_write_stderr(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = syscall(SYS_write, 2, s, n);   /* not the interposed write(3) */
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

_Noreturn void os_exit(int code)
{
    _exit(code);
}

bool os_thread_stack(uintptr_t *lo, uintptr_t *hi)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    bool ok = false;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            *lo = (uintptr_t)addr;
            *hi = (uintptr_t)addr + size;
            ok = true;
        }
        pthread_attr_destroy(&attr);
    }
    return ok;
}

bool os_thread_start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(&t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return err == 0;
}
