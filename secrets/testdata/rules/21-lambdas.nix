let
  k = import ./keys/users.nix;
  compose = f: g: x: f (g x);
  twice = f: compose f f;
  addKey = key: keys: keys ++ [ key ];
  all = twice (addKey k.alice) [ k.bob ];
  pick = { alice, bob, ... }: [ alice bob ];
  whole = args@{ carol, ... }: builtins.attrNames args;
in
{ "l.age".publicKeys = pick k; names = whole k; count = builtins.length all; }
