/* ctx.c (arm64) - building the first frame of a new context.
 * See switch.S for the frame ctx_switch restores. */
#include "sched/ctx.h"

#include <stdint.h>
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
