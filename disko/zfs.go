package disko

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// This file is the ZFS part of the model: a pool's mode and topology, and
// what a dataset's properties say about its encryption and its mount.
//
// A pool is a top-level [Node] of type zpool: its settings in Zpool, its
// datasets (zfs_fs, zfs_volume) in Datasets, in disko's creation order,
// with the pool's root filesystem among them (PoolRoot: disko's __root,
// whose properties are the pool's rootFsOptions). Its members are the
// content nodes of type zfs that name it, in the order disko creates them.

// Zpool is a pool's settings.
type Zpool struct {
	// Mode is disko's legacy mode string: "" (a stripe), mirror, raidz,
	// raidz1, raidz2 or raidz3. With a structured mode it is "" and
	// Topology is set.
	Mode     string
	Topology *Topology
	// Options are the pool's properties (zpool create -o); the root
	// filesystem's are the root dataset's Options (-O).
	Options map[string]string
	// MountRoot is the option disko had in 2023 and then removed: the
	// pool's altroot. fleet imports every pool under its mount root, so a
	// layout may keep it only with that value.
	MountRoot string
}

// Topology is disko's mode.topology: the pool's vdevs by class.
type Topology struct {
	Vdev, Log, Dedup, Special []Vdev
	Spare, Cache              []string
}

// Vdev is one vdev of a topology: its mode ("" for a single device,
// mirror, raidz...) and its members as written (a disk name, meaning
// that disk's partition named zfs, or a device path).
type Vdev struct {
	Mode    string
	Members []string
}

// zpoolModes are the modes disko's option type takes.
var zpoolModes = []string{"", "mirror", "raidz", "raidz1", "raidz2", "raidz3"}

// minMembers is the fewest devices zpool create takes for a vdev of mode.
var minMembers = map[string]int{"": 1, "mirror": 2, "raidz": 2, "raidz1": 2, "raidz2": 3, "raidz3": 4}

// The classes of a topology, in the order disko writes them into zpool
// create: data vdevs (no keyword), spare, log, dedup, special, cache.
type vdevClass struct {
	keyword string
	vdevs   []Vdev
}

func (t *Topology) classes() []vdevClass {
	single := func(devs []string) []Vdev {
		if len(devs) == 0 {
			return nil
		}
		return []Vdev{{Members: devs}}
	}
	return []vdevClass{{"", t.Vdev}, {"spare", single(t.Spare)}, {"log", t.Log}, {"dedup", t.Dedup}, {"special", t.Special}, {"cache", single(t.Cache)}}
}

// poolNameRE is what fleet takes as a pool name: zpool's rules (a letter
// first; letters, digits and _.:-), without the space zpool allows.
var poolNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.:-]*$`)

// checkPoolName refuses names zpool refuses: its reserved words.
func checkPoolName(name string) string {
	if !poolNameRE.MatchString(name) {
		return "a pool name is a letter, then letters, digits and _.:-"
	}
	for _, r := range []string{"mirror", "raidz", "draid", "spare"} {
		if strings.HasPrefix(name, r) {
			return fmt.Sprintf("zpool reserves names beginning with %q", r)
		}
	}
	if name == "log" {
		return "zpool reserves the name \"log\""
	}
	return ""
}

// datasetPartRE is one component of a dataset name.
var datasetPartRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// propNameRE is a property name: native ones, user properties
// (module:name) and pool features (feature@name).
var propNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.:@-]*$`)

// onetimeProps are the properties zfs sets only when a dataset is
// created (disko's list): an existing dataset keeps its own.
var onetimeProps = []string{"encryption", "casesensitivity", "utf8only", "normalization", "volblocksize", "pbkdf2iters", "pbkdf2salt", "keyformat"}

// EncryptionRoot reports whether dataset n is a new encryption root: it
// has a keyformat (encryption then defaults to on) and encryption is not
// off. Its key (--disk-key with the dataset's name) goes to zfs on stdin.
func (n *Node) EncryptionRoot() bool {
	return n.Options["keyformat"] != "" && n.Options["encryption"] != "off"
}

// KeyLocation is where the booted system finds an encryption root's key:
// the layout's keylocation, by default prompt.
func (n *Node) KeyLocation() string {
	if l := n.Options["keylocation"]; l != "" {
		return l
	}
	return "prompt"
}

// mounted reports whether disko mounts dataset n: it has a mountpoint,
// and its properties neither say mountpoint=none nor canmount=off.
func (n *Node) mounted() bool {
	return n.Mountpoint != "" && n.Options["mountpoint"] != "none" && n.Options["canmount"] != "off"
}

// zfsMountOptions are the options a dataset is mounted with: its own,
// and zfsutil unless its mountpoint property is legacy (mount.zfs then
// takes the mountpoint from the command line).
func (n *Node) zfsMountOptions() []string {
	opts := slices.Clone(n.MountOptions)
	if n.Options["mountpoint"] != "legacy" {
		opts = append(opts, "zfsutil")
	}
	return opts
}

// zfsProps are a dataset's properties as disko creates it: the
// mountpoint (from the layout's mountpoint) overridden by its options.
func (n *Node) zfsProps() map[string]string {
	props := map[string]string{}
	if n.Mountpoint != "" {
		props["mountpoint"] = n.Mountpoint
	}
	for k, v := range n.Options {
		props[k] = v
	}
	return props
}

// propArgs writes properties as zfs takes them, sorted by name (disko's
// attrset order): ["-o", "k=v", ...] with flag "-o" or "-O", or ["k=v",
// ...] with flag "".
func propArgs(flag string, props map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(props) {
		if flag != "" {
			out = append(out, flag)
		}
		out = append(out, k+"="+props[k])
	}
	return out
}

// checkZfsKeys refuses, before anything runs, a key zfs would refuse for
// its dataset's keyformat, as zfs reads it from stdin (a passphrase or
// hex key is the first line, its newline dropped; a raw key is all 32
// bytes). It says what is wrong with the key, never what the key is.
func checkZfsKeys(s *Spec, keys map[string][]byte) error {
	for _, z := range s.Zpools {
		for _, ds := range z.Datasets {
			key, ok := keys[ds.Name]
			if !ds.EncryptionRoot() || !ok || len(key) == 0 {
				continue
			}
			line, _, _ := strings.Cut(string(key), "\n")
			msg := ""
			switch f := ds.Options["keyformat"]; {
			case f == "passphrase" && (len(line) < 8 || len(line) > 512):
				msg = fmt.Sprintf("a passphrase of %d bytes: zfs takes 8 to 512 (its first line)", len(line))
			case f == "hex" && !hexKeyRE.MatchString(line):
				msg = fmt.Sprintf("a first line of %d characters: a hex key is 64 hex digits", len(line))
			case f == "raw" && len(key) != 32:
				msg = fmt.Sprintf("%d bytes: a raw key is exactly 32", len(key))
			}
			if msg != "" {
				return refused(withHint(fmt.Errorf("--disk-key %s: %s (keyformat %s): %w", ds.Name, msg, ds.Options["keyformat"], ErrSpec),
					"give the dataset's key in the form its keyformat says"))
			}
		}
	}
	return nil
}

var hexKeyRE = regexp.MustCompile(`^[0-9A-Fa-f]{64}$`)
