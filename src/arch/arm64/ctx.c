/* ctx.c (arm64) - building the first frame of a new context.
 * See switch.S for the frame ctx_switch restores. */
#define _GNU_SOURCE
#include "sched/ctx.h"

#include <stdint.h>
#include <ucontext.h>
#include <string.h>

void *ctx_init(void *stack_top, void (*fn)(void *), void *arg)
{
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 176);
    memset(sp, 0, 176);
    sp[0] = (uint64_t)(uintptr_t)fn;              /* x19 */
    sp[1] = (uint64_t)(uintptr_t)arg;             /* x20 */
    sp[11] = (uint64_t)(uintptr_t)ctx_start;      /* x30: where ret goes */
    return sp;
}

const unsigned long ctx_redzone = 0;

__attribute__((noinline)) int ctx_save_regs(unsigned long *regs, unsigned long *sp)
{
    __asm__ __volatile__("stp x19, x20, [%0, #0]\n\t"
                         "stp x21, x22, [%0, #16]\n\t"
                         "stp x23, x24, [%0, #32]\n\t"
                         "stp x25, x26, [%0, #48]\n\t"
                         "stp x27, x28, [%0, #64]\n\t"
                         "str x29, [%0, #80]\n\t"
                         "mov x9, sp\n\t"
                         "str x9, [%1]\n\t"
                         :
                         : "r"(regs), "r"(sp)
                         : "x9", "memory");
    return 11;
}

int ctx_uctx_regs(void *uctx, unsigned long *regs, unsigned long *sp)
{
    ucontext_t *uc = uctx;
    int n = 0;
    for (int i = 0; i < 31 && n < 32; i++)
        regs[n++] = (unsigned long)uc->uc_mcontext.regs[i];
    *sp = (unsigned long)uc->uc_mcontext.sp;
    return n;
}
