package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestAnywhereTableInREADME: the README's table of nixos-anywhere's flags
// is the one the code answers with.
func TestAnywhereTableInREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := anywhereTable(); !strings.Contains(string(readme), want) {
		t.Errorf("README.md lacks the table of nixos-anywhere's flags; it is:\n%s", want)
	}
}

// TestAnywhereFlagsCovered: every flag of nixos-anywhere's argument loop
// (1.13: src/nixos-anywhere.sh, parseArgs) has an answer, and
// testdata/install/anywhere.txt runs each spelling of it.
func TestAnywhereFlagsCovered(t *testing.T) {
	loop := []string{"-f", "--flake", "--target-host", "-i", "-p", "--ssh-port", "--ssh-option", "-L", "--print-build-logs",
		"-s", "--store-paths", "--generate-hardware-config", "-t", "--tty", "--help", "--kexec", "--force-kexec",
		"--kexec-extra-flags", "--ssh-store-setting", "--post-kexec-ssh-port", "--copy-host-keys", "--show-trace", "--debug",
		"--disko-mode", "--no-disko-deps", "--build-on", "--extra-files", "--chown", "--disk-encryption-keys", "--phases",
		"--stop-after-disko", "--no-reboot", "--from", "--option", "--no-substitute-on-destination",
		"--no-use-machine-substituters", "--build-on-remote", "--env-password", "--vm-test"}
	var answered []string
	for _, f := range anywhereFlags {
		answered = append(answered, f.names...)
	}
	slices.Sort(loop)
	slices.Sort(answered)
	if !slices.Equal(loop, answered) {
		t.Errorf("nixos-anywhere's flags %v, answered %v", loop, answered)
	}
	script, err := os.ReadFile("testdata/install/anywhere.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range loop {
		// --disko-mode is fleet's own flag, from the disko work (its
		// tests are there); --help is cobra's.
		if n == "--disko-mode" {
			continue
		}
		if !regexp.MustCompile(`(?m)^exits .* ` + regexp.QuoteMeta(n) + `( |$)`).Match(script) {
			t.Errorf("anywhere.txt runs no command with %s", n)
		}
	}
}

// TestRewriteAnywhere: nixos-anywhere's spellings become fleet's, values
// of fleet's own flags are never read as flags, and what comes after --
// is left alone.
func TestRewriteAnywhere(t *testing.T) {
	fs := pflag.NewFlagSet("install", pflag.ContinueOnError)
	fs.StringP("target", "t", "", "")
	fs.StringArray("option", nil, "")
	fs.StringArray("chown", nil, "")
	fs.StringP("flake", "f", "", "")
	fs.String("phases", "", "")
	fs.Bool("dry-run", false, "")
	for _, tc := range []struct {
		in, out string
		notes   int
	}{
		{"install -f .#vault root@h --disk-encryption-keys /tmp/k ./k", "install -f .#vault root@h --disk-key /tmp/k=./k", 0},
		{"install --disk-encryption-keys=/tmp/k ./k", "install --disk-key /tmp/k=./k", 0},
		{"install --option max-jobs 2 --option a=b --option c", "install --option max-jobs=2 --option a=b --option c", 0},
		{"install --chown /etc/app 1000:100 --chown /x=0:0", "install --chown /etc/app=1000:100 --chown /x=0:0", 0},
		{"install --debug --show-trace", "install --log-level debug --option show-trace=true", 0},
		{"install -L --no-disko-deps -t --dry-run", "install --dry-run", 3},
		{"install -t root@h", "install -t root@h", 0},
		{"install --stop-after-disko", "install --phases kexec,disko", 0},
		{"install --target --kexec", "install --target --kexec", 0}, // a value, whatever it looks like
		{"install -- --kexec", "install -- --kexec", 0},
	} {
		out, notes, err := rewriteAnywhere(strings.Fields(tc.in), fs)
		if err != nil || strings.Join(out, " ") != tc.out || len(notes) != tc.notes {
			t.Errorf("%s: %q, %d notes, %v; want %q, %d notes", tc.in, out, len(notes), err, tc.out, tc.notes)
		}
	}
}
