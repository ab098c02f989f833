/* fixalloc.c - fixed-size allocator for runtime metadata.
 *
 * Spans, caches and (later) Gs and sudogs are not allocated from the arenas:
 * the heap's own bookkeeping must not live in the memory it manages (the GC
 * would scan it, a page released under it would lose it, and the allocator
 * would recurse into itself). fixalloc carves objects of one size out of
 * 256 KiB chunks mapped straight from the OS and keeps freed objects on a
 * list. It never returns memory to the OS, which makes every metadata
 * pointer type-stable: a racing reader may see an old object, never an
 * unmapped one (the page map depends on this).
 *
 * Not thread-safe: each instance is protected by a lock its owner names.
 * See malloc.c for the overview.
 */
#include "alloc/malloc.h"

#include <string.h>

#define FIXALLOC_CHUNK (256 * 1024)

void fixalloc_init(fixalloc *f, size_t size)
{
    memset(f, 0, sizeof *f);
    f->size = (size + 15) & ~(size_t)15;
}

void *fixalloc_alloc(fixalloc *f)
{
    void *p;
    if (f->list) {
        p = f->list;
        f->list = *(void **)p;
        memset(p, 0, f->size);
    } else {
        if (f->nchunk < f->size) {
            size_t n = f->size > FIXALLOC_CHUNK ? f->size : FIXALLOC_CHUNK;
            char *c = os_alloc(n);
            if (!c)
                return NULL;
            f->chunk = c;
            f->nchunk = n;
            f->sys += n;
        }
        p = f->chunk;           /* fresh from the OS: already zero */
        f->chunk += f->size;
        f->nchunk -= f->size;
    }
    f->inuse += f->size;
    return p;
}

void fixalloc_free(fixalloc *f, void *p)
{
    f->inuse -= f->size;
    *(void **)p = f->list;
    f->list = p;
}
