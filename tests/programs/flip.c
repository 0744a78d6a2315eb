/* One 64-byte leak that memcheck classifies by the pointers left at exit: none (built plain):
 * "definitely lost"; only one into its middle (built with -DINTERIOR): "possibly lost". The same
 * flip happens on unchanged code when a stale interior pointer stays in a register or on the stack.
 * -DEXTRA adds a real new leak at another site. */
#include <stdlib.h>
#include <string.h>

#ifdef INTERIOR
char *volatile g_interior; /* points one byte into the block */
#endif
void *volatile g_sink;

static __attribute__((noinline)) void make_table(void) {
    char *table = malloc(64);
    memset(table, 1, 64);
#ifdef INTERIOR
    g_interior = table + 1;
#endif
    table = NULL;
}

#ifdef EXTRA
static __attribute__((noinline)) void extra_leak(void) {
    char *more = malloc(24);
    memset(more, 2, 24);
    g_sink = more;
    g_sink = NULL;
}
#endif

int main(void) {
    make_table();
#ifdef EXTRA
    extra_leak();
#endif
    return 0;
}
