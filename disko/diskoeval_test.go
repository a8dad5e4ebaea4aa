package disko

// The differential test against disko itself.
//
// testdata/diskoeval/layouts holds our own layouts, one per construct
// family of disko's example/ directory (written for fleet, not copied).
// testdata/diskoeval/golden holds, for each, what real disko made of it:
// the raw user form, disko's evaluated tree (config.disko.devices without
// its internal options, _index kept), and the commands its _create,
// _mount and _unmount scripts run on blank, formatted-and-closed, and
// mounted disks. Each golden names the disko and nixpkgs.lib commits it
// came from.
//
// To regenerate (by hand, with nix-instantiate; the fetch of both
// repositories is the only network use):
//
//	git clone https://github.com/nix-community/disko /tmp/disko
//	git clone https://github.com/nix-community/nixpkgs.lib /tmp/nixpkgs.lib
//	go run ./disko/testdata/diskoeval/regen -disko /tmp/disko -lib /tmp/nixpkgs.lib \
//	    -disko-rev $(git -C /tmp/disko rev-parse HEAD) -lib-rev $(git -C /tmp/nixpkgs.lib rev-parse HEAD)
//
// regen/main.go says how the commands are gathered (disko's scripts under
// bash, with every program that touches a disk replaced by a logger).
// regen -dir DIR works on any directory with layouts/ and eval.nix, and
// FLEET_DISKOEVAL=DIR/golden points this test at its goldens: that is how
// disko's own example/ directory and public layouts are checked at
// development time without keeping their files here.
//
// The test checks, structurally: fleet parses both forms to the same
// plan; each partition gets disko's number, label, type, positions,
// alignment and device path; the create commands are disko's, in disko's
// order, once devices are named alike (disko's by-partlabel links become
// the kernel nodes fleet uses) and what differs by design is set aside
// (listed in normalize); the mount and unmount commands likewise. Layouts
// named refused-* must be refused by name (ErrUnsupported).

