/* A program of known heap figures whose size is an argument, for the gate's repeat and noise tests.
 *
 * Arguments run in order; the figures are what a heap profiler must report for the process. The program
 * never uses stdio (its buffers would allocate) and allocates nothing outside these steps.
 *
 *   peak=<bytes>            allocates <bytes> at once, writes every byte, frees it:
 *                           heap_peak_bytes = heap_total_bytes = <bytes>, alloc_calls = 1.
 *   jitter=<bytes>          allocates and frees 1 + a random number (below <bytes>) of bytes, so that the
 *                           peak differs from run to run: a stand-in for a nondeterministic program.
 *   leak_on_run=<n>:<file>  counts its runs in <file> (created when missing); on run <n> leaks 64 bytes
 *                           from leak_once() (1 call, 64 bytes live at exit).
 *   crash_on_run=<n>:<file> counts its runs in <file>; on run <n> dies of SIGSEGV.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

void *volatile g_sink;

NOINLINE void peak(size_t bytes) {
    char *block = malloc(bytes);
    memset(block, 1, bytes);
    g_sink = block;
    free(block);
}

NOINLINE void jitter(size_t bytes) {
    unsigned int random = 0;
    if (getrandom(&random, sizeof random, 0) != sizeof random) _exit(70);
    peak(1 + random % bytes);
}

/* The run number kept in <file>: read, add one, write back. Plain system calls: nothing allocates. */
static long next_run(const char *file) {
    char text[32] = {0};
    int fd = open(file, O_RDWR | O_CREAT, 0644);
    if (fd < 0) _exit(71);
    ssize_t got = read(fd, text, sizeof text - 1);
    long run = (got > 0 ? strtol(text, NULL, 10) : 0) + 1;
    int length = 0;
    char digits[32];
    for (long rest = run; rest > 0; rest /= 10) digits[length++] = (char)('0' + rest % 10);
    for (int i = 0; i < length; i++) text[i] = digits[length - 1 - i];
    if (lseek(fd, 0, SEEK_SET) != 0 || write(fd, text, (size_t)length) != length) _exit(72);
    close(fd);
    return run;
}

NOINLINE void leak_once(void) { g_sink = malloc(64); g_sink = NULL; }

NOINLINE void crash(void) {
    volatile int *null = NULL;
    *null = 1;
}

/* "<n>:<file>" -> n, and file pointed at */
static long run_and_file(const char *spec, const char **file) {
    char *end;
    long n = strtol(spec, &end, 10);
    if (*end != ':') _exit(64);
    *file = end + 1;
    return n;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *file;
        if (!strncmp(s, "peak=", 5)) peak((size_t)strtoull(s + 5, NULL, 10));
        else if (!strncmp(s, "jitter=", 7)) jitter((size_t)strtoull(s + 7, NULL, 10));
        else if (!strncmp(s, "leak_on_run=", 12)) {
            long n = run_and_file(s + 12, &file);
            if (next_run(file) == n) leak_once();
        } else if (!strncmp(s, "crash_on_run=", 13)) {
            long n = run_and_file(s + 13, &file);
            if (next_run(file) == n) crash();
        } else return 64;
    }
    return 0;
}
