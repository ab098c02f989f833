/* gort_test.h - helpers for tests that run goroutines (include after
 * <gort.h> and test.h). */
#ifndef GORT_GORT_TEST_H
#define GORT_GORT_TEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gort.h"

#ifndef MS
#define MS ((int64_t)1000000)
#endif
#ifndef SEC
#define SEC ((int64_t)1000000000)
#endif

/* Lets the other goroutines run until *v >= want or `secs` pass: yields
 * first, then sleeps in half-millisecond steps. 0 on time-out. */
static inline int wait_ge(atomic_int *v, int want, int secs)
{
    int64_t deadline = gort_nanotime() + secs * SEC;
    for (long i = 0; atomic_load(v) < want; i++) {
        if (gort_nanotime() > deadline)
            return 0;
        if (i < 1000)
            gort_yield();
        else
            gort_sleep(MS / 2);
    }
    return 1;
}

/* try_call: run fn(arg) in a frame of its own with a deferred recover;
 * returns a copy of the recovered panic message (NULL if none) and tells
 * whether fn returned normally. */
typedef struct try_t {
    gort_fn fn;
    void *arg;
    char *msg;
    bool completed;
} try_t;

static inline void try_recover(void *arg)
{
    try_t *t = arg;
    const char *m = gort_recover();
    t->msg = m ? strdup(m) : NULL;
}

static inline void try_body(void *arg)
{
    try_t *t = arg;
    gort_defer(try_recover, t);
    t->fn(t->arg);
    t->completed = true;
}

static inline char *try_call(gort_fn fn, void *arg, bool *completed)
{
    try_t t = {fn, arg, NULL, false};
    gort_call(try_body, &t);
    if (completed)
        *completed = t.completed;
    return t.msg;
}

#endif
