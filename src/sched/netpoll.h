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
 * and reads the counters; the public I/O calls live in netpoll.c itself.
 */
#ifndef GORT_SCHED_NETPOLL_H
#define GORT_SCHED_NETPOLL_H

#include "runtime.h"

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

/* ---- implemented by proc.c ------------------------------------------------ */

/* Make the goroutines of l runnable: some on the global queue with an M
 * started for each idle P, the rest on pp's run queue (pp may be NULL). */
void netpoll_inject(glist *l, P *pp);

#endif
