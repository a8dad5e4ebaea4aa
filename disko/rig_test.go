package disko

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/rig"
)

// activeMD matches a running array in /proc/mdstat (the Personalities line
// stays once the raid1 module is loaded).
var activeMD = regexp.MustCompile(`(?m)^md[0-9]+ : active`)

// TestStackedLayoutsOnRig runs, inside the rig VM over SSH, what this
// host's kernel cannot: dm-crypt, LVM, md raid and vfat mounts. One boot,
// four blank disks: EFI+LUKS+LVM+ext4 on the first, a NAS (EFI+root on
// one disk, two disks in mdadm raid1 with xfs) on the others.
func TestStackedLayoutsOnRig(t *testing.T) {
	rig.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	vm := rig.Boot(t, rig.Options{Disks: []int64{1 << 30, 1 << 30, 1 << 30, 1 << 30}})
	c, err := remote.Dial(ctx, remote.Target{User: "root", Host: "127.0.0.1", Port: vm.Port}, remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: vm.Fingerprint()},
		Auth:    remote.Auth{IdentityFiles: []string{vm.Identity}, AgentSocket: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	apply := func(s *Spec, mode, root string, keys map[string][]byte) error {
		m, err := ParseMode(mode)
		if err != nil {
			return err
		}
		return Apply(ctx, c, s, ApplyOptions{Mode: m, Yes: true, Plan: Options{Root: root}, Keys: keys})
	}
	has := func(list []string, want string) bool {
		for _, l := range list {
			if strings.HasPrefix(l, want) {
				return true
			}
		}
		return false
	}

	t.Run("EFI+LUKS+LVM+ext4", func(t *testing.T) {
		s, err := Parse([]byte(`{"disk": {"main": {"type": "disk", "device": "/dev/vda", "content": {"type": "gpt", "partitions": {
  "ESP": {"size": "64M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot"}},
  "luks": {"size": "100%", "content": {"type": "luks", "name": "crypted", "settings": {"allowDiscards": true},
    "content": {"type": "lvm_pv", "vg": "pool"}}}}}}},
 "lvm_vg": {"pool": {"type": "lvm_vg", "lvs": {"root": {"size": "100%FREE", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}}`))
		if err != nil {
			t.Fatal(err)
		}
		key := map[string][]byte{"crypted": []byte("correct horse battery staple")}
		root := "/mnt/luks"
		if err := apply(s, "destroy,format,mount", root, key); err != nil {
			t.Fatalf("destroy,format,mount: %v", err)
		}
		ms := mountsUnder(t, c, root)
		if !has(ms, " ext4 /dev/mapper/pool-root") || !has(ms, "/boot vfat /dev/vda1") {
			t.Fatalf("mounts: %q", ms)
		}
		st := runOn(t, c, "cryptsetup", "status", "crypted")
		if !strings.Contains(st, "LUKS2") || !strings.Contains(st, "discards") {
			t.Fatalf("cryptsetup status:\n%s", st)
		}
		runOn(t, c, "sh", "-c", "echo kept > "+root+"/file")
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
		if _, err := c.Run(ctx, remote.Cmd{Args: []string{"cryptsetup", "status", "crypted"}}); err == nil {
			t.Fatal("crypted still open after unmount")
		}
		if ms := mountsUnder(t, c, root); len(ms) != 0 {
			t.Fatalf("still mounted: %q", ms)
		}
		// A wrong key is refused by cryptsetup, and nothing is mounted.
		err = apply(s, "mount", root, map[string][]byte{"crypted": []byte("wrong")})
		var ee *remote.ExitError
		if !errors.As(err, &ee) || ee.StderrLine("No key available with this passphrase") == "" {
			t.Fatalf("wrong key: %v", err)
		}
		if err := apply(s, "mount", root, key); err != nil {
			t.Fatalf("mount: %v", err)
		}
		if got := strings.TrimSpace(runOn(t, c, "cat", root+"/file")); got != "kept" {
			t.Fatalf("file after remount: %q", got)
		}
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
	})

	t.Run("NAS: EFI+root, mdadm raid1 xfs", func(t *testing.T) {
		s, err := Parse([]byte(`{"disk": {
  "sys": {"type": "disk", "device": "/dev/vdb", "content": {"type": "gpt", "partitions": {
    "ESP": {"size": "64M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot"}},
    "root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}},
  "d1": {"type": "disk", "device": "/dev/vdc", "content": {"type": "gpt", "partitions": {
    "raid": {"size": "100%", "content": {"type": "mdraid", "name": "data"}}}}},
  "d2": {"type": "disk", "device": "/dev/vdd", "content": {"type": "gpt", "partitions": {
    "raid": {"size": "100%", "content": {"type": "mdraid", "name": "data"}}}}}},
 "mdadm": {"data": {"type": "mdadm", "level": 1, "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/srv/data"}}}}`))
		if err != nil {
			t.Fatal(err)
		}
		root := "/mnt/nas"
		if err := apply(s, "destroy,format,mount", root, nil); err != nil {
			t.Fatalf("destroy,format,mount: %v", err)
		}
		ms := mountsUnder(t, c, root)
		if !has(ms, " ext4 /dev/vdb2") || !has(ms, "/boot vfat /dev/vdb1") || !has(ms, "/srv/data xfs /dev/md") {
			t.Fatalf("mounts: %q", ms)
		}
		md := runOn(t, c, "cat", "/proc/mdstat")
		if !activeMD.MatchString(md) || !strings.Contains(md, "raid1") || !strings.Contains(md, "vdc1") || !strings.Contains(md, "vdd1") {
			t.Fatalf("mdstat:\n%s", md)
		}
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
		if md := runOn(t, c, "cat", "/proc/mdstat"); activeMD.MatchString(md) {
			t.Fatalf("md still running after unmount:\n%s", md)
		}
		// mount (as a resumed install does after an interrupt) assembles
		// the stopped array again and mounts everything where it was.
		if err := apply(s, "mount", root, nil); err != nil {
			t.Fatalf("mount after unmount: %v", err)
		}
		if ms := mountsUnder(t, c, root); !has(ms, " ext4 /dev/vdb2") || !has(ms, "/srv/data xfs /dev/md") {
			t.Fatalf("mounts after remount: %q", ms)
		}
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
	})

	// Last, as it takes a disk away for good: the disk vanishes (its PCI
	// device removed, as a failing cable or controller would) while its
	// root filesystem is being made. The error names the step and the
	// node on that disk; a re-run refuses before touching anything,
	// naming the missing disk.
	t.Run("a disk that disappears during format", func(t *testing.T) {
		s, err := Parse([]byte(`{"disk": {"flaky": {"type": "disk", "device": "/dev/vdd", "content": {"type": "gpt", "partitions": {
  "ESP": {"size": "64M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat"}},
  "root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}}}`))
		if err != nil {
			t.Fatal(err)
		}
		pulled := make(chan error, 1)
		hook := &lineHook{match: "action=mkfs node=disk.flaky.content.partitions.root.content", fn: func() {
			_, err := c.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", "echo 1 > \"$(readlink -f /sys/block/vdd/device)/../remove\""}})
			pulled <- err
		}}
		m, _ := ParseMode("destroy,format,mount")
		err = Apply(ctx, c, s, ApplyOptions{Mode: m, Yes: true, Plan: Options{Root: "/mnt/flaky"}, Log: log.New(hook)})
		select {
		case perr := <-pulled:
			if perr != nil {
				t.Fatalf("remove the disk: %v", perr)
			}
		default:
			t.Fatalf("the root's mkfs never started: %v", err)
		}
		if !errors.Is(err, ErrMissingDevice) || !strings.HasPrefix(err.Error(), `format mkfs disk.flaky.content.partitions.root.content: disk "flaky" (/dev/vdd) disappeared: device not found: `) {
			t.Fatalf("want the failed step and the vanished disk named: %v", err)
		}
		t.Logf("with the disk gone mid-format: %v", err)
		if out := runOn(t, c, "sh", "-c", "grep -c ' /mnt/flaky' /proc/mounts || true"); strings.TrimSpace(out) != "0" {
			t.Errorf("something is mounted from the vanished disk: %s", out)
		}
		err = apply(s, "destroy,format,mount", "/mnt/flaky", nil)
		if !errors.Is(err, ErrMissingDevice) || !errors.Is(err, ErrRefused) || !strings.HasPrefix(err.Error(), `disk "flaky": /dev/vdd: device not found: no changes made`) {
			t.Fatalf("re-run: want a refusal naming the missing disk: %v", err)
		}
	})
}

// lineHook is a log writer that runs fn once, on the first line
// containing match.
type lineHook struct {
	match string
	fn    func()
	done  bool
}

func (h *lineHook) Write(p []byte) (int, error) {
	if !h.done && strings.Contains(string(p), h.match) {
		h.done = true
		h.fn()
	}
	return len(p), nil
}
