/* hook.c - transparent mode: libc's blocking calls park goroutines.
 * See netpoll.c for the poller itself.
 *
 * Go's promise is that a goroutine may simply call read on a socket. For
 * C code that was written against libc (a client library, a parser that
 * reads a socket) gort keeps it by defining the libc names themselves:
 * read, write, readv, writev, recv, send, recvfrom, sendto, recvmsg,
 * sendmsg, accept, accept4, connect, close, poll, select, sleep, usleep,
 * nanosleep and clock_nanosleep. The dynamic linker binds a program's calls to the first
 * definition in its search order, and libgort comes before libc (linked
 * statically, the definitions are the program's own), so these run
 * instead of libc's and reach libc's through dlsym(RTLD_NEXT). (libco and
 * libgo do the same.) libc's internal calls (stdio's reads, fclose's
 * close) use libc's private aliases and are not affected.
 *
 * What a call does (netpoll.c decides, per fd):
 *   - outside a goroutine (a plain thread, g0): exactly libc's call, unless
 *     the fd is one the runtime put in non-blocking mode while its user
 *     asked for blocking; then it blocks the thread as libc would (poll).
 *   - in a goroutine, on a socket, pipe or FIFO the program holds in
 *     blocking mode: the first call arms the fd (O_NONBLOCK, registered
 *     with the poller) and the goroutine parks until the fd is ready, as
 *     with gort_read. The user's view of O_NONBLOCK is kept apart:
 *     fcntl(F_GETFL) and F_SETFL, ioctl(FIONBIO) see and set that view
 *     (hence fcntl and ioctl are defined here too).
 *   - on an fd the program made non-blocking, or with MSG_DONTWAIT: the
 *     plain call, EAGAIN and all; nothing is armed (so a signal handler
 *     writing to a non-blocking self-pipe never allocates or locks).
 *   - on a regular file, on fds 0-2 (a terminal or pipe shared with the
 *     parent: O_NONBLOCK would leak into the processes sharing it, so Go
 *     leaves them blocking too) and in getaddrinfo/getnameinfo: the plain
 *     call bracketed by gort_entersyscall, so sysmon hands the P on.
 *   - poll and select in a goroutine: the fds are armed and the goroutine
 *     waits on all of them and a timer at once (netpoll.c:
 *     netpoll_pollfds).
 *   - sleep, usleep, nanosleep, clock_nanosleep: gort_sleep.
 * Semantics stay libc's: EINTR is never produced (nothing interrupts a
 * parked goroutine), a write on a blocking socket writes everything, a
 * socket whose peer is gone still raises SIGPIPE unless ignored (only the
 * gort_ calls suppress it), accept keeps the flags the caller asked for.
 * Fds born here (socket, socketpair, pipe, pipe2, accept, dup*, open*,
 * creat, eventfd, timerfd_create, signalfd, epoll_create1, inotify_init1)
 * forget any state the runtime held for an earlier fd with the same
 * number.
 *
 * GORT_DEBUG=nethook=0 turns transparent mode off: every name here then
 * forwards to libc untouched. So does a fork child (it has no scheduler).
 *
 * The runtime's own system calls go through the real_* functions below
 * (or raw syscall(2) in os_linux.c), never through the names defined here.
 *
 * Rejected: rewriting the program's PLT or GOT at start (fragile, misses
 * static calls); an LD_PRELOAD library of hooks (the program would need
 * two libraries and a launcher); hooking only socket() and accept() to
 * arm fds at birth (fds inherited or received over a socket would block
 * threads). Not interposed: epoll_wait, pselect, ppoll, open, waitpid
 * (blocking there blocks the thread, as without gort).
 */
#define _GNU_SOURCE
#include "sched/netpoll.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "gort.h"
#include "sched/proc.h"

/* Weak: in a fully static link libc.a's own definitions of some of these
 * names (getaddrinfo, accept4, usleep, the _chk functions) are strong and
 * must win, or the link fails; dynamic linking ignores weakness and binds
 * the program to these first. */
#define HOOK __attribute__((visibility("default"), weak))

/* ---- libc's own functions ------------------------------------------------- */

static void *next_symbol(const char *name);

/* the fallbacks of sleep and usleep: 0, or the seconds left when a signal
 * interrupted the wait */
