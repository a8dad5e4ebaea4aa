let
  unused = throw "never evaluated";
  loop = loop;
  k = import ./keys/users.nix;
  lazyList = [ k.alice unused ];
in
{
  first = builtins.head lazyList;
  len = builtins.length lazyList;
  dflt = { }.missing or "default";
  cond = if true then "ok" else unused;
  short = false && unused;
  "lazy.age".publicKeys = [ (builtins.head lazyList) ];
}
