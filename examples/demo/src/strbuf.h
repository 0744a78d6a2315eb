#ifndef DEMO_STRBUF_H
#define DEMO_STRBUF_H
#include <stddef.h>

struct strbuf {
    char *data;
    size_t length;
    size_t capacity;
};

void strbuf_init(struct strbuf *buf);
void strbuf_append(struct strbuf *buf, const char *text);
void strbuf_release(struct strbuf *buf);

#endif
