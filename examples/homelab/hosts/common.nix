# What every host shares: the platform, sshd's host key, agenix
# decrypting with that host key, and the admins' SSH keys for root.
{ hostName }: {
  nixpkgs.hostPlatform.system = "x86_64-linux";
  networking.hostName = hostName;
  services.openssh.hostKeys = [ { path = "/etc/ssh/ssh_host_ed25519_key"; type = "ed25519"; } ];
  age.identityPaths = [ "/etc/ssh/ssh_host_ed25519_key" ];
  # Who logs in as root on the installed host: fleet install checks the
  # first boot as root with your SSH key (--verify-user), whatever user the
  # installer had you log in as.
  users.users.root.openssh.authorizedKeys.keys = import ./admins.nix;
}
