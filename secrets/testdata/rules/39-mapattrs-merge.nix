let
  k = import ./keys/users.nix;
  perUser = builtins.mapAttrs (user: key: { publicKeys = [ key ]; armor = user == "bob"; }) k;
in
builtins.listToAttrs (map (u: { name = "users/${u}.age"; value = perUser.${u}; }) (builtins.attrNames perUser))
