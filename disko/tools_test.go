package disko

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestParseTools reads QueryTools' answer as the installer's programs
// print their versions.
func TestParseTools(t *testing.T) {
	tools := parseTools("have sgdisk /usr/sbin/sgdisk\nhave mdadm /usr/sbin/mdadm\n" +
		"version sgdisk GPT fdisk (sgdisk) version 1.0.9\n" +
		"version lvm   LVM version:     2.03.16(2) (2022-05-18)\n" +
		"version mdadm mdadm - v4.2 - 2021-12-30\n" +
		"version btrfs btrfs-progs v6.2\n" +
		"version cryptsetup cryptsetup 2.6.1 flags: UDEV BLKID KEYRING\n" +
		"version sfdisk sfdisk from util-linux 2.38.1\n" +
		"codes 0700 Microsoft basic data  0701 Microsoft Storage Replica\n" +
		"codes ef00 EFI system partition  ef02 BIOS boot partition\nudev\n")
	want := map[string]string{"sgdisk": "1.0.9", "lvm": "2.03.16", "mdadm": "4.2", "btrfs": "6.2", "cryptsetup": "2.6.1", "sfdisk": "2.38.1"}
	for k, v := range want {
		if tools.Versions[k] != v {
			t.Errorf("%s version %q, want %q", k, tools.Versions[k], v)
		}
	}
	if tools.Paths["mdadm"] != "/usr/sbin/mdadm" || !tools.Udev || !tools.GPTCodes["EF02"] || !tools.GPTCodes["0701"] || len(tools.GPTCodes) != 4 {
		t.Errorf("tools: %+v", tools)
	}
	for _, c := range []struct {
		have, want string
		ok         bool
	}{{"2.3.4", "2.3.4", true}, {"2.3.10", "2.3.4", true}, {"2.3", "2.3.4", false}, {"6.2", "6.1", true}, {"5.16", "6.1", false}, {"", "6.1", true}} {
		if got := versionAtLeast(c.have, c.want); got != c.ok {
			t.Errorf("versionAtLeast(%s, %s) = %v", c.have, c.want, got)
		}
	}
}

// TestPreflightRefuses: what the installer lacks, in programs, versions,
// GPT type codes or keys, is refused before anything runs, all at once
// per kind, naming what needs it.
func TestPreflightRefuses(t *testing.T) {
	s, err := Parse([]byte(`{"disk":{"main":{"type":"disk","device":"/dev/vda","content":{"type":"gpt","partitions":{
	  "fw":{"priority":1,"size":"32M","type":"0700","hybrid":{"mbrPartitionType":"0x0c"}},
	  "odd":{"priority":2,"size":"32M","type":"abcd"},
	  "data":{"size":"100%","content":{"type":"luks","name":"vault","settings":{"bypassWorkqueues":true},
	    "content":{"type":"btrfs","swap":{"s":{"size":"64M"}}}}}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	tools := func() *Tools {
		m := newDryMachine(nil)
		out, _ := m.script([]string{"sh", "-c", "for p in x"})
		return parseTools(out)
	}
	m := newDryMachine(map[string]int64{"/dev/vda": 8 << 30})
	keys := map[string][]byte{"vault": []byte("k")}
	for _, c := range []struct {
		name  string
		tools func(*Tools)
		keys  map[string][]byte
		want  string
		is    error
	}{
		{"missing programs", func(t *Tools) { delete(t.Paths, "sfdisk"); delete(t.Paths, "btrfs") },
			keys, "the installer lacks sfdisk (from util-linux, for disk.main.content), btrfs (from btrfs-progs, for disk.main.content.partitions.data.content.content): installer tool missing or too old: no changes made\nhint: add those packages to the installer image", ErrTool},
		{"old versions", func(t *Tools) { t.Versions["btrfs"] = "5.16"; t.Versions["cryptsetup"] = "2.3.3" },
			keys, "the installer has cryptsetup 2.3.3, disk.main.content.partitions.data.content (settings.bypassWorkqueues) needs 2.3.4 or later; btrfs 5.16, disk.main.content.partitions.data.content.content (btrfs filesystem mkswapfile) needs 6.1 or later: installer tool missing or too old: no changes made\nhint: boot a newer installer", ErrTool},
		{"unknown type code", func(*Tools) {},
			keys, "disk.main.content.partitions.odd: type \"abcd\": the installer's sgdisk knows no such code and would write 8300 instead: invalid disko spec: no changes made\nhint: use a code from sgdisk -L, or the type's GUID", ErrSpec},
		{"no key", func(t *Tools) { t.GPTCodes["ABCD"] = true },
			nil, "no key for luks vault: no changes made\nhint: pass --disk-key vault=FILE", ErrRefused},
	} {
		tl := tools()
		c.tools(tl)
		_, err := Preflight(context.Background(), m, s, ApplyOptions{Mode: ModeDestroyFormatMount, Tools: tl, Keys: c.keys})
		if err == nil || err.Error() != c.want || !errors.Is(err, c.is) || !errors.Is(err, ErrRefused) {
			t.Errorf("%s:\n got %v\nwant %s", c.name, err, c.want)
		}
	}
	for _, cmd := range m.cmds {
		if cmd != "readlink -e /dev/vda" && cmd != "test -b /dev/vda" {
			t.Errorf("preflight ran %q", cmd)
		}
	}
}

// TestSmallXFSRefused: mkfs.xfs (since xfsprogs 5.19) makes nothing
// under 300 MiB; a partition that small for xfs is refused before
// anything runs, where the installer's mkfs.xfs is that new.
func TestSmallXFSRefused(t *testing.T) {
	s, err := Parse([]byte(`{"disk":{"main":{"type":"disk","device":"/dev/vda","content":{"type":"gpt","partitions":{
	  "small":{"size":"200M","content":{"type":"filesystem","format":"xfs","mountpoint":"/srv"}},
	  "rest":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	m := newDryMachine(map[string]int64{"/dev/vda": 8 << 30})
	err = Apply(context.Background(), m, s, ApplyOptions{Mode: ModeDestroyFormatMount, Yes: true})
	want := "disk.main.content.partitions.small.content: mkfs.xfs 6.1.0 makes no filesystem smaller than 300 MiB, and the partition would be 200.0 MiB: disk too small: no changes made"
	if err == nil || err.Error() != want || !errors.Is(err, ErrTooSmall) {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	for _, c := range m.cmds {
		if strings.HasPrefix(c, "sgdisk") || strings.HasPrefix(c, "wipefs") || strings.HasPrefix(c, "mkfs") {
			t.Fatalf("ran %q before refusing", c)
		}
	}
	old := func() *Tools {
		out, _ := m.script([]string{"sh", "-c", "for p in x"})
		tl := parseTools(out)
		tl.Versions["xfs"] = "5.18.0"
		return tl
	}()
	if err := Apply(context.Background(), newDryMachine(map[string]int64{"/dev/vda": 8 << 30}), s, ApplyOptions{Mode: ModeDestroyFormatMount, Yes: true, Tools: old}); err != nil {
		t.Fatalf("xfsprogs 5.18 makes small filesystems: %v", err)
	}
}
