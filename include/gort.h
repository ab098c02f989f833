/* gort.h - Go's runtime as a C library: the public API.
 *
 * The names here are a contract (see DESIGN.md): programs outside the project
 * compile against them. Each comment gives the Go equivalent.
 *
 * This header grows with each capability of the runtime. Today it holds the
 * allocator: the manual heap (gort_malloc and friends, the same allocator that
 * libgort-malloc.so exports under the standard names) and the memory
 * statistics.
 */
#ifndef GORT_H
#define GORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GORT_API __attribute__((visibility("default")))
#define GORT_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define GORT_API
#define GORT_MALLOC_ATTR
#endif

typedef void (*gort_fn)(void *arg);

/* ---- runtime: goroutines on G/M/P (Go's scheduler) ------------------------
 * gort_main starts the runtime on the calling thread and runs fn(arg) as the
 * main goroutine; it returns 0 once fn returns, and from then on no other
 * goroutine is started again (in Go they would die with the process; a
 * goroutine that is running user code at that moment finishes its current
 * stretch, up to its next call into the runtime). Calling it a second time
 * in a process is a fatal error. Functions that need a goroutine
 * (gort_yield, gort_goexit, gort_sleep, ...) called outside one are a fatal
 * error with a clear message, never a hang. */
GORT_API int      gort_main(gort_fn fn, void *arg);  /* start runtime, run fn as main goroutine */
GORT_API void     gort_go(gort_fn fn, void *arg);    /* go fn(arg) */
GORT_API void     gort_yield(void);                  /* runtime.Gosched */
GORT_API _Noreturn void gort_goexit(void);           /* runtime.Goexit */
GORT_API int      gort_gomaxprocs(int n);            /* runtime.GOMAXPROCS; n < 1 only queries; returns previous */
GORT_API int      gort_set_max_threads(int n);       /* debug.SetMaxThreads; returns previous */
GORT_API int      gort_num_goroutine(void);          /* runtime.NumGoroutine */
GORT_API int64_t  gort_goid(void);                   /* the current goroutine's id; 0 outside one */
GORT_API void     gort_lock_os_thread(void);         /* runtime.LockOSThread */
GORT_API void     gort_unlock_os_thread(void);       /* runtime.UnlockOSThread */
GORT_API void     gort_entersyscall(void);           /* bracket a blocking call */
GORT_API void     gort_exitsyscall(void);
/* Goroutine stack reservation in bytes (default 256 KiB, environment
 * GORT_STACK_SIZE, e.g. 1MiB); applies to goroutines created afterwards.
 * Rounded up to a power of two >= 16 KiB. Returns the previous size. */
GORT_API size_t   gort_set_stack_size(size_t bytes);

/* ---- time ------------------------------------------------------------------ */
GORT_API int64_t  gort_nanotime(void);               /* monotonic nanoseconds */
GORT_API void     gort_sleep(int64_t ns);            /* time.Sleep */

/* ---- channels (Go's chan) ---------------------------------------------------
 * Element size and capacity fixed at make. A NULL channel blocks forever on
 * send and receive and is never ready in select, as in Go. Panics with Go's
 * messages: "send on closed channel", "close of closed channel",
 * "close of nil channel". All of these need a goroutine. */
typedef struct gort_chan gort_chan;
GORT_API gort_chan *gort_chan_make(size_t elem_size, size_t cap);   /* make(chan T, cap) */
GORT_API void   gort_chan_send(gort_chan *c, const void *elem);     /* c <- *elem */
/* *elem = <-c; false once closed and drained (elem zeroed); elem may be NULL */
GORT_API bool   gort_chan_recv(gort_chan *c, void *elem);
GORT_API void   gort_chan_close(gort_chan *c);
GORT_API size_t gort_chan_len(gort_chan *c);
GORT_API size_t gort_chan_cap(gort_chan *c);

enum { GORT_SEND = 1, GORT_RECV = 2 };
typedef struct gort_case {
    gort_chan *chan;     /* NULL: never ready */
    int dir;             /* GORT_SEND or GORT_RECV */
    void *elem;          /* value to send, or where to receive (may be NULL) */
    bool ok;             /* receive: false if the channel was closed */
} gort_case;
/* select: the index of the case done, chosen uniformly among ready ones;
 * -1 when !block and none is ready (Go's default case). */
GORT_API int    gort_select(gort_case *cases, int n, bool block);

