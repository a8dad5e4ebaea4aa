package main

import "testing"

// TestDiskoScripts covers `fleet disko plan` and apply's refusals; the
// loop-device runs live in the disko package's tests.
func TestDiskoScripts(t *testing.T) { runScripts(t, "disko", nil) }
