package disko

import (
	"context"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/fleetnix/fleet/remote"
)

// dryMachine is a remote.Runner that answers like an installer with blank
// disks, and remembers what the commands Apply runs make: partition
// tables, filesystems and signatures, md arrays, LUKS mappings, volume
// groups and LVs, btrfs subvolumes and swapfiles, mounts. It lets Apply's
// planning, checks, probes and verifications run (and be fuzzed) without
// root or disks. It knows every command Apply runs; any other one fails
// the test (unknown), so a new command is a conscious addition here.
type dryMachine struct {
	mu      sync.Mutex
	sizes   map[string]int64      // disk kernel node -> bytes
	parts   map[string][]*dryPart // disk (kernel node) -> partitions
	pttype  map[string]string     // disk -> gpt, dos
	fs      map[string]string     // device -> blkid TYPE
	labels  map[string]string     // device -> filesystem label (unused by checks)
	nodes   map[string]bool       // block devices that exist (besides disks and partitions)
	links   map[string]string     // udev links: /dev/md/NAME -> /dev/md127
	md      map[string]dryMD      // kernel node -> array
	mdSeen  map[string]int        // md name -> level, for reassembly
	mdNodes map[string]string     // md name -> its kernel node, kept across stop and assemble
	mdSizes map[string]int64
	vgs     map[string][]string
	lvs     map[string]bool // vg/lv
	mounts  []dryMount
	files   map[string]string // fs device + path -> stat line
	subvols map[string]bool   // fs device + path
	mbr     map[string][]map[string]any
	temps   int
	unknown []string
	cmds    []string
	noUdev  bool   // no udev: no /dev/md links, QueryTools says so
	zfs     dryZFS // pools and datasets (dryzfs_test.go)
	stdin   []byte // the running command's stdin
}

type dryPart struct {
	n           int
	first, last int64
	name, typ   string
	bootable    bool
}

type dryMD struct {
	name  string
	level int
	size  int64 // bytes, from its members and level
}

type dryMount struct{ dev, target, fstype string }

// newDryMachine makes a machine with blank disks; a /dev/disk/by-* path
// is a link to a kernel node of its own, as udev makes them.
func newDryMachine(disks map[string]int64) *dryMachine {
	m := newDry()
	paths := sortedKeys(disks)
	for i, p := range paths {
		node := p
		if strings.HasPrefix(p, "/dev/disk/") {
			node = fmt.Sprintf("/dev/sd%c", 'q'+i)
			m.links[p] = node
		}
		m.sizes[node] = disks[p]
	}
	return m
}

func newDry() *dryMachine {
	return &dryMachine{sizes: map[string]int64{}, parts: map[string][]*dryPart{}, pttype: map[string]string{}, fs: map[string]string{},
		labels: map[string]string{}, nodes: map[string]bool{}, links: map[string]string{}, md: map[string]dryMD{},
		mdSeen: map[string]int{}, mdNodes: map[string]string{}, mdSizes: map[string]int64{}, vgs: map[string][]string{}, lvs: map[string]bool{}, files: map[string]string{},
		subvols: map[string]bool{}, mbr: map[string][]map[string]any{}}
}

func (m *dryMachine) Host() string { return "dry" }

func exit(code int, cmd []string) *remote.ExitError {
	return &remote.ExitError{Host: "dry", Cmd: strings.Join(cmd, " "), Code: code}
}

