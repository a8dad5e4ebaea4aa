package remote

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// UploadOptions shape an upload.
type UploadOptions struct {
	Mode  fs.FileMode // file mode; 0 means 0600
	Owner string      // "user" or "user:group" for chown; "" leaves it as created
	// MkdirParents creates missing parent directories with mode 0700.
	MkdirParents bool
}

// uploadScript writes stdin to a private temp file beside the destination,
// checks its size and the sha256 of each segment against what the sender
// says, sets mode and owner, and renames it into place. The temp file is
// created by mktemp (0600) and removed on every failure, so the content is
// never readable by others and a half-written file never appears at the
// destination.
//
// Speed, measured on a GiB (bench/results.md): dd takes exactly a
// segment's bytes in 1 MiB reads (GNU and busybox both know count_bytes),
// where head -c copies in 8 KiB pieces at 3.5x the time; each segment is
// hashed in the background (4 at most), from the page cache, while the
// next one arrives, so only the last segment's hash is left when the bytes end;
// openssl uses the CPU's SHA instructions (4x coreutils' sha256sum). An
// older dd without count_bytes falls back to head -c and tail -c.
const uploadScript = `set -eu
dst=$1 size=$2 mode=$3 owner=$4 mkp=$5 seg=$6
dir=$(dirname -- "$dst")
if [ "$mkp" = 1 ] && [ ! -d "$dir" ]; then (umask 077; mkdir -p -- "$dir"); fi
[ -d "$dir" ] || { echo "directory $dir does not exist" >&2; exit 3; }
tmp=$(mktemp -- "$dir/.fleet-upload.XXXXXXXX")
sums= jobs=
# The temp files go on every exit, once the hashing jobs that write them
# are done (they read from the page cache: quick). A signal (a hangup, or
# SIGPIPE when a complaint is written to a connection that is gone) exits
# through the EXIT trap rather than killing the shell past it.
trap 'wait; rm -f -- "$tmp" ${sums:+"$sums"}' EXIT
trap 'exit 129' HUP INT TERM PIPE
sums=$(mktemp -- "$dir/.fleet-upload.XXXXXXXX")
if command -v openssl >/dev/null 2>&1; then sum='openssl dgst -sha256 -r'; else sum=sha256sum; fi
if dd if=/dev/null of=/dev/null bs=1 count=0 iflag=fullblock,count_bytes status=none 2>/dev/null; then
  take() { dd bs=1048576 count="$1" iflag=fullblock,count_bytes status=none; }
  part() { dd if="$tmp" bs=1048576 skip="$1" count="$2" iflag=skip_bytes,count_bytes status=none; }
else
  take() { head -c "$1"; }
  part() { tail -c "+$(($1 + 1))" -- "$tmp" | head -c "$2"; }
fi
off=0 i=0
while :; do
  n=$((size - off)); [ "$n" -le "$seg" ] || n=$seg
  take "$n" >> "$tmp"
  { h=$(part "$off" "$n" | $sum); echo "$i ${h%% *}" >> "$sums"; } &
  # At most 4 segments hashing at once: an installer whose CPU hashes
  # slower than the link delivers (an ARM board) is not flooded with jobs.
  # A job that fails leaves its line out, which the check below reports.
  set -- $jobs $!
  if [ $# -ge 4 ]; then wait "$1" || :; shift; fi
  jobs=$*
  off=$((off + n)) i=$((i + 1))
  [ "$off" -lt "$size" ] || break
done
IFS= read -r want || { echo "upload cut short: no checksum received" >&2; exit 4; }
wait
n=$(wc -c < "$tmp")
[ "$n" -eq "$size" ] || { echo "upload cut short: got $n of $size bytes" >&2; exit 4; }
got=$(sort -n -- "$sums" | cut -d' ' -f2 | tr '\n' ' ')
[ "${got% }" = "$want" ] || { echo "upload corrupted: the sha256 of the bytes received differs from the bytes sent" >&2; exit 4; }
chmod "$mode" "$tmp"
if [ -n "$owner" ]; then chown -- "$owner" "$tmp"; fi
sync -- "$tmp" 2>/dev/null || sync
mv -f -- "$tmp" "$dst"
rm -f -- "$sums"
trap - EXIT HUP INT TERM PIPE
`

// uploadSegment is how many bytes the installer hashes per background job.
const uploadSegment = 64 << 20

// Upload writes size bytes from src to path on r, atomically, with the
// given mode and owner, and verifies the bytes that arrived (sha256 per
// 64 MiB segment) before the file appears at path.
func Upload(ctx context.Context, r Runner, src io.Reader, size int64, path string, o UploadOptions) error {
	return upload(ctx, r, src, size, path, o, uploadSegment)
}

