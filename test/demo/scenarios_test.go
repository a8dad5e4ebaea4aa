package main

import (
	"strings"
	"testing"
)

// TestScenarios: the default scenario exists, names are unique, and an
// unknown one is refused naming every known scenario.
func TestScenarios(t *testing.T) {
	if _, err := lookup("nas"); err != nil {
		t.Fatalf("the default scenario: %v", err)
	}
	seen := map[string]bool{}
	var names []string
	for _, s := range scenarios {
		if seen[s.name] || s.run == nil || s.summary == "" {
			t.Errorf("scenario %q: a duplicate, or no run or summary", s.name)
		}
		seen[s.name] = true
		names = append(names, s.name)
	}
	_, err := lookup("zfs-on-the-moon")
	want := `unknown scenario "zfs-on-the-moon"; known: ` + strings.Join(names, ", ")
	if err == nil || err.Error() != want {
		t.Fatalf("unknown scenario: %v, want %s", err, want)
	}
}
