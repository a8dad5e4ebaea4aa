# The rules (agenix's secrets.nix) of the private repository the flake's
# `secrets` input locks: nas's, tank's and pi's .age files. The operator's age
# key can edit and rekey everything; each host decrypts its own with its
# SSH host key. keys.nix holds
# the public keys; the set-up (test/homelab) writes it with keys made on
# the spot (never committed) and serves this directory as a git repository.
let
  keys = import ./keys.nix;
  nas = [ keys.operator keys.nas ];
  tank = [ keys.operator keys.tank ];
  pi = [ keys.operator keys.pi ];
in
{
  "openai-key.age".publicKeys = nas;
  "anthropic-api-key.age".publicKeys = nas;
  "datadog-api-key.age".publicKeys = nas;
  "datadog-app-key.age".publicKeys = nas;
  "smb-credentials.age".publicKeys = nas;
  "protonvpn-wireguard.age".publicKeys = nas;
  # tank's encrypted dataset's passphrase, and its backup password.
  "tank-key.age".publicKeys = tank;
  "restic-password.age".publicKeys = tank;
  # pi's wifi passphrase and its MQTT broker password.
  "wifi-psk.age".publicKeys = pi;
  "mqtt-password.age".publicKeys = pi;
  # Each host's own decryption identity, escrowed for the operator only
  # (fleet keys escrow HOST), in the repository that holds the secrets it
  # unlocks: a reinstall onto a new system disk restores it (fleet install
  # HOST --host-identity-age hosts/HOST/host-key.age).
  "hosts/nas/host-key.age".publicKeys = [ keys.operator ];
  "hosts/tank/host-key.age".publicKeys = [ keys.operator ];
}
