{ "a.age" = { publicKeys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLySPOW2Nr5nCmmo5skMh8D/fPPTL06ghi4BlBiTqBz" ]; armor = "yes"; }; }
