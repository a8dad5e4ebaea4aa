let
  sys = import ./keys/systems.nix { };
  u = import ./keys/users.nix;
in
rec {
  inherit (u) alice;
  keys = { inherit (sys) nas web; inherit alice; };
  "x.age".publicKeys = [ keys.nas keys.alice ];
}
