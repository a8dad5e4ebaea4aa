package disko

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
)

// hooksLayout is the impermanence pattern (a read-only blank snapshot of
// the root subvolume, taken by the btrfs node's postCreateHook), with hooks
// on the disk and the gpt that log their order and variables to $LOG.
const hooksLayout = `{"disk":{"main":{"type":"disk","device":"/dev/vdz",
  "preCreateHook":"echo \"disk pre $type $name $device\" >> \"$LOG\"",
  "postCreateHook":"echo \"disk post $type\" >> \"$LOG\"",
  "content":{"type":"gpt","postCreateHook":"echo \"gpt post $type\" >> \"$LOG\"","partitions":{
    "root":{"size":"100%","content":{"type":"btrfs","extraArgs":["-f"],
      "mountOptions":["compress=zstd","noatime"],
      "preCreateHook":"echo \"btrfs pre $type $device ${mountOptions[1]}\" >> \"$LOG\"",
      "postCreateHook":"MNT=$(mktemp -d)\nmount -t btrfs \"$device\" \"$MNT\" -o subvol=/\ntrap 'umount \"$MNT\"; rmdir \"$MNT\"' EXIT\nbtrfs subvolume snapshot -r \"$MNT/root\" \"$MNT/root-blank\"\necho \"btrfs post snapshot\" >> \"$LOG\"",
      "subvolumes":{"root":{"mountpoint":"/"},"nix":{"mountpoint":"/nix"}}}}}}}}}`

