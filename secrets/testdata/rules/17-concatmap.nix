let
  k = import ./keys/users.nix;
  s = import ./keys/systems.nix { };
  hosts = { nas = [ "smb" "backup" ]; web = [ "tls" ]; };
in
builtins.listToAttrs (builtins.concatMap (h:
  map (sec: { name = "${h}/${sec}.age"; value.publicKeys = [ k.alice s.${h} ]; }) hosts.${h}
) (builtins.attrNames hosts))
