with import ./keys/users.nix;
{
  "with.age".publicKeys = [ alice bob ];
  "carol.age".publicKeys = [ carol ];
}
