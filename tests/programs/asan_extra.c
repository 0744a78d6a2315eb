/* Sanitizer report kinds beyond memprog.c: each argument runs one scenario, the kind ASan names it
 * by is written next to it. Sizes and pointers go through volatile variables so that neither gcc nor
 * clang folds the bug away or refuses to compile it.
 */
#include <pthread.h>
#include <sanitizer/lsan_interface.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

void *volatile g_sink;
volatile size_t g_huge = (size_t)1 << 60;
volatile size_t g_count = SIZE_MAX / 2;
volatile int g_zero = 0;
int g_array[8];
void *(*volatile g_memcpy)(void *, const void *, size_t) = memcpy;

/* bad-free: "attempting free on address which was not malloc()-ed" */
NOINLINE void bad_free(void) {
    char *p = malloc(16);
    g_sink = p;
    char *volatile interior = p + 8;
    free(interior);
}

/* allocation-size-too-big: "requested allocation size ... exceeds maximum supported size" */
NOINLINE void size_too_big(void) { g_sink = malloc(g_huge); }

/* calloc-overflow: "calloc parameters overflow" */
NOINLINE void calloc_overflow(void) { g_sink = calloc(g_count, 16); }

/* global-buffer-overflow: a read just past a global array */
NOINLINE int global_overflow(int index) { return ((volatile int *)g_array)[index]; }

/* memcpy-param-overlap */
NOINLINE void memcpy_overlap(void) {
    char buffer[32] = "0123456789abcdefghijklmnopqrstu";
    g_memcpy(buffer, buffer + 4, 16);
    g_sink = buffer[0] ? NULL : buffer;
}

/* FPE: integer division by zero, a deadly signal */
NOINLINE int divide_by_zero(void) { return 10 / g_zero; }

/* stack-overflow: unbounded recursion */
NOINLINE int recurse(int depth) {
    volatile char frame[256];
    frame[0] = (char)depth;
    return recurse(depth + 1) + frame[0];
}

/* N distinct leak sites (recursion depth makes each stack different): 8 bytes each, definite */
NOINLINE void leak_at_depth(int depth) {
    if (depth > 0) {
        leak_at_depth(depth - 1);
        g_sink = NULL;
        return;
    }
    g_sink = malloc(8);
    g_sink = NULL;
}
NOINLINE void leak_sites(int n) {
    for (int i = 0; i < n; i++) leak_at_depth(i);
}

/* a thread leaks 24 bytes in 1 block (definite) */
NOINLINE void *thread_body(void *arg) {
    g_sink = malloc(24);
    g_sink = NULL;
    return arg;
}
NOINLINE void thread_leak(void) {
    pthread_t thread;
    pthread_create(&thread, NULL, thread_body, NULL);
    pthread_join(thread, NULL);
}

/* an explicit leak check in the middle of the run: the 40-byte leak it reports is reported again
 * by the check at exit, with the 8-byte leak made after it; the process leaks 48 bytes in 2 blocks */
NOINLINE void leak_early(void) { g_sink = malloc(40); g_sink = NULL; }
NOINLINE void leak_late(void) { g_sink = malloc(8); g_sink = NULL; }
NOINLINE void recheck(void) {
    leak_early();
    __lsan_do_recoverable_leak_check();
    leak_late();
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "bad_free")) bad_free();
        else if (!strcmp(s, "size_too_big")) size_too_big();
        else if (!strcmp(s, "calloc_overflow")) calloc_overflow();
        else if (!strcmp(s, "global_overflow")) global_overflow(8 + argc - argc);
        else if (!strcmp(s, "memcpy_overlap")) memcpy_overlap();
        else if (!strcmp(s, "divide_by_zero")) divide_by_zero();
        else if (!strcmp(s, "recurse")) recurse(0);
        else if (!strncmp(s, "leak_sites=", 11)) leak_sites(atoi(s + 11));
        else if (!strcmp(s, "thread_leak")) thread_leak();
        else if (!strcmp(s, "recheck")) recheck();
        else { fprintf(stderr, "unknown scenario %s\n", s); return 64; }
    }
    return 0;
}
