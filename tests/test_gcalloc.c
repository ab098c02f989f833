/* test_gcalloc.c - the GC heap's allocation API:
 * zeroed objects in spans of their own kind, early free, realloc, and the
 * fatal errors that keep the two heaps apart. */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "export_test.h"
#include "gort.h"
#include "test.h"

/* Run fn in a child; it must die with status 2. */
static void expect_fatal(void (*fn)(void), const char *what)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int devnull = dup(2);
        (void)devnull;
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: exit status %d, want 2", what,
              WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void gcfree_manual(void) { gort_gc_free(gort_malloc(32)); }
static void free_gc(void) { gort_free(gort_gc_alloc(32)); }
static void free_gc_large(void) { gort_free(gort_gc_alloc(1 << 20)); }
static void gcfree_twice(void)
{
    void *p = gort_gc_alloc(48);
    gort_gc_free(p);
    gort_gc_free(p);
}
static void gcfree_stack(void)
{
    int x;
    gort_gc_free(&x);
}

int main(void)
{
    /* zeroed, even when the memory was used before */
    for (int round = 0; round < 2; round++) {
        for (size_t n = 1; n <= (1 << 18); n = n * 3 + 1) {
            unsigned char *p = gort_gc_alloc(n);
            REQUIRE(p);
            for (size_t i = 0; i < n; i++)
                if (p[i]) {
                    CHECK_MSG(0, "gc_alloc(%zu) byte %zu not zero", n, i);
                    break;
                }
            memset(p, 0xEE, n);
            gort_gc_free(p);
        }
    }
    /* GC objects and malloc'd ones never share a span */
    void *g = gort_gc_alloc(64), *ns = gort_gc_alloc_noscan(64), *m = gort_malloc(64);
    CHECK(test_spanof(g)->kind == HEAP_GC);
    CHECK(test_spanof(ns)->kind == HEAP_GC_NOSCAN);
    CHECK(test_spanof(m)->kind == HEAP_MANUAL);
    CHECK(test_spanof(g) != test_spanof(m) && test_spanof(ns) != test_spanof(m));
    /* realloc keeps the contents and the kind */
    char *r = gort_gc_realloc(NULL, 10);
    memcpy(r, "123456789", 10);
    r = gort_gc_realloc(r, 5000);
    CHECK(strcmp(r, "123456789") == 0);
    CHECK(test_spanof(r)->kind == HEAP_GC);
    for (int i = 10; i < 5000; i++)
        if (r[i]) {
            CHECK_MSG(0, "grown GC object byte %d not zero", i);
            break;
        }
    gort_gc_free(r);
    gort_gc_free(g);
    gort_gc_free(ns);
    gort_free(m);
    test_heap_verify();
    /* the heaps are kept apart */
    expect_fatal(gcfree_manual, "gort_gc_free of a malloc'd pointer");
    expect_fatal(free_gc, "gort_free of a GC object");
    expect_fatal(free_gc_large, "gort_free of a large GC object");
    expect_fatal(gcfree_twice, "gort_gc_free twice");
    expect_fatal(gcfree_stack, "gort_gc_free of a stack address");
    return test_done();
}
