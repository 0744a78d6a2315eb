// C++ leaks whose memcheck stacks hold XML entities (&amp; &lt; &gt;) and C++ frame shapes:
// templates (std::vector<std::string>), references (std::string&, const char*&), operator<<,
// operator new[], a lambda, a class in an anonymous namespace. Definite and indirect leaks.
//
// Leaks at exit (64-bit, gcc 12's libstdc++), as memcheck's LEAK SUMMARY gives them:
// definitely lost 60 bytes in 4 blocks, indirectly lost 295 bytes in 6 blocks.
// - definite 16: a Holder (two pointers) from make_holder(std::string&), which owns
//   - indirect 40: its char[40] buffer (new[]) and indirect 24: its int[6] (new[], in a lambda);
// - definite 24: a std::vector<std::string> object (make_vector<std::string>), which owns
//   - indirect 96: its array of 3 std::strings and indirect 135: their 3 buffers of 45 bytes;
// - definite 13: leak_name(const char*&) (new char[13]);
// - definite 7: (anonymous namespace)::Streamer::operator<< (new char[7]).
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

namespace {

struct Holder {
    char* buffer;
    int* numbers;
};

class Streamer {
public:
    Streamer& operator<<(const std::string& text) {
        char* copy = new char[7];
        std::strncpy(copy, text.c_str(), 6);
        copy[6] = '\0';
        last = copy;
        return *this;
    }
    char* last = nullptr;
};

}  // namespace

template <typename T>
std::vector<T>* make_vector(const T& value) {
    return new std::vector<T>(3, value);
}

Holder* make_holder(std::string& name) {
    Holder* holder = new Holder;
    holder->buffer = new char[40];
    std::strncpy(holder->buffer, name.c_str(), 39);
    auto fill = [&holder]() { holder->numbers = new int[6]; };
    fill();
    return holder;
}

char* leak_name(const char*& name) {
    char* copy = new char[13];
    std::strncpy(copy, name, 12);
    copy[12] = '\0';
    return copy;
}

int main() {
    std::string name = "a name that does not fit in the small buffer";
    Holder* holder = make_holder(name);
    std::vector<std::string>* names = make_vector<std::string>(name);
    const char* text = "twelve chars";
    char* copy = leak_name(text);
    Streamer streamer;
    streamer << name;
    int code = holder->buffer[0] + static_cast<int>(names->size()) + copy[0] + streamer.last[0];
    holder = nullptr;
    names = nullptr;
    copy = nullptr;
    streamer.last = nullptr;
    return code == 0;
}
