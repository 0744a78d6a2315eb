/* memgate's test program: each argument runs one scenario of known memory behaviour.
 *
 * The figures the tests assert are written next to each scenario. Functions are noinline so that
 * stacks (and so fingerprints) are the same under every compiler and optimisation level.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

struct node {
    struct node *child; /* 8 bytes */
    char pad[24];       /* 32 bytes in all */
};

void *volatile g_reachable; /* still reachable at exit */
char *volatile g_interior;  /* points inside a block: "possibly lost" for memcheck */
void *volatile g_sink;      /* keeps the optimiser from dropping allocations */

/* definite: 16 bytes in 1 block */
NOINLINE void leak_small(void) { g_sink = malloc(16); g_sink = NULL; }

/* definite: 300 bytes in 3 blocks, one site */
NOINLINE void leak_many(void) {
    for (int i = 0; i < 3; i++) { g_sink = malloc(100); }
    g_sink = NULL;
}

/* definite: 32 bytes in 1 block (the parent); indirect: 64 bytes in 1 block (its child) */
NOINLINE void leak_tree(void) {
    struct node *parent = malloc(sizeof *parent);
    parent->child = malloc(64);
    g_sink = parent;
    g_sink = NULL;
}

/* possibly lost (memcheck): 48 bytes in 1 block, only an interior pointer remains */
NOINLINE void leak_possible(void) { g_interior = (char *)malloc(48) + 8; }

/* still reachable: 128 bytes in 1 block */
NOINLINE void leak_reachable(void) { g_reachable = malloc(128); }

/* heap-buffer-overflow / InvalidRead of 4 bytes just past a 40-byte block */
NOINLINE int invalid_read(void) {
    int *a = malloc(10 * sizeof(int));
    memset(a, 0, 10 * sizeof(int));
    int value = ((volatile int *)a)[10];
    free(a);
    return value;
}

/* heap-buffer-overflow / InvalidWrite of 4 bytes just past a 40-byte block */
NOINLINE void invalid_write(void) {
    int *a = malloc(10 * sizeof(int));
    ((volatile int *)a)[10] = 1;
    free(a);
}

/* heap-use-after-free / InvalidRead of 4 bytes inside a freed 40-byte block */
NOINLINE int use_after_free(void) {
    int *a = malloc(10 * sizeof(int));
    a[2] = 7;
    free(a);
    return ((volatile int *)a)[2];
}

/* double-free / InvalidFree */
NOINLINE void double_free(void) {
    void *p = malloc(24);
    g_sink = p;
    free(p);
    free((void *)g_sink);
}

/* stack-buffer-overflow (ASan only; memcheck does not see stack overruns) */
NOINLINE int stack_overflow(int index) {
    volatile int local[4] = {0, 1, 2, 3};
    return local[index];
}

/* the child leaks 200 bytes in 1 block (definite), then exits normally; the parent leaks nothing */
NOINLINE void child_work(void) { g_sink = malloc(200); g_sink = NULL; }
NOINLINE void fork_child_leak(void) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        child_work();
        exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
}

/* N malloc/free pairs of 32 bytes: N allocation calls, no leak */
NOINLINE void churn(int n) {
    for (int i = 0; i < n; i++) {
        g_sink = malloc(32);
        free((void *)g_sink);
    }
    g_sink = NULL;
}

/* leaks 16 bytes, then dies of SIGSEGV: no leak report can follow */
NOINLINE void crash(void) {
    leak_small();
    volatile int *null = NULL;
    *null = 1;
}

/* leaks 16 bytes, then waits forever: only a timeout ends it */
NOINLINE void hang(void) {
    leak_small();
    for (;;) pause();
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "leak_small")) leak_small();
        else if (!strcmp(s, "leak_many")) leak_many();
        else if (!strcmp(s, "leak_tree")) leak_tree();
        else if (!strcmp(s, "leak_possible")) leak_possible();
        else if (!strcmp(s, "leak_reachable")) leak_reachable();
        else if (!strcmp(s, "invalid_read")) invalid_read();
        else if (!strcmp(s, "invalid_write")) invalid_write();
        else if (!strcmp(s, "use_after_free")) use_after_free();
        else if (!strcmp(s, "double_free")) double_free();
        else if (!strcmp(s, "stack_overflow")) stack_overflow(4 + argc - argc);
        else if (!strcmp(s, "fork_child_leak")) fork_child_leak();
        else if (!strncmp(s, "churn=", 6)) churn(atoi(s + 6));
        else if (!strcmp(s, "crash")) crash();
        else if (!strcmp(s, "hang")) hang();
        else if (!strcmp(s, "exit3")) return 3;
        else if (!strcmp(s, "sigkill")) { leak_small(); raise(SIGKILL); }
        else if (strcmp(s, "clean")) { fprintf(stderr, "unknown scenario %s\n", s); return 64; }
    }
    return 0;
}
