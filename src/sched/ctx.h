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

/* For the collector's conservative scan of a stopped thread (gc/suspend.c).
 * ctx_save_regs stores the callee-saved registers in regs and returns the
 * number stored and, in *sp, the stack pointer of its own frame, below
 * every frame of its callers. ctx_uctx_regs copies every general register
 * of a signal's ucontext and returns the interrupted stack pointer. At most
 * CTX_MAX_REGS registers. CTX_REDZONE: bytes below SP that leaf code may
 * still use (x86-64's red zone). */
#define CTX_MAX_REGS 32
int ctx_save_regs(unsigned long *regs, unsigned long *sp);
int ctx_uctx_regs(void *uctx, unsigned long *regs, unsigned long *sp);
extern const unsigned long ctx_redzone;

#endif