import (
	"encoding/json"
	"errors"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type golden struct {
	Layout    string          `json:"layout"`
	Disko     string          `json:"disko"`
	User      json.RawMessage `json:"user"`
	Evaluated json.RawMessage `json:"evaluated"`
	Create    [][]string      `json:"create"`
	Mount     [][]string      `json:"mount"`
	Unmount   [][]string      `json:"unmount"`
}

func loadGoldens(t *testing.T) map[string]*golden {
	t.Helper()
	dir := "testdata/diskoeval/golden"
	if d := os.Getenv("FLEET_DISKOEVAL"); d != "" {
		dir = d
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no goldens: %v", err)
	}
	out := map[string]*golden{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = &g
	}
	return out
}

// devMap maps disko's device paths for partitions to fleet's: a gpt
// partition's by-partlabel (or by-partuuid, or md-name-any) link becomes
// the kernel node of its disk's partition.
func devMap(s *Spec) map[string]string {
	m := map[string]string{}
	add := func(dev string, n *Node) {
		if n == nil {
			return
		}
		for _, pt := range n.Partitions {
			m[pt.Device] = PartNode(dev, pt.Index)
		}
		for _, tp := range n.TableParts {
			m[tp.Device] = PartNode(dev, tp.Index)
		}
	}
	for _, d := range s.Disks {
		add(d.Device, d.Content)
	}
	for _, md := range s.MDs {
		add(md.Device, md.Content)
	}
	return m
}

// normalize turns commands (disko's or fleet's) into comparable facts.
// Set aside, as fleet does them differently by design: udevadm, partprobe
// and modprobe (fleet probes the kernel itself, and lvm loads its dm
// targets); the key's source (disko: a file on the installer, fleet:
// --disk-key on stdin); mdadm's --run (disko pipes "y"); lvm's VG name on
// vgchange (disko acts on all); a mount's -t btrfs (disko lets mount
// detect it); fleet's mdadm --assemble before mounting (disko assumes the
// arrays run); the temporary mount disko makes for each btrfs subvolume.
// Partitions are one fact each, whether sgdisk made them one call per
// partition (disko) or one call for all (fleet). ZFS is compared by what
// each pool and dataset ends up as (zfsFacts); and a create hook by the
// commands its script runs.
func normalize(cmds [][]string, devs map[string]string) []string {
	dev := func(s string) string {
		if d, ok := devs[s]; ok {
			return d
		}
		return s
	}
	var out []string
	z := &zfsFacts{props: map[string]map[string]string{}, at: map[string]int{}}
	var expanded [][]string
	for _, c := range cmds {
		expanded = append(expanded, hookCmds(c)...)
	}
	for _, c := range expanded {
		c = slices.Clone(c)
		for i := range c {
			c[i] = dev(c[i])
		}
		switch c[0] {
		case "udevadm", "partprobe", "modprobe", "umount":
			if c[0] == "umount" && len(c) == 2 && c[1] != "$MNT" {
				out = append(out, "umount "+path.Clean(c[1]))
			}
			continue
		case "sgdisk":
			out = append(out, sgdiskFacts(c)...)
			continue
		case "cryptsetup":
			var k []string
			for i := 0; i < len(c); i++ {
				if c[i] == "--key-file" {
					i++
					continue
				}
				if !strings.HasPrefix(c[i], "--key-file=") {
					k = append(k, c[i])
				}
			}
			c = k
		case "mdadm":
			if c[1] == "--assemble" {
				continue
			}
			c = slices.DeleteFunc(c, func(s string) bool { return s == "--run" })
		case "vgchange":
			c = c[:3]
		case "mount":
			if f := mountFact(c); f != "" {
				out = append(out, f)
			}
			continue
		case "btrfs":
			for i := range c { // disko's "$MNT//swap" is fleet's "$MNT/swap"
				c[i] = strings.Replace(c[i], "$MNT//", "$MNT/", 1)
			}
		case "zpool", "zfs", "zvol_wait":
			out = z.add(out, c)
			continue
		}
		out = append(out, strings.Join(c, " "))
	}
	return z.render(out)
}

// hookCmds is a create hook's script (fleet's bash -c step) as the
// commands it runs, one a line, after the variables fleet sets; any
// other command as it is.
func hookCmds(c []string) [][]string {
	if len(c) != 4 || c[0] != "bash" || c[1] != "-c" || !strings.HasPrefix(c[3], "disko-") {
		return [][]string{c}
	}
	var out [][]string
	for _, l := range strings.Split(c[2], "\n") {
		if l == "set -efu" || strings.HasPrefix(l, "declare -A ") || regexp.MustCompile(`^[A-Za-z_]+=`).MatchString(l) {
			continue
		}
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// zfsFacts turns ZFS commands into what they make, so that the same
// pools and datasets compare equal however the properties get set: a
// pool (its name, altroot, pool properties, and its vdevs by class, the
// vdevs of a class as a set: disko's order of single devices depends on
// how Nix's builtins.sort treats its comparator, which is no strict
// order, and zpool stripes across them alike) and each dataset (its
// type, volume size and arguments) with the properties it ends up with:
// zpool create's -O and -m, zfs create's -o, and every later zfs set
// (disko sets the root filesystem's after creating the pool, fleet sets
// an encryption root's keylocation after creating it with the key on
// stdin). Imports drop -l, -N and -f (fleet loads keys itself from
// stdin, mounts what the layout says, and forces only after its checks),
// load-key its -L prompt; zvol_wait goes (fleet waits for the device).
type zfsFacts struct {
	props map[string]map[string]string // dataset -> its properties
	at    map[string]int               // dataset -> its fact's index
}

func (z *zfsFacts) add(out []string, c []string) []string {
	set := func(ds, kv string) {
		k, v, _ := strings.Cut(kv, "=")
		if z.props[ds] == nil {
			z.props[ds] = map[string]string{}
		}
		z.props[ds][k] = v
	}
	made := func(ds, fact string) []string {
		z.at[ds] = len(out)
		if z.props[ds] == nil {
			z.props[ds] = map[string]string{}
		}
		return append(out, fact)
	}
	switch {
	case c[0] == "zvol_wait":
		return out
	case c[1] == "create" && c[0] == "zpool":
		name, root := "", ""
		var opts []string
		classes := map[string][]string{}
		class, vdev := "data", ""
		flush := func() {
			if vdev != "" {
				classes[class] = append(classes[class], vdev)
				vdev = ""
			}
		}
		for i := 2; i < len(c); i++ {
			switch a := c[i]; {
			case a == "-f":
			case a == "-R":
				i++
				root = c[i]
			case a == "-m":
				i++
				set(name, "mountpoint="+c[i])
			case a == "-o":
				i++
				opts = append(opts, c[i])
			case a == "-O":
				i++
				set(name, c[i])
			case name == "":
				name = a
			case slices.Contains([]string{"spare", "log", "dedup", "special", "cache"}, a):
				flush()
				class = a
			case slices.Contains([]string{"mirror", "raidz", "raidz1", "raidz2", "raidz3"}, a):
				flush()
				vdev = a + ":"
			case vdev != "" && strings.HasSuffix(vdev, ":"):
				vdev += a
			case vdev != "" && strings.Contains(vdev, ":"):
				vdev += "," + a
			default:
				flush()
				classes[class] = append(classes[class], a)
			}
		}
		flush()
		slices.Sort(opts)
		var topo []string
		for _, k := range []string{"data", "spare", "log", "dedup", "special", "cache"} {
			if vs := classes[k]; len(vs) > 0 {
				slices.Sort(vs)
				topo = append(topo, k+"["+strings.Join(vs, " ")+"]")
			}
		}
		props := z.props[name]
		delete(z.props, name)
		out = made(name, "zpool create "+name+" altroot="+root+" -o "+strings.Join(opts, ",")+" "+strings.Join(topo, " "))
		for k, v := range props {
			set(name, k+"="+v)
		}
		return out
	case c[0] == "zpool" && c[1] == "import":
		return append(out, "zpool import "+strings.Join(slices.DeleteFunc(slices.Clone(c[2:]), func(s string) bool { return s == "-l" || s == "-N" || s == "-f" }), " "))
	case c[0] == "zfs" && c[1] == "create":
		name, size := "", ""
		var extra, props []string
		for i := 2; i < len(c); i++ {
			switch a := c[i]; {
			case a == "-up" || a == "-p" || a == "-u":
			case a == "-o":
				i++
				props = append(props, c[i])
			case a == "-V":
				i++
				size = c[i]
			case name == "":
				name = a
			default:
				extra = append(extra, a)
			}
		}
		for _, kv := range props {
			set(name, kv)
		}
		fact := "zfs create " + name
		if size != "" {
			fact += " volume " + size
		}
		if len(extra) > 0 {
			fact += " " + strings.Join(extra, " ")
		}
		return made(name, fact)
	case c[0] == "zfs" && c[1] == "set":
		name := c[len(c)-1]
		for _, kv := range c[2 : len(c)-1] {
			if kv != "-u" {
				set(name, kv)
			}
		}
		if _, ok := z.at[name]; !ok {
			return append(out, "zfs set "+strings.Join(c[2:], " "))
		}
		return out
	case c[0] == "zfs" && c[1] == "load-key":
		return append(out, "zfs load-key "+c[len(c)-1])
	}
	return append(out, strings.Join(c, " "))
}

// render writes each pool's and dataset's properties into its fact.
func (z *zfsFacts) render(out []string) []string {
	for ds, i := range z.at {
		var kv []string
		for _, k := range sortedKeys(z.props[ds]) {
			kv = append(kv, k+"="+z.props[ds][k])
		}
		out[i] += " props{" + strings.Join(kv, " ") + "}"
	}
	return out
}

// sgdiskFacts splits an sgdisk call into one fact per table change.
func sgdiskFacts(c []string) []string {
	d := c[len(c)-1]
	var out []string
	parts := map[string][]string{}
	var order []string
	align := ""
	for _, a := range c[1 : len(c)-1] {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "--clear":
			out = append(out, "clear "+d)
		case "--zap-all":
			out = append(out, "zap "+d)
		case "-h":
		case "--align-end":
		case "--set-alignment":
			align = v
		case "--new", "--change-name", "--typecode", "--partition-guid", "--attributes":
			n, val, _ := strings.Cut(v, ":")
			if k == "--new" {
				order = append(order, n)
				if align != "" {
					parts[n] = append(parts[n], "align="+align)
					align = ""
				}
			}
			if (k == "--partition-guid" && val == "R") || (k == "--attributes" && val == "=:0") {
				continue
			}
			parts[n] = append(parts[n], strings.TrimPrefix(k, "--")+"="+val)
		default:
			out = append(out, "sgdisk "+a+" "+d)
		}
	}
	if slices.Contains(c, "-h") {
		out = append(out, "hybrid "+c[2]+" "+d)
	}
	for _, n := range order {
		slices.Sort(parts[n])
		out = append(out, "partition "+d+" "+n+" "+strings.Join(parts[n], " "))
	}
	return out
}

// mountFact is a mount as device, target and options, whatever the order
// of its arguments; temporary mounts are dropped.
func mountFact(c []string) string {
	var pos, opts []string
	typ := ""
	for i := 1; i < len(c); i++ {
		switch c[i] {
		case "-t":
			i++
			typ = c[i]
		case "-o":
			i++
			for _, o := range strings.Split(c[i], ",") {
				if o != "X-mount.mkdir" {
					opts = append(opts, o)
				}
			}
		default:
			pos = append(pos, c[i])
		}
	}
	if len(pos) != 2 || pos[1] == "$MNT" {
		return ""
	}
	if typ == "btrfs" {
		typ = ""
	}
	return "mount " + pos[0] + " " + path.Clean(pos[1]) + " type=" + typ + " " + strings.Join(opts, ",")
}

func planCmds(t *testing.T, s *Spec, mode Mode) [][]string {
	t.Helper()
	steps, err := BuildPlan(s, mode, Options{Root: "/mnt"})
	if err != nil {
		t.Fatal(err)
	}
	var cmds [][]string
	for _, st := range steps {
		cmds = append(cmds, st.Cmds...)
	}
	return cmds
}

func TestDiskoDifferential(t *testing.T) {
	for name, g := range loadGoldens(t) {
		t.Run(name, func(t *testing.T) {
			user, uerr := Parse(g.User)
			eval, eerr := Parse(g.Evaluated)
			if strings.HasPrefix(name, "refused-") {
				for _, err := range []error{uerr, eerr} {
					if !errors.Is(err, ErrUnsupported) {
						t.Errorf("want a refusal by name (ErrUnsupported), got %v", err)
					}
				}
				t.Logf("refused: %v", uerr)
				return
			}
			if uerr != nil || eerr != nil {
				t.Fatalf("parse: user form: %v; evaluated form: %v", uerr, eerr)
			}
			for _, m := range []Mode{ModeDestroyFormatMount, ModeMount, ModeUnmount} {
				if a, b := planJSON(t, mustPlan(t, user, m)), planJSON(t, mustPlan(t, eval, m)); a != b {
					t.Errorf("%s: the two forms plan differently:\n%s\n%s", m, a, b)
				}
			}
			checkTree(t, user, g.Evaluated)
			devs := devMap(user)
			for _, c := range []struct {
				what  string
				mode  Mode
				disko [][]string
			}{{"create", Mode{Format: true}, g.Create}, {"mount", ModeMount, g.Mount}, {"unmount", ModeUnmount, g.Unmount}} {
				want := normalize(c.disko, devs)
				got := normalize(planCmds(t, user, c.mode), devs)
				if len(want) == 0 {
					t.Errorf("%s: the golden has no commands", c.what)
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s: fleet's commands differ from disko's (%s):\n%s", c.what, g.Disko[:12], diffLines(want, got))
				}
			}
		})
	}
}

func mustPlan(t *testing.T, s *Spec, m Mode) []Step {
	t.Helper()
	steps, err := BuildPlan(s, m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return steps
}

// checkTree compares every gpt partition with disko's evaluated tree.
func checkTree(t *testing.T, s *Spec, evaluated json.RawMessage) {
	var tree struct {
		Disk  map[string]struct{ Content *evTable } `json:"disk"`
		Mdadm map[string]struct{ Content *evTable } `json:"mdadm"`
	}
	if err := json.Unmarshal(evaluated, &tree); err != nil {
		t.Fatal(err)
	}
	check := func(where string, n *Node, ev *evTable) {
		if ev == nil || ev.Type != "gpt" {
			return
		}
		var parts map[string]evPartition
		if err := json.Unmarshal(ev.Partitions, &parts); err != nil {
			t.Fatal(err)
		}
		if n == nil || len(n.Partitions) != len(parts) {
			t.Errorf("%s: fleet has %v, disko %d partitions", where, n, len(parts))
			return
		}
		for _, pt := range n.Partitions {
			e, ok := parts[pt.Path[strings.LastIndex(pt.Path, ".partitions.")+len(".partitions."):]]
			if !ok {
				t.Errorf("%s: partition %s not in disko's tree", where, pt.Path)
				continue
			}
			got := evPartition{Index: pt.Index, Label: pt.Label, Type: pt.TypeCode, Start: pt.Start, End: pt.End, Device: pt.Device, Priority: pt.Priority, Alignment: pt.Alignment, Name: pt.Name}
			e.Size = ""
			if got != e {
				t.Errorf("%s:\n fleet %+v\n disko %+v", pt.Path, got, e)
			}
		}
	}
	for _, d := range s.Disks {
		check(d.Path, d.Content, tree.Disk[d.Key].Content)
	}
	for _, md := range s.MDs {
		check(md.Path, md.Content, tree.Mdadm[md.Key].Content)
	}
}

type evTable struct {
	Type       string          `json:"type"`
	Partitions json.RawMessage `json:"partitions"`
}

type evPartition struct {
	Index     int    `json:"_index"`
	Name      string `json:"name"`
	Label     string `json:"label"`
	Type      string `json:"type"`
	Start     string `json:"start"`
	End       string `json:"end"`
	Size      string `json:"size"`
	Device    string `json:"device"`
	Priority  int    `json:"priority"`
	Alignment int    `json:"alignment"`
}

// diffLines shows two fact lists side by side, marking where they part.
func diffLines(want, got []string) string {
	var b strings.Builder
	n := max(len(want), len(got))
	for i := 0; i < n; i++ {
		w, g := "", ""
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		mark := "  "
		if w != g {
			mark = "! "
		}
		b.WriteString(mark + "disko: " + w + "\n" + mark + "fleet: " + g + "\n")
	}
	return b.String()
}