func (m *dryMachine) Run(ctx context.Context, c remote.Cmd) (*remote.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var stdin []byte
	if c.Stdin != nil {
		stdin, _ = io.ReadAll(c.Stdin)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stdin = stdin
	m.cmds = append(m.cmds, strings.Join(c.Args, " "))
	out, code := m.run(c.Args)
	if code != 0 {
		err := exit(code, c.Args)
		if c.Args[0] == "zfs" || c.Args[0] == "zpool" { // their errors, on stderr
			err.Stderr = []string{out}
		}
		return &remote.Result{Stdout: []byte(out)}, err
	}
	return &remote.Result{Stdout: []byte(out)}, nil
}

// real is the node a path stands for (udev links resolved, including
// udev's /dev/md/NAME[p]N links to an array's partitions).
func (m *dryMachine) real(p string) string {
	if r, ok := m.links[p]; ok {
		return r
	}
	if strings.HasPrefix(p, "/dev/md/") && !m.noUdev {
		for node, md := range m.md {
			for _, pt := range m.parts[node] {
				if l, _ := deviceNumbering("/dev/md/"+md.name, pt.n); l == p {
					return PartNode(node, pt.n)
				}
			}
		}
	}
	return p
}

// partOf finds the disk and partition a kernel node is.
func (m *dryMachine) partOf(dev string) (string, *dryPart) {
	for disk, ps := range m.parts {
		for _, p := range ps {
			if PartNode(disk, p.n) == dev {
				return disk, p
			}
		}
	}
	return "", nil
}

func (m *dryMachine) exists(p string) bool {
	p = m.real(p)
	if _, ok := m.sizes[p]; ok || m.nodes[p] {
		return true
	}
	if _, ok := m.md[p]; ok {
		return true
	}
	_, pt := m.partOf(p)
	return pt != nil
}

func (m *dryMachine) size(p string) int64 {
	p = m.real(p)
	if s, ok := m.sizes[p]; ok {
		return s
	}
	if _, pt := m.partOf(p); pt != nil {
		return (pt.last - pt.first + 1) * 512
	}
	if md, ok := m.md[p]; ok {
		return md.size
	}
	return 1 << 30
}

var typeByCode = func() map[string]string {
	m := map[string]string{}
	for k, v := range typeGUIDs {
		m[k] = v
	}
	return m
}()

func (m *dryMachine) sgdisk(args []string) (string, int) {
	dev := m.real(args[len(args)-1])
	if _, ok := m.sizes[dev]; !ok {
		if _, isMD := m.md[dev]; !isMD {
			return "", 2
		}
	}
	total := m.size(dev) / 512
	align := int64(2048)
	byN := func(n int) *dryPart {
		for _, p := range m.parts[dev] {
			if p.n == n {
				return p
			}
		}
		return nil
	}
	for _, a := range args[1 : len(args)-1] {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "--clear", "--zap-all":
			m.parts[dev] = nil
			m.pttype[dev] = "gpt"
			if k == "--zap-all" {
				delete(m.pttype, dev)
			}
		case "--delete":
			n, _ := strconv.Atoi(v)
			m.parts[dev] = slicesDelete(m.parts[dev], n)
		case "--set-alignment":
			align, _ = strconv.ParseInt(v, 10, 64)
		case "--new":
			f := strings.SplitN(v, ":", 3)
			n, _ := strconv.Atoi(f[0])
			if byN(n) != nil {
				return "could not create partition", 4
			}
			next := int64(2048)
			for _, p := range m.parts[dev] {
				if p.last+1 > next {
					next = p.last + 1
				}
			}
			first, last := sgdiskPlace(next, total-34, align, f[1], f[2])
			if first > last || last > total-34 {
				return "could not create partition " + f[0], 4
			}
			m.parts[dev] = append(m.parts[dev], &dryPart{n: n, first: first, last: last, typ: typeGUIDs["8300"]})
			m.pttype[dev] = "gpt"
		case "--change-name", "--typecode", "--partition-guid", "--attributes":
			nn, val, _ := strings.Cut(v, ":")
			n, _ := strconv.Atoi(nn)
			p := byN(n)
			if p == nil {
				return "no partition " + nn, 4
			}
			switch k {
			case "--change-name":
				p.name = val
			case "--typecode":
				if g, ok := typeByCode[strings.ToUpper(val)]; ok {
					p.typ = g
				} else if len(val) == 36 {
					p.typ = strings.ToUpper(val)
				} else {
					p.typ = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
				}
			}
		case "-i":
			n, _ := strconv.Atoi(v)
			if v == "" {
				n, _ = strconv.Atoi(args[2])
			}
			p := byN(n)
			if p == nil {
				return "Partition GUID code: 00000000-0000-0000-0000-000000000000 (Unused entry)\n", 0
			}
			return fmt.Sprintf("Partition GUID code: %s (x)\nFirst sector: %d (at x)\nLast sector: %d (at x)\nPartition name: '%s'\n", p.typ, p.first, p.last, p.name), 0
		case "-h":
		case "--align-end":
		default:
			if strings.HasPrefix(a, "-") {
				return "", 99
			}
		}
	}
	if args[1] == "-h" {
		var entries []map[string]any
		for _, s := range strings.Split(args[2], ":") {
			if s == "EE" {
				entries = append(entries, map[string]any{"type": "ee"})
				continue
			}
			n, _ := strconv.Atoi(s)
			if p := byN(n); p != nil {
				entries = append(entries, map[string]any{"type": "83", "start": p.first, "size": p.last - p.first + 1})
			}
		}
		if !strings.HasSuffix(args[2], ":EE") {
			entries = append([]map[string]any{{"type": "ee"}}, entries...)
		}
		m.mbr[dev] = entries
	}
	return "", 0
}

