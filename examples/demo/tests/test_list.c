#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "../src/list.h"

int main(void) {
    struct list *list = list_new();
    const char *words[] = {"alpha", "beta", "gamma", "delta"};
    for (int i = 0; i < 4; i++) list_push(list, words[i]);
    assert(list->length == 4);
    assert(strcmp(list_at(list, 0), "delta") == 0);
    assert(list_at(list, 9) == NULL);
    list_free(list);
    puts("test_list: ok");
    return 0;
}
