package bench

import "testing"

// TestAMachine records the machine and the versions first (test files run
// in name order).
func TestAMachine(t *testing.T) {
	Require(t)
	Record(t, "## Machine\n\n"+Machine()+"\n## Results\n")
}
