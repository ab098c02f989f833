/* netpoll.c - the network poller: pollDescs and the goroutine I/O calls
 * (Go's netpoll.go and internal/poll's fd_unix.go, in C).
 *
 * A goroutine that reads a socket with nothing to read must not block its
 * thread: it parks, and the poller makes it runnable again when the kernel
 * says the socket became readable. The pieces:
 *
 *   - one pollDesc per fd number, made on the fd's first use through the
 *     API and never freed (a later fd with the same number reuses it, with
 *     a new sequence number). A two-level table maps fd -> pollDesc
 *     without a lock.
 *   - on first use the fd is put in non-blocking mode and registered with
 *     the OS poller once, edge-triggered for both directions (netpoll.h,
 *     netpoll_epoll.c). An fd the poller refuses (a regular file) is served
 *     by plain calls bracketed as system calls.
 *   - an operation (gort_read, ...) tries the system call first; only on
 *     EAGAIN does it park on the pollDesc. EINTR is retried, never returned.
 *   - the scheduler polls (proc.c): findrunnable without blocking once
 *     stealing found nothing (Go polls before stealing; see proc.c for
 *     why not here), an M with nothing to do blocks in the poller until
 *     the next timer, sysmon polls when nobody has for 10 ms.
 *
 * Each direction of a pollDesc has a word (rg for reads, wg for writes)
 * holding Go's states:
 *   PD_NIL    nobody waits, no readiness pending
 *   PD_READY  readiness arrived and nobody consumed it yet
 *   PD_WAIT   a goroutine is about to park
 *   G pointer the goroutine parked on it
 * Transitions (all by CAS or exchange):
 *   NIL -> WAIT        the goroutine that will wait (netpollblock)
 *   WAIT -> G          its park callback, on g0 once it is WAITING
 *   READY -> NIL       a goroutine consumes the readiness without parking
 *   NIL/WAIT/G -> READY  the poller reports readiness (G is then readied)
 *   WAIT/G -> NIL      close or an expired deadline (G is then readied)
 *   * -> NIL           the waiter, after it wakes (exchange)
 * If the park callback finds WAIT gone (readiness or an error came between
 * the decision to park and the park), it readies the goroutine at once, so
 * no wake-up is lost. Only one goroutine waits per direction: operations
 * of one direction on one fd are serialised by a gort_mutex (as Go's
 * fdMutex does), so two goroutines may accept on one listener.
 *
 * Close and reuse. pd->ref counts operations in flight (<< 1) and holds a
 * closing bit (bit 0). gort_close sets the bit (new operations fail with
 * EBADF), wakes both waiters with an error (they see the bit: EBADF), waits
 * for the operations in flight to leave, and only then unregisters and
 * closes the fd, under pd->lock, and clears the word. So the kernel never
 * reuses the fd number while an operation of the old fd may still issue a
 * system call on it. An fd that no operation has armed yet is closed the
 * same way (and gets its pollDesc then): an operation that entered just
 * before the bit may be arming it, and only the bit tells it to leave.
 * Events already taken from the kernel for the old fd
 * carry the old sequence number (low 16 bits of fdseq, in the token) and
 * are dropped; deadline timers carry their own sequence numbers. A late
 * wake-up that slips through is harmless anyway: a woken goroutine retries
 * its call and parks again on EAGAIN.
 *
 * Deadlines (Go's SetReadDeadline): an absolute gort_nanotime per
 * direction (0: none). A runtime timer (timer.c, on a P's heap) fires at
 * the deadline, on g0: it marks the direction expired (-1) and readies the
 * waiter, which returns ETIMEDOUT. A deadline in the past expires at once.
 * An expired direction fails every operation until the deadline is reset.
 *
 * A thread that is not a goroutine (no gort_main, or a plain pthread) gets
 * the plain behaviour: the call blocks the thread (with poll(2) if the fd
 * was put in non-blocking mode by the runtime), deadlines as poll timeouts.
 *
 * Rejected: an epoll_ctl per operation (one-shot registration) costs a
 * system call per wait; level-triggered polling wakes for every busy fd on
 * every poll; freeing pollDescs at close needs Go's reference-counted
 * lifetime for every pointer the poller may still hold, while a pollDesc
 * per fd number lives as long as the table and costs ~200 bytes per fd.
 *
 * Locks: pd->lock protects the deadline timers and sequence numbers and
 * the arming of the fd; it is taken before a P's timerslock and before
 * sched.lock (timer_add may wake an M), and never held across a park.
 *
 * Transparent mode (hook.c defines libc's names): the same operations,
 * asked for with ioreq.hook. hook_route picks, per call, libc's call as
 * is (a plain thread, an fd the program made non-blocking, MSG_DONTWAIT),
 * a bracketed one (stdio, which is shared with the parent and must stay
 * blocking) or the pollDesc; pd->user_nb keeps the program's view of
 * O_NONBLOCK apart from the runtime's. poll(2) in a goroutine hangs a
 * node on each fd's pollDesc and parks (netpoll_pollfds).
 *
 * Not here yet: a kqueue file behind netpoll.h (BSD, macOS); a pollDesc
 * for fds made by a fork child's runtime (the child shares the parent's
 * epoll instance: the scheduler does not run in a fork child anyway).
 * The gort_ calls write to a socket with MSG_NOSIGNAL; a pipe keeps
 * write(2)'s SIGPIPE, as do the libc names on sockets.
 */
#define _GNU_SOURCE
#include "sched/netpoll.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "gort.h"
#include "sched/proc.h"

enum { PD_NIL = 0, PD_READY = 1, PD_WAIT = 2 };

#define TOKEN_PTR_BITS 48
#define TOKEN_PTR_MASK (((uint64_t)1 << TOKEN_PTR_BITS) - 1)
#define TOKEN_SEQ(s) ((uint64_t)((s) & 0xffff) << TOKEN_PTR_BITS)

typedef struct pollDesc {
    rlock lock;                /* deadlines, sequence numbers, arming */
    int fd;                    /* the fd number this pollDesc serves; fixed */
    _Atomic uint32_t ref;      /* bit 0: closing; operations in flight << 1 */
    _Atomic uintptr_t rg, wg;  /* PD_* or a parked G (see the top) */
    _Atomic uintptr_t fdseq;   /* + 1 at each close; tags the poller's events */
    _Atomic bool armed;        /* set up for the fd's current life; release-stored under lock */
    bool pollable;             /* registered with the poller (else plain calls). Written under lock before armed */
    bool sock;                 /* a socket: writes go through send(MSG_NOSIGNAL). Likewise */
    bool stream;               /* a byte stream (not datagrams): whole reads may loop. Likewise */
    _Atomic bool user_nb;      /* the user's view: O_NONBLOCK (hook.c). Set when armed, then by fcntl/ioctl */
    _Atomic int64_t rcvtimeo, sndtimeo;  /* SO_RCVTIMEO/SO_SNDTIMEO in ns, 0 none (hook.c's calls). Set when armed, then by setsockopt */
    _Atomic int64_t rd, wd;    /* deadlines: 0 none, -1 expired, else a nanotime */
    timer rt, wt;              /* deadline timers. Protected by lock */
    uintptr_t rseq, wseq;      /* + 1 whenever a deadline changes: stale firings are ignored. Protected by lock */
    gort_mutex rmu, wmu;       /* one operation per direction at a time */
    rlock plock;               /* pollers; a leaf lock */
    struct pollnode *pollers;  /* goroutines in poll(2) on this fd (netpoll_pollfds). Protected by plock */
    _Atomic int32_t npollers;  /* their number, read without plock by the poller */
} pollDesc;