/* time.After: a channel of int64 (nanotime) that receives once after ns. */
GORT_API gort_chan *gort_after(int64_t ns);

/* ---- network and pipe I/O: the netpoller (Go's net.Conn, os.File) ----------
 * The libc calls of the same names, except that in a goroutine they park
 * the goroutine, not the thread, while the fd is not ready: the scheduler
 * waits for all such fds at once (epoll, edge-triggered) and runs the
 * goroutines whose fd became ready. For sockets, pipes, FIFOs, ttys,
 * eventfds...; a regular file cannot be polled and is read and written
 * with a plain call (bracketed like gort_entersyscall).
 *
 * Rules and errors (errno, return -1):
 *   - On its first use here an fd is put in non-blocking mode (O_NONBLOCK
 *     on the open file description, so a dup of it shares the mode);
 *     fcntl(F_GETFL) and ioctl(FIONBIO) keep showing and setting the
 *     program's own view. close(2) and gort_close are the same call (libc's
 *     name is gort's, see "transparent mode" below): it wakes the
 *     goroutines blocked on the fd and the runtime forgets the fd. An fd
 *     closed behind the runtime's back (fclose of an fdopen'ed socket, a
 *     raw system call) is forgotten when its number comes back from
 *     socket, accept, pipe, dup, open, eventfd and the other fd-making
 *     calls transparent mode defines; a number handed out another way (a
 *     raw system call, libc's own popen) may see stale state.
 *   - gort_close wakes every goroutine blocked on the fd; they fail with
 *     EBADF, as does any call on the fd that starts during the close or
 *     after it. An invalid fd: EBADF.
 *   - EINTR never reaches the caller: interrupted calls are retried.
 *   - Deadlines (Go's SetDeadline): an absolute gort_nanotime() value per
 *     direction, 0 for none. When it passes, the blocked call and every
 *     later call in that direction fail with ETIMEDOUT until the deadline
 *     is set again; a deadline in the past expires at once. Close and
 *     reuse of the fd number clear them. (A regular file is always ready:
 *     deadlines do not apply to it.)
 *   - Peer reset: ECONNRESET. A write to a socket whose peer is gone
 *     fails with EPIPE and never raises SIGPIPE (every write call here
 *     uses MSG_NOSIGNAL on sockets); on a pipe it behaves as write(2)
 *     (SIGPIPE unless ignored). Out of fds (accept, dial): EMFILE/ENFILE,
 *     returned, never fatal. End of stream: 0 bytes read.
 *   - One call per direction runs at a time on an fd: goroutines that read
 *     (or accept) on one fd concurrently take turns, as in Go.
 *   - gort_write and gort_send write everything, waiting as needed (a
 *     blocking socket's behaviour, Go's Write); if an error stops them
 *     after some bytes, they return that count and the next call reports
 *     the error. The others return what one system call did.
 *   - gort_accept returns a close-on-exec fd; gort_accept4 takes accept4's
 *     flags (SOCK_CLOEXEC, SOCK_NONBLOCK) as given; ECONNABORTED is
 *     retried.
 *   - Outside a goroutine (a plain thread, or before gort_main) they block
 *     the thread, like the libc calls, honouring deadlines.
 *
 * Transparent mode: libgort (not libgort-malloc) also defines libc's own
 * read, write, readv, writev, recv, send, recvfrom, sendto, recvmsg,
 * sendmsg, accept, accept4, connect, close, poll, select, sleep, usleep,
 * nanosleep and clock_nanosleep (plus socket, socketpair, pipe, pipe2, dup, dup2, dup3,
 * fcntl and ioctl to keep its per-fd state right, and getaddrinfo and
 * getnameinfo). In a goroutine, on a socket, pipe or FIFO the program
 * holds in blocking mode, they park the goroutine like the gort_ calls,
 * with libc's semantics otherwise (SIGPIPE on sockets, accept's flags as
 * asked, EAGAIN on fds the program made non-blocking, whole writes,
 * MSG_WAITALL, SO_RCVTIMEO/SO_SNDTIMEO ending in EAGAIN, no EINTR); the
 * _FORTIFY_SOURCE entries (__read_chk...) and setsockopt are covered too,
 * and vfork is fork (its child would act on the parent's runtime). poll
 * and select wait for all their fds and the timeout at once; the sleeps are
 * gort_sleep. Regular files, fds 0-2 and name lookups are bracketed like
 * gort_entersyscall. Outside goroutines, and inside a gort_entersyscall
 * bracket, they are exactly libc's. GORT_DEBUG=nethook=0 turns it off. */