static unsigned int raw_sleep_ns(int64_t ns)
{
    struct timespec t = {ns / 1000000000, (long)(ns % 1000000000)}, rem = {0, 0};
    if (syscall(SYS_nanosleep, &t, &rem) < 0)
        return (unsigned int)rem.tv_sec + (rem.tv_nsec > 0);
    return 0;
}

/* Each real_<name> calls libc's <name>, found with dlsym(RTLD_NEXT) on
 * first use (dlsym is thread-safe; two threads may both look it up). If
 * there is no next definition (a fully static program), the system call
 * itself is made. */
#define REAL(ret, name, params, args, rawcall)                                 \
    typedef ret (*name##_fn) params;                                           \
    static ret raw_##name params { return (ret)(rawcall); }                   \
    static _Atomic(name##_fn) p_##name;                                        \
    ret real_##name params                                                     \
    {                                                                          \
        name##_fn fn = atomic_load_explicit(&p_##name, memory_order_relaxed);  \
        if (unlikely(!fn)) {                                                   \
            fn = (name##_fn)next_symbol(#name);                                \
            if (!fn)                                                           \
                fn = raw_##name;                                               \
            atomic_store_explicit(&p_##name, fn, memory_order_relaxed);        \
        }                                                                      \
        return fn args;                                                        \
    }

REAL(ssize_t, read, (int fd, void *b, size_t n), (fd, b, n), syscall(SYS_read, fd, b, n))
REAL(ssize_t, write, (int fd, const void *b, size_t n), (fd, b, n), syscall(SYS_write, fd, b, n))
REAL(ssize_t, readv, (int fd, const struct iovec *v, int c), (fd, v, c), syscall(SYS_readv, fd, v, c))
REAL(ssize_t, writev, (int fd, const struct iovec *v, int c), (fd, v, c), syscall(SYS_writev, fd, v, c))
REAL(ssize_t, recvfrom, (int fd, void *b, size_t n, int fl, struct sockaddr *a, socklen_t *al),
     (fd, b, n, fl, a, al), syscall(SYS_recvfrom, fd, b, n, fl, a, al))
REAL(ssize_t, sendto, (int fd, const void *b, size_t n, int fl, const struct sockaddr *a, socklen_t al),
     (fd, b, n, fl, a, al), syscall(SYS_sendto, fd, b, n, fl, a, al))
REAL(ssize_t, sendmsg, (int fd, const struct msghdr *m, int fl), (fd, m, fl), syscall(SYS_sendmsg, fd, m, fl))
REAL(ssize_t, recvmsg, (int fd, struct msghdr *m, int fl), (fd, m, fl), syscall(SYS_recvmsg, fd, m, fl))
REAL(int, select, (int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t), (n, r, w, e, t),
     syscall(SYS_pselect6, n, r, w, e,
             t ? &(struct timespec){t->tv_sec, t->tv_usec * 1000} : NULL, NULL))
REAL(int, accept4, (int fd, struct sockaddr *a, socklen_t *al, int fl), (fd, a, al, fl),
     syscall(SYS_accept4, fd, a, al, fl))
REAL(int, connect, (int fd, const struct sockaddr *a, socklen_t al), (fd, a, al),
     syscall(SYS_connect, fd, a, al))
REAL(int, close, (int fd), (fd), syscall(SYS_close, fd))
REAL(int, poll, (struct pollfd *fds, nfds_t n, int ms), (fds, n, ms),
     syscall(SYS_ppoll, fds, n,
             ms < 0 ? NULL : &(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL, 8))
REAL(int, nanosleep, (const struct timespec *t, struct timespec *rem), (t, rem),
     syscall(SYS_nanosleep, t, rem))
REAL(int, clock_nanosleep, (clockid_t c, int fl, const struct timespec *t, struct timespec *rem),
     (c, fl, t, rem), syscall(SYS_clock_nanosleep, c, fl, t, rem) ? errno : 0)
REAL(unsigned int, sleep, (unsigned int s), (s), raw_sleep_ns((int64_t)s * 1000000000))
REAL(int, usleep, (useconds_t us), (us), raw_sleep_ns((int64_t)us * 1000) ? -1 : 0)
REAL(int, dup, (int fd), (fd), syscall(SYS_dup, fd))
REAL(int, dup3, (int fd, int nfd, int fl), (fd, nfd, fl), syscall(SYS_dup3, fd, nfd, fl))
REAL(int, socket, (int d, int t, int p), (d, t, p), syscall(SYS_socket, d, t, p))
REAL(int, setsockopt, (int fd, int lv, int nm, const void *v, socklen_t l), (fd, lv, nm, v, l),
     syscall(SYS_setsockopt, fd, lv, nm, v, l))
REAL(int, socketpair, (int d, int t, int p, int *sv), (d, t, p, sv), syscall(SYS_socketpair, d, t, p, sv))
REAL(int, pipe2, (int *fds, int fl), (fds, fl), syscall(SYS_pipe2, fds, fl))
REAL(int, openat, (int dir, const char *path, int fl, mode_t m), (dir, path, fl, m),
     syscall(SYS_openat, dir, path, fl, m))
REAL(int, eventfd, (unsigned int v, int fl), (v, fl), syscall(SYS_eventfd2, v, fl))
REAL(int, timerfd_create, (int c, int fl), (c, fl), syscall(SYS_timerfd_create, c, fl))
REAL(int, signalfd, (int fd, const sigset_t *m, int fl), (fd, m, fl),
     syscall(SYS_signalfd4, fd, m, 8, fl))
REAL(int, epoll_create1, (int fl), (fl), syscall(SYS_epoll_create1, fl))
REAL(int, inotify_init1, (int fl), (fl), syscall(SYS_inotify_init1, fl))
REAL(int, getaddrinfo, (const char *h, const char *s, const struct addrinfo *hi, struct addrinfo **r),
     (h, s, hi, r), ((void)h, (void)s, (void)hi, (void)r, EAI_SYSTEM))
REAL(int, getnameinfo, (const struct sockaddr *a, socklen_t al, char *h, socklen_t hl, char *s,
                        socklen_t sl, int fl),
     (a, al, h, hl, s, sl, fl),
     ((void)a, (void)al, (void)h, (void)hl, (void)s, (void)sl, (void)fl, EAI_SYSTEM))

/* fcntl and ioctl are variadic: called through variadic pointers, with
 * the one argument every command takes passed as a pointer, as libc reads
 * it. */
typedef int (*fcntl_fn)(int, int, ...);
typedef int (*ioctl_fn)(int, unsigned long, ...);
static _Atomic(fcntl_fn) p_fcntl;
static _Atomic(ioctl_fn) p_ioctl;

static void *next_symbol(const char *name)
{
    int saved = errno;
    void *f = dlsym(RTLD_NEXT, name);
    errno = saved;
    return f;
}

int real_fcntl(int fd, int cmd, void *arg)
{
    fcntl_fn f = atomic_load_explicit(&p_fcntl, memory_order_relaxed);
    if (unlikely(!f)) {
        if (!(f = (fcntl_fn)next_symbol("fcntl")))
            return (int)syscall(SYS_fcntl, fd, cmd, arg);
        atomic_store_explicit(&p_fcntl, f, memory_order_relaxed);
    }
    return f(fd, cmd, arg);
}

int real_ioctl(int fd, unsigned long req, void *arg)
{
    ioctl_fn f = atomic_load_explicit(&p_ioctl, memory_order_relaxed);
    if (unlikely(!f)) {
        if (!(f = (ioctl_fn)next_symbol("ioctl")))
            return (int)syscall(SYS_ioctl, fd, req, arg);
        atomic_store_explicit(&p_ioctl, f, memory_order_relaxed);
    }
    return f(fd, req, arg);
}

/* dup2 has no system call on arm64; dup3 refuses equal fds, dup2 does not */
static int real_dup2(int fd, int nfd)
{
    if (fd == nfd)
        return real_fcntl(fd, F_GETFD, NULL) < 0 ? -1 : nfd;
    return real_dup3(fd, nfd, 0);
}

/* ---- the switch ----------------------------------------------------------------- */

static _Atomic int hook_mode = -1;   /* -1 unread, 0 off, 1 on (GORT_DEBUG=nethook) */

/* A fork child has a copy of the runtime's state but no scheduler (only
 * the forking thread survives): there the names are libc's, whatever the
 * thread was doing in the parent. Fds the runtime made non-blocking stay
 * so in the child (the flag is on the file, shared with the parent). */
static void hook_atfork_child(void)
{
    atomic_store_explicit(&hook_mode, 0, memory_order_relaxed);
}

__attribute__((constructor)) static void hook_init(void)
{
    pthread_atfork(NULL, NULL, hook_atfork_child);
}

/* Whether the calls here do anything but forward: transparent mode is on
 * and there is a runtime whose state may matter. */
static inline bool hooked(void)
{
    int m = atomic_load_explicit(&hook_mode, memory_order_relaxed);
    if (unlikely(m < 0)) {
        m = debug_int("nethook", 1) != 0;
        atomic_store_explicit(&hook_mode, m, memory_order_relaxed);
    }
    return m;
}

/* A goroutine runs this call (and transparent mode is on), not inside a
 * gort_entersyscall bracket: there the caller asked to block the thread. */
static inline bool in_goroutine(void)
{
    return hooked() && netpoll_hook_g() != NULL;
}

/* A call made while this goroutine is already inside one of these (a
 * signal handler that interrupted it: write(2) is async-signal-safe) goes
 * straight to libc: the interrupted call may hold the fd's lock, and the
 * handler must not allocate or park. True when the call may go on. */
static inline bool hook_enter(G **gpp)
{
    G *gp = getg();
    *gpp = gp;
    if (!gp)
        return true;
    if (atomic_load_explicit(&gp->inhook, memory_order_relaxed))
        return false;
    atomic_store_explicit(&gp->inhook, true, memory_order_relaxed);
    return true;
}

static inline void hook_exit(G *gp)
{
    if (gp)
        atomic_store_explicit(&gp->inhook, false, memory_order_relaxed);
}

/* ---- I/O ------------------------------------------------------------------------- */

static ssize_t io(ioreq r)
{
    r.hook = true;   /* libc's semantics (SIGPIPE, accept's flags) */
    G *gp;
    if (!hooked() || !hook_enter(&gp))
        return netpoll_sys(&r);
    ssize_t n = netpoll_io(&r);
    hook_exit(gp);
    return n;
}

HOOK ssize_t read(int fd, void *buf, size_t n)
{
    return io((ioreq){.op = OP_READ, .fd = fd, .buf = buf, .n = n});
}

HOOK ssize_t write(int fd, const void *buf, size_t n)
{
    return io((ioreq){.op = OP_WRITE, .fd = fd, .cbuf = buf, .n = n});
}

HOOK ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    return io((ioreq){.op = OP_READV, .fd = fd, .iov = iov, .iovcnt = iovcnt});
}

HOOK ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    return io((ioreq){.op = OP_WRITEV, .fd = fd, .iov = iov, .iovcnt = iovcnt});
}

HOOK ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return io((ioreq){.op = OP_RECV, .fd = fd, .buf = buf, .n = n, .flags = flags});
}

HOOK ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    return io((ioreq){.op = OP_SEND, .fd = fd, .cbuf = buf, .n = n, .flags = flags});
}

HOOK ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                      socklen_t *addrlen)
{
    return io((ioreq){.op = OP_RECVFROM, .fd = fd, .buf = buf, .n = n, .flags = flags,
                      .addr = addr, .addrlen = addrlen});
}

