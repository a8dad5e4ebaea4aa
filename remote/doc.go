// Package remote is fleet's SSH client and the one place external commands
// run through.
//
// A [Target] names a machine (user@host:port, ssh://..., or a ~/.ssh/config
// alias); [Dial] opens one verified [Client] to it, with the host key
// checked against known_hosts or a pinned fingerprint ([HostKeyPolicy]),
// authenticated with the operator's agent and identity files. A Client is
// used for the whole boot of the target: commands, uploads and forwarded
// agents are sessions multiplexed over that one connection.
//
// Every external command fleet runs, on a target or on this machine, goes
// through the [Runner] interface: [Client] runs over SSH, [Local] runs here.
// A failed command is an [*ExitError] carrying the exit status and the tail
// of its stderr.
package remote
