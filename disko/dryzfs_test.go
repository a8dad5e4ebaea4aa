package disko

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// dryZFS is the dry machine's ZFS: pools with their members' labels,
// datasets with their properties and keys. It answers the zpool and zfs
// commands Apply runs as OpenZFS does (the key from stdin for prompt, a
// wrong key refused), and fails the test on any other (unknown).
type dryZFS struct {
	pools    map[string]*dryPool    // by name
	datasets map[string]*dryDataset // by full name
	labels   map[string]dryLabel    // kernel node -> its label
	nextGUID int
	hostid   uint64 // the installer's
}

type dryPool struct {
	guid     string
	imported bool
	readonly bool
	root     string
	members  []string // kernel nodes
}

type dryLabel struct {
	pool, guid string
	state      int
	hostid     uint64
	hostname   string
}

type dryDataset struct {
	volume bool
	props  map[string]string
	key    string // an encryption root's key (first line)
	loaded bool
}

func (z *dryZFS) init() {
	if z.pools == nil {
		z.pools, z.datasets, z.labels, z.nextGUID = map[string]*dryPool{}, map[string]*dryDataset{}, map[string]dryLabel{}, 1000
	}
}

// addForeignPool puts the label of pool name, last imported by host
// (hostid), on dev: a pool made elsewhere.
func (m *dryMachine) addForeignPool(name, dev string, state int, hostid uint64, host string) {
	m.zfs.init()
	m.zfs.nextGUID++
	m.zfs.labels[m.real(dev)] = dryLabel{pool: name, guid: strconv.Itoa(m.zfs.nextGUID), state: state, hostid: hostid, hostname: host}
	m.fs[m.real(dev)] = "zfs_member"
}

// zfsLabels answers the label scan: each device given, its partitions,
// their labels, and the host id.
func (m *dryMachine) zfsLabels(names []string) string {
	m.zfs.init()
	var b strings.Builder
	var under string
	show := func(dev string) {
		fmt.Fprintf(&b, "dev %s %s\n", path.Base(dev), under)
		if l, ok := m.zfs.labels[dev]; ok && m.fs[dev] == "zfs_member" {
			fmt.Fprintf(&b, "blkid ID_FS_TYPE=zfs_member\nblkid ID_FS_LABEL_ENC=%s\nblkid ID_FS_UUID=%s\n", l.pool, l.guid)
			fmt.Fprintf(&b, "zdb name: '%s'\nzdb state: %d\nzdb hostid: %d\nzdb hostname: '%s'\nzdb pool_guid: %s\n", l.pool, l.state, l.hostid, l.hostname, l.guid)
		} else if t := m.fs[dev]; t != "" {
			fmt.Fprintf(&b, "blkid ID_FS_TYPE=%s\n", t)
		}
	}
	for _, n := range names {
		dev := "/dev/" + n
		if !m.exists(dev) {
			dev = "/dev/mapper/" + n // the dry machine names dm devices so
		}
		if !m.exists(dev) {
			continue
		}
		under = n
		show(dev)
		for _, p := range m.parts[dev] {
			show(PartNode(dev, p.n))
		}
	}
	fmt.Fprintf(&b, "hostid %d\n", m.zfs.hostid)
	return b.String()
}

