package wordcount

import (
	"fmt"
	"strings"
	"testing"
)

const text = "the quick brown fox jumps over the lazy dog and the dog sleeps"

var words []string
var counts map[string]int

func TestCount(t *testing.T) {
	if got := Count(text)["the"]; got != 3 {
		t.Fatalf("Count(text)[\"the\"] = %d, want 3", got)
	}
}

func BenchmarkWords(b *testing.B) {
	for i := 0; i < b.N; i++ {
		words = Words(text)
	}
}

func BenchmarkCount(b *testing.B) {
	for _, repeat := range []int{1, 10} {
		long := strings.Repeat(text+" ", repeat)
		b.Run(fmt.Sprintf("repeat=%d", repeat), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				counts = Count(long)
			}
		})
	}
}
