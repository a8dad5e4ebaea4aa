package disko

import (
	"fmt"
	"strconv"
	"strings"
)

// span is a partition's first and last sector, as sgdisk would place it.
type span struct{ first, last int64 }

// sgdiskSectors reads an sgdisk position (without its sign): sectors, or a
// size with a unit, in 512-byte sectors.
func sgdiskSectors(s string) int64 {
	s = strings.TrimLeft(s, "+-")
	mult := int64(1)
	if l := len(s); l > 0 {
		switch strings.ToUpper(s[l-1:]) {
		case "S":
			s = s[:l-1]
		case "K":
			mult, s = 2, s[:l-1]
		case "M":
			mult, s = 2<<10, s[:l-1]
		case "G":
			mult, s = 2<<20, s[:l-1]
		case "T":
			mult, s = 2<<30, s[:l-1]
		case "P":
			mult, s = 2<<40, s[:l-1]
		}
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	if mult > 1 && n > (1<<62)/mult {
		return 1 << 62
	}
	return n * mult
}

// sgdiskPlace is where sgdisk --align-end puts a new partition, as
// measured with sgdisk 1.0.9: a default start is the first free sector
// after next, aligned up; ends are aligned down to the alignment when
// that stays at or after the start; "-X" counts back from the free
// space's end (aligned the same way), "+X" forward from the start.
func sgdiskPlace(next, lastUsable, align int64, start, end string) (first, last int64) {
	first = next
	if r := first % align; r != 0 {
		first += align - r
	}
	if start != "0" {
		first = sgdiskSectors(start)
		if strings.HasPrefix(start, "-") {
			first = lastUsable - first
		}
	}
	alignDown := func(e int64) int64 {
		if a := (e+1)/align*align - 1; a >= first {
			return a
		}
		return e
	}
	switch {
	case end == "0" || end == "+0" || end == "-0":
		last = alignDown(lastUsable)
	case strings.HasPrefix(end, "-"):
		last = alignDown(lastUsable) - sgdiskSectors(end)
	case strings.HasPrefix(end, "+"):
		last = alignDown(first + sgdiskSectors(end) - 1)
	default:
		last = alignDown(sgdiskSectors(end))
	}
	return first, last
}

// fits places a gpt's partitions on a disk of size bytes as sgdisk does
// (in creation order, see sgdiskPlace) and refuses a table that cannot be
// made: a partition with no room left, or one past the disk's end. It
// returns where each partition goes, by number.
func fits(table *Node, size int64) (map[int]span, error) {
	lastUsable := size/512 - 34
	next := int64(2048)
	spans := map[int]span{}
	for _, pt := range table.Partitions {
		align := int64(2048)
		if pt.Alignment > 0 {
			align = int64(pt.Alignment)
		}
		first, last := sgdiskPlace(next, lastUsable, align, pt.Start, pt.End)
		if first > last || last > lastUsable || first < 34 {
			return nil, fmt.Errorf("partition %d (%s) does not fit: it would take sectors %d to %d of %d", pt.Index, pt.Path, first, last, lastUsable)
		}
		spans[pt.Index] = span{first, last}
		if last+1 > next {
			next = last + 1
		}
	}
	return spans, nil
}

// arraysFit refuses an md array whose partition table cannot fit even in
// the largest array its members could make (the sizes of the members that
// are disks or partitions of disks, by level; mdadm's metadata makes it
// smaller still). Arrays with other members are not checked.
func arraysFit(s *Spec, sizes map[string]int64) error {
	member := map[string]int64{}
	for _, d := range s.Disks {
		size, ok := sizes[d.Name]
		if !ok {
			continue
		}
		member[d.Device] = size
		if d.Content == nil || d.Content.Type != "gpt" {
			continue
		}
		spans, err := fits(d.Content, size)
		if err != nil {
			continue // refused for the disk itself
		}
		for _, pt := range d.Content.Partitions {
			sp := spans[pt.Index]
			member[pt.Device] = (sp.last - sp.first + 1) * 512
		}
	}
	for _, md := range s.MDs {
		if md.Content == nil || md.Content.Type != "gpt" {
			continue
		}
		var sum, min int64
		known := true
		for _, m := range md.Members {
			sz, ok := member[m]
			if !ok {
				known = false
				break
			}
			sum += sz
			if min == 0 || sz < min {
				min = sz
			}
		}
		if !known {
			continue
		}
		n := int64(len(md.Members))
		most := map[int]int64{0: sum, 1: min, 4: (n - 1) * min, 5: (n - 1) * min, 6: (n - 2) * min, 10: sum / 2}[md.Level]
		if _, err := fits(md.Content, most); err != nil {
			return fmt.Errorf("%s: level %d over %d members makes at most %d bytes: %w", md.Path, md.Level, n, most, err)
		}
	}
	return nil
}

// minXFS is the smallest filesystem mkfs.xfs makes since xfsprogs 5.19.
const minXFS = 300 << 20

// filesystemsFit refuses an xfs filesystem on a disk's partition smaller
// than mkfs.xfs makes (300 MiB since xfsprogs 5.19), before anything runs.
func filesystemsFit(s *Spec, sizes map[string]int64, t *Tools) error {
	if t == nil || !versionAtLeast(t.Versions["xfs"], "5.19") || t.Versions["xfs"] == "" {
		return nil
	}
	for _, d := range s.Disks {
		size, ok := sizes[d.Name]
		if !ok || d.Content == nil || d.Content.Type != "gpt" {
			continue
		}
		spans, err := fits(d.Content, size)
		if err != nil {
			continue
		}
		for _, pt := range d.Content.Partitions {
			sp := spans[pt.Index]
			if b := (sp.last - sp.first + 1) * 512; pt.Content != nil && pt.Content.Type == "filesystem" && pt.Content.Format == "xfs" && b < minXFS {
				return fmt.Errorf("%s: mkfs.xfs %s makes no filesystem smaller than 300 MiB, and the partition would be %s", pt.Content.Path, t.Versions["xfs"], humanBytes(b))
			}
		}
	}
	return nil
}
