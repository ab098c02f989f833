/* pipeline.c - a concurrent prime sieve: a chain of goroutines joined by
 * channels, each filtering out the multiples of one prime (the classic Go
 * example), stopped cleanly with a done channel and select. */
#include <stdio.h>

#include "gort.h"

typedef struct filter {
    gort_chan *in, *out, *done;
    long prime;
} filter;

static gort_chan *done;

static void generate(void *arg)
{
    gort_chan *out = arg;
    for (long i = 2;; i++) {
        gort_case cs[2] = {{out, GORT_SEND, &i, false}, {done, GORT_RECV, NULL, false}};
        if (gort_select(cs, 2, true) == 1)
            return;   /* done was closed */
    }
}

static void run_filter(void *arg)
{
    filter *f = arg;
    long n;
    for (;;) {
        gort_case in[2] = {{f->in, GORT_RECV, &n, false}, {f->done, GORT_RECV, NULL, false}};
        if (gort_select(in, 2, true) == 1)
            return;
        if (n % f->prime == 0)
            continue;
        gort_case out[2] = {{f->out, GORT_SEND, &n, false}, {f->done, GORT_RECV, NULL, false}};
        if (gort_select(out, 2, true) == 1)
            return;
    }
}

static void main_goroutine(void *arg)
{
    int nprimes = *(int *)arg;
    done = gort_chan_make(0, 0);
    gort_chan *ch = gort_chan_make(sizeof(long), 0);
    gort_go(generate, ch);
    static filter filters[1000];
    for (int i = 0; i < nprimes; i++) {
        long p;
        gort_chan_recv(ch, &p);
        printf("%ld%c", p, i + 1 < nprimes ? ' ' : '\n');
        filter *f = &filters[i];
        *f = (filter){ch, gort_chan_make(sizeof(long), 0), done, p};
        gort_go(run_filter, f);
        ch = f->out;
    }
    gort_chan_close(done);   /* every goroutine of the chain returns */
}

int main(void)
{
    static int n = 100;
    return gort_main(main_goroutine, &n);
}