/* ---- the fd table: fd -> pollDesc, lock-free reads ------------------------- */

#define FDTAB_L2 4096
#define FDTAB_L1 4096   /* fds below 16M have a pollDesc; larger ones get plain calls */
static _Atomic(_Atomic(pollDesc *) *) fdtab[FDTAB_L1];

static pollDesc *pd_lookup(int fd, bool create)
{
    if (fd < 0 || (unsigned)fd / FDTAB_L2 >= FDTAB_L1)
        return NULL;
    _Atomic(_Atomic(pollDesc *) *) *slot1 = &fdtab[(unsigned)fd / FDTAB_L2];
    _Atomic(pollDesc *) *chunk = atomic_load_explicit(slot1, memory_order_acquire);
    if (!chunk) {
        if (!create)
            return NULL;
        _Atomic(pollDesc *) *nc = calloc(FDTAB_L2, sizeof *nc);
        if (!nc)
            return NULL;
        _Atomic(pollDesc *) *exp = NULL;
        if (atomic_compare_exchange_strong_explicit(slot1, &exp, nc, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            chunk = nc;
        } else {
            free(nc);
            chunk = exp;
        }
    }
    _Atomic(pollDesc *) *slot = &chunk[(unsigned)fd % FDTAB_L2];
    pollDesc *pd = atomic_load_explicit(slot, memory_order_acquire);
    if (!pd && create) {
        pollDesc *npd = calloc(1, sizeof *npd);
        if (!npd)
            return NULL;
        npd->fd = fd;
        npd->rt.idx = npd->wt.idx = -1;
        if ((uintptr_t)npd >> TOKEN_PTR_BITS)
            throw("netpoll: pollDesc above the 48-bit address space");
        pollDesc *exp = NULL;
        if (atomic_compare_exchange_strong_explicit(slot, &exp, npd, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            pd = npd;
        } else {
            free(npd);
            pd = exp;
        }
    }
    return pd;
}

/* ---- the poller's life ------------------------------------------------------ */

static _Atomic bool inited;
static rlock initlock;
static _Atomic int32_t waiters;   /* goroutines parked on a pollDesc (Go's netpollWaiters) */

static void netpoll_init_once(void)
{
    if (atomic_load_explicit(&inited, memory_order_acquire))
        return;
    lock(&initlock);
    if (!atomic_load_explicit(&inited, memory_order_relaxed)) {
        netpoll_os_init();
        atomic_store_explicit(&inited, true, memory_order_release);
    }
    unlock(&initlock);
}

bool netpoll_inited(void)
{
    return atomic_load_explicit(&inited, memory_order_acquire);
}

int32_t netpoll_waiters(void)
{
    return atomic_load(&waiters);
}

glist netpoll_poll(int64_t delay)
{
    glist l = {NULL, 0};
    if (netpoll_inited())
        netpoll_os_poll(delay, &l);
    return l;
}

void netpoll_break(void)
{
    if (netpoll_inited())
        netpoll_os_break();
}

/* ---- waiting and waking (Go's netpollblock / netpollunblock) --------------- */

static inline _Atomic uintptr_t *gpp_of(pollDesc *pd, int mode)
{
    return mode == NETPOLL_READ ? &pd->rg : &pd->wg;
}

/* Take the waiter of one direction out. ioready: readiness (leaves
 * PD_READY); else an error (close, deadline: leaves PD_NIL). Returns the
 * parked G to ready, or NULL. */
static G *netpollunblock(pollDesc *pd, int mode, bool ioready)
{
    _Atomic uintptr_t *gpp = gpp_of(pd, mode);
    for (;;) {
        uintptr_t old = atomic_load(gpp);
        if (old == PD_READY)
            return NULL;
        if (old == PD_NIL && !ioready)
            return NULL;   /* the next operation checks for errors before it waits */
        uintptr_t new = ioready ? PD_READY : PD_NIL;
        if (atomic_compare_exchange_strong(gpp, &old, new)) {
            if (old > PD_WAIT) {
                atomic_fetch_sub(&waiters, 1);
                return (G *)old;
            }
            return NULL;
        }
    }
}

static void glist_push(glist *l, G *gp)
{
    gp->schedlink = l->head;
    l->head = gp;
    l->n++;
}

static void pollers_wake(pollDesc *pd, glist *out);

void netpoll_ready(uint64_t token, int modes, glist *out)
{
    pollDesc *pd = (pollDesc *)(uintptr_t)(token & TOKEN_PTR_MASK);
    if (TOKEN_SEQ(atomic_load(&pd->fdseq)) != (token & ~TOKEN_PTR_MASK))
        return;   /* an event of an earlier fd with this number */
    G *gp;
    if ((modes & NETPOLL_READ) && (gp = netpollunblock(pd, NETPOLL_READ, true)))
        glist_push(out, gp);
    if ((modes & NETPOLL_WRITE) && (gp = netpollunblock(pd, NETPOLL_WRITE, true)))
        glist_push(out, gp);
    pollers_wake(pd, out);
}

/* 0, or the error an operation in this direction must return now. */
static int pd_check(pollDesc *pd, int mode)
{
    if (atomic_load(&pd->ref) & 1)
        return EBADF;
    if (atomic_load(mode == NETPOLL_READ ? &pd->rd : &pd->wd) < 0)
        return ETIMEDOUT;
    return 0;
}

/* Park callback, on g0 with gp WAITING: publish gp in the word. If the
 * word changed since PD_WAIT was set, the wake-up already happened:
 * ready gp now. */
static void netpollblockcommit(G *gp, void *arg)
{
    _Atomic uintptr_t *gpp = arg;
    atomic_fetch_add(&waiters, 1);   /* before publishing: the waker subtracts */
    uintptr_t w = PD_WAIT;
    if (atomic_compare_exchange_strong(gpp, &w, (uintptr_t)gp))
        return;
    atomic_fetch_sub(&waiters, 1);
    goready(gp);
}

/* Wait for readiness in one direction. True if the fd became ready, false
 * if the wait ended for an error (the caller checks pd_check). */
static bool netpollblock(pollDesc *pd, int mode)
{
    _Atomic uintptr_t *gpp = gpp_of(pd, mode);
    for (;;) {
        uintptr_t old = PD_READY;
        if (atomic_compare_exchange_strong(gpp, &old, PD_NIL))
            return true;
        if (old == PD_NIL) {
            if (atomic_compare_exchange_strong(gpp, &old, PD_WAIT))
                break;
            continue;
        }
        throw("netpoll: two goroutines wait on one fd in one direction");
    }
    /* the store of PD_WAIT comes before this check, and close/expiry set
     * their flag before they look at the word: one of us sees the other */
    if (pd_check(pd, mode) == 0)
        gopark(netpollblockcommit, gpp);
    uintptr_t old = atomic_exchange(gpp, PD_NIL);
    if (old > PD_WAIT)
        throw("netpoll: corrupted pollDesc");
    return old == PD_READY;
}

/* Go's poll_runtime_pollWait: 0 when the caller should retry its call. */
static int pd_wait(pollDesc *pd, int mode)
{
    int e = pd_check(pd, mode);
    if (e)
        return e;
    while (!netpollblock(pd, mode)) {
        if ((e = pd_check(pd, mode)))
            return e;
        /* a stale or spurious wake-up: wait again */
    }
    return 0;
}

/* ---- deadlines --------------------------------------------------------------- */

static void deadline_fire(pollDesc *pd, uintptr_t seq, int mode)
{
    lock(&pd->lock);
    if (seq != (mode == NETPOLL_READ ? pd->rseq : pd->wseq)) {
        unlock(&pd->lock);
        return;   /* the deadline changed or the fd was closed meanwhile */
    }
    atomic_store(mode == NETPOLL_READ ? &pd->rd : &pd->wd, -1);
    G *gp = netpollunblock(pd, mode, false);
    unlock(&pd->lock);
    if (gp)
        goready(gp);
}

static void deadline_read(void *arg, uintptr_t seq)
{
    deadline_fire(arg, seq, NETPOLL_READ);
}

static void deadline_write(void *arg, uintptr_t seq)
{
    deadline_fire(arg, seq, NETPOLL_WRITE);
}

/* A P to queue a timer on: ours, or (outside a goroutine) the first. */
static P *timer_p(void)
{
    P *pp = sched_getp();
    if (!pp && sched_running())
        pp = __atomic_load_n(&sched.allp, __ATOMIC_ACQUIRE)[0];
    return pp;
}

/* pd->lock held. Cancel one direction's timer and set its deadline d
 * (0 none, -1 expired, else a nanotime in the future). */
static void set_deadline_locked(pollDesc *pd, int mode, int64_t d)
{
    timer *t = mode == NETPOLL_READ ? &pd->rt : &pd->wt;
    uintptr_t *seq = mode == NETPOLL_READ ? &pd->rseq : &pd->wseq;
    timer_del(t);
    ++*seq;
    atomic_store(mode == NETPOLL_READ ? &pd->rd : &pd->wd, d);
    if (d > 0) {
        P *pp = timer_p();
        if (!pp)
            return;   /* no runtime: only plain-thread callers, who use poll timeouts */
        t->when = d;
        t->period = 0;
        t->f = mode == NETPOLL_READ ? deadline_read : deadline_write;
        t->arg = pd;
        t->seq = *seq;
        timer_add(pp, t);
    }
}

/* ---- operations: acquiring the pollDesc ------------------------------------ */


/* A socket timeout in ns; 0 for none, and for one so long (over ~30
 * years) that the kernel treats it as none too. */
static int64_t timeval_ns(const struct timeval *tv)
{
    if (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_sec > ((int64_t)1 << 30))
        return 0;
    return (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000;
}

/* A socket's SO_RCVTIMEO or SO_SNDTIMEO in ns (0: none). */
static int64_t sock_timeout(int fd, int opt)
{
    struct timeval tv = {0, 0};
    socklen_t l = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, opt, &tv, &l) != 0)
        return 0;
    return timeval_ns(&tv);
}

/* pd->lock held: set the fd up for its current life. */
static int arm_locked(pollDesc *pd)
{
    int fl = real_fcntl(pd->fd, F_GETFL, NULL);
    if (fl < 0)
        return sched_errno_get();
    atomic_store(&pd->user_nb, (fl & O_NONBLOCK) != 0);
    netpoll_init_once();
    atomic_store(&pd->rg, PD_NIL);
    atomic_store(&pd->wg, PD_NIL);
    atomic_store(&pd->rd, 0);
    atomic_store(&pd->wd, 0);
    uint64_t token = (uint64_t)(uintptr_t)pd | TOKEN_SEQ(atomic_load(&pd->fdseq));
    int e = netpoll_os_open(pd->fd, token);
    if (e == EPERM) {
        pd->pollable = false;   /* a regular file or a directory: always ready */
    } else if (e) {
        return e;
    } else {
        pd->pollable = true;
        struct stat st;
        pd->sock = fstat(pd->fd, &st) == 0 && S_ISSOCK(st.st_mode);
        int type = SOCK_STREAM;
        socklen_t tl = sizeof type;
        if (pd->sock && getsockopt(pd->fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0)
            type = SOCK_DGRAM;
        pd->stream = type == SOCK_STREAM;
        atomic_store(&pd->rcvtimeo, pd->sock ? sock_timeout(pd->fd, SO_RCVTIMEO) : 0);
        atomic_store(&pd->sndtimeo, pd->sock ? sock_timeout(pd->fd, SO_SNDTIMEO) : 0);
        if (!(fl & O_NONBLOCK) &&
            real_fcntl(pd->fd, F_SETFL, (void *)(intptr_t)(fl | O_NONBLOCK)) < 0) {
            e = sched_errno_get();
            netpoll_os_close(pd->fd);
            return e;
        }
    }
    atomic_store_explicit(&pd->armed, true, memory_order_release);
    return 0;
}

static void pd_release(pollDesc *pd)
{
    atomic_fetch_sub(&pd->ref, 2);
}

/* Enter an operation on fd: 0 with *out set (NULL: no pollDesc, use a plain
 * call), or an errno. */
static int pd_acquire(int fd, pollDesc **out)
{
    *out = NULL;
    if (fd < 0)
        return EBADF;
    pollDesc *pd = pd_lookup(fd, true);
    if (!pd)
        return 0;
    for (int tries = 0;; tries++) {
        uint32_t old = atomic_fetch_add(&pd->ref, 2);
        if (!(old & 1))
            break;
        pd_release(pd);
        /* a close is in progress. If it is in its last locked stretch,
         * the fd number may already belong to a new file: wait it out
         * and look again; otherwise the fd is still the one closing. */
        lock(&pd->lock);
        unlock(&pd->lock);
        if (tries > 0 || (atomic_load(&pd->ref) & 1))
            return EBADF;
    }
    if (!atomic_load_explicit(&pd->armed, memory_order_acquire)) {
        lock(&pd->lock);
        int e = atomic_load_explicit(&pd->armed, memory_order_relaxed) ? 0 : arm_locked(pd);
        unlock(&pd->lock);
        if (e) {
            pd_release(pd);
            return e;
        }
    }
    *out = pd;
    return 0;
}

/* fd was just created (accept, socket): if its number still has a
 * pollDesc set up for an earlier fd that was closed with close(2) rather
 * than gort_close, forget that setup so the new fd gets registered. */
static void pd_fresh(int fd)
{
    pollDesc *pd = pd_lookup(fd, false);
    if (!pd || !atomic_load_explicit(&pd->armed, memory_order_acquire))
        return;
    lock(&pd->lock);
    if (atomic_load(&pd->ref) == 0 && atomic_load_explicit(&pd->armed, memory_order_relaxed)) {
        set_deadline_locked(pd, NETPOLL_READ, 0);
        set_deadline_locked(pd, NETPOLL_WRITE, 0);
        atomic_fetch_add(&pd->fdseq, 1);
        atomic_store_explicit(&pd->armed, false, memory_order_relaxed);
    }
    unlock(&pd->lock);
}

/* ---- operations: the generic loop ------------------------------------------ */


/* A call on a socket from the gort_ API never raises SIGPIPE; one made
 * through a libc name (hook.c) keeps libc's behaviour. */
static ssize_t do_sys(const ioreq *r)
{
    int nosig = r->hook ? 0 : MSG_NOSIGNAL;
    switch (r->op) {
    case OP_READ:     return real_read(r->fd, r->buf, r->n);
    case OP_WRITE:
        if (r->sock) {
            ssize_t n = real_sendto(r->fd, r->cbuf, r->n, nosig, NULL, 0);
            if (n >= 0 || sched_errno_get() != ENOTSOCK)
                return n;
            /* the number was reused behind the runtime's back (closed by
             * libc itself, say): not a socket any more */
        }
        return real_write(r->fd, r->cbuf, r->n);
    case OP_READV:    return real_readv(r->fd, r->iov, r->iovcnt);
    case OP_WRITEV:
        if (r->sock) {
            struct msghdr mh = {.msg_iov = (struct iovec *)r->iov, .msg_iovlen = (size_t)r->iovcnt};
            ssize_t n = real_sendmsg(r->fd, &mh, nosig);
            if (n >= 0 || sched_errno_get() != ENOTSOCK)
                return n;
        }
        return real_writev(r->fd, r->iov, r->iovcnt);
    case OP_RECV:     return real_recvfrom(r->fd, r->buf, r->n, r->flags, NULL, NULL);
    case OP_SEND:     return real_sendto(r->fd, r->cbuf, r->n, r->flags | nosig, NULL, 0);
    case OP_RECVFROM: return real_recvfrom(r->fd, r->buf, r->n, r->flags, r->addr, r->addrlen);
    case OP_SENDTO:   return real_sendto(r->fd, r->cbuf, r->n, r->flags | nosig, r->caddr, r->caddrlen);
    case OP_ACCEPT:   return real_accept4(r->fd, r->addr, r->addrlen, r->flags);
    case OP_RECVMSG:  return real_recvmsg(r->fd, r->msg, r->flags);
    case OP_SENDMSG:  return real_sendmsg(r->fd, r->msg, r->flags | nosig);
    }
    sched_errno_set(EINVAL);
    return -1;
}

ssize_t netpoll_sys(const ioreq *r)
{
    return do_sys(r);
}

static int mode_of(int op)
{
    switch (op) {
    case OP_WRITE: case OP_WRITEV: case OP_SEND: case OP_SENDTO: case OP_SENDMSG:
        return NETPOLL_WRITE;
    }
    return NETPOLL_READ;
}

/* Retry the call after EINTR; after ECONNABORTED for accept (the
 * connection died in the backlog: wait for the next one, as Go). */
static bool retry_err(int op, int e)
{
    return e == EINTR || (op == OP_ACCEPT && e == ECONNABORTED);
}

/* poll(2) timeout in ms for a plain thread waiting on a deadline; -1 none,
 * 0 expired. */
static int deadline_ms(pollDesc *pd, int mode)
{
    int64_t d = atomic_load(mode == NETPOLL_READ ? &pd->rd : &pd->wd);
    if (d == 0)
        return -1;
    if (d < 0)
        return 0;
    int64_t left = d - gort_nanotime();
    if (left <= 0)
        return 0;
    return left / 1000000 >= 1000000000 ? 1000000000 : (int)((left + 999999) / 1000000);
}

/* A plain thread waits for fd the plain way. 0, or an errno. It looks at
 * the closing bit every 20 ms: poll(2) does not return when another thread
 * starts closing the fd, and gort_close waits for this call to leave. */
static int thread_wait(pollDesc *pd, int mode, int64_t until)
{
    struct pollfd pfd = {pd->fd, (short)(mode == NETPOLL_READ ? POLLIN : POLLOUT), 0};
    for (;;) {
        int e = pd_check(pd, mode);
        if (e)
            return e;
        int ms = deadline_ms(pd, mode);
        if (ms == 0)
            return ETIMEDOUT;
        if (until) {
            /* a socket timeout (SO_RCVTIMEO...) of a libc name's call */
            int64_t left = until - gort_nanotime();
            if (left <= 0)
                return EAGAIN;
            int ums = (int)((left + 999999) / 1000000);
            if (ms < 0 || ums < ms)
                ms = ums;
        }
        if (ms < 0 || ms > 20)
            ms = 20;
        int n = real_poll(&pfd, 1, ms);
        if (n > 0)
            return 0;
        if (n == 0 && deadline_ms(pd, mode) == 0)
            return ETIMEDOUT;
        if (n < 0 && sched_errno_get() != EINTR)
            return sched_errno_get();
    }
}

/* ---- transparent mode: how a libc name's call goes (hook.c) ---------------- */

/* Fds below NB_FDS that a goroutine found non-blocking without arming
 * them: their calls go straight to libc without asking fcntl each time.
 * A bit is cleared when its fd is closed or born here or its flags are
 * set through fcntl or ioctl. */
#define NB_FDS 65536
static _Atomic uint64_t nbfds[NB_FDS / 64];

static bool nb_known(int fd)
{
    return (unsigned)fd < NB_FDS &&
           (atomic_load_explicit(&nbfds[fd / 64], memory_order_relaxed) >> (fd % 64) & 1);
}

static void nb_note(int fd, bool on)
{
    if ((unsigned)fd >= NB_FDS)
        return;
    uint64_t bit = (uint64_t)1 << (fd % 64);
    if (on)
        atomic_fetch_or_explicit(&nbfds[fd / 64], bit, memory_order_relaxed);
    else if (atomic_load_explicit(&nbfds[fd / 64], memory_order_relaxed) & bit)
        atomic_fetch_and_explicit(&nbfds[fd / 64], ~bit, memory_order_relaxed);
}

enum {
    ROUTE_DIRECT,    /* libc's call, once, as is */
    ROUTE_SYSCALL,   /* libc's call bracketed by gort_entersyscall */
    ROUTE_POLLER     /* through the pollDesc: park, or block as libc would */
};

/* How a call through a libc name on fd goes (hook.c's table). dontwait:
 * the call must not wait (MSG_DONTWAIT). */
static int hook_route(int fd, bool dontwait)
{
    pollDesc *pd = pd_lookup(fd, false);
    if (pd && atomic_load_explicit(&pd->armed, memory_order_acquire)) {
        if (dontwait || (pd->pollable && atomic_load(&pd->user_nb)))
            return ROUTE_DIRECT;
        return ROUTE_POLLER;   /* a plain thread too: the runtime made it non-blocking */
    }
    if (!netpoll_hook_g() || dontwait || nb_known(fd))
        return ROUTE_DIRECT;
    int fl = real_fcntl(fd, F_GETFL, NULL);
    if (fl < 0)
        return ROUTE_DIRECT;   /* it fails as libc's would (EBADF) */
    if (fl & O_NONBLOCK) {
        nb_note(fd, true);
        return ROUTE_DIRECT;
    }
    if (fd <= 2)
        return ROUTE_SYSCALL;  /* stdio: shared with the parent, stays blocking */
    return ROUTE_POLLER;
}

static bool dontwait_op(const ioreq *r)
{
    return (r->op == OP_RECV || r->op == OP_SEND || r->op == OP_RECVFROM || r->op == OP_SENDTO ||
            r->op == OP_RECVMSG || r->op == OP_SENDMSG) &&
           (r->flags & MSG_DONTWAIT);
}

/* A libc name's blocking write writes everything, and a MSG_WAITALL
 * receive waits for everything, as on a blocking socket: the ops that
 * loop until r->n bytes are done. */
static bool whole_op(const ioreq *r)
{
    switch (r->op) {
    case OP_WRITE: case OP_SEND: case OP_SENDTO:
        return true;
    case OP_RECV: case OP_RECVFROM:
        /* as the kernel's: not for datagrams, not for a peek */
        return r->stream && (r->flags & MSG_WAITALL) && !(r->flags & MSG_PEEK);
    }
    return false;
}

/* Drop the first n bytes of an iovec array (a copy the caller owns). */
static void iov_advance(struct iovec **iov, size_t *cnt, size_t n)
{
    while (*cnt > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        ++*iov;
        --*cnt;
    }
    if (*cnt > 0 && n > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

static size_t iov_total(const struct iovec *iov, size_t cnt)
{
    size_t t = 0;
    for (size_t i = 0; i < cnt; i++)
        t += iov[i].iov_len;
    return t;
}

/* The per-call deadline that stands for a socket's SO_RCVTIMEO/
 * SO_SNDTIMEO (a libc name's call, when no gort deadline is set in that
 * direction). call_deadline_set returns the direction's sequence number
 * after setting it; call_deadline_clear clears it only if nobody set a
 * deadline since (gort_fd_set_deadline bumps the number), and says
 * whether it was still ours. */
static uintptr_t call_deadline_set(pollDesc *pd, int mode, int64_t d)
{
    lock(&pd->lock);
    set_deadline_locked(pd, mode, d);
    uintptr_t seq = mode == NETPOLL_READ ? pd->rseq : pd->wseq;
    unlock(&pd->lock);
    return seq;
}

static bool call_deadline_clear(pollDesc *pd, int mode, uintptr_t seq)
{
    lock(&pd->lock);
    bool ours = seq == (mode == NETPOLL_READ ? pd->rseq : pd->wseq);
    if (ours)
        set_deadline_locked(pd, mode, 0);
    unlock(&pd->lock);
    return ours;
}

static ssize_t fd_io(ioreq *r)
{
    int mode = mode_of(r->op);
    int e0 = r->hook ? sched_errno_get() : 0;   /* libc leaves errno alone on success */
    if (r->hook) {
        switch (hook_route(r->fd, dontwait_op(r))) {
        case ROUTE_DIRECT:
            return do_sys(r);
        case ROUTE_SYSCALL:
            return NETPOLL_SYSCALL(ssize_t, do_sys(r));
        }
    }
    pollDesc *pd;
    int e = pd_acquire(r->fd, &pd);
    if (e) {
        sched_errno_set(e);
        return -1;
    }
    G *gp = r->hook ? netpoll_hook_g() : getg();   /* hook: in a syscall bracket, block */
    if (!pd || !pd->pollable) {
        /* a plain call, as a system call: it may block the thread (a
         * goroutine's only: inside the caller's own bracket, or on a
         * plain thread, there is nothing to bracket) */
        ssize_t n;
        do {
            if (gp)
                gort_entersyscall();
            n = do_sys(r);
            e = sched_errno_get();
            if (gp)
                gort_exitsyscall();
        } while (n < 0 && retry_err(r->op, e));
        if (pd)
            pd_release(pd);
        if (n < 0)
            sched_errno_set(e);
        else if (r->hook)
            sched_errno_set(e0);
        return n;
    }
    r->sock = pd->sock;
    r->stream = !pd->sock || pd->stream;
    /* vector writes through a libc name write everything too: on a copy
     * of the caller's iovecs, advanced as bytes go out */
    struct iovec iov_s[8], *iov_copy = NULL;
    struct msghdr mh_copy;
    size_t iov_left = 0;
    if (r->hook && (r->op == OP_WRITEV || r->op == OP_SENDMSG)) {
        const struct iovec *src = r->op == OP_WRITEV ? r->iov : r->msg->msg_iov;
        size_t cnt = r->op == OP_WRITEV ? (size_t)(r->iovcnt > 0 ? r->iovcnt : 0) : r->msg->msg_iovlen;
        iov_copy = cnt <= 8 ? iov_s : malloc(cnt * sizeof *iov_copy);
        if (iov_copy) {
            memcpy(iov_copy, src, cnt * sizeof *iov_copy);
            iov_left = iov_total(src, cnt);
            if (r->op == OP_WRITEV) {
                r->iov = iov_copy;
            } else {
                mh_copy = *r->msg;
                mh_copy.msg_iov = iov_copy;
                r->msg = &mh_copy;
            }
        }
    }
    struct iovec *iov_base = iov_copy;
    /* SO_RCVTIMEO/SO_SNDTIMEO bound a libc name's wait, ending in EAGAIN */
    int64_t tmo = r->hook ? atomic_load(mode == NETPOLL_READ ? &pd->rcvtimeo : &pd->sndtimeo) : 0;
    bool own_deadline = false;
    uintptr_t own_seq = 0;
    int64_t until = tmo > 0 ? gort_nanotime() + tmo : 0;   /* a plain thread's bound */
    gort_mutex *mu = mode == NETPOLL_READ ? &pd->rmu : &pd->wmu;
    if (gp)
        gort_mutex_lock(mu);
    if (tmo > 0 && gp && atomic_load(mode == NETPOLL_READ ? &pd->rd : &pd->wd) == 0) {
        own_seq = call_deadline_set(pd, mode, until);
        own_deadline = true;
    }
    ssize_t n;
    size_t done = 0;   /* whole_op and vector writes: bytes done so far */
    for (;;) {
        if ((e = pd_check(pd, mode))) {
            n = -1;
            break;
        }
        n = do_sys(r);
        if (n > 0 && whole_op(r) && (size_t)n < r->n) {
            /* goes on until all is done, as a blocking socket's would
             * (and Go's Write) */
            done += (size_t)n;
            if (mode == NETPOLL_WRITE)
                r->cbuf = (const char *)r->cbuf + n;
            else
                r->buf = (char *)r->buf + n;
            r->n -= (size_t)n;
            continue;
        }
        if (n > 0 && iov_copy && (size_t)n < iov_left) {
            done += (size_t)n;
            iov_left -= (size_t)n;
            size_t cnt = r->op == OP_WRITEV ? (size_t)r->iovcnt : r->msg->msg_iovlen;
            struct iovec *v = r->op == OP_WRITEV ? (struct iovec *)r->iov : r->msg->msg_iov;
            iov_advance(&v, &cnt, (size_t)n);
            if (r->op == OP_WRITEV) {
                r->iov = v;
                r->iovcnt = (int)cnt;
            } else {
                r->msg->msg_iov = v;
                r->msg->msg_iovlen = cnt;
                /* the ancillary data (passed fds...) went with the first
                 * bytes; the rest goes without */
                r->msg->msg_control = NULL;
                r->msg->msg_controllen = 0;
                r->msg->msg_name = NULL;
                r->msg->msg_namelen = 0;
            }
            continue;
        }
        if (n >= 0)
            break;
        e = sched_errno_get();
        if (retry_err(r->op, e))
            continue;
        if (e != EAGAIN && e != EWOULDBLOCK)
            break;
        e = gp ? pd_wait(pd, mode) : thread_wait(pd, mode, until);
        if (e) {
            if (e == ETIMEDOUT && own_deadline && call_deadline_clear(pd, mode, own_seq)) {
                own_deadline = false;
                e = EAGAIN;   /* the socket timeout, as the kernel reports it */
            }
            n = -1;
            break;
        }
    }
    if (own_deadline)
        call_deadline_clear(pd, mode, own_seq);
    if (gp)
        gort_mutex_unlock(mu);
    pd_release(pd);
    if (iov_base && iov_base != iov_s)
        free(iov_base);
    if (n >= 0)
        n += (ssize_t)done;
    else if (done > 0)
        n = (ssize_t)done;   /* the error shows on the next call */
    if (n < 0)
        sched_errno_set(e);
    else if (r->hook)
        sched_errno_set(e0);
    return n;
}

ssize_t netpoll_io(ioreq *r)
{
    return fd_io(r);
}

/* ---- the public calls ---------------------------------------------------------- */

ssize_t gort_read(int fd, void *buf, size_t n)
{
    ioreq r = {.op = OP_READ, .fd = fd, .buf = buf, .n = n};
    return fd_io(&r);
}

ssize_t gort_write(int fd, const void *buf, size_t n)
{
    ioreq r = {.op = OP_WRITE, .fd = fd, .cbuf = buf, .n = n};
    return fd_io(&r);
}

ssize_t gort_readv(int fd, const struct iovec *iov, int iovcnt)
{
    ioreq r = {.op = OP_READV, .fd = fd, .iov = iov, .iovcnt = iovcnt};
    return fd_io(&r);
}

ssize_t gort_writev(int fd, const struct iovec *iov, int iovcnt)
{
    ioreq r = {.op = OP_WRITEV, .fd = fd, .iov = iov, .iovcnt = iovcnt};
    return fd_io(&r);
}

ssize_t gort_recv(int fd, void *buf, size_t n, int flags)
{
    ioreq r = {.op = OP_RECV, .fd = fd, .buf = buf, .n = n, .flags = flags};
    return fd_io(&r);
}

ssize_t gort_send(int fd, const void *buf, size_t n, int flags)
{
    ioreq r = {.op = OP_SEND, .fd = fd, .cbuf = buf, .n = n, .flags = flags};
    return fd_io(&r);
}

ssize_t gort_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                      socklen_t *addrlen)
{
    ioreq r = {.op = OP_RECVFROM, .fd = fd, .buf = buf, .n = n, .flags = flags,
               .addr = addr, .addrlen = addrlen};
    return fd_io(&r);
}

ssize_t gort_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
                    socklen_t addrlen)
{
    ioreq r = {.op = OP_SENDTO, .fd = fd, .cbuf = buf, .n = n, .flags = flags,
               .caddr = addr, .caddrlen = addrlen};
    return fd_io(&r);
}

ssize_t gort_recvmsg(int fd, struct msghdr *msg, int flags)
{
    ioreq r = {.op = OP_RECVMSG, .fd = fd, .msg = msg, .flags = flags};
    return fd_io(&r);
}

ssize_t gort_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    ioreq r = {.op = OP_SENDMSG, .fd = fd, .msg = (struct msghdr *)msg, .flags = flags};
    return fd_io(&r);
}

int gort_accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
    ioreq r = {.op = OP_ACCEPT, .fd = fd, .addr = addr, .addrlen = addrlen, .flags = flags};
    int nfd = (int)fd_io(&r);
    if (nfd >= 0)
        netpoll_fresh(nfd);
    return nfd;
}