func slicesDelete(ps []*dryPart, n int) []*dryPart {
	var out []*dryPart
	for _, p := range ps {
		if p.n != n {
			out = append(out, p)
		}
	}
	return out
}

var lvNameRE = regexp.MustCompile(`^-n$`)

func (m *dryMachine) run(args []string) (string, int) {
	a := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	last := args[len(args)-1]
	switch args[0] {
	case "readlink":
		if a(1) == "-e" && !m.exists(last) {
			return "", 1
		}
		return m.real(last) + "\n", 0
	case "test":
		if m.exists(last) {
			return "", 0
		}
		return "", 1
	case "blockdev":
		if a(1) == "--getsize64" {
			return strconv.FormatInt(m.size(last), 10) + "\n", 0
		}
		return "", 0
	case "cat":
		switch last {
		case "/proc/self/mountinfo":
			var b strings.Builder
			for i, mt := range m.mounts {
				esc := strings.NewReplacer(" ", `\040`, "\t", `\011`, "\n", `\012`, `\`, `\134`)
				fmt.Fprintf(&b, "%d 1 %s / %s rw - %s %s rw\n", 100+i, m.devNum(mt.dev), esc.Replace(mt.target), mt.fstype, esc.Replace(mt.dev))
			}
			return b.String(), 0
		case "/proc/swaps":
			return "Filename Type Size Used Priority\n", 0
		}
	case "blkid":
		dev := m.real(last)
		if t, ok := m.pttype[dev]; ok {
			return "PTTYPE=" + t + "\n", 0
		}
		if t, ok := m.fs[dev]; ok {
			return "TYPE=" + t + "\n", 0
		}
		return "", 2
	case "wipefs":
		dev := m.real(last)
		delete(m.fs, dev)
		if _, ok := m.pttype[dev]; ok {
			delete(m.pttype, dev)
			m.parts[dev] = nil
		}
		return "", 0
	case "sgdisk":
		return m.sgdisk(args)
	case "udevadm", "partx", "partprobe", "modprobe", "mkdir", "rmdir", "swapoff", "bash":
		if args[0] == "partx" && a(1) == "-g" {
			return m.partx(args), 0
		}
		return "", 0
	case "mktemp":
		m.temps++
		return fmt.Sprintf("/tmp/fleet-disko.dry%d\n", m.temps), 0
	case "mount":
		var pos []string
		typ := ""
		for i := 1; i < len(args); i++ {
			switch args[i] {
			case "-t":
				i++
				typ = args[i]
			case "-o":
				i++
			default:
				pos = append(pos, args[i])
			}
		}
		if len(pos) != 2 {
			return "", 1
		}
		dev := m.real(pos[0])
		if typ == "zfs" && m.dataset(dev) == nil {
			return "no such dataset", 1
		}
		if typ != "tmpfs" && typ != "ramfs" && pos[0] != "none" && !strings.HasPrefix(pos[0], "/mnt") {
			if m.fs[dev] != typ && typ != "" {
				return "wrong fs type", 32
			}
		}
		m.mounts = append(m.mounts, dryMount{dev: dev, target: pos[1], fstype: typ})
		return "", 0
	case "umount":
		for i := len(m.mounts) - 1; i >= 0; i-- {
			if m.mounts[i].target == last {
				m.mounts = append(m.mounts[:i], m.mounts[i+1:]...)
				return "", 0
			}
		}
		return "not mounted", 32
	case "rm":
		dev, rel := m.onFS(last)
		delete(m.files, dev+rel)
		return "", 0
	case "sh":
		return m.script(args)
	case "mkswap", "pvcreate":
		t := map[string]string{"mkswap": "swap", "pvcreate": "LVM2_member"}[args[0]]
		m.fs[m.real(last)] = t
		return "", 0
	case "cryptsetup":
		switch {
		case a(2) == "luksFormat":
			m.fs[m.real(a(3))] = "crypto_LUKS"
		case a(1) == "open" && a(2) == "--test-passphrase":
			if m.fs[m.real(last)] != "crypto_LUKS" {
				return "", 1
			}
		case a(1) == "open":
			if m.fs[m.real(a(2))] != "crypto_LUKS" {
				return "not luks", 1
			}
			m.nodes["/dev/mapper/"+a(3)] = true
		case a(1) == "close":
			delete(m.nodes, "/dev/mapper/"+a(2))
		case a(1) == "luksAddKey":
		default:
			m.unknown = append(m.unknown, strings.Join(args, " "))
			return "", 127
		}
		return "", 0
	case "vgcreate":
		for _, pv := range args[2:] {
			if m.fs[m.real(pv)] != "LVM2_member" {
				return "not a pv: " + pv, 5
			}
		}
		m.vgs[a(1)] = args[2:]
		return "", 0
	case "vgs":
		pvs, ok := m.vgs[last]
		if !ok {
			return "", 5
		}
		return strings.Join(pvs, "\n") + "\n", 0
	case "lvs":
		if !m.lvs[last] {
			return "", 5
		}
		return "x\n", 0
	case "lvcreate":
		vg, name, thinPool := last, "", false
		for i, x := range args {
			if lvNameRE.MatchString(x) {
				name = args[i+1]
			}
			if x == "--type=thin-pool" {
				thinPool = true
			}
			if p, ok := strings.CutPrefix(x, "--thinpool="); ok && !m.lvs[vg+"/"+p] {
				return "no pool " + p, 5
			}
		}
		if _, ok := m.vgs[vg]; !ok || name == "" {
			return "no vg", 5
		}
		m.lvs[vg+"/"+name] = true
		if !thinPool {
			m.nodes["/dev/"+vg+"/"+name] = true
		}
		return "", 0
	case "vgchange":
		return "", 0
	case "mdadm":
		return m.mdadm(args)
	case "btrfs":
		dev, rel := m.onFS(last)
		switch {
		case a(1) == "subvolume" && a(2) == "show":
			if !m.subvols[dev+rel] {
				return "", 1
			}
		case a(1) == "subvolume" && a(2) == "create":
			dev, rel = m.onFS(a(3))
			m.subvols[dev+rel] = true
		case a(1) == "filesystem" && a(2) == "mkswapfile":
			size, _ := parseSize(a(4))
			m.files[dev+rel] = fmt.Sprintf("%d 600 regular file", size)
		default:
			m.unknown = append(m.unknown, strings.Join(args, " "))
			return "", 127
		}
		return "", 0
	case "parted":
		return m.parted(args)
	case "sfdisk":
		return m.sfdisk(args)
	case "zpool":
		return m.zpool(args)
	case "zfs":
		return m.zfsCmd(args)
	}
	if t, ok := strings.CutPrefix(args[0], "mkfs."); ok {
		for _, x := range args[1:] {
			if strings.HasPrefix(x, "/dev/") && m.exists(x) {
				m.fs[m.real(x)] = t
			}
		}
		return "", 0
	}
	m.unknown = append(m.unknown, strings.Join(args, " "))
	return "unknown to the dry machine", 127
}

// onFS splits a path under a mount into the mounted device and the path
// in its filesystem (the temporary top mount of a btrfs tree).
func (m *dryMachine) onFS(p string) (string, string) {
	for i := len(m.mounts) - 1; i >= 0; i-- {
		mt := m.mounts[i]
		if p == mt.target || strings.HasPrefix(p, mt.target+"/") {
			return mt.dev, path.Clean("/" + strings.TrimPrefix(p, mt.target))
		}
	}
	return "", p
}

func (m *dryMachine) devNum(dev string) string {
	names := m.allNodes()
	for i, n := range names {
		if n == m.real(dev) {
			return fmt.Sprintf("8:%d", i)
		}
	}
	return "0:99"
}

func (m *dryMachine) allNodes() []string {
	var out []string
	for d := range m.sizes {
		out = append(out, d)
		for _, p := range m.parts[d] {
			out = append(out, PartNode(d, p.n))
		}
	}
	for d := range m.md {
		out = append(out, d)
		for _, p := range m.parts[d] {
			out = append(out, PartNode(d, p.n))
		}
	}
	sort.Strings(out)
	return out
}

func (m *dryMachine) partx(args []string) string {
	dev := m.real(args[len(args)-1])
	var b strings.Builder
	cols := args[len(args)-2]
	for _, p := range m.parts[dev] {
		switch cols {
		case "NR,START,SECTORS":
			fmt.Fprintf(&b, "%d %d %d\n", p.n, p.first, p.last-p.first+1)
		default: // NR,FLAGS,NAME
			flags := "0x0"
			if p.bootable {
				flags = "0x80"
			}
			fmt.Fprintf(&b, "%d %s %s\n", p.n, flags, strings.NewReplacer(`\`, `\x5c`, " ", `\x20`).Replace(p.name))
		}
	}
	return b.String()
}

// script answers Apply's sh -c scripts, by their role.
func (m *dryMachine) script(args []string) (string, int) {
	s := args[2]
	role := ""
	if len(args) > 3 {
		role = args[3]
	}
	switch {
	case role == "fleet-probe":
		disk := m.real(args[4])
		var b strings.Builder
		for _, p := range m.parts[disk] {
			fmt.Fprintf(&b, "table %d %d %d\n", p.n, p.first, p.last-p.first+1)
			fmt.Fprintf(&b, "sys %s %d %d %d 1\n", path.Base(PartNode(disk, p.n)), p.n, p.first, p.last-p.first+1)
		}
		return b.String(), 0
	case role == "fleet-state":
		var b strings.Builder
		for _, d := range args[4:] {
			fmt.Fprintf(&b, "%s|%d|%s|||\n", path.Base(d), m.size(d), m.pttype[m.real(d)])
		}
		return b.String(), 0
	case role == "fleet-disk-check":
		if m.exists(args[4]) {
			return "present\n", 0
		}
		return "gone\n", 0
	case role == "fleet-stat":
		dev, rel := m.onFS(args[4])
		return m.files[dev+rel] + "\n", 0
	case role == "fleet-tree":
		disk := "/dev/" + args[4]
		if !m.exists(disk) {
			return "", 1
		}
		var b strings.Builder
		fmt.Fprintf(&b, "dev\t%s\t%s\t0\t\t\t\t\t%s\n", args[4], m.devNum(disk), m.pttype[m.real(disk)])
		for _, p := range m.parts[m.real(disk)] {
			n := PartNode(disk, p.n)
			fmt.Fprintf(&b, "dev\t%s\t%s\t0\t\t\t\t\t\n", path.Base(n), m.devNum(n))
		}
		return b.String(), 0
	case role == "fleet-zfs-labels":
		return m.zfsLabels(args[4:]), 0
	case s == "[ -d /sys/module/zfs ] || modprobe zfs":
		return "", 0
	case strings.Contains(s, "for d in /dev/md[0-9]*"):
		var b strings.Builder
		for node, md := range m.md {
			fmt.Fprintf(&b, "%s any:%s\n", node, md.name)
		}
		return b.String(), 0
	case strings.HasPrefix(s, "for p in "): // QueryTools
		var b strings.Builder
		for _, p := range toolPrograms {
			fmt.Fprintf(&b, "have %s /usr/sbin/%s\n", p, p)
		}
		for p, v := range map[string]string{"sgdisk": "1.0.9", "sfdisk": "2.38.1", "parted": "3.5", "cryptsetup": "2.6.1", "lvm": "2.03.16", "mdadm": "4.2", "btrfs": "6.2", "xfs": "6.1.0", "zfs": "2.1.11"} {
			fmt.Fprintf(&b, "version %s x %s\n", p, v)
		}
		b.WriteString("codes")
		for c := range typeGUIDs {
			b.WriteString(" " + strings.ToLower(c))
		}
		b.WriteString(" 0700 ea00 8302\n")
		if !m.noUdev {
			b.WriteString("udev\n")
		}
		return b.String(), 0
	}
	m.unknown = append(m.unknown, strings.Join(args, " "))
	return "", 127
}

func (m *dryMachine) mdadm(args []string) (string, int) {
	switch args[1] {
	case "--create":
		name := path.Base(args[2])
		level := -1
		for _, x := range args {
			if v, ok := strings.CutPrefix(x, "--level="); ok {
				level, _ = strconv.Atoi(v)
			}
		}
		var members []int64
		for _, x := range args[3:] {
			if strings.HasPrefix(x, "/dev/") {
				members = append(members, m.size(x)-(1<<20)) // mdadm's metadata
			}
		}
		var sum, min int64
		for _, sz := range members {
			sum += sz
			if min == 0 || sz < min {
				min = sz
			}
		}
		n := int64(len(members))
		size := map[int]int64{0: sum, 1: min, 4: (n - 1) * min, 5: (n - 1) * min, 6: (n - 2) * min, 10: sum / 2}[level]
		node := m.mdNode(name)
		m.md[node] = dryMD{name: name, level: level, size: size}
		m.mdSeen[name] = level
		m.mdSizes[name] = size
		if !m.noUdev {
			m.links["/dev/md/"+name] = node
		}
		return "", 0
	case "--detail":
		md, ok := m.md[m.real(args[3])]
		if !ok {
			return "", 1
		}
		return fmt.Sprintf("MD_LEVEL=raid%d\nMD_NAME=any:%s\n", md.level, md.name), 0
	case "--stop":
		node := m.real(args[2])
		if md, ok := m.md[node]; ok {
			delete(m.links, "/dev/md/"+md.name)
			delete(m.md, node)
		}
		return "", 0
	case "--assemble":
		name := path.Base(args[2])
		level, ok := m.mdSeen[name]
		if !ok {
			return "no array", 1
		}
		node := m.mdNode(name)
		m.md[node] = dryMD{name: name, level: level, size: m.mdSizes[name]}
		if !m.noUdev {
			m.links["/dev/md/"+name] = node
		}
		return "", 0
	}
	m.unknown = append(m.unknown, strings.Join(args, " "))
	return "", 127
}

// mdNode is the kernel node of the array named name, the same after a
// stop and assemble (its partitions are kept under it).
func (m *dryMachine) mdNode(name string) string {
	if n, ok := m.mdNodes[name]; ok {
		return n
	}
	n := fmt.Sprintf("/dev/md%d", 127-len(m.mdNodes))
	m.mdNodes[name] = n
	return n
}

func (m *dryMachine) parted(args []string) (string, int) {
	dev := m.real(args[2])
	switch args[4] {
	case "mklabel":
		m.pttype[dev] = map[string]string{"msdos": "dos", "gpt": "gpt"}[args[5]]
		m.parts[dev] = nil
	case "mkpart":
		n := len(m.parts[dev]) + 1
		name := ""
		if m.pttype[dev] == "gpt" {
			name = args[5]
		}
		total := m.size(dev) / 512
		first := partedSector(args[len(args)-2], total)
		if r := first % 2048; r != 0 {
			first += 2048 - r
		}
		if first < 2048 {
			first = 2048
		}
		last := partedSector(args[len(args)-1], total) - 1
		if last > total-34 {
			last = total - 34
		}
		if first > last {
			return "bad geometry", 1
		}
		m.parts[dev] = append(m.parts[dev], &dryPart{n: n, first: first, last: last, name: name})
	case "set":
		n, _ := strconv.Atoi(args[5])
		if n < 1 || n > len(m.parts[dev]) {
			return "no partition", 1
		}
		if args[6] == "boot" {
			m.parts[dev][n-1].bootable = true
		}
	default:
		return "", 1
	}
	return "", 0
}

func (m *dryMachine) sfdisk(args []string) (string, int) {
	dev := m.real(args[len(args)-1])
	if args[len(args)-2] == "-J" {
		var b strings.Builder
		b.WriteString(`{"partitiontable":{"label":"dos","partitions":[`)
		for i, e := range m.mbr[dev] {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"start":%v,"size":%v,"type":%q,"bootable":%v}`, orZero(e["start"]), orZero(e["size"]), e["type"], e["bootable"] == true)
		}
		b.WriteString("]}}")
		return b.String(), 0
	}
	for i, x := range args {
		if x == "--part-type" || x == "--activate" {
			d := m.real(args[i+1])
			n, _ := strconv.Atoi(args[i+2])
			if n < 1 || n > len(m.mbr[d]) {
				return "no entry", 1
			}
			if x == "--activate" {
				m.mbr[d][n-1]["bootable"] = true
			} else {
				m.mbr[d][n-1]["type"] = strings.TrimPrefix(args[i+3], "0x")
			}
		}
	}
	return "", 0
}

// partedSector reads a parted position roughly (units, %, from the end).
func partedSector(v string, total int64) int64 {
	neg := strings.HasPrefix(v, "-")
	v = strings.TrimPrefix(v, "-")
	num := strings.TrimRightFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(v[len(num):])
	f, _ := strconv.ParseFloat(num, 64)
	mult := map[string]float64{"": 1 << 20, "s": 512, "b": 1, "k": 1e3, "kb": 1e3, "kib": 1 << 10, "m": 1e6, "mb": 1e6, "mib": 1 << 20,
		"g": 1e9, "gb": 1e9, "gib": 1 << 30, "t": 1e12, "tb": 1e12, "tib": 1 << 40}
	var sec int64
	if unit == "%" {
		sec = int64(f / 100 * float64(total))
	} else {
		sec = int64(f * mult[unit] / 512)
	}
	if neg {
		return total - sec
	}
	return sec
}

func orZero(v any) any {
	if v == nil {
		return 0
	}
	return v
}
