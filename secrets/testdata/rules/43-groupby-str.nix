let
  files = [ "nas/a.age" "nas/b.age" "web/c.age" ];
  host = f: builtins.head (builtins.split "/" f);
in
{
  grouped = builtins.groupBy host files;
  lt = builtins.lessThan 1 2;
  ops = [ (builtins.add 1 2) (builtins.sub 5 3) (builtins.mul 2 3) (builtins.div 7 2) (builtins.div 7.0 2) ];
}