int gort_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    return gort_accept4(fd, addr, addrlen, SOCK_CLOEXEC);
}

/* A non-blocking connect finished when the socket is writable; its result
 * is SO_ERROR. A wake-up before that (an unconnected socket may report
 * writable at registration) leaves SO_ERROR 0 and no peer: wait again. */
int netpoll_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, bool hook)
{
    if (hook) {
        switch (hook_route(fd, false)) {
        case ROUTE_DIRECT:
            return real_connect(fd, addr, addrlen);
        case ROUTE_SYSCALL:
            return NETPOLL_SYSCALL(int, real_connect(fd, addr, addrlen));
        }
    }
    pollDesc *pd;
    int e = pd_acquire(fd, &pd);
    if (e) {
        sched_errno_set(e);
        return -1;
    }
    G *gp = hook ? netpoll_hook_g() : getg();
    if (!pd || !pd->pollable) {
        int r;
        do {
            if (gp)
                gort_entersyscall();
            r = real_connect(fd, addr, addrlen);
            e = sched_errno_get();
            if (gp)
                gort_exitsyscall();
        } while (r < 0 && e == EINTR);
        if (pd)
            pd_release(pd);
        if (r < 0)
            sched_errno_set(e);
        return r;
    }
    if (gp)
        gort_mutex_lock(&pd->wmu);
    e = pd_check(pd, NETPOLL_WRITE);
    if (!e && real_connect(fd, addr, addrlen) < 0) {
        e = sched_errno_get();
        /* a unix socket whose listener's backlog is full: a blocking
         * connect waits for room, which no poll reports; try again a
         * little later, backing off to 10 ms */
        for (int64_t us = 50; e == EAGAIN && addr && addr->sa_family == AF_UNIX;) {
            if (gp)
                gort_sleep(us * 1000);
            else
                os_usleep((uint32_t)us);
            if (us < 10000)
                us *= 2;
            if ((e = pd_check(pd, NETPOLL_WRITE)))
                break;
            e = real_connect(fd, addr, addrlen) < 0 ? sched_errno_get() : 0;
        }
        if (e == EINTR || e == EINPROGRESS || e == EALREADY) {
            /* in progress (EINTR too: the kernel goes on connecting) */
            for (;;) {
                e = gp ? pd_wait(pd, NETPOLL_WRITE) : thread_wait(pd, NETPOLL_WRITE, 0);
                if (e)
                    break;
                int soerr = 0;
                socklen_t sl = sizeof soerr;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
                    e = sched_errno_get();
                    break;
                }
                if (soerr == EINPROGRESS || soerr == EALREADY || soerr == EINTR)
                    continue;
                if (soerr) {
                    e = soerr;
                    break;
                }
                struct sockaddr_storage peer;
                socklen_t pl = sizeof peer;
                if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0) {
                    /* connected. Linux moves the socket to its connected
                     * state only at the next connect call (which returns 0
                     * once); make it, so that a later connect says
                     * EISCONN as after a blocking connect */
                    real_connect(fd, addr, addrlen);
                    break;
                }
                if ((e = sched_errno_get()) != ENOTCONN)
                    break;
            }
        } else if (e == EISCONN && !hook) {
            e = 0;   /* an earlier, interrupted call of ours connected it */
        }
    }
    if (gp)
        gort_mutex_unlock(&pd->wmu);
    pd_release(pd);
    if (e) {
        sched_errno_set(e);
        return -1;
    }
    return 0;
}

