/* Allocation through the project's own allocator wrappers, as real projects do (git's xstrdup ->
 * xmemdupz -> xmalloc): xstrdup -> xmemdup -> xmalloc -> malloc. Without alloc_wrappers the first
 * three frames of both leaks are the wrappers, so two different leaks are one site; with them, each
 * leak is named and located by its caller. Lines marked "site:" are found by the tests.
 *
 *   leaks     definite: 7 bytes in 1 block from leak_in_parser, 21 bytes in 1 block from leak_in_logger
 *   bad_read  one invalid read of 1 byte just past a 4-byte block allocated through the wrappers
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

void *volatile g_sink; /* keeps the optimiser from dropping allocations */

NOINLINE void *xmalloc(size_t size) {
    void *block = malloc(size);
    if (block == NULL) abort();
    return block;
}

NOINLINE void *xmemdup(const void *data, size_t size) { return memcpy(xmalloc(size), data, size); }

NOINLINE char *xstrdup(const char *text) { return xmemdup(text, strlen(text) + 1); }

NOINLINE void leak_in_parser(void) {
    g_sink = xstrdup("parser"); /* site: leak_in_parser */
    g_sink = NULL;
}

NOINLINE void leak_in_logger(void) {
    g_sink = xstrdup("a longer logger line"); /* site: leak_in_logger */
    g_sink = NULL;
}

NOINLINE int read_past(void) {
    char *text = xstrdup("abc");
    int value = ((volatile char *)text)[4]; /* site: read_past */
    free(text);
    return value;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "leaks")) {
            leak_in_parser();
            leak_in_logger();
        } else if (!strcmp(argv[i], "bad_read")) {
            read_past();
        } else {
            fprintf(stderr, "unknown scenario %s\n", argv[i]);
            return 64;
        }
    }
    return 0;
}