HOOK ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
                    socklen_t addrlen)
{
    return io((ioreq){.op = OP_SENDTO, .fd = fd, .cbuf = buf, .n = n, .flags = flags,
                      .caddr = addr, .caddrlen = addrlen});
}

HOOK ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    return io((ioreq){.op = OP_RECVMSG, .fd = fd, .msg = msg, .flags = flags});
}

HOOK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return io((ioreq){.op = OP_SENDMSG, .fd = fd, .msg = (struct msghdr *)msg, .flags = flags});
}

HOOK int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
    int nfd = (int)io((ioreq){.op = OP_ACCEPT, .fd = fd, .addr = addr, .addrlen = addrlen,
                              .flags = flags});
    if (nfd >= 0 && hooked())
        netpoll_fresh(nfd);
    return nfd;
}

HOOK int accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    return accept4(fd, addr, addrlen, 0);
}

HOOK int connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    G *gp;
    if (!hooked() || !hook_enter(&gp))
        return real_connect(fd, addr, addrlen);
    int r = netpoll_connect(fd, addr, addrlen, true);
    hook_exit(gp);
    return r;
}

HOOK int close(int fd)
{
    G *gp;
    if (!hooked() || !hook_enter(&gp))
        return real_close(fd);
    int r = netpoll_close(fd, true);
    hook_exit(gp);
    return r;
}

