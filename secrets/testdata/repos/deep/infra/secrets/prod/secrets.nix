with builtins;
let
  key = name: head (split "\n" (readFile (../../../pubkeys + "/${name}.pub")));
  alice = key "alice";
  router = key "router";
in
assert stringLength alice > 80;
{
  "router/pppoe.age".publicKeys = [ alice router ];
  "alice/gpg.age" = { publicKeys = [ alice ]; armor = true; };
}
