{
  ints = [ (1 + 2) (10 - 3 * 2) (7 / 2) (-7 / 2) (2 * -3) (- (4)) ];
  floats = [ (1.5 + 1) (10 / 4.0) (1.0 / 3) 2.5e3 0.001 1.0e-7 123456789.0 (0.1 + 0.2) ];
  cmp = [ (1 < 2) (2 <= 2) (3 > 4) ("a" < "b") ([ 1 2 ] < [ 1 3 ]) (1 == 1.0) ({ a = 1; } == { a = 1; }) ("x" != "y") ];
  logic = [ (true && false) (true || false) (false -> true) (!true) ];
  strs = "a" + "b" + toString 42 + toString 2.5 + toString true + toString false + toString null;
}
