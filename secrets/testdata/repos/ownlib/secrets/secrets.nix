let
  lib = import ../nix/lib.nix;
  alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDcw+Kxyut6hlT5KQpXNixu2z19Gg8smX56QOUMSzWNX";
  laptop = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIONCGZEf6BNfbH4AlVs2GcWxSvqnp9mabFuMGb488+uu";
  hosts = {
    nas = { key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIMuRh4TZjpg9+Ns5VoolClSfbUZ0Q/JU6zyI0RfRIJE"; public = false; };
    web = { key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFaJ6e9LNPDj/3sqqnbFqZXvUQiabVEPGcK7Yw8nDASd"; public = true; };
  };
  extraKey = builtins.getEnv "FLEET_TEST_UNSET_EXTRA_KEY";
  base = lib.unique ([ alice laptop alice ] ++ lib.optionals (extraKey != "") [ extraKey ]);
in
lib.mapAttrs' (name: h: lib.nameValuePair "${name}.age" {
  publicKeys = base ++ [ h.key ];
  armor = h.public;
}) hosts
// lib.genAttrs [ "common/wifi.age" "common/vpn.age" ] (_: {
  publicKeys = base ++ map (h: h.key) (builtins.attrValues hosts);
})