func (m *dryMachine) zpool(args []string) (string, int) {
	m.zfs.init()
	z := &m.zfs
	last := args[len(args)-1]
	switch args[1] {
	case "list":
		if p, ok := z.pools[last]; ok && p.imported {
			return last + "\n", 0
		}
		return "cannot open '" + last + "': no such pool", 1
	case "get": // zpool get -H -o value altroot NAME
		if p, ok := z.pools[last]; ok && p.imported {
			return p.root + "\n", 0
		}
		return "", 1
	case "create":
		name, root := args[3], ""
		var members []string
		props := map[string]string{}
		for i := 4; i < len(args); i++ {
			switch args[i] {
			case "-R":
				i++
				root = args[i]
			case "-m":
				i++
				props["mountpoint"] = args[i]
			case "-o":
				i++
			case "-O":
				i++
				k, v, _ := strings.Cut(args[i], "=")
				props[k] = v
			default:
				if strings.HasPrefix(args[i], "/dev/") {
					dev := m.real(args[i])
					if !m.exists(dev) {
						return "cannot open " + args[i], 1
					}
					members = append(members, dev)
				}
			}
		}
		if _, ok := z.pools[name]; ok {
			return "pool exists", 1
		}
		z.nextGUID++
		p := &dryPool{guid: strconv.Itoa(z.nextGUID), imported: true, root: root, members: members}
		z.pools[name] = p
		for _, dev := range members {
			m.fs[dev] = "zfs_member"
			z.labels[dev] = dryLabel{pool: name, guid: p.guid, state: poolActive, hostid: z.hostid}
		}
		ds := &dryDataset{props: props}
		if props["keyformat"] != "" {
			if props["keylocation"] != "prompt" || len(m.stdin) == 0 {
				return "no key on stdin", 1
			}
			ds.key, ds.loaded = firstLine(m.stdin), true
		}
		z.datasets[name] = ds
		m.fs[name] = "zfs"
		return "", 0
	case "import": // zpool import -N -f [-o readonly=on] -R ROOT GUID
		for name, p := range z.pools {
			if p.guid == last && !p.imported {
				p.imported, p.readonly = true, slices.Contains(args, "readonly=on")
				p.root = args[slices.Index(args, "-R")+1]
				for _, dev := range p.members {
					l := z.labels[dev]
					l.state, l.hostid = poolActive, z.hostid
					if !p.readonly {
						z.labels[dev] = l
					}
				}
				_ = name
				return "", 0
			}
		}
		for dev, l := range z.labels { // a pool the dry machine did not make
			if l.guid == last && l.state != poolDestroyed {
				p := &dryPool{guid: l.guid, imported: true, root: args[slices.Index(args, "-R")+1]}
				for d, l2 := range z.labels {
					if l2.guid == l.guid {
						p.members = append(p.members, d)
					}
				}
				z.pools[l.pool] = p
				z.datasets[l.pool] = &dryDataset{props: map[string]string{}}
				m.fs[l.pool] = "zfs"
				_ = dev
				return "", 0
			}
		}
		return "cannot import '" + last + "': no such pool available", 1
	case "export":
		p, ok := z.pools[last]
		if !ok || !p.imported {
			return "no such pool", 1
		}
		for _, mt := range m.mounts {
			if mt.fstype == "zfs" && (mt.dev == last || strings.HasPrefix(mt.dev, last+"/")) {
				return "cannot export '" + last + "': pool is busy", 1
			}
		}
		p.imported = false
		for name, ds := range z.datasets {
			if name == last || strings.HasPrefix(name, last+"/") {
				ds.loaded = false
			}
		}
		for _, dev := range p.members {
			l := z.labels[dev]
			if !p.readonly {
				l.state = poolExported
			}
			z.labels[dev] = l
		}
		return "", 0
	case "destroy":
		p, ok := z.pools[last]
		if !ok || !p.imported {
			return "no such pool", 1
		}
		for _, dev := range p.members {
			l := z.labels[dev]
			l.state = poolDestroyed
			z.labels[dev] = l
		}
		delete(z.pools, last)
		return "", 0
	case "labelclear":
		dev := m.real(last)
		delete(z.labels, dev)
		if m.fs[dev] == "zfs_member" {
			delete(m.fs, dev)
		}
		return "", 0
	}
	m.unknown = append(m.unknown, strings.Join(args, " "))
	return "", 127
}

func firstLine(b []byte) string {
	l, _, _ := strings.Cut(string(b), "\n")
	return l
}

// dataset is the imported dataset name, or nil.
func (m *dryMachine) dataset(name string) *dryDataset {
	pool, _, _ := strings.Cut(name, "/")
	if p, ok := m.zfs.pools[pool]; !ok || !p.imported {
		return nil
	}
	return m.zfs.datasets[name]
}

// encRoot is the dataset whose key name's data is under.
func (m *dryMachine) encRoot(name string) *dryDataset {
	for n := name; ; {
		if ds := m.zfs.datasets[n]; ds != nil && ds.props["keyformat"] != "" {
			return ds
		}
		i := strings.LastIndex(n, "/")
		if i < 0 {
			return nil
		}
		n = n[:i]
	}
}

