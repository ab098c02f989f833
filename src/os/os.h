/* os.h - the one narrow interface between gort and the operating system.
 *
 * Everything gort asks of the kernel goes through these calls: address space
 * (reserve, commit, release), futexes, time, threads and the few process
 * facts the runtime needs. One file per OS implements them (os_linux.c); the
 * rest of the runtime never includes a system header for these things, so a
 * port touches one file.
 *
 * None of these functions allocates from gort's heap, so the allocator can
 * call them at any time, including during its own initialisation.
 */
#ifndef GORT_OS_H
#define GORT_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reserve address space: no access, no commit charge. Returns NULL on
 * failure. hint is a preferred address (may be ignored). */
void *os_reserve(void *hint, size_t n);
/* Make reserved space usable (read/write). Returns false on failure. */
bool  os_commit(void *p, size_t n);
/* Map fresh read/write memory for runtime metadata. NULL on failure. */
void *os_alloc(size_t n);
void  os_free(void *p, size_t n);
/* Give the physical pages back; the range stays mapped and reads as zero.
 * p and n are multiples of os_page_size(). */
void  os_release(void *p, size_t n);
size_t os_page_size(void);   /* the kernel's page size (4 KiB, 16 KiB, 64 KiB) */

/* Futex on a 32-bit word: sleep while *addr == val (ns < 0: no timeout);
 * wake up to n sleepers. Spurious wake-ups are allowed. */
void os_futex_wait(uint32_t *addr, uint32_t val, int64_t ns);
void os_futex_wake(uint32_t *addr, int n);

int64_t os_nanotime(void);   /* monotonic */
void    os_usleep(uint32_t us);
void    os_yield(void);      /* sched_yield */
int     os_ncpu(void);
int     os_gettid(void);
/* Start a detached thread running fn(arg). false if the OS refuses. */
bool    os_thread_start(void *(*fn)(void *), void *arg);
/* The calling thread's stack: [*lo, *hi). false if it cannot be found. */
bool    os_thread_stack(uintptr_t *lo, uintptr_t *hi);

/* Write to stderr with no allocation and no locks (for throw). */
void os_write_stderr(const char *s, size_t n);
_Noreturn void os_exit(int code);

#endif
