let
  keys = import ./keys/users.nix;
  hostDirs = builtins.attrNames (builtins.readDir ./hosts);
  pubs = builtins.readDir ./pubkeys;
in
builtins.listToAttrs (map (h: {
  name = "hosts/${h}/ssh.age";
  value.publicKeys = [ keys.alice (builtins.readFile (./pubkeys + "/${h}.pub")) ];
}) hostDirs) // { pubFiles = pubs; }
