/* Heap-profile scenarios of known figures for the dhat, massif, memusage, heaptrack and rusage tools.
 *
 * Each argument runs one scenario; the figures next to each one are what a heap profiler must report for
 * a process that runs only that scenario. The program itself never prints (stdio would allocate a
 * buffer) and allocates nothing outside the scenarios, so a tool's figure is the scenario's figure.
 * Sizes are requested bytes; "calls" counts successful malloc, calloc and realloc calls (a realloc to 0
 * bytes is a free, not an allocation).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define MiB (1024 * 1024)

void *volatile g_sink; /* keeps the optimiser from dropping allocations */
void *volatile g_leak; /* still pointed to at exit */

/* peak: keeps 1,000 bytes, allocates and frees 3 MiB, then 5 MiB at once.
 * peak 5,243,880 bytes (5 MiB + 1,000); total 8,389,608; 3 calls; 0 bytes live at exit. */
NOINLINE void peak(void) {
    char *keep = malloc(1000);
    char *three = malloc(3 * MiB);
    memset(three, 1, 3 * MiB);
    free(three);
    char *five = malloc(5 * MiB);
    memset(five, 1, 5 * MiB);
    free(five);
    free(keep);
}

/* calls: 10 malloc(100), 5 calloc(4, 50), 4 realloc growing 4 of the 100-byte blocks to 400,
 * 1 realloc(NULL, 300), 1 realloc(block, 0) freeing the last 100-byte block.
 * 20 allocation calls (10 + 5 + 4 + 1); peak 3,500 bytes (6 x 100 + 5 x 200 + 4 x 400 + 300, just before
 * the realloc to 0); 0 bytes live at exit.
 * Total bytes differ by definition: a growing realloc counts its whole new size for DHAT and heaptrack
 * (10 x 100 + 5 x 200 + 4 x 400 + 300 = 3,900) but only the growth for memusage (1,000 + 1,000 +
 * 4 x 300 + 300 = 3,500). */
NOINLINE void calls(void) {
    void *small[10];
    void *zeroed[5];
    for (int i = 0; i < 10; i++) small[i] = malloc(100);
    for (int i = 0; i < 5; i++) zeroed[i] = calloc(4, 50);
    for (int i = 0; i < 4; i++) small[i] = realloc(small[i], 400);
    void *from_null = realloc(NULL, 300);
    g_sink = realloc(small[9], 0); /* frees the block; returns NULL */
    for (int i = 0; i < 9; i++) free(small[i]);
    for (int i = 0; i < 5; i++) free(zeroed[i]);
    free(from_null);
}

/* failed_malloc: one malloc of 1 TiB that fails: 0 allocation calls, 0 bytes. */
NOINLINE void failed_malloc(void) { g_sink = malloc((size_t)1 << 40); }

/* leak: 4,096 bytes in 1 block still live at exit; peak 4,096; 1 call. */
NOINLINE void leak(void) { g_leak = malloc(4096); }

/* fork: the parent keeps 1,000 bytes across a fork; the child allocates and frees 2,000 bytes, then
 * exits normally. Parent: peak 1,000, total 1,000, 1 call. The child inherits the parent's heap and,
 * under DHAT, massif and memusage, its counters: peak 3,000, total 3,000, 2 calls, 1,000 live at exit. */
NOINLINE void child_work(void) {
    g_sink = malloc(2000);
    free((void *)g_sink);
}
NOINLINE void fork_child(void) {
    char *keep = malloc(1000);
    pid_t pid = fork();
    if (pid == 0) {
        child_work();
        exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    free(keep);
}

/* spawn=<scenario>: fork and exec this program running <scenario>; the parent allocates nothing. */
NOINLINE void spawn(const char *self, const char *scenario) {
    pid_t pid = fork();
    if (pid == 0) {
        char *const args[] = {(char *)self, (char *)scenario, NULL};
        execv(self, args);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
}

/* threads: 4 threads each run 1,000 malloc(64)/free pairs: 4,000 calls from the scenario, plus what
 * the C library allocates per thread (thread-local storage): the tests pin that figure. The peak
 * depends on scheduling. */
#define THREADS 4
#define PER_THREAD 1000
static void *thread_churn(void *unused) {
    (void)unused;
    for (int i = 0; i < PER_THREAD; i++) {
        void *p = malloc(64);
        memset(p, 0, 64);
        free(p);
    }
    return NULL;
}
NOINLINE void threads(void) {
    pthread_t ids[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&ids[i], NULL, thread_churn, NULL);
    for (int i = 0; i < THREADS; i++) pthread_join(ids[i], NULL);
}

/* grow: the heap grows in 20,000 small steps (a 64-byte block, then a 32-byte one kept, then the 64-byte
 * one freed), then everything is freed. peak 640,064 bytes (20,000 x 32 + 64); total 1,920,000;
 * 40,000 calls. A heap that only creeps up is where massif's default 1% peak inaccuracy shows. */
#define GROW_STEPS 20000
static void *g_grown[GROW_STEPS];
NOINLINE void grow(void) {
    for (int i = 0; i < GROW_STEPS; i++) {
        void *step = malloc(64);
        g_grown[i] = malloc(32);
        free(step);
    }
    for (int i = 0; i < GROW_STEPS; i++) free(g_grown[i]);
}

/* touch=<MiB>: allocates N MiB and writes every page, for the resident-set (rusage) figures. */
NOINLINE void touch(int mib) {
    char *block = malloc((size_t)mib * MiB);
    memset(block, 1, (size_t)mib * MiB);
    g_sink = block;
    free(block);
}

/* crash: allocates 1,000 bytes, then dies of SIGSEGV. */
NOINLINE void crash(void) {
    g_leak = malloc(1000);
    volatile int *null = NULL;
    *null = 1;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "peak")) peak();
        else if (!strcmp(s, "calls")) calls();
        else if (!strcmp(s, "failed_malloc")) failed_malloc();
        else if (!strcmp(s, "leak")) leak();
        else if (!strcmp(s, "fork")) fork_child();
        else if (!strncmp(s, "spawn=", 6)) spawn(argv[0], s + 6);
        else if (!strcmp(s, "threads")) threads();
        else if (!strcmp(s, "grow")) grow();
        else if (!strncmp(s, "touch=", 6)) touch(atoi(s + 6));
        else if (!strcmp(s, "crash")) crash();
        else if (!strcmp(s, "exit3")) return 3;
        else return 64;
    }
    return 0;
}
