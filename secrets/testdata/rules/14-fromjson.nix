let
  data = builtins.fromJSON (builtins.readFile ./data/keys.json);
in
{
  "json.age".publicKeys = builtins.attrValues data.users ++ data.hosts;
  "json.age".meta = { inherit (data) port ratio enabled none; };
}
