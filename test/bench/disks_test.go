package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/test/testenv"

	"github.com/fleetnix/fleet/disko"
	"github.com/fleetnix/fleet/remote"
)

// TestDisks: the 3-disk NAS layout (ESP, swap and ext4 root on one disk;
// ext4 and xfs on each of two data disks) destroyed, formatted and mounted
// on loop devices by fleet's disko, and by a shell script issuing the same
// commands the way disko's generated script does: after every partition it
// rereads the table (partprobe; partx here) and, where udev runs, triggers
// and settles udev. Both must reach the same end state (partitions, labels,
// filesystems, mounts), which is checked after every run.
func TestDisks(t *testing.T) {
	Require(t)
	testenv.Root(t, "loop devices, mkfs and mount")
	need(t, "losetup", "sgdisk", "partx", "wipefs", "blkid", "mkfs.ext4", "mkfs.xfs", "mkfs.vfat", "mkswap")
	ctx := context.Background()
	local := &remote.Local{}
	s, err := disko.Load(ctx, local, filepath.Join("..", "..", "disko", "testdata", "nas3.json"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"sys", "data1", "data2"}
	devs := map[string]string{}
	for _, name := range names {
		img := filepath.Join(t.TempDir(), name+".img")
		if err := os.WriteFile(img, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, 1<<30); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("losetup", "-fP", "--show", img).CombinedOutput()
		if err != nil {
			t.Fatalf("losetup: %v: %s", err, out)
		}
		dev := strings.TrimSpace(string(out))
		devs[name] = dev
		t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	}
	root := t.TempDir()
	unmount := func() { exec.Command("umount", "-R", root).Run() }
	t.Cleanup(unmount)

	m, err := disko.ParseMode("destroy,format,mount")
	if err != nil {
		t.Fatal(err)
	}
	plan := disko.Options{Root: root, Devices: devs}
	steps, err := disko.BuildPlan(s, m, plan)
	if err != nil {
		t.Fatal(err)
	}
	udev := udevRuns()
	script := diskoScript(steps, udev)
	scriptName := "disko-style script (partx after each partition; no udev here)"
	if udev {
		scriptName = "disko-style script (partx and udev settle after each partition)"
	}

	// state is what a layout leaves: each disk's partitions with their
	// size, label and filesystem, and the mounts under root.
	state := func() string {
		var b strings.Builder
		for _, name := range names {
			parts, _ := filepath.Glob(devs[name] + "p*")
			sort.Strings(parts)
			if len(parts) == 0 {
				b.WriteString(name + ": no partitions\n")
			}
			for _, p := range parts {
				out, err := exec.Command("blkid", "-p", "-o", "export", p).Output()
				if err != nil {
					b.WriteString(name + strings.TrimPrefix(p, devs[name]) + ": nothing\n")
					continue
				}
				var tags []string
				for _, l := range strings.Split(string(out), "\n") {
					k, _, _ := strings.Cut(l, "=")
					switch k {
					case "TYPE", "PART_ENTRY_NAME", "PART_ENTRY_TYPE", "PART_ENTRY_NUMBER", "PART_ENTRY_OFFSET", "PART_ENTRY_SIZE":
						tags = append(tags, l)
					}
				}
				sort.Strings(tags)
				b.WriteString(name + strings.TrimPrefix(p, devs[name]) + ": " + strings.Join(tags, " ") + "\n")
			}
		}
		mi, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		var mounts []string
		for _, l := range strings.Split(string(mi), "\n") {
			pre, post, ok := strings.Cut(l, " - ")
			f, g := strings.Fields(pre), strings.Fields(post)
			if ok && len(f) > 4 && len(g) > 1 && (f[4] == root || strings.HasPrefix(f[4], root+"/")) {
				src := g[1]
				for _, name := range names {
					src = strings.Replace(src, devs[name], name, 1)
				}
				mounts = append(mounts, fmt.Sprintf("mount %s %s %s\n", strings.TrimPrefix(f[4], root), src, g[0]))
			}
		}
		sort.Strings(mounts)
		b.WriteString(strings.Join(mounts, ""))
		return b.String()
	}

	fleet := func() error {
		return disko.Apply(ctx, local, s, disko.ApplyOptions{Mode: m, Yes: true, Plan: plan})
	}
	shell := func() error {
		if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	// Once each, untimed: the end state fleet reaches is the one to match.
	if err := fleet(); err != nil {
		t.Fatal(err)
	}
	want := state()
	for _, w := range []string{"sysp1: PART_ENTRY_NAME=disk-sys-ESP", "TYPE=vfat", "TYPE=swap", "data1p2: PART_ENTRY_NAME=disk-data1-data", "mount /srv/data2 data2p2 xfs"} {
		if !strings.Contains(want, w) {
			t.Fatalf("fleet's end state lacks %q:\n%s", w, want)
		}
	}
	unmount()
	if err := shell(); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != want {
		t.Fatalf("the disko-style script ends elsewhere:\n%s\nfleet:\n%s", got, want)
	}
	unmount()

	ran := ""
	setup := func() {
		if ran != "" {
			if got := state(); got != want {
				t.Fatalf("after %s:\n%s\nwant:\n%s", ran, got, want)
			}
		}
		unmount()
	}
	rows := Measure(t, setup, []Contender{
		{Name: "fleet disko (destroy,format,mount)", Run: func() error { ran = "fleet"; return fleet() }},
		{Name: scriptName, Run: func() error { ran = "the script"; return shell() }},
	})
	setup()
	Record(t, Table("Laying out the 3-disk NAS (ESP, swap, ext4, 2 x ext4 + xfs) on 1 GiB loop devices", rows, 0))
}

// udevRuns reports whether udev runs here (disko settles it after every
// partition; without it there is nothing to settle).
func udevRuns() bool {
	if _, err := os.Stat("/run/udev"); err != nil {
		return false
	}
	_, err := exec.LookPath("udevadm")
	return err == nil
}

// diskoScript is the plan's commands written the way disko's generated
// script runs them: the table cleared when empty, one sgdisk call per
// partition each followed by a table reread (and a udev settle where udev
// runs), mkfs only where blkid finds no filesystem.
func diskoScript(steps []disko.Step, udev bool) string {
	var b strings.Builder
	b.WriteString("set -e\n")
	for _, st := range steps {
		if g, ok := st.Action.(*disko.GPT); ok {
			disk := remote.ShellQuote(st.Device)
			b.WriteString("[ -n \"$(blkid -p -s PTTYPE -o value " + disk + ")\" ] || sgdisk --clear " + disk + " >/dev/null\n")
			for _, pt := range g.Table.Partitions {
				b.WriteString(remote.ShellJoin(append(append([]string{"sgdisk", "--align-end"}, disko.PartArgs(pt)...), st.Device)) + " >/dev/null\n")
				b.WriteString("partx -u " + disk + " 2>/dev/null; partx -a " + disk + " 2>/dev/null || true\n")
				if udev {
					b.WriteString("udevadm trigger --subsystem-match=block; udevadm settle\n")
				}
			}
			continue
		}
		for _, c := range st.Cmds {
			switch st.Kind() {
			case "umount", "swapoff":
				b.WriteString(remote.ShellJoin(c) + " 2>/dev/null || true\n")
				continue
			case "mkfs", "mkswap":
				b.WriteString("[ -n \"$(blkid -p -s TYPE -o value " + remote.ShellQuote(st.Device) + ")\" ] || ")
			case "wipe":
				b.WriteString("for p in " + remote.ShellQuote(st.Device) + "p*; do wipefs --all -f \"$p\" >/dev/null 2>&1 || true; done\n")
			}
			b.WriteString(remote.ShellJoin(c) + " >/dev/null\n")
		}
	}
	return b.String()
}
