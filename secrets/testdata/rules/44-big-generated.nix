let
  k = import ./keys/users.nix;
  n = builtins.genList (i: i) 200;
in
builtins.listToAttrs (map (i: { name = "gen/s${toString i}.age"; value = { publicKeys = if i / 2 * 2 == i then [ k.alice ] else [ k.alice k.bob ]; armor = i / 3 * 3 == i; }; }) n)
