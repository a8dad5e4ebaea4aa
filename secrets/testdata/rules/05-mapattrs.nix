let
  keys = import ./keys/users.nix;
  secrets = {
    "a.age" = [ "alice" ];
    "b.age" = [ "alice" "bob" ];
    "c.age" = [ "carol" ];
  };
in
builtins.mapAttrs (name: users: { publicKeys = map (u: keys.${u}) users; }) secrets
