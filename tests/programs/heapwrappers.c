/* Heap allocated through the project's own allocator wrappers (pool_alloc -> pool_take -> xmalloc ->
 * malloc) by two callers, for the heap profilers' stacks (DHAT, massif, heaptrack). Without
 * alloc_wrappers the first three frames of both stacks are the wrappers', so the two callers are one
 * heap site; with them, each is named and located by its caller. Lines marked "site:" are found by
 * the tests. No stdio (its buffers would allocate).
 *
 *   config=<bytes>  load_config() allocates <bytes> in one block
 *   index=<bytes>   build_index() allocates <bytes> in one block
 *
 * Every block stays live until all arguments are done, then all are freed (so that massif takes its
 * peak snapshot): heap_peak_bytes = heap_total_bytes = the sum of the sizes, alloc_calls = the number
 * of arguments, heap_end_bytes = 0.
 */
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))
#define MAX_BLOCKS 16

void *volatile g_last; /* the statement after the call keeps the call's line the caller's line */

NOINLINE void *xmalloc(size_t size) {
    void *block = malloc(size);
    if (block == NULL) abort();
    memset(block, 1, size);
    return block;
}

NOINLINE void *pool_take(size_t size) { return xmalloc(size); }

/* -DINLINE_POOL: pool_alloc is inlined into its callers, so that a profiler reads it from the debug
 * information's inlined frames, not from the stack. */
#ifdef INLINE_POOL
static inline __attribute__((always_inline)) void *pool_alloc(size_t size) { return pool_take(size); }
#else
NOINLINE void *pool_alloc(size_t size) { return pool_take(size); }
#endif

NOINLINE void *load_config(size_t size) {
    void *config = pool_alloc(size); /* site: load_config */
    g_last = config;
    return config;
}

NOINLINE void *build_index(size_t size) {
    void *index = pool_alloc(size); /* site: build_index */
    g_last = index;
    return index;
}

int main(int argc, char **argv) {
    void *blocks[MAX_BLOCKS];
    int count = 0;
    for (int i = 1; i < argc && count < MAX_BLOCKS; i++) {
        char *value = strchr(argv[i], '=');
        if (value == NULL) return 64;
        size_t size = strtoul(value + 1, NULL, 10);
        if (!strncmp(argv[i], "config=", 7)) {
            blocks[count++] = load_config(size);
        } else if (!strncmp(argv[i], "index=", 6)) {
            blocks[count++] = build_index(size);
        } else {
            return 64;
        }
    }
    while (count > 0) free(blocks[--count]);
    return 0;
}
