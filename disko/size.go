package disko

import (
	"math"
	"regexp"
	"strconv"
	"strings"
)

// The value syntaxes of the layout, each as the program (or disko's own
// option type) that reads it accepts it. Parse refuses anything else,
// saying what is accepted, so no command is run with a value it would
// reject or misread.
var (
	// disko's partition size: [0-9]+[KMGTP]? or "100%".
	sizeRE = regexp.MustCompile(`^([0-9]+)([KMGTP]?)$`)
	// sgdisk's --new start and end: a number of sectors or a size with a
	// unit, "+" relative to the start, "-" to the end of the free space.
	// (sgdisk reads "+1.5M" as 512 bytes and "10%" not at all.)
	sgdiskPosRE = regexp.MustCompile(`^[+-]?[0-9]+[KMGTPkmgtps]?$`)
	// lvcreate -L/-V: a size in MiB or with a unit, decimals allowed.
	lvSizeRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?[bBsSkKmMgGtTpPeE]?$`)
	// lvcreate -l: a percentage of the VG, its free space, the PVs, the origin.
	lvExtentsRE = regexp.MustCompile(`^([0-9]+)%(VG|FREE|PVS|ORIGIN)$`)
	// parted's positions: a number with a unit, % of the disk, negative from the end.
	partedPosRE = regexp.MustCompile(`(?i)^-?[0-9]+(\.[0-9]+)?(s|b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib|%)?$`)
	// disko's btrfs swapfile size: [0-9]+[KMGTP].
	swapfileSizeRE = regexp.MustCompile(`^[0-9]+[KMGTP]$`)
	codeRE         = regexp.MustCompile(`^[0-9A-Fa-f]{4}$`)
	guidRE         = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
	mbrTypeRE      = regexp.MustCompile(`^(0[xX])?[0-9A-Fa-f]{1,2}$`)
	// Names that end up in device paths and lvm/md/dm names.
	lvmNameRE = regexp.MustCompile(`^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$`)
	devNameRE = regexp.MustCompile(`^[A-Za-z0-9+_.:@-]+$`)
)

// parseSize turns N[KMGTP] into bytes (binary units, as sgdisk reads them).
func parseSize(s string) (int64, bool) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50}[m[2]]
	if m[2] == "" {
		// sgdisk reads a bare number as sectors.
		shift = 9
	}
	if n > math.MaxInt64>>shift {
		return 0, false // more bytes than an int64 holds: no disk is that big
	}
	return n << shift, true
}

// lvSizeArgs are lvcreate's size arguments for an LV, as disko writes them:
// -V for a thin volume, -l for a percentage ("100%" meaning 100%FREE), -L
// otherwise; an error says what lvcreate accepts.
func lvSizeArgs(size, lvmType string) ([]string, string) {
	switch {
	case lvmType == "thinlv":
		if !lvSizeRE.MatchString(size) {
			return nil, "a thin volume takes a virtual size for lvcreate -V: a number with an optional unit (b, s, k, m, g, t, p, e; MiB when none), like 10G or 1.5T"
		}
		return []string{"-V", size}, ""
	case strings.Contains(size, "%"):
		if strings.HasSuffix(size, "%") {
			size += "FREE"
		}
		m := lvExtentsRE.FindStringSubmatch(size)
		if m == nil {
			return nil, "lvcreate -l takes N%VG, N%FREE, N%PVS or N%ORIGIN (\"100%\" is 100%FREE)"
		}
		if n, _ := strconv.Atoi(m[1]); (n == 0 || n > 100) && m[2] != "ORIGIN" {
			return nil, "a percentage from 1 to 100"
		}
		return []string{"-l", size}, ""
	default:
		if !lvSizeRE.MatchString(size) {
			return nil, "lvcreate -L takes a number with an optional unit (b, s, k, m, g, t, p, e; MiB when none), like 20G, 20g or 1.5T, or a percentage like 100% or 50%VG"
		}
		return []string{"-L", size}, ""
	}
}
