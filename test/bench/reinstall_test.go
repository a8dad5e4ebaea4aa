package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fleetnix/fleet/disko"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/rig"
)

// reinstallLayout is the example's nas with its array named md: the
// system disk on vda, the data disks on a and b.
func reinstallLayout(t *testing.T, md, a, b string) *disko.Spec {
	t.Helper()
	s, err := disko.Parse([]byte(fmt.Sprintf(`{"disk": {
  "main": {"type": "disk", "device": "/dev/vda", "content": {"type": "gpt", "partitions": {
    "ESP": {"size": "64M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot"}},
    "root": {"size": "100%%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}},
  "data1": {"type": "disk", "device": %q, "content": {"type": "gpt", "partitions": {
    "raid": {"size": "100%%", "content": {"type": "mdraid", "name": %q}}}}},
  "data2": {"type": "disk", "device": %q, "content": {"type": "gpt", "partitions": {
    "raid": {"size": "100%%", "content": {"type": "mdraid", "name": %q}}}}}},
 "mdadm": {%q: {"type": "mdadm", "level": 1, "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/srv/data"}}}}`, a, md, b, md, md)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReinstall: a reinstall's disk phase (disko with --keep data1,data2:
// the system disk erased and laid out again, the data disks checked, their
// array assembled and mounted) does not grow with the data kept: the same
// layout with 64 MiB and with 1 GiB on its md raid1, in one VM, the runs
// interleaved. The ratio must stay at or under 1.1x (issue 18).
func TestReinstall(t *testing.T) {
	Require(t)
	rig.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	vm := rig.Boot(t, rig.Options{Disks: []int64{1 << 30, 512 << 20, 512 << 20, 1536 << 20, 1536 << 20}})
	c, err := remote.Dial(ctx, remote.Target{User: "root", Host: "127.0.0.1", Port: vm.Port}, remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: vm.Fingerprint()},
		Auth:    remote.Auth{IdentityFiles: []string{vm.Identity}, AgentSocket: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run := func(args ...string) string {
		res, err := c.Run(ctx, remote.Cmd{Args: args})
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		return string(res.Stdout)
	}
	const root = "/mnt"
	apply := func(s *disko.Spec, mode disko.Mode, keep ...string) error {
		return disko.Apply(ctx, c, s, disko.ApplyOptions{Mode: mode, Yes: true, Plan: disko.Options{Root: root, Keep: keep}})
	}
	small, big := reinstallLayout(t, "small", "/dev/vdb", "/dev/vdc"), reinstallLayout(t, "big", "/dev/vdd", "/dev/vde")
	type arm struct {
		name  string
		s     *disko.Spec
		bytes int64
		sum   string
	}
	arms := []*arm{{name: "64 MiB", s: small, bytes: 64 << 20}, {name: "1 GiB", s: big, bytes: 1 << 30}}
	for _, a := range arms {
		if err := apply(a.s, disko.ModeDestroyFormatMount); err != nil {
			t.Fatalf("install with %s: %v", a.name, err)
		}
		t0 := time.Now()
		run("dd", "if=/dev/urandom", "of="+root+"/srv/data/file", "bs=1M", fmt.Sprintf("count=%d", a.bytes>>20), "conv=fsync", "status=none")
		t.Logf("%s written in %s", a.name, time.Since(t0).Round(time.Second))
		a.sum = run("sh", "-c", "cd "+root+"/srv/data && sha256sum file")
		if err := apply(a.s, disko.ModeUnmount); err != nil {
			t.Fatal(err)
		}
	}
	var cs []Contender
	for _, a := range arms {
		a := a
		cs = append(cs, Contender{
			Name: "fleet disko, --keep data1,data2, " + a.name + " on the array",
			Run:  func() error { return apply(a.s, disko.ModeDestroyFormatMount, "data1", "data2") },
			Check: func() error {
				if got := run("sh", "-c", "cd "+root+"/srv/data && sha256sum file"); got != a.sum {
					return fmt.Errorf("the kept data's sha256 is %s, was %s", got, a.sum)
				}
				return apply(a.s, disko.ModeUnmount)
			},
		})
	}
	// Each run starts from a blank system disk, as a reinstall does.
	setup := func() {
		run("sh", "-c", "wipefs -a -q /dev/vda1 /dev/vda2 2>/dev/null; sgdisk --zap-all /dev/vda >/dev/null")
	}
	rows := Measure(t, setup, cs)
	ratio := rows[1].Median.Seconds() / rows[0].Median.Seconds()
	var b strings.Builder
	fmt.Fprintf(&b, "### Reinstalling the NAS's disks keeping its array (the rig, TCG), by the data on it\n\n")
	fmt.Fprintf(&b, "The disk phase of a reinstall: the system disk (blank each run) erased and laid out again (ESP and ext4 root), the two kept data disks checked against the layout (partition labels, md superblocks, filesystem type), their raid1 assembled and its xfs mounted. The data's sha256 is checked after every run.\n\n")
	fmt.Fprintf(&b, "| data on the array | median of %d | min | max | vs 64 MiB |\n|---|---|---|---|---|\n", Runs)
	for i, r := range rows {
		all := append([]time.Duration{}, r.All...)
		sort.Slice(all, func(x, y int) bool { return all[x] < all[y] })
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2fx |\n", arms[i].name, r.Median.Round(10*time.Millisecond), all[0].Round(10*time.Millisecond), all[len(all)-1].Round(10*time.Millisecond), r.Median.Seconds()/rows[0].Median.Seconds())
	}
	fmt.Fprintf(&b, "\nWith 16 times the data the disk phase takes %.2fx as long: nothing in it reads or copies the kept data.\n", ratio)
	Record(t, b.String())
	if ratio > 1.1 {
		t.Errorf("the disk phase with 1 GiB kept takes %.2fx the time with 64 MiB, want at most 1.1x", ratio)
	}
}
