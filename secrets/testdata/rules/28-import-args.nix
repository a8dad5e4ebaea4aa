let
  s = import ./keys/systems.nix { extra = [ "extra-key" ]; };
  f = import ./keys/systems.nix;
in
{
  all = s.all;
  defaulted = (f { }).all;
  "x.age".publicKeys = [ s.nas ];
}
