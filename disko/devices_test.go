package disko

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
)

// blkidType is what blkid finds on dev (TYPE, or PTTYPE for a table).
func blkidType(t *testing.T, dev string) string {
	t.Helper()
	out, _ := exec.Command("blkid", "-p", "-o", "export", dev).Output()
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "PTTYPE="); ok {
			return v
		}
		if v, ok := strings.CutPrefix(l, "TYPE="); ok {
			return v
		}
	}
	return ""
}

// TestUnknownDeviceNameErasesNothing is issue 14's first reproducer: a
// --device NAME=PATH whose NAME is not in the layout (a typo) used to be
// dropped, so destroy erased the layout's own device and left PATH alone.
// Both disks here hold an ext4 filesystem; a refusal leaves both as they were.
func TestUnknownDeviceNameErasesNothing(t *testing.T) {
	needRoot(t)
	own, other := loopDisk(t, 64<<20), loopDisk(t, 64<<20)
	for _, dev := range []string{own, other} {
		run(t, "mkfs.ext4", "-q", dev)
	}
	s, err := Parse([]byte(`{"disk":{"main":{"type":"disk","device":"` + own + `","content":{"type":"gpt","partitions":{
	  "root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ParseMode("destroy,format,mount")
	err = Apply(context.Background(), &remote.Local{}, s, ApplyOptions{Mode: m, Yes: true,
		Plan: Options{Root: t.TempDir(), Devices: map[string]string{"mian": other}}})
	want := `--device mian=` + other + `: the layout has no disk "mian" (its disks: main): no changes made` +
		"\nhint: name one of the layout's disks, as in --device main=" + other
	for _, dev := range []string{own, other} {
		if typ := blkidType(t, dev); typ != "ext4" {
			t.Errorf("%s: blkid finds %q, want the ext4 it held", dev, typ)
		}
	}
	if err == nil || err.Error() != want || !errors.Is(err, ErrUnknownDisk) || !errors.Is(err, ErrRefused) {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// TestValidateDevices: every way a --device map can be wrong, each with
// its exact error, refused before anything runs.
func TestValidateDevices(t *testing.T) {
	s, err := Parse([]byte(`{"disk":{
	  "a":{"type":"disk","device":"/dev/vda"},
	  "b":{"type":"disk","device":"/dev/vdb"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		devs     map[string]string
		want     string
		sentinel error
	}{
		{map[string]string{"a": "/dev/sdx", "c": "/dev/sdy"}, `--device c=/dev/sdy: the layout has no disk "c" (its disks: a, b): no changes made` + "\nhint: name one of the layout's disks, as in --device a=/dev/sdy", ErrUnknownDisk},
		{map[string]string{"a": "sdb"}, `--device a=sdb: the path must be absolute, like /dev/sdb: no changes made`, ErrBadDevice},
		{map[string]string{"a": "/dev/../dev/sdb"}, `--device a=/dev/../dev/sdb: write the path as /dev/sdb: no changes made`, ErrBadDevice},
		{map[string]string{"a": "/dev/vdb"}, `--device a=/dev/vdb: disk "b" is on that device too; two disks cannot share one: no changes made`, ErrBadDevice},
		{map[string]string{"a": "/dev/sdc", "b": "/dev/sdc"}, `--device b=/dev/sdc: disk "a" is on that device too; two disks cannot share one: no changes made`, ErrBadDevice},
	} {
		err := ValidateDevices(s, c.devs)
		if err == nil || err.Error() != c.want || !errors.Is(err, c.sentinel) || !errors.Is(err, ErrRefused) {
			t.Errorf("%v:\n got %v\nwant %s", c.devs, err, c.want)
		}
		if _, perr := BuildPlan(s, Mode{Format: true}, Options{Devices: c.devs}); perr == nil || perr.Error() != c.want {
			t.Errorf("BuildPlan %v: %v", c.devs, perr)
		}
	}
	if err := ValidateDevices(s, map[string]string{"a": "/dev/vdb", "b": "/dev/vda"}); err != nil {
		t.Errorf("swapped disks: %v", err)
	}
}
