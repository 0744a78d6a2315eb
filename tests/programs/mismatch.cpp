// alloc-dealloc-mismatch (ASan) / MismatchedFree (memcheck): new[] released with delete.
#include <cstdio>

__attribute__((noinline)) void mismatched_delete() {
    int *numbers = new int[8];
    numbers[0] = 1;
    std::printf("%d\n", numbers[0]);
    delete numbers;  // should be delete[]
}

int main() {
    mismatched_delete();
    return 0;
}
