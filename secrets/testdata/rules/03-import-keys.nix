let
  keys = import ./keys;
  inherit (keys) users systems admins;
in
{
  "hosts/nas/smb.age".publicKeys = admins ++ [ systems.nas ];
  "hosts/web/tls.age".publicKeys = admins ++ [ systems.web ];
  "shared/wifi.age".publicKeys = admins ++ systems.all;
}
