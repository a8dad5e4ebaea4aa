package sshtest

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/fleetnix/fleet/test/testenv"
)

// Relay is a TCP relay on 127.0.0.1 in front of an SSH server: tests dial
// it instead of the server to count the connections the server answered,
// or to cut them as a dropped network would.
type Relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	ssh    atomic.Int64
}

// StartRelay relays 127.0.0.1:Port() to target until t ends.
func StartRelay(t testenv.TB, target string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); r.Cut() })
	go r.serve()
	return r
}

func (r *Relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, u)
		r.mu.Unlock()
		go func() { io.Copy(u, c); u.Close() }()
		go func() {
			// A connection counts once the server sent its SSH banner: a
			// port forwarder (qemu's) accepts TCP before any sshd runs.
			buf := make([]byte, 4096)
			n, err := u.Read(buf)
			if n > 0 && bytes.HasPrefix(buf[:n], []byte("SSH-")) {
				r.ssh.Add(1)
			}
			if n > 0 {
				c.Write(buf[:n])
			}
			if err == nil {
				io.Copy(c, u)
			}
			c.Close()
		}()
	}
}

// Port is the relay's port on 127.0.0.1.
func (r *Relay) Port() int { return r.ln.Addr().(*net.TCPAddr).Port }

// Addr is "127.0.0.1:PORT".
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// SSHConnections counts the relayed connections the server answered with
// an SSH banner.
func (r *Relay) SSHConnections() int64 { return r.ssh.Load() }

// Cut closes every relayed connection and reports how many were open.
func (r *Relay) Cut() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.conns) / 2
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
	return n
}
