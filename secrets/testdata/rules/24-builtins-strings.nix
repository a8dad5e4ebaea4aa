let
  s = "ssh-ed25519 AAAAC3Nza host@example";
in
{
  len = builtins.stringLength s;
  sub = builtins.substring 0 11 s;
  subEnd = builtins.substring 12 100 s;
  repl = builtins.replaceStrings [ "ssh-" "host" ] [ "SSH:" "machine" ] s;
  replEmpty = builtins.replaceStrings [ "" ] [ "-" ] "abc";
  split = builtins.split " " s;
  splitGroups = builtins.split "(a)(x)?" "banana";
  match = builtins.match "([a-z0-9-]+) ([A-Za-z0-9+/=]+)( .*)?" s;
  noMatch = builtins.match "x" s;
  matchOpt = builtins.match "a(b)?c" "ac";
  concat = builtins.concatStringsSep ", " [ "a" "b" "c" ];
  typeChecks = [ (builtins.isList [ ]) (builtins.isAttrs { }) (builtins.isString "") (builtins.isString 1) (builtins.isInt 1) (builtins.isFunction (x: x)) (builtins.isBool null) ];
  types = map builtins.typeOf [ 1 1.0 "s" true null [ ] { } (x: x) ./pubkeys ];
}