int gort_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    return netpoll_connect(fd, addr, addrlen, false);
}

int netpoll_close(int fd, bool close_unknown)
{
    nb_note(fd, false);
    /* An fd not armed yet is closed through the closing bit too, and its
     * pollDesc is made here if it has none: an operation that entered
     * just before may be arming it right now. A plain close under it
     * would leave that operation parked on an fd the kernel dropped from
     * the poller (no event ever comes), and the pollDesc armed for the
     * next file with this number, which would then be used in blocking
     * mode and never registered. */
    pollDesc *pd = fd >= 0 ? pd_lookup(fd, close_unknown) : NULL;
    if (!pd || (!close_unknown && !atomic_load_explicit(&pd->armed, memory_order_acquire))) {
        if (!close_unknown)
            return 0;
        /* no pollDesc (fd beyond the table, out of memory): a plain close
         * (EINTR is not retried: Linux has released the fd either way) */
        int r = real_close(fd);
        return r < 0 && sched_errno_get() == EINTR ? 0 : r;
    }
    for (int tries = 0;; tries++) {
        if (!(atomic_fetch_or(&pd->ref, 1) & 1))
            break;
        /* as in pd_acquire: a close of the fd's previous life may be in
         * its last locked stretch, its bit still set while the kernel
         * already gave the number to this fd; wait it out and look again.
         * Otherwise this fd is being closed concurrently. */
        lock(&pd->lock);
        unlock(&pd->lock);
        if (tries > 0 || (atomic_load(&pd->ref) & 1)) {
            sched_errno_set(EBADF);
            return -1;
        }
    }
    /* no new operation gets in; wake the parked ones, and stop the
     * deadline timers */
    lock(&pd->lock);
    set_deadline_locked(pd, NETPOLL_READ, 0);
    set_deadline_locked(pd, NETPOLL_WRITE, 0);
    G *rg = netpollunblock(pd, NETPOLL_READ, false);
    G *wg = netpollunblock(pd, NETPOLL_WRITE, false);
    unlock(&pd->lock);
    if (rg)
        goready(rg);
    if (wg)
        goready(wg);
    /* the operations in flight see the closing bit and leave */
    bool ing = netpoll_hook_g() != NULL;   /* a goroutine outside a syscall bracket */
    while (atomic_load(&pd->ref) >> 1) {
        if (ing)
            gort_yield();
        else
            os_yield();
    }
    /* nobody arms it any more: armed is final here */
    lock(&pd->lock);
    if (atomic_load_explicit(&pd->armed, memory_order_relaxed)) {
        if (pd->pollable)
            netpoll_os_close(fd);
        atomic_fetch_add(&pd->fdseq, 1);
        atomic_store_explicit(&pd->armed, false, memory_order_relaxed);
    }
    int r = real_close(fd);
    int e = sched_errno_get();
    /* clear the closing bit alone: a pd_acquire that saw it may still
     * hold its transient reference and will drop it itself (storing 0
     * here would let that drop wrap the count, and the next close of
     * this fd number would wait forever) */
    atomic_fetch_sub(&pd->ref, 1);
    unlock(&pd->lock);
    /* goroutines in poll(2) on it: only now, so that the poll(2) they make
     * on waking sees the fd closed (POLLNVAL); woken before, they could
     * find it still open and not ready, and wait again for an event that
     * can no longer come */
    pollers_wake(pd, NULL);
    if (r < 0 && e != EINTR) {
        sched_errno_set(e);
        return -1;
    }
    return 0;
}