GORT_API ssize_t gort_read(int fd, void *buf, size_t n);
GORT_API ssize_t gort_write(int fd, const void *buf, size_t n);
GORT_API ssize_t gort_readv(int fd, const struct iovec *iov, int iovcnt);
GORT_API ssize_t gort_writev(int fd, const struct iovec *iov, int iovcnt);
GORT_API ssize_t gort_recv(int fd, void *buf, size_t n, int flags);
GORT_API ssize_t gort_send(int fd, const void *buf, size_t n, int flags);
GORT_API ssize_t gort_recvfrom(int fd, void *buf, size_t n, int flags,
                               struct sockaddr *addr, socklen_t *addrlen);
GORT_API ssize_t gort_sendto(int fd, const void *buf, size_t n, int flags,
                             const struct sockaddr *addr, socklen_t addrlen);
GORT_API ssize_t gort_recvmsg(int fd, struct msghdr *msg, int flags);
GORT_API ssize_t gort_sendmsg(int fd, const struct msghdr *msg, int flags);
GORT_API int     gort_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
GORT_API int     gort_accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
GORT_API int     gort_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
GORT_API int     gort_close(int fd);
/* SetDeadline, SetReadDeadline, SetWriteDeadline: t is an absolute
 * gort_nanotime(); 0 clears. 0 on success; EBADF for a bad fd. */
GORT_API int     gort_fd_set_deadline(int fd, int64_t t);
GORT_API int     gort_fd_set_read_deadline(int fd, int64_t t);
GORT_API int     gort_fd_set_write_deadline(int fd, int64_t t);
/* net.Listen("tcp", host:port): a listening TCP socket (SO_REUSEADDR,
 * backlog SOMAXCONN) on the first address host resolves to; host NULL or
 * "" listens on every address; port 0 picks a free port (getsockname
 * tells which). net.Dial("tcp", host:port): a connected socket, trying
 * each address host resolves to in turn. Both return the fd, or -1 with
 * errno (a name that does not resolve: EHOSTUNREACH; a bad port: EINVAL).
 * Name lookup (getaddrinfo) blocks its thread, bracketed as a system call. */
GORT_API int     gort_listen_tcp(const char *host, int port);
GORT_API int     gort_dial_tcp(const char *host, int port);

/* time.Timer and time.Ticker. C is a channel of int64 (nanotime), capacity
 * 1. stop reports whether the call stopped the timer before it fired;
 * reset re-arms it (Go 1.19 semantics: the caller drains C if needed). */
typedef struct gort_timer gort_timer;
GORT_API gort_timer *gort_timer_new(int64_t ns);
GORT_API gort_chan  *gort_timer_chan(gort_timer *t);
GORT_API bool        gort_timer_stop(gort_timer *t);
GORT_API bool        gort_timer_reset(gort_timer *t, int64_t ns);
GORT_API gort_timer *gort_ticker_new(int64_t period_ns);
GORT_API void        gort_ticker_stop(gort_timer *t);
GORT_API void        gort_ticker_reset(gort_timer *t, int64_t period_ns);

/* ---- sync: zero value ready (gort_mutex m = {0};) -----------------------------
 * They park goroutines, never threads. Fields are the runtime's: do not
 * touch them. Fatal errors (not recoverable), as Go: "sync: unlock of
 * unlocked mutex", "sync: RUnlock of unlocked RWMutex", "sync: Unlock of
 * unlocked RWMutex". Panic: "sync: negative WaitGroup counter". */
typedef struct gort_mutex { int32_t state; uint32_t sema; } gort_mutex;
typedef struct gort_rwmutex {
    gort_mutex w;
    uint32_t writer_sem, reader_sem;
    int32_t reader_count, reader_wait;
} gort_rwmutex;
typedef struct gort_waitgroup { uint64_t state; uint32_t sema; } gort_waitgroup;
typedef struct gort_once { uint32_t done; gort_mutex m; } gort_once;
typedef struct gort_cond {
    uint32_t wait, notify;     /* tickets */
    uint32_t lock;
    void *head, *tail;
} gort_cond;

