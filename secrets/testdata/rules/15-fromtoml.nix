let
  t = builtins.fromTOML (builtins.readFile ./data/keys.toml);
in
builtins.listToAttrs (map (s: {
  name = s.file;
  value = { publicKeys = t.admins ++ [ t.hosts.nas ]; inherit (s) armor; };
}) t.secret) // { meta = { inherit (t) port ratio; }; }