HOOK int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    G *gp;
    if (!in_goroutine() || timeout == 0 || !hook_enter(&gp))
        return real_poll(fds, nfds, timeout);
    int r = netpoll_pollfds(fds, nfds, timeout);
    hook_exit(gp);
    return r;
}

HOOK int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    int r = real_setsockopt(fd, level, name, val, len);
    if (r == 0 && hooked() && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO) &&
        val && len >= (socklen_t)sizeof(struct timeval))
        netpoll_sockopt(fd, name, val);
    return r;
}

/* _FORTIFY_SOURCE turns read, recv, recvfrom and poll with a buffer of
 * known size into these checking entries, and glibc's own versions call
 * its internals, bypassing the names above. Same check, then the hook.
 * (The names are glibc's, hence the leading underscores.) */
extern void __chk_fail(void) __attribute__((noreturn));

HOOK ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    return read(fd, buf, n);
}

HOOK ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen)
        __chk_fail();
    return recv(fd, buf, n, flags);
}

HOOK ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                            struct sockaddr *addr, socklen_t *addrlen)
{
    if (n > buflen)
        __chk_fail();
    return recvfrom(fd, buf, n, flags, addr, addrlen);
}

HOOK int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen)
{
    if (fdslen / sizeof *fds < nfds)
        __chk_fail();
    return poll(fds, nfds, timeout);
}

