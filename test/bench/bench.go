// Package bench measures fleet side by side with the tools users would use
// instead. Each measurement is a test guarded by FLEET_BENCH=1 (they take
// minutes and are not part of the test suite); scripts/bench runs them and
// gathers their tables into bench/results.md.
package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// Runs is how many times each contender runs; the median counts.
const Runs = 5

// Require skips t unless FLEET_BENCH=1.
func Require(t *testing.T) {
	t.Helper()
	if os.Getenv("FLEET_BENCH") != "1" {
		t.Skip("a benchmark: run scripts/bench (FLEET_BENCH=1)")
	}
}

// Contender is one way of doing the job.
type Contender struct {
	Name string
	Run  func() error
	// Check, if set, runs after each timed run: the result is right.
	Check func() error
}

// Row is a contender's result.
type Row struct {
	Name   string
	Median time.Duration
	All    []time.Duration
}

// Measure runs each contender Runs times, interleaved so drift on a shared
// machine hits all of them alike, and returns the medians.
func Measure(t *testing.T, setup func(), cs []Contender) []Row {
	t.Helper()
	rows := make([]Row, len(cs))
	for i := range cs {
		rows[i].Name = cs[i].Name
	}
	for r := 0; r < Runs; r++ {
		for i, c := range cs {
			if setup != nil {
				setup()
			}
			t0 := time.Now()
			if err := c.Run(); err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			rows[i].All = append(rows[i].All, time.Since(t0))
			if c.Check != nil {
				if err := c.Check(); err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
			}
		}
	}
	for i := range rows {
		d := append([]time.Duration{}, rows[i].All...)
		sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
		rows[i].Median = d[len(d)/2]
	}
	return rows
}

// Table renders rows as Markdown with ratios against the first row
// (fleet): "2.10x" means the other tool took 2.1 times as long.
func Table(title string, rows []Row, bytes int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n| contender | median of %d | vs fleet | throughput |\n|---|---|---|---|\n", title, Runs)
	for _, r := range rows {
		tp := "-"
		if bytes > 0 {
			tp = fmt.Sprintf("%.0f MB/s", float64(bytes)/r.Median.Seconds()/1e6)
		}
		fmt.Fprintf(&b, "| %s | %s | %.2fx | %s |\n", r.Name, r.Median.Round(time.Millisecond), r.Median.Seconds()/rows[0].Median.Seconds(), tp)
	}
	return b.String()
}

// Record appends a section to the results file named by FLEET_BENCH_OUT
// (scripts/bench sets it) and logs it.
func Record(t *testing.T, section string) {
	t.Helper()
	t.Log("\n" + section)
	out := os.Getenv("FLEET_BENCH_OUT")
	if out == "" {
		return
	}
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintln(f, section)
}

// Machine describes this machine and the tools' versions.
func Machine() string {
	v := func(args ...string) string {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return "not installed"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("- machine: %d cores (%s), %s\n- go: %s\n- openssh: %s\n- rsync: %s\n- age: %s\n- nix: %s\n",
		runtime.NumCPU(), cpu, v("uname", "-sr"), runtime.Version(), v("ssh", "-V"), v("rsync", "--version"), v("age", "--version"), v("nix", "--version"))
}

// Runner runs programs with env, returning their stdout, and their
// stderr in the error when they fail.
func Runner(env []string) func(name string, args ...string) ([]byte, error) {
	return func(name string, args ...string) ([]byte, error) {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("%s: %w: %s", name, err, stderr.Bytes())
		}
		return out, nil
	}
}

// Tree writes n files totalling about total bytes of random data under dir,
// spread over nested directories like a flake's source.
func Tree(t *testing.T, dir string, n int, total int64) {
	t.Helper()
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	per := total / int64(n)
	buf := make([]byte, per*2)
	for i := 0; i < n; i++ {
		size := per/2 + int64(i*7919)%per // varied sizes, same total
		p := filepath.Join(dir, fmt.Sprintf("d%02d/s%02d/f%04d.nix", i%20, i%7, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Read(buf[:size]); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, buf[:size], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
