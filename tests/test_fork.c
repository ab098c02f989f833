/* test_fork.c - fork while other threads allocate, and threads that exit.
 *
 * Part 1: worker threads allocate, check and free in a loop while the main
 * thread forks NFORKS times. Each child (which has only the forking thread)
 * checks the objects it inherited, allocates and frees a lot of memory of all
 * sizes, checks its contents, frees some inherited objects and leaves with
 * _exit. A child that hangs (an allocator lock held across fork) or fails is
 * a failure; the parent waits for each with a deadline.
 *
 * (Under TSan, GORT_TSAN, part 1 is skipped: see main.)
 *
 * Part 2: many short-lived threads allocate objects, free some and leave the
 * rest to the main thread, which frees them after the allocating threads
 * exited. Also threads free objects the main thread allocated. Afterwards the
 * live object count is back to where it was.
 *
 * GORT_TEST_SCALE (a positive number, default 1) scales the amount of work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"

#define NWORKERS 3
#define NFORKS 20
#define NINHERIT 200

static double scale = 1.0;
static atomic_int stop;
static atomic_long failures;

#define FAIL(...)                                                            \
    do {                                                                     \
        if (atomic_fetch_add(&failures, 1) < 50) {                           \
            fprintf(stderr, "test_fork: " __VA_ARGS__);                      \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

static uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* The pattern is a word per 8 bytes: word k of object id is
 * mix(id) + k * K. Objects up to 64 KiB are filled completely; larger ones
 * at their first and last 4 KiB and one word in every 4 KiB in between (so
 * every page is touched). */
#define PAT_K 0x9E3779B97F4A7C15ULL

static uint64_t pat_word(uint64_t id, size_t k)
{
    uint64_t x = id * 0xff51afd7ed558ccdULL;
    x ^= x >> 29;
    return x + (uint64_t)k * PAT_K;
}

/* Runs body for each range [off, off + len) of an n-byte object that
 * carries the pattern. */
#define FOR_RANGES(n, off, len, body)                                        \
    do {                                                                     \
        if ((n) <= 65536) {                                                  \
            size_t off = 0, len = (n);                                       \
            body;                                                            \
        } else {                                                             \
            for (size_t off = 0; off < (n); off += 4096) {                   \
                size_t len = (off == 0 || off + 8192 > (n)) ? 4096 : 8;      \
                if (off + len > (n))                                         \
                    len = (n) - off;                                         \
                body;                                                        \
            }                                                                \
        }                                                                    \
    } while (0)

static void fill_range(unsigned char *p, size_t off, size_t len, uint64_t id)
{
    /* off is a multiple of 8 */
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w = pat_word(id, (off + i) / 8);
        memcpy(p + off + i, &w, 8);
    }
    if (i < len) {
        uint64_t w = pat_word(id, (off + i) / 8);
        memcpy(p + off + i, &w, len - i);
    }
}

static long check_range(const unsigned char *p, size_t off, size_t len, uint64_t id)
{
    size_t i = 0;
    uint64_t w, v;
    for (; i + 8 <= len; i += 8) {
        w = pat_word(id, (off + i) / 8);
        memcpy(&v, p + off + i, 8);
        if (v != w)
            return (long)(off + i);
    }
    if (i < len) {
        w = pat_word(id, (off + i) / 8);
        if (memcmp(p + off + i, &w, len - i) != 0)
            return (long)(off + i);
    }
    return -1;
}

static void fill(unsigned char *p, size_t n, uint64_t id)
{
    FOR_RANGES(n, off, len, fill_range(p, off, len, id));
}

static long bad_at(const unsigned char *p, size_t n, uint64_t id)
{
    long bad = -1;
    FOR_RANGES(n, off, len, if (bad < 0) bad = check_range(p, off, len, id));
    return bad;
}

static size_t rand_size(uint64_t *s)
{
    unsigned k = (unsigned)(next(s) % 100);
    if (k < 70)
        return 1 + next(s) % 256;
    if (k < 95)
        return 1 + next(s) % 32768;
    return 32769 + next(s) % (2 << 20);
}

typedef struct obj {
    unsigned char *p;
    size_t n;
    uint64_t id;
} obj;

static int obj_new(obj *o, size_t n, uint64_t id, const char *who)
{
    o->p = gort_malloc(n);
    if (!o->p) {
        FAIL("%s: malloc(%zu) failed", who, n);
        return 0;
    }
    o->n = n;
    o->id = id;
    fill(o->p, n, id);
    return 1;
}

