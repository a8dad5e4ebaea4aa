package disko

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// This file reads ZFS: zpool top-level devices, their datasets (zfs_fs,
// zfs_volume), and zfs content nodes (a pool's members).

// zfsMember is a zfs content node as a pool's member: disko's device path
// for it, and the node.
type zfsMember struct {
	dev  string
	path string
}

// strMap reads an attrset of strings (zfs properties): every name a plain
// property name, every value a string.
func (o *obj) strMap(k string) map[string]string {
	v, ok := o.get(k)
	if !ok {
		return map[string]string{}
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		o.p.specErr(o.at(k), "%s: want an attrset of strings", show(v))
		return map[string]string{}
	}
	out := map[string]string{}
	for _, name := range sortedKeys(m) {
		s, isStr := m[name].(string)
		switch {
		case !isStr:
			o.p.specErr(o.at(k)+"."+name, "%s: want a string", show(m[name]))
		case !propNameRE.MatchString(name):
			o.p.specErr(o.at(k)+"."+name, "%q: a property name is lower-case letters, digits and _.:@-", name)
		case strings.ContainsAny(s, "\x00\n"):
			o.p.specErr(o.at(k)+"."+name, "%q: a property value is one line", s)
		default:
			out[name] = s
		}
	}
	return out
}

// zfsMember reads a zfs content node: a member of the pool it names.
func (p *parser) zfsMember(o *obj, n *Node, pa parent) {
	n.Pool = o.str("pool", "")
	if n.Pool == "" {
		p.specErr(o.at("pool"), "missing: a zfs member names its pool")
		return
	}
	if p.zfsMembers == nil {
		p.zfsMembers = map[string][]zfsMember{}
	}
	p.zfsMembers[n.Pool] = append(p.zfsMembers[n.Pool], zfsMember{dev: pa.dev, path: o.path})
}

func (p *parser) zpool(o *obj) *Node {
	o.typeIs("zpool", true)
	n := &Node{Type: "zpool", Key: o.key, Path: o.path, Zpool: &Zpool{}}
	n.Name = o.str("name", o.key)
	if msg := checkPoolName(n.Name); msg != "" {
		p.specErr(o.at("name"), "%q: %s", n.Name, msg)
	}
	p.claim("zfs pool", n.Name, o.path)
	n.Device = n.Name
	z := n.Zpool
	if v, ok := o.get("mode"); ok {
		switch m := v.(type) {
		case string:
			z.Mode = m
			if !slices.Contains(zpoolModes, m) {
				p.specErr(o.at("mode"), "%q: disko takes \"\", mirror, raidz, raidz1, raidz2, raidz3 or a topology", m)
			}
		default:
			z.Topology = p.topology(o.sub("mode"))
		}
	}
	z.Options = o.strMap("options")
	rootOpts := o.strMap("rootFsOptions")
	n.Mountpoint = o.absPath("mountpoint")
	n.MountOptions = o.strs("mountOptions")
	if len(n.MountOptions) == 0 {
		n.MountOptions = []string{"defaults"}
	}
	if mr := o.str("mountRoot", ""); mr != "" {
		z.MountRoot = mr
	}
	o.hooks(n)
	root := &Node{Type: "zfs_fs", Name: n.Name, Key: "__root", Path: o.path + ".rootFsOptions", Pool: n.Name, PoolRoot: true,
		Options: rootOpts, Mountpoint: n.Mountpoint, MountOptions: n.MountOptions}
	n.Datasets = []*Node{root}
	for _, do := range o.subs("datasets") {
		if d := p.dataset(do, n); d != nil {
			n.Datasets = append(n.Datasets, d)
		}
	}
	// disko creates them in attr-name order, its __root among them.
	sort.SliceStable(n.Datasets, func(i, j int) bool { return n.Datasets[i].Key < n.Datasets[j].Key })
	seen := map[string]string{}
	for _, d := range n.Datasets {
		if prev, ok := seen[d.Name]; ok {
			p.specErr(d.Path, "dataset %q: already made by %s", d.Name, prev)
		}
		seen[d.Name] = d.Path
		if d.mounted() {
			p.addMount(d.Mountpoint, d.Path)
		}
	}
	p.checkEncryption(n)
	o.finish()
	return n
}

