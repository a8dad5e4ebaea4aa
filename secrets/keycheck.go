package secrets

import (
	"errors"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Outcomes of [CheckIdentities] for one rules entry.
const (
	KeyDecrypts    = "decrypts"     // the file decrypts with the identity
	KeyEncryptedTo = "encrypted-to" // header names the key (headerOnly: not decrypted)
	KeyNeedsRekey  = "needs-rekey"  // the rule names the key, the file is not encrypted to it
	KeyMissing     = "missing"      // the rule names the key, the file does not exist
	KeyFails       = "fails"        // encrypted to it but unreadable or not decrypting
)

// KeyCheck is one (identity, rules entry) pair of [CheckIdentities].
type KeyCheck struct {
	Identity string `json:"identity"` // where the identity came from
	Key      string `json:"key"`      // its public key
	File     string `json:"file"`
	Status   string `json:"status"`
	Problem  string `json:"problem,omitempty"`
}

// OK reports whether the entry is fine for the identity.
func (k KeyCheck) OK() bool { return k.Status == KeyDecrypts || k.Status == KeyEncryptedTo }

// CheckIdentities answers "does this identity open every secret the rules
// give it": for each identity with a known public key, every rules entry
// naming that key, checked against the file. With headerOnly the files are
// not decrypted (for keys whose private half is elsewhere, e.g. on a host);
// identities then need only Recipient set.
func CheckIdentities(r *Rules, ids *Identities, headerOnly bool) []KeyCheck {
	var res []KeyCheck
	for _, id := range ids.List {
		if id.Recipient == "" {
			continue
		}
		one := &Identities{List: []*Identity{id}}
		for _, e := range r.Entries {
			if !NamesKey(e.PublicKeys, id.Recipient) {
				continue
			}
			kc := KeyCheck{Identity: id.File, Key: id.Recipient, File: e.File}
			path, err := r.FilePath(e)
			var h Header
			if err == nil {
				h, err = ReadRecipients(path)
			}
			switch {
			case errors.Is(err, os.ErrNotExist):
				kc.Status = KeyMissing
			case err != nil:
				kc.Status, kc.Problem = KeyFails, err.Error()
			case !EncryptedTo(h, id.Recipient):
				kc.Status = KeyNeedsRekey
			case headerOnly:
				kc.Status = KeyEncryptedTo
			default:
				pt, err := DecryptFile(path, one)
				clear(pt)
				if err != nil {
					kc.Status, kc.Problem = KeyFails, err.Error()
				} else {
					kc.Status = KeyDecrypts
				}
			}
			res = append(res, kc)
		}
	}
	return res
}

// SameKey compares two public keys as written, ignoring comments.
func SameKey(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	if len(fa) >= 2 && len(fb) >= 2 {
		return fa[0] == fb[0] && fa[1] == fb[1]
	}
	return len(fa) == 1 && len(fb) == 1 && fa[0] == fb[0]
}

// NamesKey reports whether keys contains k (comments ignored).
func NamesKey(keys []string, k string) bool {
	for _, x := range keys {
		if SameKey(x, k) {
			return true
		}
	}
	return false
}

// EncryptedTo reports whether h has a stanza for key: ssh keys by tag; for
// age keys (no tag in the header) whether any stanza of that kind exists.
func EncryptedTo(h Header, key string) bool {
	if strings.HasPrefix(key, "ssh-") {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
		if err != nil {
			return false
		}
		want := pk.Type() + " " + SSHTag(pk)
		for _, t := range h.Tags() {
			if t == want {
				return true
			}
		}
		return false
	}
	if strings.HasPrefix(key, "age1pq1") {
		return h.Count("mlkem768x25519") > 0
	}
	return h.Count("X25519") > 0
}
