/* throw.c - fatal errors and allocation-free printing.
 *
 * throw is the one way the runtime dies: "fatal error: <msg>" on stderr and
 * exit status 2, as Go. It must work anywhere: with the heap lock held, from
 * inside malloc, with the heap corrupt. So it formats into a stack buffer
 * with a tiny printf of its own (%s %d %u %x %p %zu %lld %llu) and writes
 * with write(2); it never calls malloc, stdio or atexit handlers. In a
 * goroutine it also prints the goroutine's traceback: backtrace() loads its
 * unwinder with malloc on first use, so gort_main primes it at start
 * (throw_prime_traceback) and throw only unwinds once primed.
 */
#include "runtime.h"

#include <execinfo.h>
#include <stdarg.h>

typedef struct pbuf {
    char b[512];
    size_t n;
} pbuf;

static void put(pbuf *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n && p->n < sizeof p->b; i++)
        p->b[p->n++] = s[i];
}

static void putu(pbuf *p, unsigned long long v, unsigned base)
{
    char t[32];
    int i = 0;
    do {
        t[i++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (i)
        put(p, &t[--i], 1);
}

static void vformat(pbuf *p, const char *fmt, va_list ap)
{
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(p, f, 1);
            continue;
        }
        f++;
        int longs = 0, sz = 0;
        while (*f == 'l') {
            longs++;
            f++;
        }
        if (*f == 'z') {
            sz = 1;
            f++;
        }
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            size_t n = 0;
            while (s[n])
                n++;
            put(p, s, n);
            break;
        }
        case 'd': {
            long long v = longs ? va_arg(ap, long long) : va_arg(ap, int);
            if (v < 0) {
                put(p, "-", 1);
                putu(p, 0ULL - (unsigned long long)v, 10);
            } else {
                putu(p, (unsigned long long)v, 10);
            }
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = sz ? va_arg(ap, size_t)
                                 : longs ? va_arg(ap, unsigned long long)
                                         : va_arg(ap, unsigned);
            putu(p, v, *f == 'x' ? 16 : 10);
            break;
        }
        case 'p':
            put(p, "0x", 2);
            putu(p, (uintptr_t)va_arg(ap, void *), 16);
            break;
        case '%':
            put(p, "%", 1);
            break;
        default:
            put(p, "%?", 2);
            if (!*f)
                f--;
            break;
        }
    }
}

void printerr(const char *fmt, ...)
{
    pbuf p = {.n = 0};
    va_list ap;
    va_start(ap, fmt);
    vformat(&p, fmt, ap);
    va_end(ap);
    os_write_stderr(p.b, p.n);
}

static _Atomic bool traceback_ready;

void throw_prime_traceback(void)
{
    void *pc[2];
    backtrace(pc, 2);
    atomic_store(&traceback_ready, true);
}

static void traceback(void)
{
    G *gp = getg();
    if (!gp || !atomic_load(&traceback_ready))
        return;
    printerr("\ngoroutine %d [running]:\n", (int)gp->goid);
    void *pcs[64];
    int n = backtrace(pcs, 64);
    backtrace_symbols_fd(pcs, n, 2);
}

_Noreturn void throwf(const char *fmt, ...)
{
    pbuf p = {.n = 0};
    put(&p, "fatal error: ", 13);
    va_list ap;
    va_start(ap, fmt);
    vformat(&p, fmt, ap);
    va_end(ap);
    put(&p, "\n", 1);
    os_write_stderr(p.b, p.n);
    traceback();
    os_exit(2);
}

_Noreturn void throw(const char *msg)
{
    throwf("%s", msg);
}
