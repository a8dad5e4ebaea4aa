let
  keys = import ./keys/users.nix;
  mkSecret = { users ? [ "alice" ], armor ? false, ... }@args:
    { publicKeys = map (u: keys.${u}) users; inherit armor; } // (if args ? extra then { inherit (args) extra; } else { });
in
{
  "default.age" = mkSecret { };
  "both.age" = mkSecret { users = [ "alice" "bob" ]; armor = true; };
  "extra.age" = mkSecret { extra = "kept"; ignored = 1; };
}