int gort_close(int fd)
{
    return netpoll_close(fd, true);
}

/* ---- transparent mode: fds born, duplicated, and their flags ----------------- */

void netpoll_fresh(int fd)
{
    nb_note(fd, false);
    pd_fresh(fd);
}

void netpoll_dup(int fd, int nfd)
{
    netpoll_fresh(nfd);
    pollDesc *pd = pd_lookup(fd, false);
    if (!pd || !atomic_load_explicit(&pd->armed, memory_order_acquire) || !pd->pollable ||
        atomic_load(&pd->user_nb))
        return;
    /* they share one file, which the runtime made non-blocking while the
     * user wants it blocking: the new fd needs the same care */
    pollDesc *npd;
    if (pd_acquire(nfd, &npd) == 0 && npd) {
        atomic_store(&npd->user_nb, false);
        pd_release(npd);
    }
}

/* The fd's pollDesc if the runtime made it non-blocking, else NULL. */
static pollDesc *pd_nonblocking(int fd)
{
    pollDesc *pd = pd_lookup(fd, false);
    if (!pd || !atomic_load_explicit(&pd->armed, memory_order_acquire) || !pd->pollable)
        return NULL;
    return pd;
}

int netpoll_getfl(int fd, int fl)
{
    pollDesc *pd = pd_nonblocking(fd);
    if (pd && !atomic_load(&pd->user_nb))
        fl &= ~O_NONBLOCK;
    return fl;
}

