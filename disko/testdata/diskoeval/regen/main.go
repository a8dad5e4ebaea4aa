// Command regen rewrites the golden facts of fleet's differential test
// against disko (disko/diskoeval_test.go). It is run by hand, never in CI:
//
//	# bare git dirs of nix-community/disko and nix-community/nixpkgs.lib
//	git --git-dir=$DISKO_GIT archive HEAD | tar -x -C /tmp/disko
//	git --git-dir=$LIB_GIT archive HEAD | tar -x -C /tmp/nixpkgs.lib
//	go run ./disko/testdata/diskoeval/regen -disko /tmp/disko -lib /tmp/nixpkgs.lib \
//	    -disko-rev $(git --git-dir=$DISKO_GIT rev-parse HEAD) -lib-rev $(git --git-dir=$LIB_GIT rev-parse HEAD)
//
// For each layout in disko/testdata/diskoeval/layouts it evaluates disko's
// own module system with nixpkgs' lib (nix-instantiate, a private store,
// no nixpkgs needed), and keeps: the raw user form, disko's evaluated
// tree, and the commands disko's _create, _mount and _unmount scripts run.
// The commands come from running those very scripts under bash with every
// program that touches a disk replaced by this binary, which logs its
// arguments and answers as the disks would: blank before create, formatted
// and closed before mount, open and mounted before unmount. Commands that
// only ask (blkid, findmnt, vgdisplay, lvdisplay, cryptsetup status and
// isLuks, btrfs subvolume show, swapon --show, readlink; zpool list, zfs
// get, and zpool import on blank disks, where it is create's probe for an
// existing pool) are answered, not logged. Pools and datasets are
// recorded as zpool create and zfs create make them; before mount, pools
// are exported and every encryption root's key unloaded, before unmount
// imported and loaded. Layouts named refused-* keep only the two trees.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// stubs are the programs the scripts run that are replaced.
var stubs = []string{"sgdisk", "sfdisk", "parted", "partprobe", "udevadm", "blkid", "mkfs.ext2", "mkfs.ext3", "mkfs.ext4",
	"mkfs.vfat", "mkfs.xfs", "mkfs.btrfs", "mkfs.f2fs", "mkfs.exfat", "mkswap", "cryptsetup", "pvcreate", "vgcreate",
	"vgdisplay", "lvcreate", "lvdisplay", "vgchange", "mdadm", "wipefs", "modprobe", "mount", "umount", "findmnt",
	"swapon", "swapoff", "btrfs", "readlink", "zpool", "zfs", "zvol_wait"}

var tmpMount = regexp.MustCompile(`^/tmp/tmp\.[A-Za-z0-9]{10}`)

// prelude answers bash's own test for /dev/md/NAME from the stub state.
const prelude = `__md() { [[ -e "$STUB_STATE/md/${1##*/}" ]]; }
test() { if [[ $# -eq 2 && $1 == -e && $2 == /dev/md/* ]]; then __md "$2"; else builtin test "$@"; fi; }
[() { if [[ $# -eq 3 && $1 == -e && $2 == /dev/md/* ]]; then __md "$2"; else builtin [ "$@"; fi; }
`

// Golden is one layout's facts.
type Golden struct {
	Layout    string          `json:"layout"`
	Disko     string          `json:"disko"`       // nix-community/disko commit
	Lib       string          `json:"nixpkgs_lib"` // nix-community/nixpkgs.lib commit
	User      json.RawMessage `json:"user"`
	Evaluated json.RawMessage `json:"evaluated"`
	Create    [][]string      `json:"create,omitempty"`
	Mount     [][]string      `json:"mount,omitempty"`
	Unmount   [][]string      `json:"unmount,omitempty"`
}

