// Package flake reads what fleet needs from a Nix flake without Nix: the
// lock file's inputs (type, URL, locked rev, narHash), the NAR hash of a
// source tree (to check a fetched input against its lock), and the set of
// files Nix copies for a git flake.
package flake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// ErrNoInput: the lock file has no such input.
var ErrNoInput = errors.New("no such flake input")

// ErrBadLock marks a lock value fleet refuses to hand to git: a rev that
// is not a commit hash, a URL of a scheme fleet does not fetch, a value
// that would read as an option.
var ErrBadLock = errors.New("flake lock value refused")

// Lock is a parsed flake.lock (versions 5 to 7).
type Lock struct {
	Version int             `json:"version"`
	Root    string          `json:"root"`
	Nodes   map[string]Node `json:"nodes"`
	path    string
}

// Node is one node of the lock graph.
type Node struct {
	// Inputs maps an input name to a node name, or to a "follows" path
	// (a list of input names from the root).
	Inputs   map[string]json.RawMessage `json:"inputs,omitempty"`
	Locked   *Ref                       `json:"locked,omitempty"`
	Original *Ref                       `json:"original,omitempty"`
	Flake    *bool                      `json:"flake,omitempty"`
}

// Ref is a locked or original flake reference.
type Ref struct {
	Type         string `json:"type"`
	URL          string `json:"url,omitempty"`
	Owner        string `json:"owner,omitempty"`
	Repo         string `json:"repo,omitempty"`
	Path         string `json:"path,omitempty"`
	Ref          string `json:"ref,omitempty"`
	Rev          string `json:"rev,omitempty"`
	Dir          string `json:"dir,omitempty"`
	NarHash      string `json:"narHash,omitempty"`
	LastModified int64  `json:"lastModified,omitempty"`
	RevCount     int64  `json:"revCount,omitempty"`
}

// Input is a resolved input of the root flake.
type Input struct {
	Name     string // the root's name for it ("secrets")
	Node     string // its node in the lock
	Locked   Ref
	Original Ref
	IsFlake  bool
}

// ReadLock reads and checks a flake.lock.
func ReadLock(path string) (*Lock, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read flake lock: %w", err)
	}
	var l Lock
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("read flake lock %s: %w\nhint: regenerate it with nix flake lock", path, err)
	}
	if l.Version < 5 || l.Version > 7 {
		return nil, fmt.Errorf("read flake lock %s: version %d is not supported (5 to 7 are)", path, l.Version)
	}
	if l.Root == "" {
		l.Root = "root"
	}
	if _, ok := l.Nodes[l.Root]; !ok {
		return nil, fmt.Errorf("read flake lock %s: no root node %q", path, l.Root)
	}
	names := make([]string, 0, len(l.Nodes))
	for n := range l.Nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if ref := l.Nodes[n].Locked; ref != nil {
			if err := ref.check(); err != nil {
				return nil, fmt.Errorf("read flake lock %s: node %q: %w\nhint: regenerate it with nix flake lock, and check who changed it", path, n, err)
			}
		}
	}
	l.path = path
	return &l, nil
}

var (
	commitHash = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	// repoName is a github/gitlab/sourcehut owner or repository
	// (gitlab's subgroups come %2F-escaped).
	repoName = regexp.MustCompile(`^[A-Za-z0-9_.~%+][A-Za-z0-9_.~%+-]*$`)
)

// gitSchemes are the URL schemes fleet fetches a git input with.
var gitSchemes = []string{"file", "ssh", "https", "http"}