static int select_parked(int nfds, fd_set *rfds, fd_set *wfds, fd_set *efds,
                         struct timeval *timeout);

/* select in a goroutine: the same wait as poll's, on the fds of the three
 * sets. As Linux's, it leaves the time not slept in *timeout. */
HOOK int select(int nfds, fd_set *rfds, fd_set *wfds, fd_set *efds, struct timeval *timeout)
{
    bool zero = timeout && timeout->tv_sec == 0 && timeout->tv_usec == 0;
    G *gp;
    if (!in_goroutine() || zero || nfds < 0 || !hook_enter(&gp))
        return real_select(nfds, rfds, wfds, efds, timeout);
    if (nfds > FD_SETSIZE) {
        /* beyond what an fd_set holds (libc allows larger hand-made
         * sets): select(2) itself, as a system call */
        int r = NETPOLL_SYSCALL(int, real_select(nfds, rfds, wfds, efds, timeout));
        hook_exit(gp);
        return r;
    }
    int r = select_parked(nfds, rfds, wfds, efds, timeout);
    hook_exit(gp);
    return r;
}

static int select_parked(int nfds, fd_set *rfds, fd_set *wfds, fd_set *efds, struct timeval *timeout)
{
    if (timeout && (timeout->tv_sec < 0 || timeout->tv_usec < 0 || timeout->tv_usec >= 1000000)) {
        errno = EINVAL;
        return -1;
    }
    struct pollfd *fds = malloc((size_t)(nfds ? nfds : 1) * sizeof *fds);
    if (!fds) {
        errno = ENOMEM;
        return -1;
    }
    nfds_t n = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = 0;
        if (rfds && FD_ISSET(fd, rfds))
            ev |= POLLIN;
        if (wfds && FD_ISSET(fd, wfds))
            ev |= POLLOUT;
        if (efds && FD_ISSET(fd, efds))
            ev |= POLLPRI;
        if (ev)
            fds[n++] = (struct pollfd){fd, ev, 0};
    }
    int ms = -1;
    int64_t t0 = gort_nanotime();
    if (timeout) {
        int64_t us = (int64_t)timeout->tv_sec * 1000000 + timeout->tv_usec;
        ms = us / 1000 > INT32_MAX ? INT32_MAX : (int)((us + 999) / 1000);
    }
    int r = netpoll_pollfds(fds, n, ms);
    if (r >= 0) {
        r = 0;
        for (nfds_t i = 0; i < n; i++) {
            short re = fds[i].revents;
            if (re & POLLNVAL) {
                r = -1;
                break;
            }
            int fd = fds[i].fd;
            bool in = (fds[i].events & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR));
            bool out = (fds[i].events & POLLOUT) && (re & (POLLOUT | POLLERR));
            bool pri = (fds[i].events & POLLPRI) && (re & POLLPRI);
            if (rfds)
                in ? FD_SET(fd, rfds) : FD_CLR(fd, rfds);
            if (wfds)
                out ? FD_SET(fd, wfds) : FD_CLR(fd, wfds);
            if (efds)
                pri ? FD_SET(fd, efds) : FD_CLR(fd, efds);
            r += in + out + pri;
        }
        if (r < 0)
            sched_errno_set(EBADF);
    }
    if (r >= 0 && timeout) {
        int64_t left = (int64_t)timeout->tv_sec * 1000000 + timeout->tv_usec -
                       (gort_nanotime() - t0) / 1000;
        if (left < 0 || r == 0)
            left = 0;
        timeout->tv_sec = left / 1000000;
        timeout->tv_usec = left % 1000000;
    }
    free(fds);
    return r;
}

