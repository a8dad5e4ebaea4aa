package disko

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSeeds are the layouts of the package's tests: the testdata files and
// the inline layouts (valid and invalid).
var fuzzSeeds = []string{
	// TestDefaults
	`{"disk":{"main":{"type":"disk","device":"/dev/vda","content":{"type":"gpt","partitions":{
		"root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}},
		"swap":{"size":"8G","content":{"type":"swap"}},
		"ESP":{"size":"512M","type":"EF00","content":{"type":"filesystem","format":"vfat","mountpoint":"/boot"}},
		"boot":{"size":"1M","type":"ef02"},
		"first":{"size":"10G","priority":50},
		"this-is-a-long-partition-name-xx":{"size":"1G"}
	}}}}}`,
	// TestEvaluatedForm
	`{"disk":{"main":{"type":"disk","device":"/dev/vda","name":"main","content":{"type":"gpt","partitions":{
		"a":{"_index":2,"size":"1G","label":"custom-a","priority":1000,"type":"8300","device":"/dev/disk/by-partlabel/custom-a","start":"0","end":"+1G"},
		"b":{"_index":1,"size":"1G","label":"disk-main-b","priority":1000,"type":"8300","device":"/dev/disk/by-partlabel/disk-main-b","start":"0","end":"+1G"}
	}}}}}`,
	// TestStackedDevices
	`{"disk":{
	  "a":{"type":"disk","device":"/dev/vdb","content":{"type":"gpt","partitions":{"md":{"size":"100%","content":{"type":"mdraid","name":"nas"}}}}},
	  "b":{"type":"disk","device":"/dev/vdc","content":{"type":"gpt","partitions":{"md":{"size":"100%","content":{"type":"mdraid","name":"nas"}}}}},
	  "c":{"type":"disk","device":"/dev/vda","content":{"type":"gpt","partitions":{"luks":{"size":"100%","content":{"type":"luks","name":"crypted","settings":{"allowDiscards":true},"content":{"type":"lvm_pv","vg":"pool"}}}}}}},
	"mdadm":{"nas":{"type":"mdadm","level":1,"content":{"type":"filesystem","format":"xfs","mountpoint":"/srv"}}},
	"lvm_vg":{"pool":{"type":"lvm_vg","lvs":{"root":{"size":"100%FREE","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}},"swap":{"size":"2G","content":{"type":"swap"}}}}}}`,
	// TestStackedLayoutsOnRig
	`{"disk": {"main": {"type": "disk", "device": "/dev/vda", "content": {"type": "gpt", "partitions": {
	  "ESP": {"size": "64M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot"}},
	  "luks": {"size": "100%", "content": {"type": "luks", "name": "crypted", "settings": {"allowDiscards": true},
	    "content": {"type": "lvm_pv", "vg": "pool"}}}}}}},
	 "lvm_vg": {"pool": {"type": "lvm_vg", "lvs": {"root": {"size": "100%FREE", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}}`,
	// Edge forms the tests do not use: root on tmpfs (impermanence) with a
	// nodev's explicit mountpoint, sizes in sectors and in large units,
	// nested mountpoints across devices.
	`{"disk":{"nvme":{"type":"disk","device":"/dev/nvme0n1","content":{"type":"gpt","partitions":{
		"ESP":{"size":"2048","type":"EF00","content":{"type":"filesystem","format":"vfat","mountpoint":"/boot","mountOptions":["umask=0077"]}},
		"nix":{"size":"16T","content":{"type":"filesystem","format":"xfs","mountpoint":"/nix"}},
		"persist":{"size":"100%","content":{"type":"btrfs","subvolumes":{"@persist":{"mountpoint":"/persist"},"@log":{"mountpoint":"/persist/var/log"}}}}}}}},
	 "nodev":{"root":{"fsType":"tmpfs","mountpoint":"/","mountOptions":["size=2G","mode=755"]}}}`,
	// TestSpecErrors
	`{"disk":{"main":{"type":"disk","device":"/dev/vda","content":{"type":"gpt","partitions":{"root":{"size":"100%"},"zz":{"size":"1G","priority":9999}}}}}}`,
	`{"disk":{"main":{"type":"disk","device":"/dev/vda","content":{"type":"gpt","partitions":{"a":{"size":"1G","content":{"type":"lvm_pv","vg":"nope"}}}}}}}`,
	`{"zpool":{"zroot":{}}}`,
	`{"disk":{"main":{"type":"disk","device":"vda"}}}`,
}

