// GoogleTest tests with findings, for memgate's per-test attribution (memgate.testnames): a leak in
// a TEST through a helper, two leaks through one deeper helper (one site, two tests), a heap overflow
// in one instance of a TEST_P, an overflow in a TYPED_TEST (both types), a leak in a TYPED_TEST_P, a
// leak in a test of a namespace whose suite name has an underscore, and a clean test. Build with
// -fsanitize-recover=address and run with halt_on_error=0 to see them all.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

static char *make_buffer(std::size_t size) { return static_cast<char *>(std::malloc(size)); }

TEST(Parser, Leaks) {
    char *kept = make_buffer(48);
    std::memset(kept, 1, 48);
    EXPECT_NE(kept, nullptr);
}

// Two tests leak through one helper three calls deep: the same site, two tests.
static char *fill_inner(std::size_t size) { return make_buffer(size); }
static char *fill(std::size_t size) { return fill_inner(size); }

TEST(Cache, FillsOnce) { fill(8)[0] = 1; }

TEST(Cache, FillsTwice) { fill(8)[0] = 2; }

TEST(Parser, Clean) {
    char *freed = make_buffer(16);
    std::free(freed);
}

class Sizes : public ::testing::TestWithParam<int> {};

static int read_past(char *block, int offset) {
    volatile char value = block[offset];
    return value;
}

TEST_P(Sizes, Overflows) {
    char *block = make_buffer(8);
    read_past(block, 7 + GetParam());  // the second instance reads one byte past the end
    std::free(block);
}

INSTANTIATE_TEST_SUITE_P(Small, Sizes, ::testing::Values(0, 1));

template <typename T> class Typed : public ::testing::Test {};
using Types = ::testing::Types<int, char>;
TYPED_TEST_SUITE(Typed, Types);

TYPED_TEST(Typed, Reads) {
    TypeParam *block = static_cast<TypeParam *>(std::malloc(2 * sizeof(TypeParam)));
    volatile TypeParam value = block[2];
    (void)value;
    std::free(block);
}

namespace inner {
TEST(snake_suite, KeepsBuffer) {
    char *kept = make_buffer(24);
    kept[0] = 1;
}
}  // namespace inner

template <typename T> class Pattern : public ::testing::Test {};
TYPED_TEST_SUITE_P(Pattern);

TYPED_TEST_P(Pattern, Leaks) {
    TypeParam *kept = new TypeParam[3];
    kept[0] = TypeParam();
}

REGISTER_TYPED_TEST_SUITE_P(Pattern, Leaks);
INSTANTIATE_TYPED_TEST_SUITE_P(Ints, Pattern, ::testing::Types<int>);