int netpoll_setfl(int fd, int fl)
{
    pollDesc *pd = pd_nonblocking(fd);
    if (!pd) {
        nb_note(fd, false);
        return real_fcntl(fd, F_SETFL, (void *)(intptr_t)fl);
    }
    int r = real_fcntl(fd, F_SETFL, (void *)(intptr_t)(fl | O_NONBLOCK));
    if (r == 0)
        atomic_store(&pd->user_nb, (fl & O_NONBLOCK) != 0);
    return r;
}

bool netpoll_setnb(int fd, bool nb)
{
    pollDesc *pd = pd_nonblocking(fd);
    if (!pd) {
        nb_note(fd, false);
        return false;
    }
    atomic_store(&pd->user_nb, nb);
    return true;
}

void netpoll_sockopt(int fd, int name, const struct timeval *tv)
{
    pollDesc *pd = pd_lookup(fd, false);
    if (!pd || !atomic_load_explicit(&pd->armed, memory_order_acquire))
        return;   /* read when it is armed */
    atomic_store(name == SO_RCVTIMEO ? &pd->rcvtimeo : &pd->sndtimeo, timeval_ns(tv));
}

/* ---- transparent mode: poll(2) in a goroutine ------------------------------- */

/* A goroutine in poll(2) hangs a pollnode (on its stack) on each fd's
 * pollDesc and parks; readiness of any of them, a close, or its timer
 * wakes it, and it asks poll(2) itself, without waiting, which fds are
 * ready. A spurious wake-up (readiness in a direction it did not ask for,
 * consumed meanwhile by a reader) makes it wait again. The wake-up word
 * is the G's pollword:
 *   PW_ARMED   the goroutine is about to park
 *   PW_FIRED   a wake-up came (the first waker readies the G if parked)
 *   PW_PARKED  the goroutine is parked
 * ARMED -> PARKED by its park callback; ARMED or PARKED -> FIRED by a
 * waker (exchange: only the one that saw PARKED readies it); the
 * goroutine resets it to ARMED before each wait. Its timer is the G's
 * sleeptimer, tagged with pollseq, so a late firing for an earlier wait
 * finds another sequence number (or at worst causes one spurious
 * wake-up). */
