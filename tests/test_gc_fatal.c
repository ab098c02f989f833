/* test_gc_fatal.c - misuse of the GC heap is a fatal error that names the address.
 *
 * gort.h: gort_gc_free of a pointer that is not a live GC object is a fatal
 * error; gort_gc_set_finalizer's object must be the start of a GC object.
 * Fatal errors print "fatal error: ..." and exit with status 2.
 *
 * Run with no arguments, the program re-executes itself once per mode (the
 * mode is argv[1]) with stdout and stderr captured in files. The child
 * prints "ptr=<address>" on stdout before the bad call; the parent checks
 * the exit status, the "fatal error" line, and that the address in it is
 * that one. Skipped under qemu-user, which cannot re-execute the program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"

static char global_buf[64];

static void announce(const void *p)
{
    printf("ptr=%p\n", p);
    fflush(stdout);
}

static void fin(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
}

/* Runs in the child. Returns only when the bad call returned. */
static int run_mode(const char *mode)
{
    alarm(30);   /* a hang must not hang the test */
    if (strcmp(mode, "ok") == 0) {
        /* control: correct use is not fatal */
        void *p = gort_gc_alloc(64), *q = gort_gc_alloc(1 << 20);
        announce(p);
        gort_gc_set_finalizer(p, fin, NULL);
        gort_gc_set_finalizer(p, NULL, NULL);
        gort_gc_set_finalizer(p, fin, NULL);
        gort_gc_free(p);
        gort_gc_free(q);
        gort_gc_free(NULL);
        gort_gc_collect();
        return 0;
    }
    if (strcmp(mode, "free_libc_malloc") == 0) {
        void *p = malloc(64);
        announce(p);
        gort_gc_free(p);
    } else if (strcmp(mode, "free_gort_malloc") == 0) {
        void *p = gort_malloc(64);
        announce(p);
        gort_gc_free(p);
    } else if (strcmp(mode, "free_stack") == 0) {
        volatile char buf[64];
        buf[0] = 1;
        announce((void *)buf);
        gort_gc_free((void *)buf);
    } else if (strcmp(mode, "free_global") == 0) {
        announce(global_buf + 8);
        gort_gc_free(global_buf + 8);
    } else if (strcmp(mode, "free_interior") == 0) {
        char *p = gort_gc_alloc(64);
        announce(p + 16);
        gort_gc_free(p + 16);
    } else if (strcmp(mode, "free_twice") == 0) {
        void *p = gort_gc_alloc(48);
        gort_gc_free(p);
        announce(p);
        gort_gc_free(p);
    } else if (strcmp(mode, "free_twice_large") == 0) {
        void *p = gort_gc_alloc(1 << 20);
        gort_gc_free(p);
        announce(p);
        gort_gc_free(p);
    } else if (strcmp(mode, "free_twice_across_cycle") == 0) {
        /* the slot is free again after the sweep: caught, late, by the next one */
        void *p = gort_gc_alloc(48);
        gort_gc_free(p);
        gort_gc_collect();
        announce(p);
        gort_gc_free(p);
        gort_gc_collect();
    } else if (strcmp(mode, "free_twice_across_cycle_busy") == 0) {
        /* the same with neighbours alive, so that the span stays in use */
        static void *volatile keep[64];
        for (int i = 0; i < 64; i++)
            keep[i] = gort_gc_alloc(48);
        void *p = keep[10];
        keep[10] = NULL;
        gort_gc_free(p);
        gort_gc_collect();
        announce(p);
        gort_gc_free(p);
        gort_gc_collect();
    } else if (strcmp(mode, "finalizer_libc_malloc") == 0) {
        void *p = malloc(64);
        announce(p);
        gort_gc_set_finalizer(p, fin, NULL);
    } else if (strcmp(mode, "finalizer_gort_malloc") == 0) {
        void *p = gort_malloc(64);
        announce(p);
        gort_gc_set_finalizer(p, fin, NULL);
    } else if (strcmp(mode, "finalizer_stack") == 0) {
        volatile char buf[64];
        buf[0] = 1;
        announce((void *)buf);
        gort_gc_set_finalizer((void *)buf, fin, NULL);
    } else if (strcmp(mode, "finalizer_interior") == 0) {
        char *p = gort_gc_alloc(64);
        announce(p + 8);
        gort_gc_set_finalizer(p + 8, fin, NULL);
    } else if (strcmp(mode, "finalizer_twice") == 0) {
        void *p = gort_gc_alloc(64);
        gort_gc_set_finalizer(p, fin, NULL);
        gort_gc_set_finalizer(p, fin, NULL);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 4;
    }
    fprintf(stderr, "the bad call returned\n");
    return 42;
}

