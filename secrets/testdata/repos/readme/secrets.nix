let
  inherit (import ./keys.nix) users systems user1 system1;
in
{
  "secret1.age".publicKeys = [ user1 system1 ];
  "secret2.age".publicKeys = users ++ systems;
  "armor-secret.age" = {
    publicKeys = users;
    armor = true;
  };
}