func (m *dryMachine) zfsCmd(args []string) (string, int) {
	m.zfs.init()
	z := &m.zfs
	last := args[len(args)-1]
	switch args[1] {
	case "get": // -H [-p] -o FIELDS PROPS NAME
		ds := m.dataset(last)
		if ds == nil {
			return "cannot open '" + last + "': dataset does not exist", 1
		}
		fields := args[slices.Index(args, "-o")+1]
		props := strings.Split(args[len(args)-2], ",")
		var b strings.Builder
		for _, p := range props {
			v, ok := ds.props[p]
			switch {
			case p == "type" && ds.volume:
				v = "volume"
			case p == "type":
				v = "filesystem"
			case p == "mounted":
				v = "no"
			case p == "keystatus":
				v = "none"
				if r := m.encRoot(last); r != nil {
					v = map[bool]string{true: "available", false: "unavailable"}[r.loaded]
				}
			case p == "encryption" && !ok:
				v = "off"
				if m.encRoot(last) != nil {
					v = "aes-256-gcm"
				}
			case p == "mountpoint" && ok && strings.HasPrefix(v, "/"):
				pool, _, _ := strings.Cut(last, "/")
				v = strings.TrimSuffix(z.pools[pool].root+v, "/")
				if v == "" {
					v = "/"
				}
			case p == "recordsize" && ok:
				if n, ok := zfsNumber(v); ok {
					v = strconv.FormatInt(int64(n), 10)
				}
			case !ok:
				v = "-"
			}
			if fields == "value" {
				b.WriteString(v + "\n")
			} else {
				b.WriteString(p + "\t" + v + "\n")
			}
		}
		return b.String(), 0
	case "create":
		name, volume := "", false
		props := map[string]string{}
		for i := 2; i < len(args); i++ {
			switch a := args[i]; {
			case a == "-o":
				i++
				k, v, _ := strings.Cut(args[i], "=")
				props[k] = v
			case a == "-V":
				i++
				volume = true
			case strings.HasPrefix(a, "-"):
			case name == "":
				name = a
			}
		}
		pool, _, _ := strings.Cut(name, "/")
		if p, ok := z.pools[pool]; !ok || !p.imported || p.readonly {
			return "cannot create '" + name + "': no such pool", 1
		}
		if z.datasets[name] != nil {
			return "dataset already exists", 1
		}
		ds := &dryDataset{volume: volume, props: props}
		if props["keyformat"] != "" {
			if props["keylocation"] != "prompt" || len(m.stdin) == 0 {
				return "Failed to open key material file", 1
			}
			ds.key, ds.loaded = firstLine(m.stdin), true
		} else if r := m.encRoot(name); r != nil && !r.loaded {
			return "encryption root's key is not loaded", 1
		}
		z.datasets[name] = ds
		if volume {
			m.nodes["/dev/zvol/"+name] = true
		} else {
			m.fs[name] = "zfs"
		}
		return "", 0
	case "set":
		ds := m.dataset(last)
		if ds == nil {
			return "dataset does not exist", 1
		}
		for _, kv := range args[2 : len(args)-1] {
			if k, v, ok := strings.Cut(kv, "="); ok {
				ds.props[k] = v
			}
		}
		return "", 0
	case "load-key":
		ds := m.dataset(last)
		if ds == nil || ds.props["keyformat"] == "" {
			return "not an encryption root", 1
		}
		if firstLine(m.stdin) != ds.key {
			return "Key load error: Incorrect key provided for '" + last + "'.", 255
		}
		if !slices.Contains(args, "-n") {
			ds.loaded = true
		}
		return "", 0
	case "unload-key":
		ds := m.dataset(last)
		if ds == nil || !ds.loaded {
			return "key unavailable", 1
		}
		ds.loaded = false
		return "", 0
	case "unmount":
		return "", 0
	}
	m.unknown = append(m.unknown, strings.Join(args, " "))
	return "", 127
}
