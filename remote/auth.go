package remote

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// ErrNoTerminal is returned when a passphrase is needed and there is no
// terminal to ask on.
var ErrNoTerminal = errors.New("no terminal to ask for the passphrase")

// ErrNoAuth: neither an agent nor a usable identity file.
var ErrNoAuth = errors.New("no SSH credentials")

// PassphraseFunc asks for the passphrase of the key in file. It returns
// ErrNoTerminal (wrapped) when it cannot ask.
type PassphraseFunc func(file string) ([]byte, error)

// Auth is how fleet authenticates: the operator's agent and identity files.
type Auth struct {
	// AgentSocket is the agent to use; "" means $SSH_AUTH_SOCK, "none"
	// means no agent.
	AgentSocket string
	// IdentityFiles are private key files (-i); they come before the
	// ssh_config ones and the defaults.
	IdentityFiles []string
	// Passphrase asks for a key's passphrase; nil means none can be asked.
	Passphrase PassphraseFunc
	// Password, when set, answers the password and keyboard-interactive
	// methods, tried after the keys as OpenSSH does (first contact with
	// the NixOS installer's nixos user). It is asked only when the host
	// wants a password; a refused password is never retried
	// ([ErrPasswordRefused]). Without it, a host that wants a password
	// fails with [ErrPasswordNeeded].
	Password PasswordFunc
	// PasswordFrom names where the password comes from ("$SSHPASS"), for
	// errors.
	PasswordFrom string
}

// credentials are the signers for one Dial, agent first. Keys from files are
// decrypted lazily: the passphrase is asked only when the server accepts
// the key, and once per file per process.
type credentials struct {
	agentConn net.Conn
	agent     agent.ExtendedAgent
	signers   []ssh.Signer
	signErr   error // the first error a lazy signer hit (wrong passphrase, no terminal)
	pw        *passwordAuth
	pause     func() (resume func()) // stops the handshake deadline while the operator is asked
	mu        sync.Mutex
}

func (c *credentials) Close() {
	if c.agentConn != nil {
		c.agentConn.Close()
	}
	c.pw.wipe()
}

// setPause makes prompts stop the handshake deadline while they wait.
func (c *credentials) setPause(pause func() (resume func())) {
	c.pause = pause
	c.pw.pause = pause
}

// defaultIdentityFiles are tried when present, as OpenSSH does.
var defaultIdentityFiles = []string{"~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"}

var (
	passCacheMu sync.Mutex
	passCache   = map[string]ssh.Signer{} // decrypted keys by file, for the process's life
)

func (a Auth) load(e Endpoint) (*credentials, error) {
	c := &credentials{}
	sock := a.AgentSocket
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	var agentSigners []ssh.Signer
	if sock != "" && sock != "none" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, fmt.Errorf("connect to ssh-agent at %s: %w\nhint: start one with eval $(ssh-agent) or unset SSH_AUTH_SOCK", sock, err)
		}
		c.agentConn = conn
		c.agent = agent.NewClient(conn)
		agentSigners, err = c.agent.Signers()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("list ssh-agent keys: %w", err)
		}
	}
	files := append([]string{}, a.IdentityFiles...)
	files = append(files, e.IdentityFiles...)
	explicit := len(files)
	if len(files) == 0 {
		for _, f := range defaultIdentityFiles {
			files = append(files, expandHome(f))
		}
	}
	var fileSigners []ssh.Signer
	seen := map[string]bool{}
	for i, f := range files {
		if seen[f] {
			continue
		}
		seen[f] = true
		s, err := c.fileSigner(f, a.Passphrase)
		if errors.Is(err, os.ErrNotExist) && i >= len(a.IdentityFiles) {
			continue // ssh_config and default files may be absent, as with ssh
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		fileSigners = append(fileSigners, s)
	}
	if e.IdentitiesOnly && explicit > 0 {
		// Only agent keys matching an identity file, as OpenSSH does.
		want := map[string]bool{}
		for _, s := range fileSigners {
			want[string(s.PublicKey().Marshal())] = true
		}
		var keep []ssh.Signer
		for _, s := range agentSigners {
			if want[string(s.PublicKey().Marshal())] {
				keep = append(keep, s)
			}
		}
		agentSigners = keep
	}
	// An agent key beats the same key from a file (no passphrase prompt).
	inAgent := map[string]bool{}
	for _, s := range agentSigners {
		inAgent[string(s.PublicKey().Marshal())] = true
		c.signers = append(c.signers, s)
	}
	for _, s := range fileSigners {
		if !inAgent[string(s.PublicKey().Marshal())] {
			c.signers = append(c.signers, s)
		}
	}
	c.pw = &passwordAuth{get: a.Password, from: a.PasswordFrom, user: e.User, host: e.Addr(), keys: len(c.signers)}
	if len(c.signers) == 0 && a.Password == nil {
		c.Close()
		return nil, fmt.Errorf("%w: no ssh-agent keys and no identity file\nhint: load a key with ssh-add, or pass -i ~/.ssh/id_ed25519", ErrNoAuth)
	}
	return c, nil
}