static void obj_free(obj *o, const char *who)
{
    long b = bad_at(o->p, o->n, o->id);
    if (b >= 0)
        FAIL("%s: object %" PRIu64 " (%p, %zu bytes) corrupted at %ld", who, o->id,
             (void *)o->p, o->n, b);
    gort_free(o->p);
    o->p = NULL;
}

/* ---- part 1: fork ------------------------------------------------------- */

static obj inherited[NINHERIT];

static void *busy_worker(void *arg)
{
    enum { SLOTS = 128 };
    obj slots[SLOTS];
    uint64_t s = 0x9e3779b97f4a7c15ULL * (uintptr_t)arg + 1, id = (uintptr_t)arg << 40;
    memset(slots, 0, sizeof slots);
    for (unsigned long it = 0; !atomic_load(&stop); it++) {
        /* Busy, but let the forking thread run (valgrind runs one thread
         * at a time). */
        if ((it & 31) == 31)
            sched_yield();
        obj *o = &slots[next(&s) % SLOTS];
        if (o->p)
            obj_free(o, "worker");
        else
            obj_new(o, rand_size(&s), ++id, "worker");
    }
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].p)
            obj_free(&slots[i], "worker");
    return NULL;
}

/* The child: only this thread exists. Report through the exit status. */
static int child_main(int round)
{
    enum { N = 1000 };
    static obj objs[N];
    uint64_t s = 0xabcdef12345ULL + (uint64_t)round;
    long fails = 0;

    /* Inherited objects are intact; free every other one. */
    for (int i = 0; i < NINHERIT; i++) {
        if (bad_at(inherited[i].p, inherited[i].n, inherited[i].id) >= 0) {
            fprintf(stderr, "child %d: inherited object %d corrupted\n", round, i);
            fails++;
        }
        if (i % 2 == round % 2) {
            gort_free(inherited[i].p);
            inherited[i].p = NULL;
        }
    }

    int rounds = (int)(2 * scale) + 1;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < N; i++) {
            size_t n = (i % 200 == 0) ? (size_t)(1 + next(&s) % (4 << 20))
                                      : 1 + next(&s) % ((i & 3) ? 256 : 32768);
            objs[i].p = (i % 3 == 0) ? gort_calloc(1, n) : gort_malloc(n);
            if (!objs[i].p) {
                fprintf(stderr, "child %d: allocation of %zu failed\n", round, n);
                fails++;
                continue;
            }
            if (i % 3 == 0)
                for (size_t k = 0; k < n; k += 512)
                    if (objs[i].p[k]) {
                        fprintf(stderr, "child %d: calloc(%zu) not zeroed\n", round, n);
                        fails++;
                        break;
                    }
            objs[i].n = n;
            objs[i].id = (uint64_t)round << 32 | (uint64_t)(r * N + i);
            fill(objs[i].p, n, objs[i].id);
        }
        /* Free in an interleaved order, re-checking everything. */
        for (int step = 0; step < 2; step++)
            for (int i = step; i < N; i += 2) {
                if (!objs[i].p)
                    continue;
                if (bad_at(objs[i].p, objs[i].n, objs[i].id) >= 0) {
                    fprintf(stderr, "child %d: object %d corrupted\n", round, i);
                    fails++;
                }
                gort_free(objs[i].p);
                objs[i].p = NULL;
            }
    }

    gort_memstats m;
    gort_read_memstats(&m);
    if (m.heap_objects != m.mallocs - m.frees) {
        fprintf(stderr, "child %d: heap_objects %" PRIu64 " != mallocs - frees\n", round,
                m.heap_objects);
        fails++;
    }
    gort_free_os_memory();
    for (int i = 0; i < NINHERIT; i++)
        if (inherited[i].p) {
            if (bad_at(inherited[i].p, inherited[i].n, inherited[i].id) >= 0) {
                fprintf(stderr, "child %d: inherited object %d corrupted\n", round, i);
                fails++;
            }
            gort_free(inherited[i].p);
        }
    return fails ? 1 : 0;
}

/* Wait for pid for at most limit seconds; kill it after that. */
static int wait_deadline(pid_t pid, int *status, int limit)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (int i = 0; i < limit * 100; i++) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return 0;
}

