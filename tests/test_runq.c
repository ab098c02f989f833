/* test_runq.c - the per-P run queue under concurrency (runq.c).
 *
 * A model check by brute force: one owner thread puts (with and without
 * runnext) and gets, while thief threads steal into Ps of their own, all
 * at full speed. Every G put must come out exactly once (no loss, no
 * duplicate), and the owner's own gets must see the Gs it put straight
 * into the ring in FIFO order (a G put with runnext enters the ring later,
 * when the next one displaces it, so it is left out of that check). The global queue takes what overflows, as in the
 * scheduler. Runs without gort_main: the queues are plain data.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "export_test.h"
#include "sched/proc.h"
#include "test.h"

#define NG 200000
#define NTHIEVES 2

static G *gs;
static _Atomic int taken[NG];
static P owner, thieves[NTHIEVES];
static _Atomic int done;
static int order[NG];   /* ring insertion order of Gs put without runnext; -1 otherwise */

static int index_of(G *gp)
{
    return (int)(gp - gs);
}

static void take(G *gp)
{
    int i = index_of(gp);
    REQUIRE(i >= 0 && i < NG);
    int prev = atomic_fetch_add(&taken[i], 1);
    CHECK_MSG(prev == 0, "G %d taken %d times", i, prev + 1);
}

static void drain_global(P *pp)
{
    lock(&sched.lock);
    G *gp;
    while ((gp = globrunq_get(pp, 1)))
        take(gp);
    unlock(&sched.lock);
}

static void *thief(void *arg)
{
    P *mine = arg;
    bool inherit;
    unsigned r = 1;
    while (!atomic_load(&done)) {
        r = r * 1103515245 + 12345;
        G *gp = runq_steal(mine, &owner, (r >> 16) % 4 == 0);
        if (gp)
            take(gp);
        while ((gp = runq_get(mine, &inherit)))
            take(gp);
    }
    return NULL;
}

int main(void)
{
    gs = calloc(NG, sizeof(G));
    REQUIRE(gs);
    sched.gomaxprocs = 1 + NTHIEVES;
    pthread_t t[NTHIEVES];
    for (int i = 0; i < NTHIEVES; i++)
        pthread_create(&t[i], NULL, thief, &thieves[i]);

    /* The owner: bursts of puts, then a few gets of its own. */
    bool inherit;
    int last_own = -1, next = 0, seq = 0;
    unsigned r = 7;
    while (next < NG) {
        r = r * 1103515245 + 12345;
        int burst = 1 + (int)((r >> 16) % 300);
        for (int k = 0; k < burst && next < NG; k++) {
            bool nx = ((r >> (k % 16)) & 1) && k % 7 == 0;
            order[next] = nx ? -1 : seq++;
            runq_put(&owner, &gs[next++], nx);
        }
        for (int k = 0; k < 3; k++) {
            G *gp = runq_get(&owner, &inherit);
            if (!gp)
                break;
            take(gp);
            /* FIFO: the ring hands out Gs in put order */
            int o = order[index_of(gp)];
            if (!inherit && o >= 0) {
                CHECK_MSG(o > last_own, "owner got ring entry %d after %d", o, last_own);
                last_own = o;
            }
        }
        if ((r >> 20) % 64 == 0)
            drain_global(&owner);
    }
    /* Let the thieves finish off what is left, then collect the rest. */
    for (int spin = 0; spin < 1000 && !runq_empty(&owner); spin++)
        os_usleep(100);
    atomic_store(&done, 1);
    for (int i = 0; i < NTHIEVES; i++)
        pthread_join(t[i], NULL);
    G *gp;
    while ((gp = runq_get(&owner, &inherit)))
        take(gp);
    for (int i = 0; i < NTHIEVES; i++)
        while ((gp = runq_get(&thieves[i], &inherit)))
            take(gp);
    drain_global(&owner);
    int missing = 0;
    for (int i = 0; i < NG; i++)
        missing += atomic_load(&taken[i]) == 0;
    CHECK_MSG(missing == 0, "%d of %d Gs were lost", missing, NG);
    free(gs);
    return test_done();
}