static char *slurp(FILE *f)
{
    static char buf[2][65536];
    static int next;
    char *b = buf[next++ % 2];
    rewind(f);
    size_t n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = 0;
    return b;
}

/* Runs the child in one mode. want: NULL for no fatal error, else a piece
 * of the message; with_addr: the message must name the announced pointer. */
static void check_mode(const char *self, const char *mode, const char *want, bool with_addr)
{
    FILE *out = tmpfile(), *err = tmpfile();
    REQUIRE(out && err);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fileno(out), 1);
        dup2(fileno(err), 2);
        execl(self, self, mode, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    char *o = slurp(out), *e = slurp(err);
    fclose(out);
    fclose(err);

    if (!want) {
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mode %s: status %#x, want exit 0; "
                  "stderr:\n%s", mode, st, e);
        CHECK_MSG(strstr(e, "fatal error") == NULL, "mode %s: unexpected fatal error:\n%s",
                  mode, e);
        return;
    }
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 2, "mode %s: %s %d, want exit status 2; "
              "stderr:\n%s", mode, WIFEXITED(st) ? "exit status" : "killed by signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), e);
    char *line = strstr(e, "fatal error: ");
    CHECK_MSG(line != NULL, "mode %s: no \"fatal error: \" on stderr; stderr was:\n%s", mode, e);
    if (!line)
        return;
    char *eol = strchr(line, '\n');
    if (eol)
        *eol = 0;
    CHECK_MSG(strstr(line, want) != NULL, "mode %s: \"%s\" does not say \"%s\"", mode, line,
              want);
    if (!with_addr)
        return;
    char *a = strstr(o, "ptr=");
    char *m = strstr(line, "0x");
    CHECK_MSG(a != NULL, "mode %s: child printed no address; stdout:\n%s", mode, o);
    CHECK_MSG(m != NULL, "mode %s: no address in \"%s\"", mode, line);
    if (a && m) {
        uintptr_t ptr = (uintptr_t)strtoull(a + 4, NULL, 16);
        uintptr_t got = (uintptr_t)strtoull(m, NULL, 16);
        CHECK_MSG(got == ptr, "mode %s: \"%s\" names %#" PRIxPTR ", the pointer was %#" PRIxPTR,
                  mode, line, got, ptr);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return run_mode(argv[1]);
    const char *tm = getenv("GORT_TEST_MODE");
    if (tm && strcmp(tm, "qemu") == 0) {
        printf("skipped: re-executes itself (needs binfmt_misc under qemu-user)\n");
        return 77;
    }
    /* /proc/self/exe itself would name valgrind's tool under valgrind */
    static char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0);
    self[n] = 0;

    check_mode(self, "ok", NULL, false);
    check_mode(self, "free_libc_malloc", "gort_gc_free", true);
    check_mode(self, "free_gort_malloc", "gort_gc_free", true);
    check_mode(self, "free_stack", "gort_gc_free", true);
    check_mode(self, "free_global", "gort_gc_free", true);
    check_mode(self, "free_interior", "gort_gc_free", true);
    check_mode(self, "free_twice", "gort_gc_free", true);
    check_mode(self, "free_twice_large", "gort_gc_free", true);
    check_mode(self, "free_twice_across_cycle", "gort_gc_free", true);
    check_mode(self, "free_twice_across_cycle_busy", "gort_gc_free", true);
    check_mode(self, "finalizer_libc_malloc", "gort_gc_set_finalizer", true);
    check_mode(self, "finalizer_gort_malloc", "gort_gc_set_finalizer", true);
    check_mode(self, "finalizer_stack", "gort_gc_set_finalizer", true);
    check_mode(self, "finalizer_interior", "gort_gc_set_finalizer", true);
    check_mode(self, "finalizer_twice", "finalizer already set", false);
    return test_done();
}