/* vfork is fork here. A vfork child runs on its parent's thread, sharing
 * its memory and thread-locals until it execs, so every name above would
 * act on the parent's runtime state from the child (arm the parent's fds,
 * park the parent's goroutine and run its scheduler); POSIX lets vfork be
 * fork, and fork's child turns transparent mode off (hook_atfork_child).
 * The price is fork's page-table copy. posix_spawn does not come here
 * (glibc's uses libc's internal calls only). */
HOOK pid_t vfork(void)
{
    return fork();
}

/* ---- fds born here forget the runtime's state for their numbers ------------------ */

HOOK int socket(int domain, int type, int protocol)
{
    int fd = real_socket(domain, type, protocol);
    if (fd >= 0 && hooked())
        netpoll_fresh(fd);
    return fd;
}

HOOK int socketpair(int domain, int type, int protocol, int sv[2])
{
    int r = real_socketpair(domain, type, protocol, sv);
    if (r == 0 && hooked()) {
        netpoll_fresh(sv[0]);
        netpoll_fresh(sv[1]);
    }
    return r;
}

HOOK int pipe2(int fds[2], int flags)
{
    int r = real_pipe2(fds, flags);
    if (r == 0 && hooked()) {
        netpoll_fresh(fds[0]);
        netpoll_fresh(fds[1]);
    }
    return r;
}

HOOK int pipe(int fds[2])
{
    return pipe2(fds, 0);
}

/* Files and the other fd-making calls: nothing to arm, but the number may
 * be one whose earlier fd was closed where the runtime could not see it
 * (fclose of an fdopen'ed socket): its state goes. (The _2 forms are
 * _FORTIFY_SOURCE's.) */
static int fresh(int fd)
{
    if (fd >= 0 && hooked())
        netpoll_fresh(fd);
    return fd;
}

static mode_t open_mode(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

HOOK int openat(int dir, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = open_mode(flags, ap);
    va_end(ap);
    return fresh(real_openat(dir, path, flags, m));
}

HOOK int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = open_mode(flags, ap);
    va_end(ap);
    return fresh(real_openat(AT_FDCWD, path, flags, m));
}

HOOK int __open_2(const char *path, int flags)
{
    return fresh(real_openat(AT_FDCWD, path, flags, 0));
}

/* The 64 forms are the same calls on the 64-bit systems gort runs on
 * (the kernel opens every file with O_LARGEFILE there). */
HOOK int open64(const char *path, int flags, ...) __attribute__((alias("open")));
HOOK int openat64(int dir, const char *path, int flags, ...) __attribute__((alias("openat")));
HOOK int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

HOOK int creat(const char *path, mode_t m)
{
    return fresh(real_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, m));
}

HOOK int eventfd(unsigned int initval, int flags)
{
    return fresh(real_eventfd(initval, flags));
}

HOOK int timerfd_create(int clockid, int flags)
{
    return fresh(real_timerfd_create(clockid, flags));
}

HOOK int signalfd(int fd, const sigset_t *mask, int flags)
{
    return fresh(real_signalfd(fd, mask, flags));
}

HOOK int epoll_create1(int flags)
{
    return fresh(real_epoll_create1(flags));
}

HOOK int inotify_init1(int flags)
{
    return fresh(real_inotify_init1(flags));
}

HOOK int dup(int fd)
{
    int nfd = real_dup(fd);
    if (nfd >= 0 && hooked())
        netpoll_dup(fd, nfd);
    return nfd;
}

/* dup2/dup3 close nfd first when it is open: through the runtime if it
 * knows the fd, so its waiters are woken (the two steps are then not one
 * atomic step, unlike dup2's). */
