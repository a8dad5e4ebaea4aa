let
  alice = "lexical wins";
  keys = import ./keys/users.nix;
in
with keys;
with { bob = "inner with"; carol = "inner"; };
{
  a = alice;
  b = bob;
  c = carol;
  "s.age".publicKeys = [ keys.alice ];
}
