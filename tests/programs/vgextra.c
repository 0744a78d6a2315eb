/* memgate's extra Valgrind scenarios (memprog.c has the common ones): repeated errors, the memcheck
 * error kinds memprog does not produce, and allocation calls of every flavour.
 * Each argument runs one scenario; the figures the tests assert are written next to each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <valgrind/memcheck.h>

#define NOINLINE __attribute__((noinline))

void *volatile g_sink;

/* InvalidRead: n occurrences of one context (one <error>, counted n times in <errorcounts>) */
NOINLINE int repeat_read(int n) {
    int total = 0;
    int *a = malloc(8 * sizeof(int));
    memset(a, 0, 8 * sizeof(int));
    for (int i = 0; i < n; i++) total += ((volatile int *)a)[8];
    free(a);
    return total;
}

/* UninitCondition: one conditional jump on an uninitialised heap value */
NOINLINE int uninit_cond(void) {
    int *a = malloc(sizeof(int));
    volatile int *value = a;
    int result = 0;
    if (*value > 3) result = 1;
    free(a);
    return result;
}

/* SyscallParam: write() of 16 uninitialised bytes */
NOINLINE void syscall_param(void) {
    char *buf = malloc(16);
    int fd = open("/dev/null", O_WRONLY);
    if (write(fd, buf, 16) < 0) perror("write");
    close(fd);
    free(buf);
}

/* Overlap: strcpy with overlapping source and destination (glibc's memcpy is memmove for memcheck) */
NOINLINE void overlap(void) {
    char *buf = malloc(64);
    memset(buf, 'x', 63);
    buf[63] = '\0';
    char *volatile source = buf + 4;
    strcpy(buf, source);
    free(buf);
}

/* FishyValue: malloc of a negative size */
NOINLINE void fishy(void) {
    volatile long size = -8;
    g_sink = malloc((size_t)size);
}

/* ClientCheck: VALGRIND_CHECK_MEM_IS_DEFINED on uninitialised bytes */
NOINLINE void client_check(void) {
    char *buf = malloc(8);
    VALGRIND_CHECK_MEM_IS_DEFINED(buf, 8);
    free(buf);
}

/* InvalidFree of a stack address */
NOINLINE void free_stack(void) {
    int local = 0;
    void *volatile address = &local;
    free(address);
}

/* allocation calls: 1 malloc + 1 calloc + 3 realloc (each a new block for memcheck) + 1 strdup,
 * all freed: 6 allocs, 6 frees, 16 + 40 + 32 + 64 + 128 + 6 = 286 bytes allocated */
NOINLINE void alloc_kinds(void) {
    char *a = malloc(16);
    char *b = calloc(5, 8);
    a = realloc(a, 32);
    a = realloc(a, 64);
    a = realloc(a, 128);
    char *c = strdup("hello");
    free(a);
    free(b);
    free(c);
}

/* a definite leak whose child is itself a parent: 3 levels, one definite (16) owning two indirect (16 + 16) */
struct link { struct link *next; char pad[8]; };
NOINLINE void leak_chain(void) {
    struct link *a = malloc(sizeof *a), *b = malloc(sizeof *b), *c = malloc(sizeof *c);
    a->next = b; b->next = c; c->next = NULL;
    g_sink = a;
    g_sink = NULL;
}

/* a leak search in the middle of the run (16 bytes lost), then 32 more bytes lost: the final search
 * reports definite 48 bytes in 2 blocks; the first search's records must not be added to it */
NOINLINE void leak_twice(void) {
    g_sink = malloc(16);
    g_sink = NULL;
    VALGRIND_DO_LEAK_CHECK;
    g_sink = malloc(32);
    g_sink = NULL;
}

/* a definite leak of 24 bytes and an invalid read of 4, both at the bottom of n nested calls: the
 * long stacks (up to --num-callers frames) of a real test suite */
NOINLINE int descend(int n) {
    if (n > 0) return descend(n - 1) + 1;
    g_sink = malloc(24);
    g_sink = NULL;
    return repeat_read(1);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strncmp(s, "repeat_read=", 12)) repeat_read(atoi(s + 12));
        else if (!strcmp(s, "uninit_cond")) uninit_cond();
        else if (!strcmp(s, "syscall_param")) syscall_param();
        else if (!strcmp(s, "overlap")) overlap();
        else if (!strcmp(s, "fishy")) fishy();
        else if (!strcmp(s, "client_check")) client_check();
        else if (!strcmp(s, "free_stack")) free_stack();
        else if (!strcmp(s, "alloc_kinds")) alloc_kinds();
        else if (!strcmp(s, "leak_chain")) leak_chain();
        else if (!strcmp(s, "leak_twice")) leak_twice();
        else if (!strncmp(s, "deep=", 5)) descend(atoi(s + 5));
        else { fprintf(stderr, "unknown scenario %s\n", s); return 64; }
    }
    return 0;
}
