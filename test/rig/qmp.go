package rig

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// qmp is a client of qemu's machine protocol (QMP) on a unix socket:
// one JSON object a line; commands answer with "return" or "error",
// and asynchronous "event" lines come in between.
type qmp struct {
	c net.Conn
	r *bufio.Reader
}

// dialQMP connects to the socket qemu listens on (it may not exist yet
// right after qemu starts) and leaves capabilities negotiation done.
func dialQMP(path string, wait time.Duration) (*qmp, error) {
	deadline := time.Now().Add(wait)
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			q := &qmp{c: c, r: bufio.NewReader(c)}
			if _, err := q.r.ReadBytes('\n'); err != nil { // the greeting
				c.Close()
				return nil, fmt.Errorf("qmp greeting: %w", err)
			}
			if _, err := q.do("qmp_capabilities", nil); err != nil {
				c.Close()
				return nil, err
			}
			return q, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("qmp: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (q *qmp) Close() error { return q.c.Close() }

// do runs a command and returns its "return" value.
func (q *qmp) do(cmd string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	_ = q.c.SetDeadline(time.Now().Add(time.Minute))
	defer q.c.SetDeadline(time.Time{})
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("qmp %s: %w: %s", cmd, err, line)
		}
		switch {
		case resp.Event != "":
			continue
		case resp.Error != nil:
			return nil, fmt.Errorf("qmp %s: %s: %s", cmd, resp.Error.Class, resp.Error.Desc)
		default:
			return resp.Return, nil
		}
	}
}

// waitMigration polls query-migrate until the migration completed.
func (q *qmp) waitMigration(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ret, err := q.do("query-migrate", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := json.Unmarshal(ret, &st); err != nil {
			return err
		}
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("migration %s: %s", st.Status, st.ErrorDesc)
		}
		if time.Now().After(deadline) {
			return errors.New("migration did not complete within " + limit.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
