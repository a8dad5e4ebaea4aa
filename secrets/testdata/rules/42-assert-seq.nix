let x = 3; in
assert x > 2;
{
  seq = builtins.seq x "done";
  deep = builtins.deepSeq [ 1 2 ] "deep";
  hash = builtins.hashString "sha256" "fleet";
  md5 = builtins.hashString "md5" "";
  trace = builtins.trace "msg" 1;
}
