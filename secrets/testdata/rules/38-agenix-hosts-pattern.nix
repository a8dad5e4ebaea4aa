let
  keys = import ./keys;
  inherit (keys.users) alice bob;
  hosts = {
    nas = builtins.readFile ./pubkeys/nas.pub;
    web = builtins.readFile ./pubkeys/web.pub;
  };
  forAll = files: builtins.listToAttrs (map (f: { name = f; value.publicKeys = [ alice bob ] ++ builtins.attrValues hosts; }) files);
  forHost = host: files: builtins.listToAttrs (map (f: { name = "${host}/${f}"; value.publicKeys = [ alice hosts.${host} ]; }) files);
in
forAll [ "common/wifi.age" "common/nix-access-tokens.age" ]
// forHost "nas" [ "smb.age" "restic.age" ]
// forHost "web" [ "acme.age" ]