static int dup_onto(int fd, int nfd, int flags, bool is_dup3)
{
    if (!hooked() || fd == nfd)
        return is_dup3 ? real_dup3(fd, nfd, flags) : real_dup2(fd, nfd);
    netpoll_close(nfd, false);   /* only if the runtime knows it */
    int r = is_dup3 ? real_dup3(fd, nfd, flags) : real_dup2(fd, nfd);
    if (r >= 0)
        netpoll_dup(fd, r);
    return r;
}

HOOK int dup2(int fd, int nfd)
{
    return dup_onto(fd, nfd, 0, false);
}

HOOK int dup3(int fd, int nfd, int flags)
{
    return dup_onto(fd, nfd, flags, true);
}

/* ---- the user's view of O_NONBLOCK ----------------------------------------------- */

static int fcntl_hooked(int fd, int cmd, void *arg)
{
    if (!hooked())
        return real_fcntl(fd, cmd, arg);
    switch (cmd) {
    case F_GETFL: {
        int fl = real_fcntl(fd, cmd, arg);
        return fl < 0 ? fl : netpoll_getfl(fd, fl);
    }
    case F_SETFL:
        return netpoll_setfl(fd, (int)(intptr_t)arg);
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int nfd = real_fcntl(fd, cmd, arg);
        if (nfd >= 0)
            netpoll_dup(fd, nfd);
        return nfd;
    }
    }
    return real_fcntl(fd, cmd, arg);
}

HOOK int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);   /* as libc does: int and pointer alike */
    va_end(ap);
    return fcntl_hooked(fd, cmd, arg);
}

HOOK int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

HOOK int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (hooked() && req == FIONBIO && arg && netpoll_setnb(fd, *(int *)arg != 0))
        return 0;
    return real_ioctl(fd, req, arg);
}

/* ---- sleeping ---------------------------------------------------------------------- */

static bool bad_timespec(const struct timespec *t)
{
    return t->tv_sec < 0 || t->tv_nsec < 0 || t->tv_nsec >= 1000000000;
}

static void sleep_ns(int64_t sec, int64_t nsec)
{
    int64_t ns = sec > INT64_MAX / 1000000000 - 1 ? INT64_MAX : sec * 1000000000 + nsec;
    gort_sleep(ns);
}

HOOK int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (!in_goroutine())
        return real_nanosleep(req, rem);
    if (bad_timespec(req)) {
        errno = EINVAL;
        return -1;
    }
    sleep_ns(req->tv_sec, req->tv_nsec);
    return 0;
}

HOOK int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                         struct timespec *rem)
{
    if (!in_goroutine() || (clk != CLOCK_MONOTONIC && clk != CLOCK_REALTIME &&
                            clk != CLOCK_BOOTTIME))
        return real_clock_nanosleep(clk, flags, req, rem);
    if (bad_timespec(req))
        return EINVAL;
    int64_t sec = req->tv_sec, nsec = req->tv_nsec;
    if (flags & TIMER_ABSTIME) {
        struct timespec now;
        clock_gettime(clk, &now);
        sec -= now.tv_sec;
        nsec -= now.tv_nsec;
        if (nsec < 0) {
            nsec += 1000000000;
            sec--;
        }
        if (sec < 0)
            return 0;
    }
    sleep_ns(sec, nsec);
    return 0;
}

HOOK int usleep(useconds_t us)
{
    if (!in_goroutine())
        return real_usleep(us);
    sleep_ns(0, (int64_t)us * 1000);
    return 0;
}

HOOK unsigned int sleep(unsigned int s)
{
    if (!in_goroutine())
        return real_sleep(s);
    sleep_ns(s, 0);
    return 0;
}

/* ---- name lookups: blocking, but not on an fd ------------------------------------ */

HOOK int getaddrinfo(const char *host, const char *serv, const struct addrinfo *hints,
                     struct addrinfo **res)
{
    if (!in_goroutine())
        return real_getaddrinfo(host, serv, hints, res);
    return NETPOLL_SYSCALL(int, real_getaddrinfo(host, serv, hints, res));
}

HOOK int getnameinfo(const struct sockaddr *addr, socklen_t addrlen, char *host,
                     socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
    if (!in_goroutine())
        return real_getnameinfo(addr, addrlen, host, hostlen, serv, servlen, flags);
    return NETPOLL_SYSCALL(int, real_getnameinfo(addr, addrlen, host, hostlen, serv, servlen,
                                                 flags));
}
