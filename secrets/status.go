package secrets

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Status is the state of one secret file against its rule.
type Status string

const (
	StatusOK         Status = "ok"          // encrypted to exactly the rule's recipients
	StatusNeedsRekey Status = "needs-rekey" // recipients or armor differ from the rule
	StatusMissing    Status = "missing"     // the rule names a file that does not exist
	StatusUnreadable Status = "unreadable"  // the file is not a readable age file
	StatusOrphan     Status = "orphan"      // an .age file no rule names
)

// ActualRecipient is one stanza of a file's header.
type ActualRecipient struct {
	Type string `json:"type"`          // ssh-ed25519, ssh-rsa, X25519, ...
	Tag  string `json:"tag,omitempty"` // ssh stanzas only
	Key  string `json:"key,omitempty"` // the rule's public key with this tag, when there is one
	// Grease marks a grease stanza (rage adds one to every file): it
	// encrypts to nobody and is not compared with the rule.
	Grease bool `json:"grease,omitempty"`
}

// FileStatus is one line of `fleet secrets ls`.
type FileStatus struct {
	File    string            `json:"file"`
	Exists  bool              `json:"exists"`
	Armor   bool              `json:"armor"`
	Wanted  []string          `json:"recipients_wanted"`
	Actual  []ActualRecipient `json:"recipients_actual"`
	Status  Status            `json:"status"`
	Problem string            `json:"problem,omitempty"`
}

// Check compares every rules entry with the file on disk, and lists .age
// files under the rules directory that no rule names as orphans.
func Check(r *Rules) []FileStatus {
	var out []FileStatus
	named := map[string]bool{}
	for _, e := range r.Entries {
		named[filepath.ToSlash(filepath.Clean(e.File))] = true
		out = append(out, CheckEntry(r, e))
	}
	var orphans []string
	filepath.WalkDir(r.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && p != r.Dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".age") {
			return nil
		}
		rel, err := filepath.Rel(r.Dir, p)
		if err == nil && !named[filepath.ToSlash(rel)] {
			orphans = append(orphans, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(orphans)
	for _, o := range orphans {
		fs := FileStatus{File: o, Exists: true, Status: StatusOrphan, Wanted: []string{}}
		if h, err := ReadRecipients(filepath.Join(r.Dir, o)); err == nil {
			fs.Actual = actual(h, nil)
			fs.Armor = h.Armored
		}
		out = append(out, fs)
	}
	return out
}

// CheckEntry compares one rule with its file.
func CheckEntry(r *Rules, e Rule) FileStatus {
	fs := FileStatus{File: e.File, Wanted: e.PublicKeys, Armor: e.Armor, Actual: []ActualRecipient{}}
	path, err := r.FilePath(e)
	if err != nil {
		fs.Status, fs.Problem = StatusUnreadable, err.Error()
		return fs
	}
	h, err := ReadRecipients(path)
	if errors.Is(err, os.ErrNotExist) {
		fs.Status = StatusMissing
		return fs
	}
	fs.Exists = true
	if err != nil {
		fs.Status, fs.Problem = StatusUnreadable, err.Error()
		return fs
	}
	fs.Actual = actual(h, e.PublicKeys)
	w, err := WantFor(e.PublicKeys)
	var why string
	if err == nil {
		why = w.Mismatch(h)
	}
	switch {
	case err != nil:
		fs.Status, fs.Problem = StatusNeedsRekey, err.Error()
	case why != "":
		fs.Status, fs.Problem = StatusNeedsRekey, why
	case h.Armored != e.Armor:
		fs.Status, fs.Problem = StatusNeedsRekey, "armor differs from the rule"
	default:
		fs.Status = StatusOK
	}
	return fs
}

func actual(h Header, keys []string) []ActualRecipient {
	byTag := map[string]string{}
	for _, k := range keys {
		if pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err == nil {
			byTag[pk.Type()+" "+SSHTag(pk)] = strings.TrimSpace(k)
		}
	}
	out := []ActualRecipient{}
	for _, s := range h.Stanzas {
		a := ActualRecipient{Type: s.Type, Grease: s.Grease()}
		if isSSHType(s.Type) && len(s.Args) > 0 {
			a.Tag = s.Args[0]
			a.Key = byTag[s.Type+" "+a.Tag]
		}
		out = append(out, a)
	}
	return out
}
