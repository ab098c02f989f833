/* showcase.c - what gort does today, on defaults.
 * Grows with each capability of the runtime. */
#include <stdio.h>
#include "gort.h"
int main(void)
{
    void *p = gort_malloc(100);
    gort_free(p);
    gort_memstats m;
    gort_read_memstats(&m);
    gort_print_memstats(&m, stdout);
    return 0;
}
