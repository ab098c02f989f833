/* stack.h - goroutine stacks. See stack.c. */
#ifndef GORT_SCHED_STACK_H
#define GORT_SCHED_STACK_H

#include "runtime.h"

size_t stack_g_size(void);
/* A new G with a fresh stack of the current size (G zeroed but for its
 * stack fields). NULL if the address space is exhausted. */
G *stack_alloc_g(void);
size_t stack_size_of(G *gp);
size_t stack_current_size(void);
/* Canary check (stacks without a guard page). */
void stack_check(G *gp);
/* A dead G: give back the pages of a stack that went deep. */
void stack_release_deep(G *gp);
/* A G that is retired for good (its stack size is no longer used). */
void stack_release_all(G *gp);
_Noreturn void stack_overflow(G *gp);
void stack_install_handler(void);
void stack_altstack(M *mp);

#endif
