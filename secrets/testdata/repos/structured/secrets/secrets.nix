let
  users = builtins.filter (u: !(u.disabled or false))
    (builtins.fromJSON (builtins.readFile ../keys/users.json)).users;
  hosts = builtins.fromTOML (builtins.readFile ../keys/hosts.toml);
  userKeys = map (u: u.key) users;
  withRole = role: builtins.filter (h: builtins.elem role hosts.${h}.roles) (builtins.attrNames hosts);
  forRole = role: userKeys ++ map (h: hosts.${h}.key) (withRole role);
in
{
  "backup/restic.age".publicKeys = forRole "backup";
  "network/wireguard.age".publicKeys = forRole "network";
  "storage/smb.age" = { publicKeys = forRole "storage"; armor = false; };
}
