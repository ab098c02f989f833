/* env.c - reading the environment: GORT_DEBUG and friends.
 *
 * GORT_DEBUG is a comma-separated list of name=value pairs in GODEBUG's
 * style (gctrace=1,schedtrace=1000). Values are integers. Parsing uses no
 * allocation (getenv and a scan), so the allocator may ask at any time.
 * Known names are documented in README.md and src/HACKING.md.
 */
#include "runtime.h"

#include <stdlib.h>

int64_t debug_int(const char *name, int64_t def)
{
    const char *s = getenv("GORT_DEBUG");
    if (!s)
        return def;
    size_t nl = 0;
    while (name[nl])
        nl++;
    while (*s) {
        const char *e = s;
        while (*e && *e != ',' && *e != '=')
            e++;
        if ((size_t)(e - s) == nl && *e == '=') {
            size_t i = 0;
            while (i < nl && s[i] == name[i])
                i++;
            if (i == nl) {
                const char *v = e + 1;
                int neg = *v == '-';
                if (neg)
                    v++;
                int64_t x = 0;
                int any = 0;
                while (*v >= '0' && *v <= '9') {
                    x = x * 10 + (*v++ - '0');
                    any = 1;
                }
                if (any)
                    return neg ? -x : x;
            }
        }
        while (*e && *e != ',')
            e++;
        s = *e ? e + 1 : e;
    }
    return def;
}
