/* netpoll.h - the network poller's two narrow interfaces.
 * See netpoll.c for the overview.
 *
 * Below: one file per OS mechanism (netpoll_epoll.c; kqueue would be
 * another) implements the netpoll_os_* calls. It knows nothing of
 * pollDescs or goroutines: it registers an fd with an opaque 64-bit token
 * and hands the token back, with the directions that became ready, to
 * netpoll_ready. The build picks the file (CMakeLists.txt), as for src/os/.
 *
 * Above: the scheduler (proc.c, sysmon.c) calls netpoll_poll, netpoll_break
 * and reads the counters; the public I/O calls live in netpoll.c itself,
 * and libc's names of them in hook.c (transparent mode), which also gives
 * the runtime libc's own functions (real_*).
 */
#ifndef GORT_SCHED_NETPOLL_H
#define GORT_SCHED_NETPOLL_H

#include "runtime.h"
#include "sched/proc.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/time.h>
#include <sys/uio.h>

/* A list of goroutines made ready by a poll, linked through G.schedlink.
 * They are still G_WAITING: whoever takes them makes them runnable
 * (proc.c: netpoll_inject). */
typedef struct glist {
    G *head;
    int32_t n;
} glist;

enum { NETPOLL_READ = 1, NETPOLL_WRITE = 2 };

/* ---- implemented by the OS file (netpoll_epoll.c) ------------------------ */

/* Create the poller and its wake-up channel. Called once (netpoll.c). */
void netpoll_os_init(void);
/* Register fd for edge-triggered read, write and hang-up readiness; events
 * come back carrying token. Returns 0 or an errno (EPERM: the fd cannot be
 * polled, e.g. a regular file). */
int  netpoll_os_open(int fd, uint64_t token);
/* Unregister fd (before it is closed). Returns 0 or an errno. */
int  netpoll_os_close(int fd);
/* Wait for events: delay < 0 blocks until one comes (or a break), 0 does
 * not block, > 0 waits at most delay ns. For each ready fd it calls
 * netpoll_ready(token, NETPOLL_READ and/or NETPOLL_WRITE, out). A blocking
 * wait is bracketed by gcthread_block/unblock. Returns true when the wait
 * was ended by netpoll_os_break. */
bool netpoll_os_poll(int64_t delay, glist *out);
/* Make a blocked (or the next) netpoll_os_poll return at once. Async-safe
 * and cheap when a break is already pending. */
void netpoll_os_break(void);

/* ---- implemented by netpoll.c --------------------------------------------- */

/* Called by the OS file for each event. */
void netpoll_ready(uint64_t token, int modes, glist *out);

/* Whether any fd was ever armed (the poller exists). */
bool netpoll_inited(void);
/* Goroutines parked in the poller (Go's netpollWaiters). Atomic. */
int32_t netpoll_waiters(void);
/* Poll (see netpoll_os_poll for delay) and return the goroutines made
 * ready, still WAITING. Safe on any M, with or without a P. */
glist netpoll_poll(int64_t delay);
/* Wake the M blocked in netpoll_poll, if any. */
void netpoll_break(void);

/* ---- transparent mode: called by hook.c -------------------------------------- */

enum { OP_READ, OP_WRITE, OP_READV, OP_WRITEV, OP_RECV, OP_SEND, OP_RECVFROM, OP_SENDTO, OP_ACCEPT,
       OP_RECVMSG, OP_SENDMSG };

/* One I/O call, described for netpoll_io. */
typedef struct ioreq {
    int op;
    int fd;
    void *buf;
    const void *cbuf;
    size_t n;
    const struct iovec *iov;
    int iovcnt;
    int flags;           /* MSG_* for recv/send; accept4's flags for OP_ACCEPT */
    struct sockaddr *addr;
    socklen_t *addrlen;
    const struct sockaddr *caddr;
    socklen_t caddrlen;
    struct msghdr *msg;  /* OP_RECVMSG, OP_SENDMSG */
    bool hook;           /* a libc name's call (hook.c): libc's semantics */
    bool sock;           /* the fd is a socket (set by netpoll_io) */
    bool stream;         /* a stream socket or a pipe (set by netpoll_io) */
} ioreq;

