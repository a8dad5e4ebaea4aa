rec {
  user1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDcw+Kxyut6hlT5KQpXNixu2z19Gg8smX56QOUMSzWNX";
  user2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL9SIkaQCMHgnZc69nRyofT4Q9lv1oW08wd+WK68Xoat";
  users = [ user1 user2 ];

  system1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIMuRh4TZjpg9+Ns5VoolClSfbUZ0Q/JU6zyI0RfRIJE";
  system2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFaJ6e9LNPDj/3sqqnbFqZXvUQiabVEPGcK7Yw8nDASd";
  systems = [ system1 system2 ];
}
