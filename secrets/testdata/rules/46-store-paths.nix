# Paths in strings and in the output are copied to the store by Nix;
# --readonly-mode only computes their names, as the built-in evaluator does.
let k = import ./keys/users.nix; in
{
  "p.age".publicKeys = [ k.alice ];
  "p.age".file = ./pubkeys/alice.pub;
  "p.age".dir = ./hosts;
  "p.age".inString = "${./pubkeys/nas.pub}";
  "p.age".subPath = "${./pubkeys}/web.pub";
  "p.age".json = ./data/keys.json;
  "p.age".plus = ./data + "/keys.toml";
  "p.age".noCopy = toString ./pubkeys/alice.pub == "${toString ./pubkeys/alice.pub}";
}
