/* A test-suite-like workload for bench/tool_cost.py: allocation-heavy with real work between the calls.
 *
 * Builds a chained hash map of scale x WORDS pseudo-random words (one node and one string per new word,
 * counts for repeated ones), keeps every node in an array grown with realloc, sorts that array with qsort,
 * looks every word up again, then frees everything. Deterministic: the same figures on every run.
 * Usage: workload [scale]   (default 1; the work grows linearly with it)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 65536
#define WORDS 20000

struct node {
    struct node *next;
    char *word;
    unsigned count;
};

static uint64_t g_state = 88172645463325252ULL;

static uint64_t next_random(void) { /* xorshift64 */
    g_state ^= g_state << 13;
    g_state ^= g_state >> 7;
    g_state ^= g_state << 17;
    return g_state;
}

static void random_word(char *out) {
    size_t length = 3 + next_random() % 10;
    for (size_t i = 0; i < length; i++) out[i] = (char)('a' + next_random() % 6);
    out[length] = '\0';
}

static unsigned hash(const char *word) {
    unsigned h = 2166136261u;
    for (; *word; word++) h = (h ^ (unsigned char)*word) * 16777619u;
    return h % BUCKETS;
}

static int by_count(const void *a, const void *b) {
    const struct node *x = *(struct node *const *)a, *y = *(struct node *const *)b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return strcmp(x->word, y->word);
}

int main(int argc, char **argv) {
    int scale = argc > 1 ? atoi(argv[1]) : 1;
    struct node **table = calloc(BUCKETS, sizeof *table);
    struct node **all = NULL;
    size_t used = 0, capacity = 0;
    char word[16];
    for (int round = 0; round < scale; round++) {
        for (int i = 0; i < WORDS; i++) {
            random_word(word);
            struct node **slot = &table[hash(word)];
            struct node *found = *slot;
            while (found && strcmp(found->word, word) != 0) found = found->next;
            if (found) {
                found->count++;
                continue;
            }
            found = malloc(sizeof *found);
            found->word = strdup(word);
            found->count = 1;
            found->next = *slot;
            *slot = found;
            if (used == capacity) {
                capacity = capacity ? capacity * 2 : 16;
                all = realloc(all, capacity * sizeof *all);
            }
            all[used++] = found;
        }
    }
    qsort(all, used, sizeof *all, by_count);
    unsigned long total = 0;
    for (size_t i = 0; i < used; i++) {
        const struct node *found = table[hash(all[i]->word)];
        while (strcmp(found->word, all[i]->word) != 0) found = found->next;
        total += found->count;
    }
    for (size_t i = 0; i < used; i++) {
        free(all[i]->word);
        free(all[i]);
    }
    free(all);
    free(table);
    return total == (unsigned long)scale * WORDS ? 0 : 1;
}
