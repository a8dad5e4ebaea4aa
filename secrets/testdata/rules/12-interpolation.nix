let
  dir = "hosts";
  hosts = [ "nas" "web" ];
  k = import ./keys/users.nix;
  n = 3;
in
{
  "${dir}/${builtins.head hosts}/a.age".publicKeys = [ k.alice ];
  "${dir}/${builtins.elemAt hosts 1}/b-${toString n}.age".publicKeys = [ "${k.bob}" ];
  "esc.age".note = "tab\there \"quoted\" \\ back $ dollar \${not} $${x} newline\nend";
  "esc.age".publicKeys = [ k.alice ];
}
