/* test_fatal.c - freeing what the allocator never returned is a fatal error.
 *
 * gort.h: freeing a pointer the allocator never returned, or (when it can
 * tell cheaply) freeing twice, prints "fatal error: free of invalid pointer
 * 0x..." and exits with status 2.
 *
 * Run with no arguments, the program re-executes itself once per mode (the
 * mode is argv[1]), with stdout and stderr captured in files. The child
 * prints "ptr=<address>" on stdout before the bad call; the parent checks the
 * exit status, the message, and that the address in the message is that one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gort.h>
#include "test.h"

#define MSG "fatal error: free of invalid pointer 0x"

static char global_buf[64];

static void announce(const void *p)
{
    printf("ptr=%p\n", p);
    fflush(stdout);
}

/* Runs in the child. Returns only when the bad call returned. */
static int run_mode(const char *mode)
{
    alarm(30); /* a hang in the allocator must not hang the test */

    if (strcmp(mode, "ok") == 0) {
        /* Control: valid frees are not fatal. */
        void *p = gort_malloc(64), *q = gort_malloc(1 << 20);
        announce(p);
        gort_free(p);
        gort_free(q);
        gort_free(NULL);
        return 0;
    }
    if (strcmp(mode, "stack") == 0) {
        volatile char buf[64];
        buf[0] = 1;
        char *p = (char *)buf;
        announce(p);
        gort_free(p);
    } else if (strcmp(mode, "global") == 0) {
        announce(global_buf + 16);
        gort_free(global_buf + 16);
    } else if (strcmp(mode, "interior") == 0) {
        char *p = gort_malloc(64);
        if (!p)
            return 3;
        announce(p + 8);
        gort_free(p + 8);
    } else if (strcmp(mode, "interior_large") == 0) {
        char *p = gort_malloc(1 << 20);
        if (!p)
            return 3;
        announce(p + 64 * 1024);
        gort_free(p + 64 * 1024);
    } else if (strcmp(mode, "double") == 0) {
        char *p = gort_malloc(64);
        if (!p)
            return 3;
        gort_free(p);
        announce(p);
        gort_free(p);
    } else if (strcmp(mode, "double_large") == 0) {
        char *p = gort_malloc(1 << 20);
        if (!p)
            return 3;
        gort_free(p);
        announce(p);
        gort_free(p);
    } else if (strcmp(mode, "foreign") == 0) {
        /* A pointer from the C library's malloc: not gort's. */
        char *p = malloc(64);
        if (!p)
            return 3;
        announce(p);
        gort_free(p);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 4;
    }
    fprintf(stderr, "gort_free returned\n");
    return 42;
}

static char *slurp(FILE *f)
{
    static char buf[3][65536];
    static int next;
    char *b = buf[next++ % 3];
    size_t n;
    rewind(f);
    n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = 0;
    return b;
}

/* Runs the child in one mode; fatal says whether the fatal error is expected. */
static void check_mode(const char *self, const char *mode, int fatal)
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

    if (!fatal) {
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "mode %s: status %#x, want exit 0; stderr:\n%s", mode, st, e);
        CHECK_MSG(strstr(e, "fatal error") == NULL, "mode %s: unexpected fatal error:\n%s",
                  mode, e);
        return;
    }
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 2,
              "mode %s: %s %d, want exit status 2; stderr:\n%s", mode,
              WIFEXITED(st) ? "exit status" : "killed by signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), e);
    char *m = strstr(e, MSG);
    CHECK_MSG(m != NULL, "mode %s: no \"%s\" on stderr; stderr was:\n%s", mode, MSG, e);
    char *a = strstr(o, "ptr=");
    CHECK_MSG(a != NULL, "mode %s: child printed no address; stdout:\n%s", mode, o);
    if (m && a) {
        uintptr_t want = (uintptr_t)strtoull(a + 4, NULL, 16);
        uintptr_t got = (uintptr_t)strtoull(m + strlen(MSG), NULL, 16);
        CHECK_MSG(got == want, "mode %s: message names %#" PRIxPTR ", the pointer was %#"
                  PRIxPTR, mode, got, want);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return run_mode(argv[1]);

    /* /proc/self/exe itself would name valgrind's tool under valgrind;
     * readlink gives the program. */
    static char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0);
    self[n] = 0;

    check_mode(self, "ok", 0);
    check_mode(self, "stack", 1);
    check_mode(self, "global", 1);
    check_mode(self, "interior", 1);
    check_mode(self, "interior_large", 1);
    check_mode(self, "double", 1);
    check_mode(self, "double_large", 1);
    check_mode(self, "foreign", 1);
    return test_done();
}
