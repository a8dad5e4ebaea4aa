{ dev, hosts, ... }: {
  "dev/registry.age" = { publicKeys = dev ++ [ hosts.web ]; armor = true; };
}
