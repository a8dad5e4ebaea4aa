# router: one disk, an EFI system partition and an ext4 root. Its .age
# files are in the input named agenix-secrets.
{ agenix-secrets }:
let parts = import ./parts.nix; in
import ./common.nix { hostName = "router"; } // {
  disko.devices.disk.main = {
    type = "disk";
    device = "/dev/vda";
    content = {
      type = "gpt";
      partitions = {
        ESP = parts.esp;
        root = parts.root "100%";
      };
    };
  };

  age.secrets = {
    protonvpn-wireguard = { file = "${agenix-secrets}/protonvpn-wireguard.age"; path = "/etc/wireguard/wg0.conf"; };
    datadog-api-key.file = "${agenix-secrets}/datadog-api-key.age";
  };
}