enum { PW_ARMED = 0, PW_FIRED = 1, PW_PARKED = 2 };

typedef struct pollnode {
    struct pollnode *next;
    G *gp;
} pollnode;

/* The waker's half: true when it must ready gp. */
static bool poll_fire(G *gp)
{
    return atomic_exchange(&gp->pollword, PW_FIRED) == PW_PARKED;
}

/* Wake the goroutines polling pd: onto out, or readied here (out NULL). */
static void pollers_wake(pollDesc *pd, glist *out)
{
    if (!atomic_load(&pd->npollers))
        return;
    glist l = {NULL, 0};
    lock(&pd->plock);
    for (pollnode *n = pd->pollers; n; n = n->next)
        if (poll_fire(n->gp)) {
            atomic_fetch_sub(&waiters, 1);
            glist_push(out ? out : &l, n->gp);
        }
    unlock(&pd->plock);
    while (l.head) {
        G *gp = l.head;
        l.head = gp->schedlink;
        goready(gp);
    }
}

static void poll_timeout(void *arg, uintptr_t seq)
{
    G *gp = arg;
    if (atomic_load(&gp->pollseq) == seq && poll_fire(gp)) {
        atomic_fetch_sub(&waiters, 1);
        goready(gp);
    }
}

static void poll_park(G *gp, void *arg)
{
    if (arg)
        timer_add(getm()->p, &gp->sleeptimer);
    atomic_fetch_add(&waiters, 1);   /* counted while parked: checkdead, the blocking poll */
    uintptr_t w = PW_ARMED;
    if (atomic_compare_exchange_strong(&gp->pollword, &w, PW_PARKED))
        return;
    atomic_fetch_sub(&waiters, 1);
    goready(gp);
}