func main() {
	if name := filepath.Base(os.Args[0]); name != "regen" && slices.Contains(stubs, name) {
		os.Exit(stub(name, os.Args[1:]))
	}
	disko := flag.String("disko", "", "a checkout of nix-community/disko")
	lib := flag.String("lib", "", "a checkout of nix-community/nixpkgs.lib")
	diskoRev := flag.String("disko-rev", "", "its commit")
	libRev := flag.String("lib-rev", "", "its commit")
	dir := flag.String("dir", "disko/testdata/diskoeval", "the test data directory")
	flag.Parse()
	if *disko == "" || *lib == "" || *diskoRev == "" || *libRev == "" {
		log.Fatal("usage: regen -disko DIR -lib DIR -disko-rev SHA -lib-rev SHA")
	}
	tmp, err := os.MkdirTemp("", "diskoeval")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	bin := filepath.Join(tmp, "bin")
	os.Mkdir(bin, 0o755)
	for _, s := range stubs {
		if err := os.Symlink(self, filepath.Join(bin, s)); err != nil {
			log.Fatal(err)
		}
	}
	layouts, _ := filepath.Glob(filepath.Join(*dir, "layouts", "*.nix"))
	for _, l := range layouts {
		name := strings.TrimSuffix(filepath.Base(l), ".nix")
		abs, _ := filepath.Abs(l)
		cmd := exec.Command("nix-instantiate", "--store", filepath.Join(tmp, "store"), "--eval", "--strict", "--json",
			filepath.Join(*dir, "eval.nix"), "--arg", "disko", *disko, "--arg", "nixpkgsLib", *lib, "--arg", "layout", abs)
		cmd.Env = append(os.Environ(), "HOME="+tmp, "NIX_CONFIG=build-users-group =")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			log.Fatalf("%s: nix-instantiate: %v\n%s", name, err, stderr.String())
		}
		var ev struct {
			User, Evaluated        json.RawMessage
			Create, Mount, Unmount string
		}
		if err := json.Unmarshal(out, &ev); err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		g := Golden{Layout: "layouts/" + name + ".nix", Disko: *diskoRev, Lib: *libRev, User: ev.User, Evaluated: ev.Evaluated}
		if !strings.HasPrefix(name, "refused-") {
			created := filepath.Join(tmp, "state-"+name)
			g.Create = runScript(name, "create", ev.Create, bin, created)
			g.Mount = runScript(name, "mount", ev.Mount, bin, filepath.Join(tmp, "state-"+name+"-mount"))
			g.Unmount = runScript(name, "unmount", ev.Unmount, bin, created) // open and mounted, as create left it
		}
		b, err := json.MarshalIndent(g, "", " ")
		if err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*dir, "golden", name+".json"), append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
		log.Printf("%s: %d create, %d mount, %d unmount commands", name, len(g.Create), len(g.Mount), len(g.Unmount))
	}
}