// fileSigner reads a private key file; an encrypted one becomes a lazy
// signer that asks for the passphrase on first use.
func (c *credentials) fileSigner(file string, ask PassphraseFunc) (ssh.Signer, error) {
	passCacheMu.Lock()
	s, ok := passCache[file]
	passCacheMu.Unlock()
	if ok {
		return s, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read identity file: %w", err)
	}
	s, err = ssh.ParsePrivateKey(pem)
	var pm *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return s, nil
	case errors.As(err, &pm) && pm.PublicKey != nil:
		return &lazySigner{file: file, pub: pm.PublicKey, pem: pem, ask: ask, creds: c}, nil
	case errors.As(err, &pm):
		// Old PEM formats do not carry the public key in the clear: use the .pub file.
		pubBytes, perr := os.ReadFile(file + ".pub")
		if perr != nil {
			return nil, fmt.Errorf("identity file %s is passphrase-protected and has no %s.pub\nhint: add it to ssh-agent with ssh-add", file, file)
		}
		pub, _, _, _, perr := ssh.ParseAuthorizedKey(pubBytes)
		if perr != nil {
			return nil, fmt.Errorf("read %s.pub: %w", file, perr)
		}
		return &lazySigner{file: file, pub: pub, pem: pem, ask: ask, creds: c}, nil
	default:
		return nil, fmt.Errorf("identity file %s: %w", file, err)
	}
}

// lazySigner holds an encrypted key and decrypts it the first time a
// signature is needed.
type lazySigner struct {
	file  string
	pub   ssh.PublicKey
	pem   []byte
	ask   PassphraseFunc
	creds *credentials

	mu     sync.Mutex
	signer ssh.Signer
}

func (l *lazySigner) PublicKey() ssh.PublicKey { return l.pub }

func (l *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	s, err := l.unlock()
	if err != nil {
		return nil, err
	}
	return s.Sign(rand, data)
}

// SignWithAlgorithm lets RSA keys use rsa-sha2-256/512.
func (l *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	s, err := l.unlock()
	if err != nil {
		return nil, err
	}
	if as, ok := s.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	return s.Sign(rand, data)
}

func (l *lazySigner) unlock() (ssh.Signer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.signer != nil {
		return l.signer, nil
	}
	fail := func(err error) (ssh.Signer, error) {
		l.creds.mu.Lock()
		if l.creds.signErr == nil {
			l.creds.signErr = err
		}
		l.creds.mu.Unlock()
		return nil, err
	}
	if l.creds.pause != nil {
		defer l.creds.pause()()
	}
	if l.ask == nil {
		return fail(fmt.Errorf("identity file %s is passphrase-protected: %w\nhint: add it to ssh-agent (ssh-add %s) or run fleet from a terminal", l.file, ErrNoTerminal, l.file))
	}
	pass, err := l.ask(l.file)
	if err != nil {
		if errors.Is(err, ErrNoTerminal) {
			return fail(fmt.Errorf("identity file %s is passphrase-protected: %w\nhint: add it to ssh-agent (ssh-add %s) or run fleet from a terminal", l.file, ErrNoTerminal, l.file))
		}
		return fail(fmt.Errorf("passphrase for %s: %w", l.file, err))
	}
	s, err := ssh.ParsePrivateKeyWithPassphrase(l.pem, pass)
	for i := range pass {
		pass[i] = 0
	}
	if err != nil {
		return fail(fmt.Errorf("identity file %s: wrong passphrase or unreadable key: %w", l.file, err))
	}
	l.signer = s
	passCacheMu.Lock()
	passCache[l.file] = s
	passCacheMu.Unlock()
	return s, nil
}

// authMethods are the ssh.AuthMethods for these credentials: keys first,
// then a password, each method tried once.
func (c *credentials) authMethods() []ssh.AuthMethod {
	var m []ssh.AuthMethod
	if len(c.signers) > 0 {
		m = append(m, ssh.PublicKeys(c.signers...))
	}
	return append(m, ssh.PasswordCallback(c.pw.password), ssh.KeyboardInteractive(c.pw.challenge))
}