static void pollnodes_link(pollDesc **pds, pollnode *nodes, nfds_t n, G *gp)
{
    for (nfds_t i = 0; i < n; i++) {
        if (!pds[i])
            continue;
        nodes[i].gp = gp;
        lock(&pds[i]->plock);
        nodes[i].next = pds[i]->pollers;
        pds[i]->pollers = &nodes[i];
        atomic_fetch_add(&pds[i]->npollers, 1);
        unlock(&pds[i]->plock);
    }
}

static void pollnodes_unlink(pollDesc **pds, pollnode *nodes, nfds_t n)
{
    for (nfds_t i = 0; i < n; i++) {
        if (!pds[i])
            continue;
        lock(&pds[i]->plock);
        pollnode **pp = &pds[i]->pollers;
        while (*pp != &nodes[i])
            pp = &(*pp)->next;
        *pp = nodes[i].next;
        atomic_fetch_sub(&pds[i]->npollers, 1);
        unlock(&pds[i]->plock);
    }
}

/* Set up the pollDescs for fds (NULL for a negative fd). False when one
 * of them cannot be waited for here (stdio, a file the poller refuses):
 * then the caller blocks in poll(2) as a system call. */
static bool pollfds_arm(struct pollfd *fds, nfds_t nfds, pollDesc **pds)
{
    for (nfds_t i = 0; i < nfds; i++) {
        pds[i] = NULL;
        if (fds[i].fd < 0)
            continue;
        if (fds[i].fd <= 2)
            return false;
        pollDesc *pd;
        if (pd_acquire(fds[i].fd, &pd) != 0 || !pd)
            return false;
        bool ok = pd->pollable;
        pd_release(pd);   /* a close must not wait for us: it wakes us */
        if (!ok)
            return false;
        pds[i] = pd;
    }
    return true;
}

int netpoll_pollfds(struct pollfd *fds, nfds_t nfds, int timeout)
{
    int r = real_poll(fds, nfds, 0);
    if (r != 0)
        return r;
    G *gp = getg();
    int64_t deadline = timeout > 0 ? gort_nanotime() + (int64_t)timeout * 1000000 : 0;
    enum { ON_STACK = 16 };
    pollDesc *pds_s[ON_STACK];
    pollnode nodes_s[ON_STACK];
    pollDesc **pds = pds_s;
    pollnode *nodes = nodes_s;
    if (nfds > ON_STACK) {
        pds = malloc(nfds * sizeof *pds);
        nodes = malloc(nfds * sizeof *nodes);
        if (!pds || !nodes) {
            free(pds);
            free(nodes);
            sched_errno_set(ENOMEM);
            return -1;
        }
    }
    bool armed = pollfds_arm(fds, nfds, pds), any = false;
    for (nfds_t i = 0; armed && i < nfds; i++)
        any |= pds[i] != NULL;
    if (!armed || (!any && timeout < 0)) {
        /* an fd the poller cannot wait for; or nothing to wait for,
         * forever: poll(2) itself, blocking the thread */
        r = NETPOLL_SYSCALL(int, real_poll(fds, nfds, timeout));
        goto out;
    }
    for (;;) {
        uintptr_t seq = atomic_fetch_add(&gp->pollseq, 1) + 1;
        atomic_store(&gp->pollword, PW_ARMED);
        pollnodes_link(pds, nodes, nfds, gp);
        /* readiness that came before the nodes hung is not lost: an edge
         * after this check wakes us */
        r = real_poll(fds, nfds, 0);
        int64_t now = gort_nanotime();
        if (r != 0 || (deadline && now >= deadline)) {
            pollnodes_unlink(pds, nodes, nfds);
            break;
        }
        timer *t = &gp->sleeptimer;
        if (deadline) {
            t->when = deadline;
            t->period = 0;
            t->f = poll_timeout;
            t->arg = gp;
            t->seq = seq;
        }
        gopark(poll_park, deadline ? t : NULL);
        if (deadline)
            timer_del(t);
        pollnodes_unlink(pds, nodes, nfds);
        r = real_poll(fds, nfds, 0);
        if (r != 0 || (deadline && gort_nanotime() >= deadline))
            break;
    }
out:
    if (pds != pds_s) {
        free(pds);
        free(nodes);
    }
    return r;
}

/* Deadlines: absolute gort_nanotime values; 0 clears; a past one expires
 * at once and wakes the waiter. */
static int set_deadline(int fd, int modes, int64_t t)
{
    pollDesc *pd;
    int e = pd_acquire(fd, &pd);
    if (e) {
        sched_errno_set(e);
        return -1;
    }
    if (!pd) {
        sched_errno_set(ENOTSUP);
        return -1;
    }
    if (t != 0 && t <= gort_nanotime())
        t = -1;
    G *rg = NULL, *wg = NULL;
    lock(&pd->lock);
    if (modes & NETPOLL_READ) {
        set_deadline_locked(pd, NETPOLL_READ, t);
        if (t < 0)
            rg = netpollunblock(pd, NETPOLL_READ, false);
    }
    if (modes & NETPOLL_WRITE) {
        set_deadline_locked(pd, NETPOLL_WRITE, t);
        if (t < 0)
            wg = netpollunblock(pd, NETPOLL_WRITE, false);
    }
    unlock(&pd->lock);
    if (rg)
        goready(rg);
    if (wg)
        goready(wg);
    pd_release(pd);
    return 0;
}

int gort_fd_set_deadline(int fd, int64_t t)
{
    return set_deadline(fd, NETPOLL_READ | NETPOLL_WRITE, t);
}

int gort_fd_set_read_deadline(int fd, int64_t t)
{
    return set_deadline(fd, NETPOLL_READ, t);
}

int gort_fd_set_write_deadline(int fd, int64_t t)
{
    return set_deadline(fd, NETPOLL_WRITE, t);
}

/* ---- TCP helpers ------------------------------------------------------------------ */

static int resolve(const char *host, int port, bool passive, struct addrinfo **res)
{
    if (port < 0 || port > 65535)
        return EINVAL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    if (host && !*host)
        host = NULL;
    /* name lookup may block (DNS): a system call for the scheduler */
    gort_entersyscall();
    int rc = getaddrinfo(host, portstr, &hints, res);
    int e = sched_errno_get();
    gort_exitsyscall();
    if (rc == 0)
        return 0;
    if (rc == EAI_SYSTEM)
        return e ? e : EIO;
    if (rc == EAI_MEMORY)
        return ENOMEM;
    return EHOSTUNREACH;
}

/* A TCP socket for host:port, the first address that works: listening on
 * it (listen) or connected to it. -1 with errno set when none does. */
static int tcp_socket(const char *host, int port, bool listening)
{
    struct addrinfo *res;
    int e = resolve(host, port, listening, &res);
    if (e) {
        sched_errno_set(e);
        return -1;
    }
    int fd = -1;
    e = listening ? EADDRNOTAVAIL : ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = real_socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = sched_errno_get();
            continue;
        }
        netpoll_fresh(fd);
        bool ok;
        if (listening) {
            int one = 1;
            real_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            ok = bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0;
        } else {
            ok = gort_connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        }
        if (ok)
            break;
        e = sched_errno_get();
        if (listening)
            real_close(fd);   /* never armed */
        else
            gort_close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        sched_errno_set(e);
    return fd;
}

int gort_listen_tcp(const char *host, int port)
{
    return tcp_socket(host, port, true);
}

int gort_dial_tcp(const char *host, int port)
{
    return tcp_socket(host, port, false);
}
