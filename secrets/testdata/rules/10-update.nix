let
  keys = import ./keys/users.nix;
  base = { "a.age".publicKeys = [ keys.alice ]; "b.age".publicKeys = [ keys.bob ]; };
  override = { "b.age" = { publicKeys = [ keys.alice keys.bob ]; armor = true; }; };
in
base // override // { "c.age".publicKeys = [ keys.carol ]; }