// runScript runs one of disko's scripts with the stubs on the disks'
// state in the directory state, and returns the commands it ran.
func runScript(name, mode, script, bin, state string) [][]string {
	for _, d := range []string{"fs", "open", "vg", "lv", "md", "pool", "ds"} {
		os.MkdirAll(filepath.Join(state, d), 0o755)
	}
	logf := state + "-" + mode + ".log"
	cmd := exec.Command("bash", "-c", prelude+script)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "STUB_STATE="+state, "STUB_LOG="+logf,
		"STUB_MODE="+mode, "IN_DISKO_TEST=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("%s %s: %v\n%s", name, mode, err, out)
	}
	b, _ := os.ReadFile(logf)
	var cmds [][]string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var c []string
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			log.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// stub is one replaced program: it answers queries from the state and
// logs (and records the effect of) everything else.
func stub(name string, args []string) int {
	state, mode := os.Getenv("STUB_STATE"), os.Getenv("STUB_MODE")
	key := func(dev string) string { return strings.ReplaceAll(dev, "/", "%") }
	has := func(kind, k string) bool { _, err := os.Stat(filepath.Join(state, kind, key(k))); return err == nil }
	set := func(kind, k, v string) { os.WriteFile(filepath.Join(state, kind, key(k)), []byte(v), 0o644) }
	logCmd := func() {
		c := append([]string{name}, args...)
		for i := range c { // disko's temporary mountpoints, named alike in every run
			c[i] = tmpMount.ReplaceAllString(c[i], "$$MNT")
		}
		b, _ := json.Marshal(c)
		f, err := os.OpenFile(os.Getenv("STUB_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		f.Write(append(b, '\n'))
		f.Close()
	}
	devs := func() []string {
		var out []string
		for _, a := range args {
			if strings.HasPrefix(a, "/dev/") {
				out = append(out, a)
			}
		}
		return out
	}
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	switch name {
	case "blkid":
		for _, d := range devs() {
			b, err := os.ReadFile(filepath.Join(state, "fs", key(d)))
			if err != nil {
				return 2
			}
			if slices.Contains(args, "export") {
				fmt.Printf("DEVNAME=%s\nTYPE=%s\n", d, b)
			} else {
				fmt.Printf("%s: TYPE=%q\n", d, string(b))
			}
			return 0
		}
		return 2
	case "findmnt":
		if mode == "unmount" {
			return 0
		}
		return 1
	case "readlink":
		fmt.Println(args[len(args)-1])
		return 0
	case "vgdisplay":
		if has("vg", arg(0)) {
			return 0
		}
		return 5
	case "lvdisplay":
		if has("lv", arg(0)) {
			return 0
		}
		return 5
	case "swapon":
		if arg(0) == "--show" {
			if mode == "unmount" { // every swap of the layout is on
				es, _ := os.ReadDir(filepath.Join(state, "fs"))
				for _, e := range es {
					if b, _ := os.ReadFile(filepath.Join(state, "fs", e.Name())); string(b) == "swap" {
						fmt.Println(strings.ReplaceAll(e.Name(), "%", "/") + " partition 1G 0B -2")
					}
				}
			}
			return 0
		}
	case "cryptsetup":
		switch arg(0) {
		case "isLuks":
			if b, _ := os.ReadFile(filepath.Join(state, "fs", key(arg(1)))); string(b) == "crypto_LUKS" {
				return 0
			}
			return 1
		case "status":
			if mode == "unmount" || has("open", arg(1)) {
				return 0
			}
			return 4
		case "luksFormat":
			set("fs", arg(2), "crypto_LUKS")
		case "open":
			set("open", arg(2), "1")
		}
	case "btrfs":
		if arg(0) == "subvolume" && arg(1) == "show" {
			return 1
		}
	case "mkswap":
		for _, d := range devs() {
			set("fs", d, "swap")
		}
	case "pvcreate":
		for _, d := range devs() {
			set("fs", d, "LVM2_member")
		}
	case "vgcreate":
		set("vg", arg(0), "1")
	case "lvcreate":
		for i, a := range args {
			if a == "-n" && i+1 < len(args) {
				set("lv", args[len(args)-1]+"/"+args[i+1], "1")
			}
		}
	case "mdadm":
		if arg(0) == "--create" {
			set("md", filepath.Base(arg(1)), "1")
		}
	case "zpool":
		switch arg(0) {
		case "list":
			if has("pool", args[len(args)-1]) {
				return 0
			}
			return 1
		case "import":
			if mode != "mount" {
				return 1 // create's probe: no pool on blank disks
			}
		case "create":
			for i, a := range args {
				if a == "-f" && i+1 < len(args) {
					set("pool", args[i+1], "1")
					set("ds", args[i+1], "1")
					break
				}
			}
		}
	case "zfs":
		switch arg(0) {
		case "get":
			switch {
			case arg(1) == "type":
				if has("ds", arg(2)) {
					fmt.Println(arg(2) + "\ttype\tfilesystem\t-")
					return 0
				}
				return 1
			case arg(1) == "-H" && arg(2) == "mounted":
				fmt.Println(arg(3) + "\tmounted\tno\t-")
				return 0
			case arg(1) == "keystatus":
				if mode == "unmount" {
					fmt.Println("available")
				} else {
					fmt.Println("unavailable")
				}
				return 0
			}
		case "create": // the one argument that is neither a flag nor its value
			for i := 1; i < len(args); i++ {
				switch a := args[i]; {
				case a == "-o" || a == "-V" || a == "-b":
					i++
				case !strings.HasPrefix(a, "-"):
					set("ds", a, "1")
				}
			}
		}
	default:
		if t, ok := strings.CutPrefix(name, "mkfs."); ok {
			for _, d := range devs() {
				set("fs", d, t)
			}
		}
	}
	logCmd()
	return 0
}