// topology reads mode.topology.
func (p *parser) topology(o *obj) *Topology {
	t := &Topology{}
	for _, k := range sortedKeys(o.m) {
		if k != "topology" {
			p.specErr(o.at(k), "disko has no such mode: want mode.topology or a mode string")
		}
	}
	to := o.sub("topology")
	if to == nil {
		p.specErr(o.path, "want mode.topology or a mode string")
		return t
	}
	to.typeIs("topology", true)
	vdevs := func(k string) []Vdev {
		var out []Vdev
		for _, vo := range to.items(k) {
			out = append(out, p.vdev(vo))
		}
		return out
	}
	t.Vdev, t.Log, t.Dedup = vdevs("vdev"), vdevs("log"), vdevs("dedup")
	// special is a list of vdevs, or one vdev (or null).
	if v, ok := to.get("special"); ok {
		if _, isList := v.([]any); isList {
			t.Special = vdevs("special")
		} else {
			t.Special = []Vdev{p.vdev(to.sub("special"))}
		}
	}
	t.Spare, t.Cache = to.strs("spare"), to.strs("cache")
	to.finish()
	o.finish()
	if len(t.Vdev) == 0 {
		p.specErr(to.at("vdev"), "empty: a pool needs at least one data vdev")
	}
	for _, c := range []struct {
		name  string
		vdevs []Vdev
	}{{"log", t.Log}, {"dedup", t.Dedup}, {"special", t.Special}} {
		for i, v := range c.vdevs {
			if v.Mode != "" && v.Mode != "mirror" {
				p.specErr(fmt.Sprintf("%s[%d].mode", to.at(c.name), i), "%q: zpool makes %s vdevs of single devices or mirrors only", v.Mode, c.name)
			}
		}
	}
	return t
}

