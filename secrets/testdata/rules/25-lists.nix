let xs = [ 3 1 2 ]; in
{
  head = builtins.head xs;
  tail = builtins.tail xs;
  len = builtins.length xs;
  elem = [ (builtins.elem 2 xs) (builtins.elem 5 xs) ];
  concat = builtins.concatLists [ [ 1 ] [ ] [ 2 3 ] ];
  filter = builtins.filter (x: x > 1) xs;
  sorted = builtins.sort (a: b: a < b) xs;
  gen = builtins.genList (i: i * i) 5;
  anyAll = [ (builtins.any (x: x == 1) xs) (builtins.all (x: x > 0) xs) ];
  nested = [ [ 1 [ 2 ] ] { a = [ ]; } ];
  partition = builtins.partition (x: x > 1) xs;
  catAttrs = builtins.catAttrs "a" [ { a = 1; } { b = 2; } { a = 3; } ];
}
