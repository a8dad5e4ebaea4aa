let
  nas = import ./hosts/nas;
  web = import ./hosts/web;
  keys = import ./keys;
  forHost = h: builtins.listToAttrs (map (s: {
    name = "hosts/${h.hostName}/${s}.age";
    value = { publicKeys = keys.admins ++ [ h.key ]; armor = h.armor or false; };
  }) h.secrets);
in
forHost nas // forHost web