/* The goroutine a libc name's call may park: the caller's, unless it is
 * inside a gort_entersyscall bracket (or not a goroutine at all). */
static inline G *netpoll_hook_g(void)
{
    G *gp = getg();
    if (gp && atomic_load_explicit(&gp->status, memory_order_relaxed) != G_RUNNING)
        return NULL;
    return gp;
}
/* A blocking libc call made from a goroutine as a system call: bracketed
 * by gort_entersyscall/exitsyscall (sysmon hands the P on), its errno
 * kept across the bracket (the goroutine may come back on another
 * thread). The value is the call's. */
#define NETPOLL_SYSCALL(type, call)                                          \
    __extension__({                                                          \
        gort_entersyscall();                                                 \
        type r_ = (call);                                                    \
        int e_ = sched_errno_get();                                          \
        gort_exitsyscall();                                                  \
        sched_errno_set(e_);                                                 \
        r_;                                                                  \
    })

/* The call, parking or blocking as the fd and the caller require. */
ssize_t netpoll_io(ioreq *r);
/* The system call alone, once. */
ssize_t netpoll_sys(const ioreq *r);
int  netpoll_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, bool hook);
/* Close fd, waking its waiters. An fd the runtime does not know is closed
 * with close(2) if close_unknown, else left alone (0). */
int  netpoll_close(int fd, bool close_unknown);
/* fd was just made: forget what the runtime held for its number. */
void netpoll_fresh(int fd);
/* nfd was made from fd (dup): it shares fd's file and the user's view. */
void netpoll_dup(int fd, int nfd);
/* fcntl(F_GETFL)'s result as the user sees it; F_SETFL keeping the
 * runtime's O_NONBLOCK; FIONBIO (true: done). */
int  netpoll_getfl(int fd, int fl);
int  netpoll_setfl(int fd, int fl);
bool netpoll_setnb(int fd, bool nb);
/* setsockopt(SOL_SOCKET, SO_RCVTIMEO or SO_SNDTIMEO) succeeded on fd. */
void netpoll_sockopt(int fd, int name, const struct timeval *tv);
/* poll(2) in a goroutine, timeout != 0. */
int  netpoll_pollfds(struct pollfd *fds, nfds_t nfds, int timeout);

/* ---- libc's own calls, bypassing the names hook.c defines (hook.c) ------------ */

ssize_t real_read(int fd, void *b, size_t n);
ssize_t real_write(int fd, const void *b, size_t n);
ssize_t real_readv(int fd, const struct iovec *v, int c);
ssize_t real_writev(int fd, const struct iovec *v, int c);
ssize_t real_recvfrom(int fd, void *b, size_t n, int fl, struct sockaddr *a, socklen_t *al);
ssize_t real_sendto(int fd, const void *b, size_t n, int fl, const struct sockaddr *a, socklen_t al);
ssize_t real_sendmsg(int fd, const struct msghdr *m, int fl);
ssize_t real_recvmsg(int fd, struct msghdr *m, int fl);
int real_accept4(int fd, struct sockaddr *a, socklen_t *al, int fl);
int real_connect(int fd, const struct sockaddr *a, socklen_t al);
int real_close(int fd);
int real_poll(struct pollfd *f, nfds_t n, int ms);
int real_fcntl(int fd, int cmd, void *arg);
int real_ioctl(int fd, unsigned long req, void *arg);
int real_socket(int d, int t, int p);
int real_epoll_create1(int fl);
int real_eventfd(unsigned int v, int fl);
int real_setsockopt(int fd, int level, int name, const void *v, socklen_t l);

/* ---- implemented by proc.c ------------------------------------------------ */

/* Make the goroutines of l runnable: some on the global queue with an M
 * started for each idle P, the rest on pp's run queue (pp may be NULL). */
void netpoll_inject(glist *l, P *pp);

#endif
