package remote

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// Endpoint is a target with every setting resolved: what Dial connects to.
type Endpoint struct {
	Alias string // the name the user gave (for ssh_config and messages)
	User  string
	Host  string // HostName after ssh_config
	Port  int

	IdentityFiles  []string // from ssh_config, in order
	IdentitiesOnly bool
	KnownHosts     []string // UserKnownHostsFile from ssh_config; nil: the defaults
	StrictHostKey  string   // StrictHostKeyChecking from ssh_config ("" when unset)
	ProxyJump      []string // hops, outermost first, as written (user@host:port or aliases)
}

// Addr is host:port for net.Dial.
func (e Endpoint) Addr() string {
	h := e.Host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(e.Port)
}

// KnownHostsName is the name known_hosts uses for this endpoint
// ("host" on port 22, "[host]:port" otherwise).
func (e Endpoint) KnownHostsName() string {
	if e.Port == 22 {
		return e.Host
	}
	return fmt.Sprintf("[%s]:%d", e.Host, e.Port)
}

// SSHConfig is a parsed ssh_config (the user's, then the system's).
type SSHConfig struct {
	files []*ssh_config.Config
}

// LoadSSHConfig reads the ssh_config files that exist among paths; a nil
// paths means ~/.ssh/config then /etc/ssh/ssh_config, as OpenSSH does.
func LoadSSHConfig(paths ...string) (*SSHConfig, error) {
	if paths == nil {
		paths = []string{expandHome("~/.ssh/config"), "/etc/ssh/ssh_config"}
	}
	c := &SSHConfig{}
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read ssh config: %w", err)
		}
		cfg, err := ssh_config.Decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read ssh config %s: %w", p, err)
		}
		c.files = append(c.files, cfg)
	}
	return c, nil
}

// get returns the first value for key in any file (first obtained value
// wins, as in OpenSSH).
func (c *SSHConfig) get(alias, key string) string {
	if c == nil {
		return ""
	}
	for _, f := range c.files {
		if v, err := f.Get(alias, key); err == nil && v != "" {
			return v
		}
	}
	return ""
}

func (c *SSHConfig) getAll(alias, key string) []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, f := range c.files {
		if vs, err := f.GetAll(alias, key); err == nil {
			out = append(out, vs...)
		}
	}
	return out
}

// Resolve fills in t from ssh_config and defaults: explicit parts of the
// target win over the config, the config over defaults (port 22, the
// current user).
func Resolve(t Target, cfg *SSHConfig) (Endpoint, error) {
	e := Endpoint{Alias: t.Host, User: t.User, Host: t.Host, Port: t.Port}
	if hn := cfg.get(t.Host, "HostName"); hn != "" {
		e.Host = strings.ReplaceAll(hn, "%h", t.Host)
	}
	if e.User == "" {
		e.User = cfg.get(t.Host, "User")
	}
	if e.User == "" {
		if u, err := user.Current(); err == nil {
			e.User = u.Username
		}
	}
	if e.Port == 0 {
		if p := cfg.get(t.Host, "Port"); p != "" {
			n, err := parsePort(p)
			if err != nil {
				return e, fmt.Errorf("ssh config for %s: %w", t.Host, err)
			}
			e.Port = n
		}
	}
	if e.Port == 0 {
		e.Port = 22
	}
	for _, f := range cfg.getAll(t.Host, "IdentityFile") {
		e.IdentityFiles = append(e.IdentityFiles, expandTokens(f, e))
	}
	e.IdentitiesOnly = strings.EqualFold(cfg.get(t.Host, "IdentitiesOnly"), "yes")
	if kh := cfg.get(t.Host, "UserKnownHostsFile"); kh != "" {
		for _, f := range strings.Fields(kh) {
			e.KnownHosts = append(e.KnownHosts, expandTokens(f, e))
		}
	}
	e.StrictHostKey = strings.ToLower(cfg.get(t.Host, "StrictHostKeyChecking"))
	if pj := cfg.get(t.Host, "ProxyJump"); pj != "" && !strings.EqualFold(pj, "none") {
		e.ProxyJump = strings.Split(pj, ",")
	}
	return e, nil
}

// expandTokens expands ~ and the %d %u %h %r %p tokens ssh_config allows in paths.
func expandTokens(s string, e Endpoint) string {
	s = expandHome(s)
	home, _ := os.UserHomeDir()
	r := strings.NewReplacer("%d", home, "%h", e.Host, "%r", e.User, "%p", strconv.Itoa(e.Port), "%%", "%")
	return r.Replace(s)
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}
