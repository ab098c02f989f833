/* ctx.h - the machine-dependent context switch (src/arch/<arch>/).
 *
 * A context is just a saved stack pointer: ctx_switch pushes the
 * callee-saved registers and FP control words on the running stack, stores
 * SP in *save_sp and resumes the context whose SP is new_sp. ctx_init
 * builds, at the top of a fresh stack, the frame that makes the first
 * switch to it call fn(arg). fn must never return.
 */
#ifndef GORT_SCHED_CTX_H
#define GORT_SCHED_CTX_H

void ctx_switch(void **save_sp, void *new_sp);
void ctx_start(void);
void *ctx_init(void *stack_top, void (*fn)(void *), void *arg);

#endif
