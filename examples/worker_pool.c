/* worker_pool.c - a pool of worker goroutines fed by a channel.
 *
 * A feeder goroutine puts jobs into a buffered channel; NWORKERS goroutines
 * take them and send results on another channel; a WaitGroup tells when
 * the workers are done so the results channel can be closed, and main
 * drains it. (Were main to feed the jobs itself before draining, the
 * buffers would fill and every goroutine would block: gort then stops the
 * program with "all goroutines are asleep - deadlock!", as Go does.) The Go
 * program this mirrors is a dozen lines; so is this one.
 */
#include <stdio.h>

#include "gort.h"

#define NWORKERS 8
#define NJOBS 1000

static gort_chan *jobs, *results;
static gort_waitgroup wg;

static long collatz_steps(long n)
{
    long steps = 0;
    while (n != 1) {
        n = n % 2 ? 3 * n + 1 : n / 2;
        steps++;
    }
    return steps;
}

static void worker(void *arg)
{
    (void)arg;
    long n;
    while (gort_chan_recv(jobs, &n)) {       /* for n := range jobs */
        long r[2] = {n, collatz_steps(n)};
        gort_chan_send(results, r);
    }
    gort_waitgroup_done(&wg);
}

static void feeder(void *arg)
{
    (void)arg;
    for (long n = 1; n <= NJOBS; n++)
        gort_chan_send(jobs, &n);
    gort_chan_close(jobs);
}

static void closer(void *arg)
{
    (void)arg;
    gort_waitgroup_wait(&wg);
    gort_chan_close(results);
}

static void main_goroutine(void *arg)
{
    (void)arg;
    jobs = gort_chan_make(sizeof(long), 64);
    results = gort_chan_make(2 * sizeof(long), 64);
    gort_waitgroup_add(&wg, NWORKERS);
    for (int i = 0; i < NWORKERS; i++)
        gort_go(worker, NULL);
    gort_go(closer, NULL);
    gort_go(feeder, NULL);   /* main must be free to drain results meanwhile */

    long best[2] = {0, -1}, r[2], count = 0;
    while (gort_chan_recv(results, r)) {
        count++;
        if (r[1] > best[1]) {
            best[0] = r[0];
            best[1] = r[1];
        }
    }
    printf("%ld results; the longest Collatz chain below %d starts at %ld (%ld steps)\n", count,
           NJOBS + 1, best[0], best[1]);
}

int main(void)
{
    return gort_main(main_goroutine, NULL);
}
