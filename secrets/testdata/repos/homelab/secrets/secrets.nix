# Keys live next to the secrets directory, one .pub file each; hosts are
# whatever is in keys/hosts.
let
  readKey = f: builtins.replaceStrings [ "\n" ] [ "" ] (builtins.readFile f);
  dirKeys = dir:
    builtins.listToAttrs (map
      (f: {
        name = builtins.replaceStrings [ ".pub" ] [ "" ] f;
        value = readKey (dir + "/${f}");
      })
      (builtins.attrNames (builtins.readDir dir)));
  users = dirKeys ../keys/users;
  hosts = dirKeys ../keys/hosts;
  admins = builtins.attrValues users;
in
{
  "wifi.age".publicKeys = admins ++ builtins.attrValues hosts;
  "nas/smb-password.age".publicKeys = admins ++ [ hosts.nas ];
  "nas/restic.age" = { publicKeys = admins ++ [ hosts.nas ]; armor = true; };
  "web/acme-token.age".publicKeys = [ users.alice hosts.web ];
  "router/pppoe.age".publicKeys = [ users.bob hosts.router ];
}
