package disko

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// PartLabel is disko's default partition label: parentType-parentName-name,
// or the first 36 hex characters of its sha256 when longer than 36
// characters (the GPT name field holds 36 UTF-16 characters).
func PartLabel(parentType, parentName, name string) string {
	l := parentType + "-" + parentName + "-" + name
	if len(l) > 36 {
		sum := sha256.Sum256([]byte(l))
		return hex.EncodeToString(sum[:])[:36]
	}
	return l
}

// udevEscape escapes a label as disko's hexEscapeUdevSymlink does: the
// characters of [0-9A-Za-z#+-.:=@_/] (the range +-. takes the comma in)
// stay, every other byte becomes \x and its hex value, upper case and not
// padded (a space is \x20, a tab \x9).
func udevEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c >= '+' && c <= '.') || strings.IndexByte("#:=@_/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%X`, c)
		}
	}
	return b.String()
}

var numbering = []struct {
	re  *regexp.Regexp
	sep string
}{
	{regexp.MustCompile(`^/dev/([vs]|(xv)d).+$`), ""},
	{regexp.MustCompile(`^/dev/(disk|zvol)/.+$`), "-part"},
	{regexp.MustCompile(`^/dev/((nvme|mmcblk).+|md/.*[0-9])$`), "p"},
	{regexp.MustCompile(`^/dev/md/.+$`), ""},
	{regexp.MustCompile(`^/dev/mapper/.+$`), ""},
	{regexp.MustCompile(`^/dev/loop[0-9]+$`), "p"},
}

// deviceNumbering is disko's name for partition i of dev (legacy tables
// and md partitions), ok false for a device disko cannot number.
func deviceNumbering(dev string, i int) (string, bool) {
	for _, n := range numbering {
		if n.re.MatchString(dev) {
			return dev + n.sep + strconv.Itoa(i), true
		}
	}
	return "", false
}

// PartNode is the kernel's node for partition n of disk: /dev/sda1,
// /dev/nvme0n1p1, /dev/loop0p1, /dev/md127p1, or udev's -partN link for
// /dev/disk/by-* paths; "" for no disk.
func PartNode(disk string, n int) string {
	switch {
	case disk == "":
		return ""
	case strings.HasPrefix(disk, "/dev/disk/by-"):
		return disk + "-part" + strconv.Itoa(n)
	case strings.HasPrefix(disk, "/dev/md/"):
		// udev's link for an array's partition (63-md-raid-arrays.rules).
		p, _ := deviceNumbering(disk, n)
		return p
	}
	if c := disk[len(disk)-1]; c >= '0' && c <= '9' {
		return disk + "p" + strconv.Itoa(n)
	}
	return disk + strconv.Itoa(n)
}
