# router: one disk, an EFI system partition and an ext4 root.
{ secrets }:
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
    protonvpn-wireguard = { file = "${secrets}/protonvpn-wireguard.age"; path = "/etc/wireguard/wg0.conf"; };
    datadog-api-key.file = "${secrets}/datadog-api-key.age";
  };
}