// TestCreateHooksOnLoop runs disko's create hooks on a loop device: in
// disko's order (a node's pre before it, its post after its whole
// content), with the node's fields as bash variables, the device being the
// partition's kernel node; the snapshot the btrfs hook takes is there.
func TestCreateHooksOnLoop(t *testing.T) {
	needRoot(t)
	s, err := Parse([]byte(hooksLayout))
	if err != nil {
		t.Fatal(err)
	}
	dev := loopDisk(t, 512<<20)
	root := t.TempDir()
	log := filepath.Join(t.TempDir(), "log")
	os.Setenv("LOG", log)
	t.Cleanup(func() { os.Unsetenv("LOG") })
	r := &remote.Local{}
	if err := applyMode(context.Background(), r, s, "destroy,format,mount", root, map[string]string{"main": dev}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(log)
	want := "disk pre disk main " + dev + "\n" +
		"btrfs pre btrfs " + dev + "p1 noatime\n" +
		"btrfs post snapshot\n" +
		"gpt post gpt\n" +
		"disk post disk\n"
	if string(b) != want {
		t.Fatalf("hooks ran:\n%s\nwant:\n%s", b, want)
	}
	subs := runOn(t, r, "btrfs", "subvolume", "list", root)
	for _, sv := range []string{" path root\n", " path nix\n", " path root-blank\n"} {
		if !strings.Contains(subs+"\n", sv) {
			t.Errorf("subvolume%s missing:\n%s", strings.TrimSuffix(sv, "\n"), subs)
		}
	}
	if ro := runOn(t, r, "btrfs", "subvolume", "list", "-r", root); strings.TrimSpace(ro) == "" || !strings.HasSuffix(strings.TrimSpace(ro), " path root-blank") || strings.Count(strings.TrimSpace(ro), "\n") != 0 {
		t.Errorf("read-only subvolumes: %q, want root-blank alone", ro)
	}
	if err := applyMode(context.Background(), r, s, "unmount", root, map[string]string{"main": dev}); err != nil {
		t.Fatal(err)
	}
}

// TestCreateHookFails: a failing hook stops the format, named by hook and
// node, with its exit status, and the error says what is on the disk at
// that moment (issue 22: a command that fails anyway names the state).
func TestCreateHookFails(t *testing.T) {
	needRoot(t)
	s, err := Parse([]byte(`{"disk":{"main":{"type":"disk","device":"/dev/vdz","content":{"type":"gpt","partitions":{
	  "root":{"size":"100%","content":{"type":"filesystem","format":"ext4","postCreateHook":"echo cannot >&2; exit 3"}}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	dev := loopDisk(t, 64<<20)
	err = applyMode(context.Background(), &remote.Local{}, s, "destroy,format", t.TempDir(), map[string]string{"main": dev})
	var ee *remote.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || !strings.HasPrefix(err.Error(), "format postCreateHook disk.main.content.partitions.root.content: ") {
		t.Fatalf("got %v", err)
	}
	if typ := strings.TrimSpace(run(t, "blkid", "-p", "-s", "TYPE", "-o", "value", dev+"p1")); typ != "ext4" {
		t.Fatalf("the hook ran before mkfs? blkid TYPE %q", typ)
	}
	var se *StepError
	if !errors.As(err, &se) || se.Step != "format postCreateHook disk.main.content.partitions.root.content" {
		t.Fatalf("not a StepError naming the step: %#v", err)
	}
	base := strings.TrimPrefix(dev, "/dev/")
	if strings.Join(se.State, "\n") != base+": 64.0 MiB, gpt\n"+base+"p1: 62.0 MiB, ext4" ||
		!strings.HasSuffix(err.Error(), "\non the disks now:\n  "+base+": 64.0 MiB, gpt\n  "+base+"p1: 62.0 MiB, ext4") {
		t.Fatalf("the error does not show the disk and its ext4 partition:\n%v", err)
	}
}

// TestMountHooksRefused: the hooks fleet does not run are refused by name
// rather than skipped.
func TestMountHooksRefused(t *testing.T) {
	for _, c := range []struct{ where, json string }{
		{"disk.main.content.partitions.root.content", `{"disk":{"main":{"type":"disk","device":"/dev/vdz","content":{"type":"gpt","partitions":{"root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/","postMountHook":"touch /mnt/x"}}}}}}}`},
		{"disk.main", `{"disk":{"main":{"type":"disk","device":"/dev/vdz","preUnmountHook":"sync","content":{"type":"gpt","partitions":{"root":{"size":"100%","content":{"type":"filesystem","format":"ext4"}}}}}}}`},
		{"nodev.tmp", `{"nodev":{"tmp":{"fsType":"tmpfs","mountpoint":"/tmp","preMountHook":"true"}}}`},
	} {
		_, err := Parse([]byte(c.json))
		if !errors.Is(err, ErrUnsupported) || !strings.HasPrefix(err.Error(), c.where+": ") || !strings.Contains(err.Error(), "fleet runs preCreateHook and postCreateHook only") {
			t.Errorf("%s: got %v", c.where, err)
		}
	}
	// Empty hooks (the evaluated form has them all, as "") are fine.
	if _, err := Parse([]byte(`{"disk":{"main":{"type":"disk","device":"/dev/vdz","preMountHook":"","postMountHook":"\n","content":{"type":"gpt","partitions":{}}}}}`)); err != nil {
		t.Fatal(err)
	}
}

// TestHookPlan: the plan shows each hook as a step where disko runs it,
// with the variables it gets.
func TestHookPlan(t *testing.T) {
	s, err := Parse([]byte(hooksLayout))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := BuildPlan(s, Mode{Format: true}, Options{Devices: map[string]string{"main": "/dev/vdb"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range steps {
		got = append(got, st.Kind()+" "+st.Node)
	}
	want := []string{
		"preCreateHook disk.main",
		"partition disk.main.content",
		"probe disk.main.content",
		"preCreateHook disk.main.content.partitions.root.content",
		"mkfs disk.main.content.partitions.root.content",
		"subvolumes disk.main.content.partitions.root.content",
		"postCreateHook disk.main.content.partitions.root.content",
		"postCreateHook disk.main.content",
		"postCreateHook disk.main",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	script := steps[3].Cmds[0][2]
	for _, v := range []string{"set -efu\n", "type=btrfs\n", "device=/dev/vdb1\n", "mountOptions=(compress=zstd noatime)\n", "extraArgs=(-f)\n"} {
		if !strings.Contains(script, v) {
			t.Errorf("hook script lacks %q:\n%s", v, script)
		}
	}
}
