/* sema.h - the runtime semaphore. See sema.c. */
#ifndef GORT_SYNC_SEMA_H
#define GORT_SYNC_SEMA_H

#include <stdbool.h>
#include <stdint.h>

void semacquire(uint32_t *addr, bool lifo);
void semrelease(uint32_t *addr, bool handoff);

#endif
