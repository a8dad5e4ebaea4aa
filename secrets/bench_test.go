package secrets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fleetnix/fleet/test/sshtest"
)

// BenchmarkRekey1000 rekeys 1,000 secrets from 1 to 5 recipients three
// ways, side by side: fleet (parallel, in process), the agenix method (one
// `age -d` and one `age -r ...` process per file, sequentially), and
// fleet's default only-changed rekey of the already rekeyed set.
//
//	go test -run '^$' -bench Rekey1000 -benchtime 1x ./secrets/
func BenchmarkRekey1000(b *testing.B) {
	if _, err := exec.LookPath("age"); err != nil {
		b.Skip("age CLI not installed")
	}
	const n = 1000
	var keys []sshtest.Key
	for i := 0; i < 4; i++ {
		keys = append(keys, sshtest.NewKey(b, "ed25519", "", fmt.Sprint("k", i)))
	}
	_, xrec := ageKey(b)
	to := []string{keys[0].Line, keys[1].Line, keys[2].Line, keys[3].Line, xrec}
	ids, _ := LoadIdentities([]string{keys[0].Path}, nil)
	setup := func(b *testing.B) *Rules {
		b.StopTimer()
		dir := b.TempDir()
		r, _ := makeSet(b, dir, n, []string{keys[0].Line}, to)
		for i := range r.Entries {
			r.Entries[i].Armor = false
		}
		b.StartTimer()
		return r
	}
	b.Run("fleet", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r := setup(b)
			if res, err := Rekey(context.Background(), r, ids, RekeyOptions{}); err != nil || len(res.Rekeyed) != n {
				b.Fatal(err, len(res.Rekeyed))
			}
		}
	})
	b.Run("fleet-unchanged", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r := setup(b)
			b.StopTimer()
			Rekey(context.Background(), r, ids, RekeyOptions{})
			b.StartTimer()
			if res, err := Rekey(context.Background(), r, ids, RekeyOptions{}); err != nil || len(res.Unchanged) != n {
				b.Fatal(err, len(res.Unchanged))
			}
		}
	})
	b.Run("age-cli-loop", func(b *testing.B) {
		args := []string{}
		for _, r := range to {
			args = append(args, "-r", r)
		}
		for i := 0; i < b.N; i++ {
			r := setup(b)
			for _, e := range r.Entries {
				p := filepath.Join(r.Dir, e.File)
				pt, err := exec.Command("age", "-d", "-i", keys[0].Path, p).Output()
				if err != nil {
					b.Fatal(err)
				}
				c := exec.Command("age", append(args, "-o", p+".tmp")...)
				c.Stdin = bytes.NewReader(pt)
				if err := c.Run(); err != nil {
					b.Fatal(err)
				}
				if err := os.Rename(p+".tmp", p); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
