# What every host shares: the platform, sshd's host key, and agenix
# decrypting with that host key.
{ hostName }: {
  nixpkgs.hostPlatform.system = "x86_64-linux";
  networking.hostName = hostName;
  services.openssh.hostKeys = [ { path = "/etc/ssh/ssh_host_ed25519_key"; type = "ed25519"; } ];
  age.identityPaths = [ "/etc/ssh/ssh_host_ed25519_key" ];
}
