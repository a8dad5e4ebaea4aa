let
  k = import ./keys/users.nix;
  cfg = { nas = { armor = true; }; web = { }; };
  mk = h: {
    publicKeys = [ k.alice ] ++ (if builtins.hasAttr "armor" cfg.${h} then [ k.bob ] else [ ]);
    armor = cfg.${h} ? armor && cfg.${h}.armor;
  };
in
{ "nas.age" = mk "nas"; "web.age" = mk "web"; "or.age" = { publicKeys = [ (cfg.db.key or k.carol) ]; }; }
