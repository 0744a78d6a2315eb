// Package wordcount counts the words of a text: a slice of words and a map of counts, the two
// structures whose growth Go allocates for.
package wordcount

import "strings"

// Words splits text into its words, in order.
func Words(text string) []string {
	words := make([]string, 0, 16)
	for _, word := range strings.Fields(text) {
		words = append(words, strings.ToLower(word))
	}
	return words
}

// Count is how many times each word occurs in text.
func Count(text string) map[string]int {
	counts := make(map[string]int, 16)
	for _, word := range Words(text) {
		counts[word]++
	}
	return counts
}
