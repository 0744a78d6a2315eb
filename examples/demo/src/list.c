#include "list.h"

#include <stdlib.h>
#include <string.h>

struct item {
    struct item *next;
    char *text;
};

struct list *list_new(void) { return calloc(1, sizeof(struct list)); }

void list_push(struct list *list, const char *text) {
    struct item *item = malloc(sizeof *item);
    item->text = strdup(text);
    item->next = list->head;
    list->head = item;
    list->length++;
}

const char *list_at(const struct list *list, size_t index) {
    const struct item *item = list->head;
    while (item && index--) item = item->next;
    return item ? item->text : NULL;
}

void list_free(struct list *list) {
    struct item *item = list->head;
    while (item) {
        struct item *next = item->next;
        free(item->text);
        free(item);
        item = next;
    }
    free(list);
}