GORT_API void gort_mutex_lock(gort_mutex *m);         /* sync.Mutex, with starvation mode */
GORT_API void gort_mutex_unlock(gort_mutex *m);
GORT_API bool gort_mutex_trylock(gort_mutex *m);
GORT_API void gort_rwmutex_rlock(gort_rwmutex *rw);   /* sync.RWMutex: writers preferred */
GORT_API void gort_rwmutex_runlock(gort_rwmutex *rw);
GORT_API void gort_rwmutex_lock(gort_rwmutex *rw);
GORT_API void gort_rwmutex_unlock(gort_rwmutex *rw);
GORT_API void gort_waitgroup_add(gort_waitgroup *wg, int n);
GORT_API void gort_waitgroup_done(gort_waitgroup *wg);
GORT_API void gort_waitgroup_wait(gort_waitgroup *wg);
GORT_API void gort_once_do(gort_once *o, gort_fn fn, void *arg);
GORT_API void gort_cond_wait(gort_cond *c, gort_mutex *m);   /* unlocks m, waits, relocks */
GORT_API void gort_cond_signal(gort_cond *c);
GORT_API void gort_cond_broadcast(gort_cond *c);

/* ---- defer, panic, recover ---------------------------------------------------
 * The frames gort knows of are a goroutine's entry function and calls made
 * through gort_call. gort_defer registers fn(arg) in the innermost one; they
 * run LIFO when it returns, when a panic unwinds it, or on gort_goexit.
 * gort_recover, called while a deferred call run by a panic is on the
 * stack, stops the panic (the frame that deferred that call returns
 * normally) and returns its message; otherwise it returns NULL. An
 * unrecovered panic prints "panic: <msg>", the goroutine and a traceback,
 * and exits with status 2. */
GORT_API void   gort_call(gort_fn fn, void *arg);      /* run fn as a frame owning its defers */
GORT_API void   gort_defer(gort_fn fn, void *arg);     /* defer fn(arg) */
GORT_API _Noreturn void gort_panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));             /* panic(fmt.Sprintf(...)) */
GORT_API const char *gort_recover(void);              /* recover() */

/* ---- garbage-collected heap -----------------------------------------------------
 * Objects are zeroed and live until the collector finds them unreachable
 * (runtime/mgc.go's contract, see docs/GC.md). Roots, scanned
 * conservatively: the stacks and registers of goroutines and of registered
 * threads (a thread that allocates a GC object is registered for you), the
 * data and bss of the program and its shared libraries, and explicit roots.
 * Memory from malloc (libc's or gort's manual heap) is NOT scanned: a GC
 * pointer kept only there does not keep its object alive. gort_gc_alloc's
 * objects are scanned conservatively, _noscan's never, _typed's by a
 * pointer mask. Interior pointers keep an object alive.
 * gort_gc_free of a pointer that is not a live GC object is a fatal error. */
GORT_API GORT_MALLOC_ATTR void *gort_gc_alloc(size_t n);          /* new(T) */
GORT_API GORT_MALLOC_ATTR void *gort_gc_alloc_noscan(size_t n);   /* holds no pointers */
GORT_API void  *gort_gc_realloc(void *p, size_t n);
GORT_API void   gort_gc_free(void *p);                 /* optional early free */
GORT_API size_t gort_gc_size(const void *p);           /* usable size of a GC object */

/* Precise scanning for language implementers: an object of n bytes is an
 * array of elements of t->size bytes (a multiple of the word size); bit i
 * of ptrmask (least significant bit first in each byte) says whether word i
 * of an element may hold a pointer. Only those words are scanned. The type
 * must outlive every object allocated with it. */
typedef struct gort_gc_type {
    size_t size;
    const unsigned char *ptrmask;
} gort_gc_type;
GORT_API GORT_MALLOC_ATTR void *gort_gc_alloc_typed(size_t n, const gort_gc_type *t);

GORT_API void    gort_gc_collect(void);                /* runtime.GC: a full cycle, swept */
GORT_API int     gort_gc_set_percent(int pct);         /* debug.SetGCPercent (< 0: off); returns previous */
GORT_API int64_t gort_gc_set_memory_limit(int64_t bytes); /* debug.SetMemoryLimit (< 0: query); returns previous */
/* runtime.SetFinalizer: fn(obj, arg) runs once, on the finalizer goroutine
 * (or thread, outside gort_main), after a cycle finds obj unreachable; obj
 * stays valid until then. fn NULL removes it. obj must be the start of a GC
 * object. What obj points to stays alive while obj waits; a cycle through
 * finalizable objects is never collected (as in Go). */
