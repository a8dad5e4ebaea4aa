# The secrets repository's rules (agenix's secrets.nix): who can decrypt
# each file. The operator's age key can edit and rekey everything; each
# host decrypts with its SSH host key. keys.nix holds the public keys; the
# rig's set-up writes it with keys made on the spot (never committed).
let
  keys = import ./keys.nix;
  operator = [ keys.operator ];
in
{
  "openai-key.age".publicKeys = operator ++ [ keys.nas keys.vault ];
  "anthropic-api-key.age".publicKeys = operator ++ [ keys.nas keys.vault ];
  "datadog-api-key.age".publicKeys = operator ++ [ keys.nas keys.router ];
  "datadog-app-key.age".publicKeys = operator ++ [ keys.nas ];
  "smb-credentials.age".publicKeys = operator ++ [ keys.nas ];
  "protonvpn-wireguard.age".publicKeys = operator ++ [ keys.nas keys.router ];
  # Each host's own decryption identity, escrowed for the operators only
  # (fleet keys escrow HOST): a reinstall onto a new system disk restores
  # it (fleet install HOST --host-identity-age hosts/HOST/host-key.age).
  "hosts/nas/host-key.age".publicKeys = operator;
  "hosts/router/host-key.age".publicKeys = operator;
  "hosts/vault/host-key.age".publicKeys = operator;
}
