#ifndef DEMO_LIST_H
#define DEMO_LIST_H
#include <stddef.h>

struct list {
    struct item *head;
    size_t length;
};

struct list *list_new(void);
void list_push(struct list *list, const char *text);
const char *list_at(const struct list *list, size_t index);
void list_free(struct list *list);

#endif