// check refuses what git could take for something else: the values of a
// locked reference reach git's command line.
func (r *Ref) check() error {
	if r.Rev != "" && !commitHash.MatchString(r.Rev) {
		return fmt.Errorf("%w: rev %q is not a commit hash (40 or 64 hex digits)", ErrBadLock, r.Rev)
	}
	if r.Ref != "" && (strings.HasPrefix(r.Ref, "-") || strings.ContainsAny(r.Ref, " \t\n\x00")) {
		return fmt.Errorf("%w: ref %q is not a git ref name", ErrBadLock, r.Ref)
	}
	if strings.HasPrefix(r.URL, "-") {
		return fmt.Errorf("%w: url %q starts with -", ErrBadLock, r.URL)
	}
	switch r.Type {
	case "git":
		u, err := url.Parse(strings.TrimPrefix(r.URL, "git+"))
		if err != nil || !slices.Contains(gitSchemes, u.Scheme) || (u.Scheme != "file" && u.Host == "") || strings.HasPrefix(u.Host, "-") {
			return fmt.Errorf("%w: url %q: fleet fetches git inputs over %s only", ErrBadLock, r.URL, strings.Join(gitSchemes, ", "))
		}
	case "github", "gitlab", "sourcehut":
		for _, v := range []string{r.Owner, r.Repo} {
			if !repoName.MatchString(v) || v == "." || v == ".." {
				return fmt.Errorf("%w: %s owner/repo %q/%q is not a repository name", ErrBadLock, r.Type, r.Owner, r.Repo)
			}
		}
	}
	return nil
}

// Inputs lists the root's direct inputs, sorted by name.
func (l *Lock) Inputs() ([]Input, error) {
	var names []string
	for n := range l.Nodes[l.Root].Inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Input
	for _, n := range names {
		in, err := l.Input(n)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// Input resolves a root input by name, following "follows" paths.
func (l *Lock) Input(name string) (Input, error) {
	node, err := l.resolve(l.Root, []string{name}, 0)
	if err != nil {
		return Input{}, err
	}
	n := l.Nodes[node]
	in := Input{Name: name, Node: node, IsFlake: n.Flake == nil || *n.Flake}
	if n.Locked == nil {
		return in, fmt.Errorf("flake lock %s: input %q is not locked\nhint: run nix flake lock", l.path, name)
	}
	in.Locked = *n.Locked
	if n.Original != nil {
		in.Original = *n.Original
	}
	return in, nil
}

// resolve walks path (input names) from node to a node name.
func (l *Lock) resolve(node string, path []string, depth int) (string, error) {
	if depth > 32 {
		return "", fmt.Errorf("flake lock %s: follows loop at %s", l.path, strings.Join(path, "/"))
	}
	for _, name := range path {
		raw, ok := l.Nodes[node].Inputs[name]
		if !ok {
			return "", fmt.Errorf("%w %q in %s\nhint: the inputs are: %s", ErrNoInput, name, l.path, strings.Join(l.inputNames(node), ", "))
		}
		var target string
		if err := json.Unmarshal(raw, &target); err == nil {
			if _, ok := l.Nodes[target]; !ok {
				return "", fmt.Errorf("flake lock %s: input %q points at missing node %q", l.path, name, target)
			}
			node = target
			continue
		}
		var follows []string
		if err := json.Unmarshal(raw, &follows); err != nil {
			return "", fmt.Errorf("flake lock %s: input %q: neither a node name nor a follows path", l.path, name)
		}
		n, err := l.resolve(l.Root, follows, depth+1)
		if err != nil {
			return "", err
		}
		node = n
	}
	return node, nil
}

func (l *Lock) inputNames(node string) []string {
	var out []string
	for n := range l.Nodes[node].Inputs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// CloneURL is the URL git fetches a git input from ("ssh://git@host/repo"
// for git+ssh://...), or "" when the input is not a git repository.
func (r Ref) CloneURL() string {
	switch r.Type {
	case "git":
		return strings.TrimPrefix(r.URL, "git+")
	case "github":
		return "https://github.com/" + r.Owner + "/" + r.Repo + ".git"
	case "gitlab":
		return "https://gitlab.com/" + r.Owner + "/" + r.Repo + ".git"
	case "sourcehut":
		return "https://git.sr.ht/" + r.Owner + "/" + r.Repo
	}
	return ""
}