static void test_fork(void)
{
    pthread_t th[NWORKERS];
    uint64_t s = 42;

    for (int i = 0; i < NINHERIT; i++)
        REQUIRE(obj_new(&inherited[i], (i % 20 == 0) ? 100000 + (size_t)i : rand_size(&s),
                        (uint64_t)i + 7, "main"));

    atomic_store(&stop, 0);
    for (uintptr_t i = 0; i < NWORKERS; i++)
        REQUIRE(pthread_create(&th[i], NULL, busy_worker, (void *)(i + 1)) == 0);

    for (int f = 0; f < NFORKS; f++) {
        /* Let the workers get going between forks. */
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0)
            _exit(child_main(f));
        int st = 0;
        int done = wait_deadline(pid, &st, 30);
        CHECK_MSG(done, "fork %d: child did not finish in 30 s (deadlock after fork?)", f);
        if (done)
            CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "fork %d: child %s %d", f,
                      WIFEXITED(st) ? "exited with status" : "killed by signal",
                      WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(th[i], NULL);

    /* The parent's copies are untouched by what the children did. */
    for (int i = 0; i < NINHERIT; i++)
        obj_free(&inherited[i], "main after forks");
}

/* ---- part 2: thread exit ------------------------------------------------ */

#define PER_THREAD 300

typedef struct tjob {
    uint64_t seed;
    obj left[PER_THREAD];   /* objects left for the main thread */
    int nleft;
    obj given[16];          /* objects from the main thread to free here */
    int ngiven;
} tjob;

static void *short_lived(void *arg)
{
    tjob *j = arg;
    uint64_t s = j->seed;
    obj mine[PER_THREAD];
    int kind = (int)(j->seed % 4);

    for (int i = 0; i < j->ngiven; i++)
        obj_free(&j->given[i], "short-lived thread (main's object)");
    j->nleft = 0;
    if (kind == 0) {
        /* Allocate one object and leave at once. */
        obj_new(&j->left[j->nleft++], rand_size(&s), j->seed, "short-lived");
        return NULL;
    }
    for (int i = 0; i < PER_THREAD; i++)
        obj_new(&mine[i], rand_size(&s), j->seed + (uint64_t)i, "short-lived");
    for (int i = 0; i < PER_THREAD; i++) {
        if (!mine[i].p)
            continue;
        if (kind == 1 || (next(&s) & 1))
            obj_free(&mine[i], "short-lived");
        else
            j->left[j->nleft++] = mine[i];
    }
    return NULL;
}

static void test_thread_exit(void)
{
    enum { BATCH = 8 };
    static tjob jobs[BATCH];
    pthread_t th[BATCH];
    gort_memstats before, after;
    int batches = (int)(12 * scale);
    if (batches < 2)
        batches = 2;

    gort_read_memstats(&before);
    for (int b = 0; b < batches; b++) {
        for (int i = 0; i < BATCH; i++) {
            tjob *j = &jobs[i];
            memset(j, 0, sizeof *j);
            j->seed = ((uint64_t)b << 20 | (uint64_t)i << 12) + 1;
            j->ngiven = (int)((uint64_t)(b + i) % 16);
            for (int k = 0; k < j->ngiven; k++)
                REQUIRE(obj_new(&j->given[k], 16 + (size_t)k * 1000, j->seed ^ 0xfeed,
                                "main"));
            REQUIRE(pthread_create(&th[i], NULL, short_lived, j) == 0);
        }
        for (int i = 0; i < BATCH; i++)
            pthread_join(th[i], NULL);
        /* The allocating threads are gone: free what they left. */
        for (int i = 0; i < BATCH; i++)
            for (int k = 0; k < jobs[i].nleft; k++)
                obj_free(&jobs[i].left[k], "main (object of an exited thread)");
    }
    gort_read_memstats(&after);
    CHECK_MSG(after.heap_objects == before.heap_objects,
              "heap_objects %" PRIu64 " before the short-lived threads, %" PRIu64 " after",
              before.heap_objects, after.heap_objects);
    CHECK_MSG(after.mallocs - before.mallocs == after.frees - before.frees,
              "mallocs grew by %" PRIu64 ", frees by %" PRIu64,
              after.mallocs - before.mallocs, after.frees - before.frees);
    CHECK_MSG(after.mallocs - before.mallocs >= (uint64_t)batches * BATCH,
              "mallocs grew by only %" PRIu64, after.mallocs - before.mallocs);
    CHECK_MSG(after.heap_alloc == before.heap_alloc,
              "heap_alloc %" PRIu64 " before, %" PRIu64 " after", before.heap_alloc,
              after.heap_alloc);
}

int main(void)
{
    scale = test_scale();
#ifdef GORT_TSAN
    /* The allocator may start its background thread again in a child, and
     * TSan kills a child of a multi-threaded parent that starts a thread
     * (die_after_fork=0 would let it live, but TSan doesn't support that). */
    printf("TSan build: the fork part is skipped\n");
    (void)test_fork;
#else
    test_fork();
#endif
    test_thread_exit();
    long nf = atomic_load(&failures);
    CHECK_MSG(nf == 0, "%ld failure(s) (first 50 shown)", nf);
    return test_done();
}
