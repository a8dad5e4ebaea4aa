package provision

import (
	"io"

	"github.com/fleetnix/fleet/agentfwd"
	"github.com/fleetnix/fleet/remote"
)

// scopedAgent is the agent the installer fetches the secrets through:
// fleet's own (agentfwd), backed by the operator's, allowing only the
// deploy key, within limits, and only while it fetches.
type scopedAgent struct {
	ag   *agentfwd.Agent
	conn io.Closer // to the operator's agent
}

// forward offers the agent on c's next sessions (see remote.Forwarding).
func (s *scopedAgent) forward(c *remote.Client) *remote.Forwarding {
	return c.Forward(s.ag.For("fetching the secrets"), "fetch secrets")
}

func (s *scopedAgent) close() { s.conn.Close() }
