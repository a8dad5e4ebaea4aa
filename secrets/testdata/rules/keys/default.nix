let
  users = import ./users.nix;
  systems = import ./systems.nix { };
in
{
  inherit users systems;
  admins = [ users.alice users.bob ];
}
