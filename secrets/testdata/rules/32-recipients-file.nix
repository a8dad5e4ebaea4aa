let
  lines = builtins.filter (l: builtins.isString l && l != "" && builtins.substring 0 1 l != "#")
    (builtins.split "\n" (builtins.readFile ./data/recipients.txt));
in
{ "from-file.age".publicKeys = lines; }
