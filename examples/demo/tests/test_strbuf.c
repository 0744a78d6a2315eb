#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "../src/strbuf.h"

int main(void) {
    struct strbuf buf;
    strbuf_init(&buf);
    for (int i = 0; i < 100; i++) strbuf_append(&buf, "memgate ");
    assert(buf.length == 800);
    assert(strncmp(buf.data, "memgate memgate", 15) == 0);
    strbuf_release(&buf);
    puts("test_strbuf: ok");
    return 0;
}