GORT_API void    gort_gc_set_finalizer(void *obj, void (*fn)(void *obj, void *arg), void *arg);
GORT_API void    gort_gc_add_roots(void *lo, void *hi);    /* scan [lo, hi) too */
GORT_API void    gort_gc_remove_roots(void *lo, void *hi); /* forget ranges inside [lo, hi) */
/* A thread that holds GC pointers but never allocates GC objects (its stack
 * is then scanned). Threads that allocate are registered automatically;
 * gort's threads always are. A registered thread must not block the GC
 * signal (SIGPWR, or GORT_DEBUG=gcsignal=N). */
GORT_API void    gort_gc_register_thread(void);
GORT_API void    gort_gc_unregister_thread(void);

/* ---- manual heap: the same allocator without GC ---------------------------
 * Thread-safe, usable from any thread with no initialisation. Memory is
 * aligned to 16 bytes (8 for requests of at most 8 bytes). Out of memory or an
 * overflowing size: NULL with errno = ENOMEM. Freeing a pointer the allocator
 * never returned, or (when it can tell cheaply) freeing twice, is a fatal
 * error ("fatal error: free of invalid pointer 0x...", exit status 2). */
GORT_API GORT_MALLOC_ATTR void *gort_malloc(size_t n);
GORT_API void   gort_free(void *p);
GORT_API GORT_MALLOC_ATTR void *gort_calloc(size_t count, size_t size);
GORT_API void  *gort_realloc(void *p, size_t n);
GORT_API void  *gort_reallocarray(void *p, size_t count, size_t size);
GORT_API GORT_MALLOC_ATTR void *gort_aligned_alloc(size_t align, size_t n);
GORT_API int    gort_posix_memalign(void **out, size_t align, size_t n);
GORT_API size_t gort_malloc_usable_size(const void *p);

/* debug.FreeOSMemory: collect garbage, then return every free page to the
 * operating system now. */
GORT_API void   gort_free_os_memory(void);

/* ---- statistics: runtime.MemStats, field names in snake_case -------------- */
#define GORT_NUM_SIZE_CLASSES 67   /* including class 0 (large objects) */

typedef struct gort_size_class_stats {
    uint32_t size;        /* object size of the class in bytes */
    uint64_t mallocs;     /* cumulative objects allocated */
    uint64_t frees;       /* cumulative objects freed */
} gort_size_class_stats;

typedef struct gort_memstats {
    /* general */
    uint64_t alloc;          /* bytes of allocated heap objects (= heap_alloc) */
    uint64_t total_alloc;    /* cumulative bytes allocated */
    uint64_t sys;            /* bytes obtained from the OS (heap + metadata) */
    uint64_t lookups;        /* always 0, as in Go */
    uint64_t mallocs;        /* cumulative objects allocated */
    uint64_t frees;          /* cumulative objects freed */
    /* heap */
    uint64_t heap_alloc;     /* bytes of allocated objects */
    uint64_t heap_sys;       /* bytes of heap address space committed for the heap */
    uint64_t heap_idle;      /* bytes in free spans (committed or released) */
    uint64_t heap_inuse;     /* bytes in in-use spans */
    uint64_t heap_released;  /* bytes of free spans returned to the OS */
    uint64_t heap_objects;   /* live objects */
    /* off-heap metadata */
    uint64_t mspan_inuse, mspan_sys;
    uint64_t mcache_inuse, mcache_sys;
    uint64_t other_sys;      /* page map and other runtime metadata */
    /* garbage collector */
    uint64_t next_gc;
    uint64_t last_gc;
    uint64_t pause_total_ns;
    uint64_t pause_ns[256];
    uint64_t pause_end[256];
    uint32_t num_gc;
    uint32_t num_forced_gc;
    double   gc_cpu_fraction;
    /* per size class; by_size[0] is large objects (size 0) */
    gort_size_class_stats by_size[GORT_NUM_SIZE_CLASSES];
} gort_memstats;

/* runtime.ReadMemStats */
GORT_API void gort_read_memstats(gort_memstats *m);
/* Print the statistics and the per-size-class table for humans. */
GORT_API void gort_print_memstats(const gort_memstats *m, void *file /* FILE* */);

#ifdef __cplusplus
}
#endif
#endif /* GORT_H */
