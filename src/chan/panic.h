/* panic.h - defer/panic/recover frames. See panic.c. */
#ifndef GORT_CHAN_PANIC_H
#define GORT_CHAN_PANIC_H

#include <setjmp.h>

#include "runtime.h"

typedef struct gpanic gpanic;

typedef struct gframe {
    jmp_buf jb;
    struct gdefer *defers;
    struct gframe *parent;
} gframe;

void gframe_push(G *gp, gframe *fr);
void gframe_run_defers(G *gp, gframe *fr);
void gframe_pop(G *gp, gframe *fr);
/* gort_goexit: every frame's deferred calls */
void goexit_run_defers(G *gp);

#endif
