let
  k = import ./keys/users.nix;
  keysText = ''
    ${k.alice}
    ${k.bob}
  '';
in
{
  "ind.age".publicKeys = builtins.filter (s: s != "") (builtins.split "\n" keysText);
  "ind.age".text = ''
      first
        indented ''${literal} '''quoted'''
      tab''\there
    last
  '';
  "ind.age".oneLine = ''  spaces  '';
  "ind.age".blank = ''

    after blank

  '';
}
