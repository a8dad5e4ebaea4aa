package disko

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
)

// BenchmarkNAS3 formats and mounts a 3-disk layout on loop devices with
// fleet, and with a shell script issuing the same commands the way disko's
// generated script does: after every partition it rereads the table
// (partprobe; partx -u here, where parted is not installed) and, where udev
// runs, triggers and settles udev. Run with -benchtime=3x.
func BenchmarkNAS3(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipping: needs root for loop devices")
	}
	s, err := Load(context.Background(), &remote.Local{}, filepath.Join("testdata", "nas3.json"))
	if err != nil {
		b.Fatal(err)
	}
	devs := map[string]string{}
	for _, name := range []string{"sys", "data1", "data2"} {
		img := filepath.Join(b.TempDir(), name+".img")
		f, _ := os.Create(img)
		f.Truncate(1 << 30)
		f.Close()
		out, err := exec.Command("losetup", "-fP", "--show", img).Output()
		if err != nil {
			b.Fatal(err)
		}
		dev := strings.TrimSpace(string(out))
		devs[name] = dev
		b.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	}
	root := b.TempDir()
	b.Cleanup(func() { exec.Command("umount", "-R", root).Run() })
	udev := false
	if _, err := os.Stat("/run/udev"); err == nil {
		if _, err := exec.LookPath("udevadm"); err == nil {
			udev = true
		}
	}
	m, _ := ParseMode("destroy,format,mount")
	steps, err := BuildPlan(s, m, Options{Root: root, Devices: devs})
	if err != nil {
		b.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, st := range steps {
		if st.Action == "partition" {
			// disko: clear when empty, then one sgdisk call per partition,
			// each followed by partprobe and a udev settle.
			disk := remote.ShellQuote(st.Device)
			script.WriteString("[ -n \"$(blkid -p -s PTTYPE -o value " + disk + ")\" ] || sgdisk --clear " + disk + " >/dev/null\n")
			for _, pt := range st.Parts {
				script.WriteString(remote.ShellJoin(append(append([]string{"sgdisk", "--align-end"}, PartArgs(pt)...), st.Device)) + " >/dev/null\n")
				script.WriteString("partx -u " + disk + " 2>/dev/null; partx -a " + disk + " 2>/dev/null || true\n")
				if udev {
					script.WriteString("udevadm trigger --subsystem-match=block; udevadm settle\n")
				}
			}
			continue
		}
		for _, c := range st.Cmds {
			switch st.Action {
			case "umount", "swapoff":
				script.WriteString(remote.ShellJoin(c) + " 2>/dev/null || true\n")
				continue
			case "mkfs", "mkswap":
				// disko: only when blkid finds nothing.
				script.WriteString("[ -n \"$(blkid -p -s TYPE -o value " + remote.ShellQuote(st.Device) + ")\" ] || ")
			case "wipe":
				script.WriteString("for p in " + remote.ShellQuote(st.Device) + "p*; do wipefs --all -f \"$p\" >/dev/null 2>&1 || true; done\n")
			}
			script.WriteString(remote.ShellJoin(c) + " >/dev/null\n")
		}
	}
	if f := os.Getenv("FLEET_BENCH_SCRIPT"); f != "" {
		os.WriteFile(f, []byte(script.String()), 0o644)
	}
	unmount := "umount -R " + remote.ShellQuote(root) + " 2>/dev/null || true\n"
	ctx := context.Background()
	b.Run("fleet", func(b *testing.B) {
		for b.Loop() {
			if err := Apply(ctx, &remote.Local{}, s, ApplyOptions{Mode: m, Yes: true, Plan: Options{Root: root, Devices: devs}}); err != nil {
				b.Fatal(err)
			}
			exec.Command("sh", "-c", unmount).Run()
		}
	})
	b.Run("disko-script", func(b *testing.B) {
		for b.Loop() {
			if out, err := exec.Command("sh", "-c", script.String()).CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, out)
			}
			exec.Command("sh", "-c", unmount).Run()
		}
	})
}
