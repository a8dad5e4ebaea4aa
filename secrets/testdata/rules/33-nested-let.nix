let
  a = let b = 1; c = b + 1; in { inherit b c; };
  d = let inherit (a) b; in b * 10;
  keys = import ./keys/users.nix;
in
let a2 = a // { d = d; }; in
{ inherit a2; "n.age".publicKeys = let x = keys.alice; in [ x ]; }
