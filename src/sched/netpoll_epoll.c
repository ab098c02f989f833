/* netpoll_epoll.c - the poller on Linux: epoll, edge-triggered.
 * See netpoll.c for the overview and netpoll.h for the interface.
 *
 * Each fd is registered once, when first used, for EPOLLIN | EPOLLOUT |
 * EPOLLRDHUP, edge-triggered: the kernel reports a direction when it
 * becomes ready, not for as long as it stays ready, so one registration
 * serves the fd's whole life and no epoll_ctl is needed per operation.
 * The cost is that a readiness edge must never be lost: netpoll.c keeps it
 * in the pollDesc (pdReady) when nobody waits, and an operation always
 * tries the system call before parking, so an fd that is already ready is
 * never waited on.
 *
 * A blocked epoll_wait is broken by an eventfd registered with token 0
 * (no pollDesc token is 0): netpoll_os_break writes to it, at most once
 * until a blocking poll drains it (break_pending), so a storm of breaks
 * costs one write. A poll that does not block (findrunnable, sysmon) never
 * drains it: it may run just as another M blocks, and would steal the
 * break meant for that M.
 *
 * Level-triggered epoll was rejected: it reports a readable socket on every
 * wait until it is drained, so every poll would return every busy fd, and
 * an fd nobody waits on would need an epoll_ctl to silence it.
 */
#define _GNU_SOURCE
#include "sched/netpoll.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "gc/gc.h"

static int epfd = -1;
static int breakfd = -1;
static _Atomic uint32_t break_pending;   /* a write to breakfd not yet drained */

void netpoll_os_init(void)
{
    epfd = real_epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        throwf("netpoll: epoll_create1 failed (errno %d)", errno);
    breakfd = real_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (breakfd < 0)
        throwf("netpoll: eventfd failed (errno %d)", errno);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, breakfd, &ev) < 0)
        throwf("netpoll: epoll_ctl(eventfd) failed (errno %d)", errno);
}

int netpoll_os_open(int fd, uint64_t token)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP | EPOLLET,
                             .data.u64 = token};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return errno;
    return 0;
}

int netpoll_os_close(int fd)
{
    struct epoll_event ev = {0};
    if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev) < 0)
        return errno;
    return 0;
}

void netpoll_os_break(void)
{
    uint32_t z = 0;
    if (!atomic_compare_exchange_strong(&break_pending, &z, 1))
        return;
    uint64_t one = 1;
    for (;;) {
        ssize_t n = real_write(breakfd, &one, sizeof one);
        if (n == sizeof one || (n < 0 && errno == EAGAIN))
            return;   /* EAGAIN: the counter is full, a wake-up is pending anyway */
        if (n < 0 && errno != EINTR)
            throwf("netpoll: write to eventfd failed (errno %d)", errno);
    }
}

bool netpoll_os_poll(int64_t delay, glist *out)
{
    int ms;
    if (delay < 0)
        ms = -1;
    else if (delay == 0)
        ms = 0;
    else if (delay < 1000000000000LL)
        ms = (int)((delay + 999999) / 1000000);   /* round up: never wake early and spin */
    else
        ms = 1000000;   /* about 17 minutes; the caller polls again */
    struct epoll_event evs[128];
    int n;
    bool broke = false;
    for (;;) {
        bool b = ms != 0 && gcthread_block();
        n = epoll_wait(epfd, evs, (int)(sizeof evs / sizeof evs[0]), ms);
        int e = errno;
        if (ms != 0)
            gcthread_unblock(b);
        if (n >= 0)
            break;
        if (e != EINTR)
            throwf("netpoll: epoll_wait failed (errno %d)", e);
        if (ms > 0)
            return false;   /* a signal: the caller recomputes its deadline */
    }
    for (int i = 0; i < n; i++) {
        uint64_t token = evs[i].data.u64;
        uint32_t e = evs[i].events;
        if (token == 0) {
            /* the break channel. A poll that does not block leaves it
             * (the break is meant for an M that blocks, perhaps at this
             * moment); a blocking one drains it, then accepts new breaks */
            if (ms == 0)
                continue;
            uint64_t v;
            ssize_t r = real_read(breakfd, &v, sizeof v);
            (void)r;
            atomic_store(&break_pending, 0);
            broke = true;
            continue;
        }
        int modes = 0;
        if (e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            modes |= NETPOLL_READ;   /* PRI: urgent data, for poll(2)'s POLLPRI waiters */
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            modes |= NETPOLL_WRITE;
        if (modes)
            netpoll_ready(token, modes, out);
    }
    return broke;
}
