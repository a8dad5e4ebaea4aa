let
  fact = n: if n <= 1 then 1 else n * fact (n - 1);
  range = from: to: if from > to then [ ] else [ from ] ++ range (from + 1) to;
in
rec {
  f10 = fact 10;
  r = range 1 5;
  sum = builtins.foldl' (a: b: a + b) 0 r;
  even = builtins.filter (x: x / 2 * 2 == x) r;
}
