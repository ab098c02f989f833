/* ctx.c (x86-64) - building the first frame of a new context.
 * See switch.S for the frame ctx_switch pops. */
#define _GNU_SOURCE
#include "sched/ctx.h"

#include <stdint.h>
#include <ucontext.h>

void *ctx_init(void *stack_top, void (*fn)(void *), void *arg)
{
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 64);
    sp[0] = 0x1F80 | ((uint64_t)0x037F << 32);   /* MXCSR, x87 control word: defaults */
    sp[1] = 0;                                    /* r15 */
    sp[2] = 0;                                    /* r14 */
    sp[3] = (uint64_t)(uintptr_t)arg;             /* r13 */
    sp[4] = (uint64_t)(uintptr_t)fn;              /* r12 */
    sp[5] = 0;                                    /* rbx */
    sp[6] = 0;                                    /* rbp: ends frame-pointer walks */
    sp[7] = (uint64_t)(uintptr_t)ctx_start;       /* return address */
    return sp;
}

const unsigned long ctx_redzone = 128;

__attribute__((noinline)) int ctx_save_regs(unsigned long *regs, unsigned long *sp)
{
    __asm__ __volatile__("movq %%rbx, 0(%0)\n\t"
                         "movq %%rbp, 8(%0)\n\t"
                         "movq %%r12, 16(%0)\n\t"
                         "movq %%r13, 24(%0)\n\t"
                         "movq %%r14, 32(%0)\n\t"
                         "movq %%r15, 40(%0)\n\t"
                         "movq %%rsp, 0(%1)\n\t"
                         :
                         : "r"(regs), "r"(sp)
                         : "memory");
    return 6;
}

int ctx_uctx_regs(void *uctx, unsigned long *regs, unsigned long *sp)
{
    ucontext_t *uc = uctx;
    int n = 0;
    for (int i = 0; i < NGREG && n < 32; i++)
        regs[n++] = (unsigned long)uc->uc_mcontext.gregs[i];
    *sp = (unsigned long)uc->uc_mcontext.gregs[REG_RSP];
    return n;
}
