/* test.h - the few helpers every test program uses.
 *
 * A test is one program: it exits 0 when every check held, and otherwise
 * prints what failed and exits 1. tests/run.sh runs each one as its own
 * process under a timeout, so a hang is a failure too.
 */
#ifndef GORT_TEST_H
#define GORT_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

static int test_failures;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            test_failures++;                                                 \
        }                                                                    \
    } while (0)

#define CHECK_MSG(cond, ...)                                                 \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            test_failures++;                                                 \
        }                                                                    \
    } while (0)

/* Fatal check: later checks would only cascade. */
#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                        \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

/* GORT_TEST_SCALE (a positive number, default 1) scales a test's work. */
static inline double test_scale(void)
{
    const char *s = getenv("GORT_TEST_SCALE");
    double v = s ? strtod(s, NULL) : 1.0;
    return v > 0 ? v : 1.0;
}

/* Under valgrind or TSan (where everything is many times slower). */
static inline int slow_tool(void)
{
#ifdef GORT_TSAN
    return 1;
#endif
#ifdef HAVE_VALGRIND_H
    if (RUNNING_ON_VALGRIND)
        return 1;
#endif
    const char *m = getenv("GORT_TEST_MODE");
    return m && (strcmp(m, "valgrind") == 0 || strcmp(m, "tsan") == 0);
}

/* n scaled by GORT_TEST_SCALE; without it, a tenth under a slow tool. */
static inline long scaled(long n)
{
    int self_scale = slow_tool() && !getenv("GORT_TEST_SCALE");
    long v = (long)((double)n * test_scale() / (self_scale ? 10 : 1));
    return v < 1 ? 1 : v;
}

static inline int test_done(void)
{
    if (test_failures) {
        fprintf(stderr, "%d check(s) failed\n", test_failures);
        return 1;
    }
    return 0;
}

#endif