func (p *parser) vdev(o *obj) Vdev {
	v := Vdev{Mode: o.str("mode", ""), Members: o.strs("members")}
	if !slices.Contains(zpoolModes, v.Mode) {
		p.specErr(o.at("mode"), "%q: disko takes \"\", mirror, raidz, raidz1, raidz2 or raidz3", v.Mode)
	}
	if _, ok := o.get("members"); !ok {
		p.specErr(o.at("members"), "missing: a vdev lists its members")
	} else if need := minMembers[v.Mode]; len(v.Members) < need {
		p.specErr(o.at("members"), "%s: a %s vdev needs at least %d", plural(len(v.Members), "member"), vdevModeName(v.Mode), need)
	}
	o.finish()
	return v
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func vdevModeName(m string) string {
	if m == "" {
		return "single-device"
	}
	return m
}

var zvolSizeRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?[KMGTPEkmgtpe]?$`)

// dataset reads a zfs_fs or zfs_volume of pool.
func (p *parser) dataset(o *obj, pool *Node) *Node {
	t := o.str("type", "")
	if t != "zfs_fs" && t != "zfs_volume" {
		p.specErr(o.at("type"), "%q: a dataset is zfs_fs or zfs_volume", t)
		return nil
	}
	name := o.str("name", o.key)
	n := &Node{Type: t, Key: o.key, Path: o.path, Pool: pool.Name, Name: pool.Name + "/" + name}
	for _, part := range strings.Split(name, "/") {
		if !datasetPartRE.MatchString(part) || part == "." || part == ".." {
			p.specErr(o.at("name"), "%q: a dataset name is parts of letters, digits and _.:- joined by /", name)
			break
		}
	}
	n.Options = o.strMap("options")
	n.MountOptions = o.strs("mountOptions")
	if len(n.MountOptions) == 0 {
		n.MountOptions = []string{"defaults"}
	}
	o.hooks(n)
	switch t {
	case "zfs_fs":
		n.Mountpoint = o.absPath("mountpoint")
	case "zfs_volume":
		n.Size = o.str("size", "")
		if !zvolSizeRE.MatchString(n.Size) {
			p.specErr(o.at("size"), "%q: want a volume size like 10G or 512M", n.Size)
		}
		n.ExtraArgs = o.strs("extraArgs") // disko quotes each
		n.Device = "/dev/zvol/" + n.Name
		c := o.sub("content")
		if c != nil {
			if ct := c.str("type", ""); ct == "gpt" || ct == "table" {
				p.specErr(c.at("type"), "%q: disko puts no partition table on a volume", ct)
			}
		}
		n.Content = p.content(c, parent{typ: "zfs_volume", name: name, dev: n.Device, top: "zpool." + pool.Name})
	}
	o.finish()
	return n
}

// checkEncryption refuses what zfs create would refuse half-way: an
// encrypted dataset that is no encryption root and has none above it, a
// keylocation or keyformat zfs does not take, a keylocation on a dataset
// that inherits its key. It claims each encryption root's key name.
func (p *parser) checkEncryption(pool *Node) {
	roots := map[string]bool{}
	for _, d := range pool.Datasets {
		if d.EncryptionRoot() {
			roots[d.Name] = true
		}
	}
	inherits := func(d *Node) bool {
		for name := d.Name; strings.Contains(name, "/"); {
			name = name[:strings.LastIndex(name, "/")]
			if roots[name] {
				return true
			}
		}
		return false
	}
	for _, d := range pool.Datasets {
		at := d.Path + ".options"
		if d.PoolRoot {
			at = d.Path
		}
		switch {
		case d.EncryptionRoot():
			if f := d.Options["keyformat"]; !slices.Contains([]string{"passphrase", "hex", "raw"}, f) {
				p.specErr(at+".keyformat", "%q: zfs takes passphrase, hex or raw", f)
			}
			l := d.KeyLocation()
			if l != "prompt" && !strings.HasPrefix(l, "file:///") && !strings.HasPrefix(l, "https://") && !strings.HasPrefix(l, "http://") {
				p.specErr(at+".keylocation", "%q: an encryption root's key is at prompt, file:///PATH or an http(s) URL", l)
			}
			p.claim("disk key", d.Name, d.Path)
		case d.Options["encryption"] != "" && d.Options["encryption"] != "off" && !inherits(d):
			p.specErr(at+".encryption", "%q without keyformat: a new encryption root needs keyformat (passphrase, hex or raw)", d.Options["encryption"])
		case d.Options["keylocation"] != "" && d.Options["keylocation"] != "none":
			p.specErr(at+".keylocation", "%q: only an encryption root (a dataset with keyformat) has a keylocation", d.Options["keylocation"])
		}
	}
}

// zfsRefs fills in each pool's members and refuses members of pools that
// do not exist, pools without members, and topologies that do not name
// every member exactly once (disko would skip creating the pool).
func (p *parser) zfsRefs() {
	for _, pool := range p.spec.Zpools {
		members := p.zfsMembers[pool.Name]
		delete(p.zfsMembers, pool.Name)
		if len(members) == 0 {
			p.specErr(pool.Path, "no zfs member refers to it")
			return
		}
		if pool.Zpool.Topology == nil {
			if need := minMembers[pool.Zpool.Mode]; len(members) < need {
				p.specErr(pool.Path+".mode", "%q over %s: it needs at least %d", pool.Zpool.Mode, plural(len(members), "member"), need)
			}
			continue
		}
		left := map[string]string{} // disko's device -> member path
		for _, m := range members {
			left[m.dev] = m.path
		}
		named := map[string]bool{}
		for _, c := range pool.Zpool.Topology.classes() {
			for _, v := range c.vdevs {
				for _, m := range v.Members {
					dev := topologyDevice(m)
					if named[dev] {
						p.specErr(pool.Path+".mode.topology", "member %q: named twice", m)
						return
					}
					named[dev] = true
					if _, ok := left[dev]; !ok {
						where := fmt.Sprintf("no zfs member of pool %s is %s", pool.Name, dev)
						if !strings.HasPrefix(m, "/") {
							where += fmt.Sprintf(" (disko reads %q as disk %s's partition named zfs)", m, m)
						}
						p.specErr(pool.Path+".mode.topology", "member %q: %s", m, where)
						return
					}
					delete(left, dev)
				}
			}
		}
		for _, dev := range sortedKeys(left) {
			p.specErr(left[dev], "a member of pool %s that its topology does not name (%s)", pool.Name, dev)
			return
		}
	}
	for _, name := range sortedKeys(p.zfsMembers) {
		p.specErr(p.zfsMembers[name][0].path, "pool %q: no zpool of that name", name)
		return
	}
}

// topologyDevice is the device disko gives a topology member: a path as
// it is, a name as /dev/disk/by-partlabel/disk-NAME-zfs.
func topologyDevice(m string) string {
	if strings.HasPrefix(m, "/") {
		return m
	}
	return "/dev/disk/by-partlabel/disk-" + m + "-zfs"
}
