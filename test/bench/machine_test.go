package bench

import "testing"

// TestAMachine records the machine and the versions; scripts/bench runs it
// before the benchmarks, so the section comes first.
func TestAMachine(t *testing.T) {
	Require(t)
	Record(t, "## Machine\n\n"+Machine()+"\n## Results\n")
}
