# The SSH public keys that may log in as root on every host: yours
# ("ssh-ed25519 AAAA... you@laptop"). The rig's set-up (test/homelab)
# writes the key it makes for the operator here.
[ ]
