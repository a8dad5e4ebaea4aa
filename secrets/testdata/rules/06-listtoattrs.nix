let
  keys = import ./keys/users.nix;
  hosts = [ "nas" "web" "db" ];
  mk = host: {
    name = "hosts/${host}/root-password.age";
    value = { publicKeys = [ keys.alice ]; };
  };
in
builtins.listToAttrs (map mk hosts)
