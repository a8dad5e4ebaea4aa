let
  k = import ./keys/users.nix;
  files = [ "a.age" "b.age" "c.age" "a.age" ];
in
builtins.foldl' (acc: f: acc // { ${f}.publicKeys = [ k.alice ]; }) { } files
