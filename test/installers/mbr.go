package installers

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// MBREntry is one of a master boot record's four primary partition
// entries, as the bytes on the disk say.
type MBREntry struct {
	Status byte   // 0x80 bootable, 0x00 not
	Type   byte   // the partition type (0x0c FAT32 LBA, 0x83 Linux, 0xee GPT protective)
	Start  uint32 // first sector (LBA)
	Size   uint32 // sectors
}

// ReadMBR reads the master boot record of the disk image at path: its
// four entries, an error if the boot signature 0x55AA is missing, and
// whether sector 1 holds a GPT header ("EFI PART").
func ReadMBR(path string) (entries [4]MBREntry, gpt bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return entries, false, err
	}
	defer f.Close()
	var b [1024]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return entries, false, fmt.Errorf("read the MBR of %s: %w", path, err)
	}
	if b[510] != 0x55 || b[511] != 0xaa {
		return entries, false, fmt.Errorf("%s: no MBR boot signature (bytes 510-511 are %#02x %#02x)", path, b[510], b[511])
	}
	for i := range entries {
		e := b[446+16*i:]
		entries[i] = MBREntry{Status: e[0], Type: e[4], Start: binary.LittleEndian.Uint32(e[8:]), Size: binary.LittleEndian.Uint32(e[12:])}
	}
	return entries, bytes.Equal(b[512:520], []byte("EFI PART")), nil
}

// readAt reads n bytes of the image at path at offset off.
func readAt(path string, off int64, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", path, off, err)
	}
	return b, nil
}

// piDisk checks Pi's disk (the image at path, the installed machine's
// vda) against its layout (hosts/pi.nix): an msdos table and no GPT;
// entry 1 bootable, type 0x0c, from 8 MiB to 264 MiB, holding a FAT32
// filesystem labelled FIRMWARE; entry 2 not bootable, type 0x83, from
// 264 MiB to the disk's end (parted's 100%), holding the ext4 root
// labelled nixos; entries 3 and 4 empty. sfdisk, reading the same image,
// must agree on the label and the entries.
func piDisk(ctx context.Context, path string) ([]string, error) {
	es, gpt, err := ReadMBR(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	const mib = 1 << 20 / 512 // sectors
	sectors := uint32(fi.Size() / 512)
	var problems []string
	if gpt {
		problems = append(problems, "sector 1 holds a GPT header: the layout's table is msdos")
	}
	want := [4]MBREntry{
		{Status: 0x80, Type: 0x0c, Start: 8 * mib, Size: 256 * mib},
		{Status: 0x00, Type: 0x83, Start: 264 * mib, Size: es[1].Size},
	}
	if end := es[1].Start + es[1].Size; end > sectors || end+mib < sectors {
		problems = append(problems, fmt.Sprintf("partition 2 ends at sector %d, want the disk's end (%d sectors)", end, sectors))
	}
	for i := range es {
		if es[i] != want[i] {
			problems = append(problems, fmt.Sprintf("MBR entry %d is %+v, want %+v", i+1, es[i], want[i]))
		}
	}
	if len(problems) > 0 {
		return problems, nil
	}
	// FAT32's boot sector: the volume label at 71, "FAT32   " at 82.
	fat, err := readAt(path, int64(es[0].Start)*512, 512)
	if err != nil {
		return nil, err
	}
	if string(fat[71:82]) != "FIRMWARE   " || string(fat[82:90]) != "FAT32   " || fat[510] != 0x55 || fat[511] != 0xaa {
		problems = append(problems, fmt.Sprintf("partition 1 holds no FAT32 labelled FIRMWARE (label %q, type %q)", fat[71:82], fat[82:90]))
	}
	// ext4's superblock, 1024 bytes in: the magic 0xEF53 at 56, the label at 120.
	sb, err := readAt(path, int64(es[1].Start)*512+1024, 256)
	if err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint16(sb[56:]) != 0xef53 || string(bytes.TrimRight(sb[120:136], "\x00")) != "nixos" {
		problems = append(problems, fmt.Sprintf("partition 2 holds no ext4 labelled nixos (magic %#04x, label %q)", binary.LittleEndian.Uint16(sb[56:]), bytes.TrimRight(sb[120:136], "\x00")))
	}
	// The world's reading of the same bytes.
	out, err := exec.CommandContext(ctx, "sfdisk", "-J", path).Output()
	if err != nil {
		return nil, fmt.Errorf("sfdisk -J %s: %w", path, err)
	}
	var dump struct {
		PartitionTable struct {
			Label      string `json:"label"`
			Partitions []struct {
				Start    uint32 `json:"start"`
				Size     uint32 `json:"size"`
				Type     string `json:"type"`
				Bootable bool   `json:"bootable"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &dump); err != nil {
		return nil, fmt.Errorf("sfdisk -J %s: %w", path, err)
	}
	pt := dump.PartitionTable
	var got []string
	for _, p := range pt.Partitions {
		got = append(got, fmt.Sprintf("%d+%d type=%s bootable=%v", p.Start, p.Size, p.Type, p.Bootable))
	}
	wantDump := fmt.Sprintf("dos: %d+%d type=c bootable=true, %d+%d type=83 bootable=false", want[0].Start, want[0].Size, want[1].Start, want[1].Size)
	if g := pt.Label + ": " + strings.Join(got, ", "); g != wantDump {
		problems = append(problems, fmt.Sprintf("sfdisk reads %s, want %s", g, wantDump))
	}
	return problems, nil
}
