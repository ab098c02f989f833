/* ctx.c (x86-64) - building the first frame of a new context.
 * See switch.S for the frame ctx_switch pops. */
#include "sched/ctx.h"

#include <stdint.h>

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