func upload(ctx context.Context, r Runner, src io.Reader, size int64, path string, o UploadOptions, seg int64) error {
	mode := o.Mode
	if mode == 0 {
		mode = 0o600
	}
	mkp := "0"
	if o.MkdirParents {
		mkp = "1"
	}
	pr, pw := io.Pipe()
	srcErr := make(chan error, 1)
	go func() {
		err := sendSegments(pw, src, size, seg)
		pw.CloseWithError(err)
		srcErr <- err
	}()
	_, err := r.Run(ctx, Cmd{
		Args:  []string{"sh", "-c", uploadScript, "fleet-upload", path, strconv.FormatInt(size, 10), fmt.Sprintf("%04o", mode.Perm()), o.Owner, mkp, strconv.FormatInt(seg, 10)},
		Stdin: pr,
		Label: "upload " + path,
	})
	// Unblock the feeder and wait for it: after Upload returns nothing
	// reads src any more (callers wipe key buffers).
	pr.CloseWithError(io.ErrClosedPipe)
	serr := <-srcErr
	if err != nil {
		if serr != nil && !errors.Is(serr, io.ErrClosedPipe) {
			return fmt.Errorf("upload %s to %s: %w", path, r.Host(), serr) // the cause, not the remote's view of it
		}
		return fmt.Errorf("upload %s to %s: %w", path, r.Host(), err)
	}
	return nil
}

// sendSegments copies size bytes from src to w, then a line with the
// sha256 of each seg-byte segment (at least one, empty for an empty file),
// in order, separated by spaces: what uploadScript checks.
func sendSegments(w io.Writer, src io.Reader, size, seg int64) error {
	var sums []string
	h := sha256.New()
	for off := int64(0); ; {
		n := min(size-off, seg)
		h.Reset()
		got, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(src, n))
		if err != nil {
			return err
		}
		if off += got; got != n {
			return fmt.Errorf("source ended after %d of %d bytes", off, size)
		}
		sums = append(sums, hex.EncodeToString(h.Sum(nil)))
		if off >= size {
			break
		}
	}
	_, err := io.WriteString(w, strings.Join(sums, " ")+"\n")
	return err
}

// UploadFile uploads a local file (its content; mode and owner from o).
func UploadFile(ctx context.Context, r Runner, local, path string, o UploadOptions) error {
	f, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	return Upload(ctx, r, f, st.Size(), path, o)
}

// TreeOptions shape a directory upload.
type TreeOptions struct {
	// UID and GID own every entry on the remote (default 0:0, root).
	UID, GID int
	// Include, when set, limits the upload to these paths (relative, slash
	// separated, files only; their parent directories come along).
	Include []string
}

// UploadTree streams the directory local into dir on r as one tar stream,
// unpacked there with modes preserved and ownership set to o.UID:o.GID.
// Symlinks are kept as links; other special files are refused.
func UploadTree(ctx context.Context, r Runner, local, dir string, o TreeOptions) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		// Batch the tar stream: tar writes a 512-byte header and a
		// padding block per file, and each write through the pipe would
		// otherwise become its own SSH packet (a syscall and a MAC each).
		bw := bufio.NewWriterSize(pw, treeBuffer)
		err := writeTar(bw, local, o)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		done <- err
	}()
	_, err := r.Run(ctx, Cmd{
		Args:  []string{"sh", "-c", `set -eu; mkdir -p -- "$1"; exec tar -x -p --same-owner --numeric-owner -f - -C "$1"`, "fleet-untar", dir},
		Stdin: pr,
		Label: "unpack tar into " + dir,
	})
	pr.CloseWithError(io.ErrClosedPipe)
	if terr := <-done; err != nil && terr != nil && !errors.Is(terr, io.ErrClosedPipe) {
		return fmt.Errorf("upload %s to %s:%s: %w", local, r.Host(), dir, terr)
	}
	if err != nil {
		return fmt.Errorf("upload %s to %s:%s: %w", local, r.Host(), dir, err)
	}
	return nil
}

// treeBuffer is how much of the tar stream is gathered before it is handed
// to the session: a few SSH packets' worth (x/crypto/ssh sends up to 32 KiB
// per packet).
const treeBuffer = 256 << 10

func writeTar(w io.Writer, root string, o TreeOptions) error {
	tw := tar.NewWriter(w)
	add := func(rel string, info fs.FileInfo) error {
		var link string
		if info.Mode()&fs.ModeSymlink != 0 {
			l, err := os.Readlink(filepath.Join(root, rel))
			if err != nil {
				return err
			}
			link = l
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return fmt.Errorf("%s: %s is not a file, directory or symlink", filepath.Join(root, rel), info.Mode().Type())
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = o.UID, o.GID, "", ""
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(filepath.Join(root, rel))
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	}
	if o.Include != nil {
		dirs := map[string]bool{}
		for _, rel := range o.Include {
			rel = filepath.FromSlash(rel)
			for d := filepath.Dir(rel); d != "." && !dirs[d]; d = filepath.Dir(d) {
				dirs[d] = true
			}
		}
		var ordered []string
		for d := range dirs {
			ordered = append(ordered, d)
		}
		sortByDepth(ordered)
		for _, d := range ordered {
			info, err := os.Lstat(filepath.Join(root, d))
			if err != nil {
				return err
			}
			if err := add(d, info); err != nil {
				return err
			}
		}
		for _, rel := range o.Include {
			info, err := os.Lstat(filepath.Join(root, filepath.FromSlash(rel)))
			if err != nil {
				return err
			}
			if err := add(filepath.FromSlash(rel), info); err != nil {
				return err
			}
		}
		return tw.Close()
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return add(rel, info)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// sortByDepth orders directories parents first.
func sortByDepth(ps []string) {
	sort.Slice(ps, func(i, j int) bool {
		di, dj := strings.Count(ps[i], string(filepath.Separator)), strings.Count(ps[j], string(filepath.Separator))
		if di != dj {
			return di < dj
		}
		return ps[i] < ps[j]
	})
}
