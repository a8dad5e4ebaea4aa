package disko

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/testenv"
)

// applyJSON parses layout and applies it in mode on this machine.
func applyJSON(t *testing.T, layout, mode, root string, devs map[string]string) error {
	t.Helper()
	s, err := Parse([]byte(layout))
	if err != nil {
		t.Fatal(err)
	}
	return applyMode(context.Background(), &remote.Local{}, s, mode, root, devs)
}

// sfdiskJSON is sfdisk -J's view of dev's table (nested: the MBR of a gpt).
func sfdiskJSON(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	var out struct {
		PartitionTable struct {
			Label      string           `json:"label"`
			Partitions []map[string]any `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(run(t, append([]string{"sfdisk", "-J"}, args...)...)), &out); err != nil {
		t.Fatal(err)
	}
	return out.PartitionTable.Partitions
}

// TestMsdosTableOnLoop: disko's legacy msdos table, as a Raspberry Pi's
// firmware wants it, made with parted on a loop device: a bootable FAT32
// partition of type 0x0c first, ext4 after it; then the same again is
// kept as it is (format is idempotent), and mount and unmount work.
// (parted's "set N lba on" on a partition with no filesystem yet resets
// its type to 83, in disko as in fleet, as both run the same commands:
// this layout does without the flag.)
func TestMsdosTableOnLoop(t *testing.T) {
	needRoot(t)
	testenv.Programs(t, "parted", "sfdisk", "mkfs.vfat")
	dev := loopDisk(t, 256<<20)
	root := t.TempDir()
	devs := map[string]string{"sd": dev}
	layout := `{"disk":{"sd":{"type":"disk","device":"/dev/mmcblk0","content":{"type":"table","format":"msdos","partitions":[
	  {"start":"4MiB","end":"68MiB","fs-type":"fat32","bootable":true,
	   "content":{"type":"filesystem","format":"vfat","extraArgs":["-F","32","-n","FIRMWARE"]}},
	  {"start":"68MiB","end":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}]}}}}`
	if err := applyJSON(t, layout, "destroy,format,mount", root, devs); err != nil {
		t.Fatal(err)
	}
	parts := sfdiskJSON(t, dev)
	if len(parts) != 2 {
		t.Fatalf("partitions: %v", parts)
	}
	p1, p2 := parts[0], parts[1]
	if p1["type"] != "c" || p1["bootable"] != true || p1["start"] != float64(8192) || p1["size"] != float64(131072) {
		t.Errorf("partition 1: %v, want a bootable 0x0c from 4 MiB, 64 MiB long", p1)
	}
	if p2["type"] != "83" || p2["start"] != float64(139264) || p2["bootable"] != nil {
		t.Errorf("partition 2: %v, want linux (83) from 68 MiB", p2)
	}
	if typ := blkidType(t, dev); typ != "dos" {
		t.Errorf("table %q, want dos", typ)
	}
	if typ := blkidType(t, dev+"p1"); typ != "vfat" {
		t.Errorf("p1 holds %q, want vfat", typ)
	}
	if label := strings.TrimSpace(run(t, "blkid", "-p", "-s", "LABEL", "-o", "value", dev+"p1")); label != "FIRMWARE" {
		t.Errorf("p1 label %q, want FIRMWARE", label)
	}
	if ms := mountsUnder(t, &remote.Local{}, root); len(ms) != 1 || ms[0] != " ext4 "+dev+"p2 /" {
		t.Errorf("mounts: %q", ms)
	}
	before := run(t, "sfdisk", "-d", dev)
	if err := os.WriteFile(filepath.Join(root, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"format", "unmount", "mount"} {
		if err := applyJSON(t, layout, mode, root, devs); err != nil {
			t.Fatalf("%s again: %v", mode, err)
		}
	}
	if after := run(t, "sfdisk", "-d", dev); after != before {
		t.Errorf("table changed:\n%s\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(root, "keep")); err != nil {
		t.Errorf("file lost: %v", err)
	}
	if err := applyJSON(t, layout, "unmount", root, devs); err != nil {
		t.Fatal(err)
	}
}

// TestLegacyGPTTableOnLoop: a legacy gpt table (parted) with a partition
// name disko escapes, as disko writes it.
func TestLegacyGPTTableOnLoop(t *testing.T) {
	needRoot(t)
	testenv.Programs(t, "parted")
	dev := loopDisk(t, 128<<20)
	layout := `{"disk":{"usb":{"type":"disk","device":"/dev/sdx","content":{"type":"table","format":"gpt","partitions":[
	  {"name":"EFI part","start":"1MiB","end":"33MiB","bootable":true},
	  {"name":"data","start":"33MiB","end":"-1MiB","fs-type":"ext4","content":{"type":"filesystem","format":"ext4"}}]}}}}`
	if err := applyJSON(t, layout, "destroy,format", t.TempDir(), map[string]string{"usb": dev}); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]string{"1": `EFI\x20part`, "2": "data"} {
		if info := run(t, "sgdisk", "-i", n, dev); !strings.Contains(info, "Partition name: '"+want+"'") {
			t.Errorf("partition %s: want name %s:\n%s", n, want, info)
		}
	}
	// parted's boot flag on gpt is the ESP type.
	if info := run(t, "sgdisk", "-i", "1", dev); !strings.Contains(info, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") {
		t.Errorf("partition 1 is not an ESP:\n%s", info)
	}
	if typ := blkidType(t, dev+"p2"); typ != "ext4" {
		t.Errorf("p2 holds %q", typ)
	}
}

// TestHybridMBROnLoop: disko's hybrid MBR (sgdisk -h, sfdisk for type and
// boot flag) on a loop device, and a second format leaves it as it is.
func TestHybridMBROnLoop(t *testing.T) {
	needRoot(t)
	testenv.Programs(t, "sfdisk")
	dev := loopDisk(t, 128<<20)
	layout := `{"disk":{"board":{"type":"disk","device":"/dev/mmcblk0","content":{"type":"gpt","efiGptPartitionFirst":false,"partitions":{
	  "firmware":{"priority":1,"size":"16M","type":"0700","hybrid":{"mbrPartitionType":"0x0c"},"content":{"type":"filesystem","format":"vfat"}},
	  "loader":{"priority":2,"size":"8M","type":"EF00","hybrid":{"mbrBootableFlag":true}},
	  "root":{"size":"100%","content":{"type":"filesystem","format":"ext4"}}}}}}}`
	devs := map[string]string{"board": dev}
	if err := applyJSON(t, layout, "destroy,format", t.TempDir(), devs); err != nil {
		t.Fatal(err)
	}
	mbr := sfdiskJSON(t, "--label-nested", "dos", dev)
	if len(mbr) != 3 || mbr[0]["type"] != "c" || mbr[0]["start"] != float64(2048) ||
		mbr[1]["bootable"] != true || mbr[1]["start"] != float64(2048+16*2048) || mbr[2]["type"] != "ee" {
		t.Fatalf("hybrid MBR: %v\nwant GPT 1 as 0x0c, GPT 2 bootable, then the EE entry", mbr)
	}
	before := run(t, "sfdisk", "--label-nested", "dos", "-d", dev)
	if err := applyJSON(t, layout, "format", t.TempDir(), devs); err != nil {
		t.Fatal(err)
	}
	if after := run(t, "sfdisk", "--label-nested", "dos", "-d", dev); after != before {
		t.Errorf("MBR changed:\n%s\n%s", before, after)
	}
}

// TestBtrfsSwapfilesOnLoop: btrfs swapfiles at the top and in a subvolume
// (mode 0600, their sizes, swap signatures), a subvolume made with extra
// arguments, a nested one; then format again keeps them.
func TestBtrfsSwapfilesOnLoop(t *testing.T) {
	needRoot(t)
	testenv.Programs(t, "mkfs.btrfs", "btrfs")
	dev := loopDisk(t, 512<<20)
	root := t.TempDir()
	devs := map[string]string{"main": dev}
	layout := `{"disk":{"main":{"type":"disk","device":"/dev/vdz","content":{"type":"gpt","partitions":{
	  "pool":{"size":"100%","content":{"type":"btrfs","extraArgs":["-f","--label pool"],"mountpoint":"/pool",
	    "swap":{"top":{"size":"16M"}},
	    "subvolumes":{"@":{"mountpoint":"/"},"@home":{"mountpoint":"/home","extraArgs":["-i","1/100"]},"@home/nested":{},
	      "/swap":{"mountpoint":"/swap","swap":{"main":{"size":"32M"},"other":{"size":"8M","path":"second"}}}}}}}}}}}`
	if err := applyJSON(t, layout, "destroy,format,mount", root, devs); err != nil {
		t.Fatal(err)
	}
	for p, size := range map[string]string{"pool/top": "16777216", "swap/main": "33554432", "swap/second": "8388608"} {
		f := filepath.Join(root, p)
		if got := strings.TrimSpace(run(t, "stat", "-c", "%s %a", f)); got != size+" 600" {
			t.Errorf("%s: stat %q, want %s 600", p, got, size)
		}
		if typ := strings.TrimSpace(run(t, "blkid", "-p", "-s", "TYPE", "-o", "value", f)); typ != "swap" {
			t.Errorf("%s: blkid %q, want swap", p, typ)
		}
	}
	list := run(t, "btrfs", "subvolume", "list", root)
	for _, sv := range []string{"@", "@home", "@home/nested", "swap"} {
		if !strings.Contains(list+"\n", " path "+sv+"\n") {
			t.Errorf("subvolume %s missing:\n%s", sv, list)
		}
	}
	if label := strings.TrimSpace(run(t, "blkid", "-p", "-s", "LABEL", "-o", "value", dev+"p1")); label != "pool" {
		t.Errorf("label %q: the extraArgs word pair --label pool was not passed as two words", label)
	}
	if err := applyJSON(t, layout, "format", root, devs); err != nil {
		t.Fatalf("format again: %v", err)
	}
	if err := applyJSON(t, layout, "unmount", root, devs); err != nil {
		t.Fatal(err)
	}
}

// TestFormatsOnLoop: exfat, ext2, ext3, xfs and vfat made with their
// arguments (the host cannot mount exfat or vfat: blkid checks them),
// a randomEncryption swap left raw, and a partition aligned to sectors.
func TestFormatsOnLoop(t *testing.T) {
	needRoot(t)
	testenv.Programs(t, "mkfs.exfat", "mkfs.vfat", "mkfs.xfs")
	dev := loopDisk(t, 512<<20)
	layout := `{"disk":{"main":{"type":"disk","device":"/dev/vdz","content":{"type":"gpt","partitions":{
	  "a":{"priority":1,"start":"2048s","end":"67583s","content":{"type":"filesystem","format":"exfat","extraArgs":["-L","MEDIA"]}},
	  "b":{"priority":2,"size":"16M","alignment":8,"content":{"type":"filesystem","format":"ext2"}},
	  "c":{"priority":3,"size":"16M","content":{"type":"filesystem","format":"ext3"}},
	  "d":{"priority":4,"size":"300M","content":{"type":"filesystem","format":"xfs","mountpoint":"/q","mountOptions":["defaults","noatime"]}},
	  "e":{"priority":5,"size":"40M","content":{"type":"filesystem","format":"vfat","extraArgs":["-F","32","-n","FAT"]}},
	  "s":{"priority":6,"size":"100%","content":{"type":"swap","randomEncryption":true}}}}}}}`
	root := t.TempDir()
	devs := map[string]string{"main": dev}
	if err := applyJSON(t, layout, "destroy,format,mount", root, devs); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]string{"1": "exfat MEDIA", "2": "ext2 ", "3": "ext3 ", "4": "xfs ", "5": "vfat FAT", "6": " "} {
		got := strings.TrimSpace(run(t, "blkid", "-p", "-s", "TYPE", "-o", "value", dev+"p"+n)) + " " +
			strings.TrimSpace(run(t, "sh", "-c", "blkid -p -s LABEL -o value "+dev+"p"+n+" || true"))
		if got != want {
			t.Errorf("p%s: %q, want %q", n, got, want)
		}
	}
	if info := run(t, "sgdisk", "-i", "1", dev); !strings.Contains(info, "First sector: 2048 ") || !strings.Contains(info, "Last sector: 67583 ") {
		t.Errorf("partition 1 not at sectors 2048-67583:\n%s", info)
	}
	if info := run(t, "sgdisk", "-i", "6", dev); !strings.Contains(info, "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F") {
		t.Errorf("the random-encryption swap partition is not of type 8200:\n%s", info)
	}
	if opts := run(t, "findmnt", "-n", "-o", "OPTIONS", filepath.Join(root, "q")); !strings.Contains(opts, "noatime") {
		t.Errorf("/q mounted with %q, want noatime", opts)
	}
	if err := applyJSON(t, layout, "unmount", root, devs); err != nil {
		t.Fatal(err)
	}
}

// TestDestroyFalseOnLoop: a disk with destroy = false keeps its data
// through destroy,format,mount; the other disk is erased. The typed
// confirmation lists only the erased disk, with its path.
func TestDestroyFalseOnLoop(t *testing.T) {
	needRoot(t)
	keep, wipe := loopDisk(t, 64<<20), loopDisk(t, 64<<20)
	root := t.TempDir()
	layout := `{"disk":{
	  "data":{"type":"disk","device":"/dev/vdy","destroy":false,"content":{"type":"gpt","partitions":{"all":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/srv"}}}}},
	  "sys":{"type":"disk","device":"/dev/vdz","content":{"type":"gpt","partitions":{"root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`
	devs := map[string]string{"data": keep, "sys": wipe}
	if err := applyJSON(t, layout, "destroy,format,mount", root, devs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "srv", "precious"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "scratch"), []byte("gone"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Parse([]byte(layout))
	if err != nil {
		t.Fatal(err)
	}
	var asked []Target
	err = Apply(context.Background(), &remote.Local{}, s, ApplyOptions{Mode: ModeDestroyFormatMount, Plan: Options{Root: root, Devices: devs},
		Confirm: func(ts []Target) bool { asked = ts; return true }})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0].Name != "sys" || asked[0].Device != wipe || asked[0].Node != wipe || asked[0].Size != 64<<20 {
		t.Errorf("confirmation asked for %+v, want sys at %s alone", asked, wipe)
	}
	if b, err := os.ReadFile(filepath.Join(root, "srv", "precious")); err != nil || string(b) != "kept" {
		t.Errorf("the destroy = false disk lost its file: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(root, "scratch")); !os.IsNotExist(err) {
		t.Errorf("the erased disk still has its file: %v", err)
	}
	if err := applyJSON(t, layout, "unmount", root, devs); err != nil {
		t.Fatal(err)
	}
}
