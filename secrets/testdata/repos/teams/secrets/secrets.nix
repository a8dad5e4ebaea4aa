let
  keys = rec {
    alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDcw+Kxyut6hlT5KQpXNixu2z19Gg8smX56QOUMSzWNX";
    bob = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL9SIkaQCMHgnZc69nRyofT4Q9lv1oW08wd+WK68Xoat";
    carol = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINXyzCkaeTXJFVkAuoq8179GloeGIQcnk0IbQY+35LoI";
    ops = [ alice bob ];
    dev = [ carol ] ++ (keys.extraDev or [ ]);
    hosts.web = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFaJ6e9LNPDj/3sqqnbFqZXvUQiabVEPGcK7Yw8nDASd";
  };
  teams = [ ./teams/ops.nix ./teams/dev.nix ];
in
builtins.foldl' (acc: f: acc // import f keys) { } teams
// (if keys ? hosts && keys.hosts ? web then { "web/tls.age".publicKeys = keys.ops ++ [ keys.hosts.web ]; } else { })