// FuzzParse: Parse never panics and fails only with ErrSpec or
// ErrUnsupported; a spec it accepts plans in every mode without error or
// panic, the same plan each time; every mount and unmount stays under the
// root, no two filesystems mount at one place, parents mount before their
// children (and unmount after them); and sizes are exact: a partition's
// Bytes is its size, and Needs is the layout's whole size (saturated at
// the int64 limit: a refusal, never a wrap-around that passes).
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Both forms of every differential layout, as disko made them.
	goldens, _ := filepath.Glob("testdata/diskoeval/golden/*.json")
	for _, name := range goldens {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(b, &g); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(g.User))
		f.Add([]byte(g.Evaluated))
	}
	const root = "/mnt"
	modes := []string{"destroy,format,mount", "format,mount", "format", "mount", "unmount"}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		s, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrSpec) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps neither ErrSpec nor ErrUnsupported: %v", err)
			}
			return
		}
		again, err := Parse(data)
		if err != nil {
			t.Fatalf("accepted once, then: %v", err)
		}
		for _, mode := range modes {
			m, err := ParseMode(mode)
			if err != nil {
				t.Fatal(err)
			}
			steps, err := BuildPlan(s, m, Options{Root: root})
			if err != nil {
				t.Fatalf("%s: an accepted spec does not plan: %v", mode, err)
			}
			steps2, _ := BuildPlan(again, m, Options{Root: root})
			if a, b := planJSON(t, steps), planJSON(t, steps2); a != b {
				t.Fatalf("%s: two plans of one spec differ:\n%s\n%s", mode, a, b)
			}
			checkMountOrder(t, mode, root, steps)
		}
		for _, d := range s.Disks {
			checkSizes(t, d)
		}
	})
}

func planJSON(t *testing.T, steps []Step) string {
	b, err := json.Marshal(steps)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkMountOrder: mount and umount targets lie under root; mounts are
// unique and parents first; umounts children first.
func checkMountOrder(t *testing.T, mode, root string, steps []Step) {
	under := func(p, dir string) bool { return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") }
	seen := map[string]string{}
	var mounted, unmounted []string
	for _, st := range steps {
		if st.Kind() != "mount" && st.Kind() != "umount" {
			continue
		}
		if !under(st.Mountpoint, root) {
			t.Fatalf("%s: %s %s (from %s) is outside the root %s", mode, st.Kind(), st.Mountpoint, st.Node, root)
		}
		if st.Kind() == "umount" {
			for _, u := range unmounted {
				if under(st.Mountpoint, u) && st.Mountpoint != u {
					t.Fatalf("%s: %s is unmounted after its parent %s", mode, st.Mountpoint, u)
				}
			}
			unmounted = append(unmounted, st.Mountpoint)
			continue
		}
		if prev, ok := seen[st.Mountpoint]; ok {
			t.Fatalf("%s: %s and %s both mount at %s", mode, prev, st.Node, st.Mountpoint)
		}
		seen[st.Mountpoint] = st.Node
		for _, m := range mounted {
			if under(m, st.Mountpoint) {
				t.Fatalf("%s: %s is mounted after %s, which lies under it", mode, st.Mountpoint, m)
			}
		}
		mounted = append(mounted, st.Mountpoint)
	}
}

// checkSizes: each sized partition's Bytes is its size exactly, and Needs
// is the layout's size (2 MiB of GPT and alignment, each sized partition,
// 1 MiB for each other), saturated at math.MaxInt64.
func checkSizes(t *testing.T, d *Node) {
	if d.Content == nil || d.Content.Type != "gpt" {
		return
	}
	units := map[byte]uint{'K': 10, 'M': 20, 'G': 30, 'T': 40, 'P': 50}
	need := big.NewInt(2 << 20)
	for _, pt := range d.Content.Partitions {
		exact := new(big.Int)
		if m := sizeRE.FindStringSubmatch(pt.Size); m != nil {
			exact.SetString(m[1], 10)
			if m[2] == "" {
				exact.Mul(exact, big.NewInt(512)) // sectors
			} else {
				exact.Lsh(exact, units[m[2][0]])
			}
			if !exact.IsInt64() || exact.Int64() != pt.Bytes() {
				t.Fatalf("%s: size %q is %s bytes, Bytes() says %d", pt.Path, pt.Size, exact, pt.Bytes())
			}
		}
		if exact.Sign() > 0 {
			need.Add(need, exact)
		} else {
			need.Add(need, big.NewInt(1<<20))
		}
	}
	want := int64(math.MaxInt64)
	if need.IsInt64() {
		want = need.Int64()
	}
	if got := Needs(d); got != want {
		t.Fatalf("%s: Needs = %d, the layout takes %s bytes", d.Path, got, need)
	}
}
