# builtins.currentSystem is impure: Nix knows it, the built-in evaluator does not
{ "f.age" = { publicKeys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLySPOW2Nr5nCmmo5skMh8D/fPPTL06ghi4BlBiTqBz" ]; system = builtins.currentSystem; source = "${../pubkeys/alice.pub}"; }; }
