{
  exists = [ (builtins.pathExists ./pubkeys/alice.pub) (builtins.pathExists ./nope.pub) (builtins.pathExists ./pubkeys) ];
  base = builtins.baseNameOf "/a/b/c.age";
  dir = builtins.dirOf "/a/b/c.age";
  key = builtins.readFile (./pubkeys + "/alice.pub");
  keyStr = builtins.readFile "${toString ./pubkeys}/nas.pub";
  isPath = builtins.isPath ./.;
  strPath = builtins.baseNameOf (toString ./pubkeys/alice.pub);
}
