#include "strbuf.h"

#include <stdlib.h>
#include <string.h>

void strbuf_init(struct strbuf *buf) {
    buf->capacity = 16;
    buf->length = 0;
    buf->data = malloc(buf->capacity);
    buf->data[0] = '\0';
}

void strbuf_append(struct strbuf *buf, const char *text) {
    size_t extra = strlen(text);
    if (buf->length + extra + 1 > buf->capacity) {
        while (buf->length + extra + 1 > buf->capacity) buf->capacity *= 2;
        buf->data = realloc(buf->data, buf->capacity);
    }
    memcpy(buf->data + buf->length, text, extra + 1);
    buf->length += extra;
}

void strbuf_release(struct strbuf *buf) {
    free(buf->data);
    buf->data = NULL;
    buf->length = buf->capacity = 0;
}
