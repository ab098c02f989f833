/* test_mcache.c - per-thread caches: span ownership, remote frees that
 * return spans to the heap, caches parked at thread exit and adopted. */
#include <pthread.h>
#include <string.h>

#include "export_test.h"
#include "gort.h"
#include "test.h"

#define N 20000

static void *objs[N];

static void *alloc_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++) {
        objs[i] = gort_malloc(48);
        memset(objs[i], 0x5A, 48);
    }
    return (void *)tls_mcache;
}

static void *free_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++)
        gort_free(objs[i]);
    return NULL;
}

static void *noop_alloc(void *arg)
{
    void *p = gort_malloc(16);
    gort_free(p);
    *(mcache **)arg = tls_mcache;
    return NULL;
}

int main(void)
{
    /* A span belongs to the cache of the thread that allocated from it. */
    void *mine = gort_malloc(48);
    mspan *s = test_spanof(mine);
    REQUIRE(s && s->owner == tls_mcache && s->sizeclass == size_to_class(48));
    gort_free(mine);

    /* Allocate in one thread (which then exits), free in another: the frees
     * are remote, and the scavenger/collector gets the spans back. */
    pthread_t t;
    mcache *owner;
    pthread_create(&t, NULL, alloc_thread, NULL);
    pthread_join(t, (void **)&owner);
    for (int i = 0; i < N; i++)
        CHECK(test_spanof(objs[i])->owner == owner);
    gort_memstats before;
    gort_read_memstats(&before);
    pthread_create(&t, NULL, free_thread, NULL);
    pthread_join(t, NULL);
    /* The owner is parked; collecting for idle caches frees the spans. */
    mcache_collect_idle();
    test_heap_verify();
    gort_memstats after;
    gort_read_memstats(&after);
    CHECK(after.heap_objects + N == before.heap_objects);
    CHECK_MSG(after.heap_inuse + N * 48 / 2 < before.heap_inuse,
              "inuse %llu -> %llu: spans did not return to the heap",
              (unsigned long long)before.heap_inuse, (unsigned long long)after.heap_inuse);

    /* A new thread adopts a parked cache rather than making one. */
    uint64_t count = atomic_load(&mcache_count);
    for (int i = 0; i < 10; i++) {
        mcache *got;
        pthread_create(&t, NULL, noop_alloc, &got);
        pthread_join(t, NULL);
        CHECK(got != tls_mcache);
    }
    CHECK_MSG(atomic_load(&mcache_count) <= count + 1, "caches %llu -> %llu",
              (unsigned long long)count, (unsigned long long)atomic_load(&mcache_count));

    /* Remote free into a live thread's span while it keeps allocating. */
    gort_free_os_memory();
    test_heap_verify();
    return test_done();
}
