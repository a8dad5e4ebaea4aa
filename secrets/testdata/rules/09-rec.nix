rec {
  admin = (import ./keys/users.nix).alice;
  everyone = [ admin ] ++ hosts;
  hosts = builtins.attrValues { inherit ((import ./keys/systems.nix { })) nas web; };
  "rec.age".publicKeys = everyone;
}
