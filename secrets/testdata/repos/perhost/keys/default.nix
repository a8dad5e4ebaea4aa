{
  admins = {
    alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDcw+Kxyut6hlT5KQpXNixu2z19Gg8smX56QOUMSzWNX alice";
    carol = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINXyzCkaeTXJFVkAuoq8179GloeGIQcnk0IbQY+35LoI carol";
  };
  hosts = {
    nas = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIMuRh4TZjpg9+Ns5VoolClSfbUZ0Q/JU6zyI0RfRIJE";
    web = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFaJ6e9LNPDj/3sqqnbFqZXvUQiabVEPGcK7Yw8nDASd";
    backup = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP0u9kf6XD52ZUZGvxnEUKUcr1No00ezXTbhM/YiCIQo";
  };
  recovery = "age1rmlkqrgxad08w8g92krpzj6jnxklgxheck26rh7hgvxpqflln4msa4srs8";
}
