let
  keys = import ../keys;
  admins = builtins.attrValues keys.admins ++ [ keys.recovery ];
  secretsOf = {
    nas = [ "smb" "restic" "nut" ];
    web = [ "acme" "grafana-admin" ];
    backup = [ "restic" "borg-passphrase" ];
  };
  # armored where the file is pasted into tickets
  armored = [ "acme" ];
  entry = host: name: {
    name = "hosts/${host}/${name}.age";
    value = {
      publicKeys = admins ++ [ keys.hosts.${host} ];
      armor = builtins.elem name armored;
    };
  };
in
builtins.listToAttrs (builtins.concatMap
  (host: map (entry host) secretsOf.${host})
  (builtins.attrNames secretsOf))
// {
  "shared/tailscale-authkey.age".publicKeys = admins ++ builtins.attrValues keys.hosts;
}
