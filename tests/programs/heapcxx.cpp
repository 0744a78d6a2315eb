// A C++ program of known heap figures, for heaptrack's libstdc++ pool normalisation.
//
// libstdc++'s static initialiser allocates its emergency exception-handling pool (72,704 bytes with
// gcc 12) before main, in every process that loads libstdc++: DHAT and memusage count it for this
// program. Then main allocates 4,000 bytes in 1 block and frees them.
// DHAT, memusage: peak 76,704 bytes, 2 calls. heaptrack (pool left out): peak 4,000 bytes, 1 call.
#include <vector>

int main() {
    std::vector<int> numbers(1000);
    return numbers[0];
}
