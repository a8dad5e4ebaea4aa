package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetnix/fleet/test/homelab"
	"github.com/fleetnix/fleet/test/installers"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/rig"
	"github.com/fleetnix/fleet/test/sshtest"
)

// TestInstall: `fleet install nas` of the example fleet on the rig, for
// each installer profile (the rig's own Debian-based one, the NixOS ISO's
// with a password login and sudo, nixos-images' kexec installer without
// git), from a fresh installer with blank disks each run: the time of
// each phase, the SSH connections the installer's sshd accepted (counted
// by a TCP relay in front of it that sees the server's banner, not by
// fleet), and the orchestration overhead, everything but disk formatting
// (disko), the system build (install) and the boot (reboot).
// FLEET_BENCH_INSTALL_RUNS overrides the number of runs per profile (each
// takes ~4 minutes under TCG).
func TestInstall(t *testing.T) {
	Require(t)
	rig.Require(t)
	nixtest.Require(t, "git", "age", "nix")
	runs := Runs
	if n, err := strconv.Atoi(os.Getenv("FLEET_BENCH_INSTALL_RUNS")); err == nil && n > 0 {
		runs = n
	}
	fleet := filepath.Join(t.TempDir(), "fleet")
	if out, err := exec.Command("go", "build", "-o", fleet, "github.com/fleetnix/fleet/cmd/fleet").CombinedOutput(); err != nil {
		t.Fatalf("go build fleet: %v\n%s", err, out)
	}
	for _, p := range []installers.Profile{installers.Debian, installers.ISO, installers.Kexec, installers.Aarch64} {
		phases := map[string][]time.Duration{}
		var totals, overheads []time.Duration
		var conns []int64
		for i := 0; i < runs; i++ {
			ph, total, n := installOnce(t, fleet, p)
			for k, d := range ph {
				phases[k] = append(phases[k], d)
			}
			overhead := total - ph["disko"] - ph["install"] - ph["reboot"]
			totals, overheads, conns = append(totals, total), append(overheads, overhead), append(conns, n)
			t.Logf("%s, run %d: %s, overhead %s, %d connections", p.Title(), i+1, total.Round(time.Second), overhead.Round(time.Second), n)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "### fleet install %s on the rig's %s installer (TCG), %d runs from blank disks\n\n", installers.Host, p.Title(), runs)
		fmt.Fprintf(&b, "%s\n\n", profileNote[p.Title()])
		fmt.Fprintf(&b, "SSH connections the installer's sshd accepted per install (a relay counts them): %s (one per boot: the installer, then the installed system).\n\n", joinInts(conns))
		b.WriteString("| phase | median | min | max |\n|---|---|---|---|\n")
		row := func(name string, ds []time.Duration) {
			s := append([]time.Duration{}, ds...)
			sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, s[len(s)/2].Round(10*time.Millisecond), s[0].Round(10*time.Millisecond), s[len(s)-1].Round(10*time.Millisecond))
		}
		for _, ph := range []string{"preflight", "disko", "stage", "identity", "install", "scan", "reboot", "verify"} {
			row(ph, phases[ph])
		}
		row("**total** (fleet install, end to end)", totals)
		row("**orchestration overhead** (total − disko − install − reboot)", overheads)
		b.WriteString("\nUnder emulation every command on the installer is slow (a process start costs ~10 ms); install is the rig's stand-in evaluating the flake with the real Nix and copying a small system, reboot is the VM booting again.\n")
		Record(t, b.String())
	}
}

// profileNote says how each profile's install differs.
var profileNote = map[string]string{
	rig.ProfileDebian:          "Root logs in with a key; preflight includes the installer's fetch of the secrets through the forwarded agent.",
	rig.ProfileISO:             "nixos logs in with its password (--env-password) and every command runs through sudo -n; preflight includes the installer's fetch of the secrets through the agent forwarded to nixos.",
	rig.ProfileKexec:           "Root logs in with a key; the installer has no git, so the secrets input is fetched on this machine and streamed in during stage, and no agent is forwarded.",
	installers.Aarch64.Title(): "The aarch64 rig (qemu-system-aarch64 -M virt under TCG, UEFI): nas as the example declares it (aarch64-linux), with its hardware configuration generated on the installer (--generate-hardware-config); otherwise as the debian profile.",
}

// installOnce boots a fresh installer of profile p and installs nas; it
// returns the phases' durations, the whole command's time and the
// connections the installer's sshd accepted.
func installOnce(t *testing.T, fleet string, p installers.Profile) (map[string]time.Duration, time.Duration, int64) {
	// The example's nas is aarch64-linux; on the x86_64 rig it is
	// instantiated as x86_64-linux (homelab.Platform).
	fl := homelab.Setup(t, homelab.Platform("nas", p.System()))
	agent := sshtest.StartAgent(t, fl.Deploy)
	st := nixtest.NewStore(t)
	vm := rig.Boot(t, p.BootOptions([]int64{2 << 30, 512 << 20, 512 << 20}))
	defer vm.Stop()
	relay := sshtest.StartRelay(t, fmt.Sprintf("127.0.0.1:%d", vm.Port))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rebooted := make(chan error, 1)
	go func() {
		if err := vm.Wait(ctx); err != nil {
			rebooted <- err
			return
		}
		rebooted <- vm.Reboot(ctx, fl.HostPublicKey(installers.Host))
	}()
	args := append(p.Args(fl, vm, vm.Image.Login+"@"+relay.Addr(), installers.Host), "--json")
	cmd := exec.CommandContext(ctx, fleet, args...)
	cmd.Env = append(append(os.Environ(), "SSH_AUTH_SOCK="+agent.Socket), p.Env()...)
	for _, kv := range st.Env {
		if strings.HasPrefix(kv, "NIX_CONFIG=") {
			kv += "\nstore = " + st.Path
		}
		cmd.Env = append(cmd.Env, kv)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	total := time.Since(t0)
	if err != nil {
		t.Fatalf("fleet install on %s: %v\n%s\n%s", p.Name, err, out, stderr.String())
	}
	if err := <-rebooted; err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Phases []struct {
			Phase    string        `json:"phase"`
			Status   string        `json:"status"`
			Duration time.Duration `json:"duration_ns"`
		} `json:"phases"`
	}
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, out)
	}
	phases := map[string]time.Duration{}
	for _, ph := range sum.Phases {
		if ph.Status != "done" {
			t.Fatalf("%s: phase %s: %s", p.Name, ph.Phase, ph.Status)
		}
		phases[ph.Phase] = ph.Duration
	}
	return phases, total, relay.SSHConnections()
}

func joinInts(ns []int64) string {
	var s []string
	for _, n := range ns {
		s = append(s, strconv.FormatInt(n, 10))
	}
	return strings.Join(s, ", ")
}
