{
  json = builtins.toJSON { b = [ 1 2.5 "s" null true ]; a = { x = "q\"uote\n"; }; };
  roundtrip = builtins.fromJSON (builtins.toJSON { list = [ 1 2 ]; f = 1.5; });
  unicode = builtins.fromJSON ''{"e":"\u00e9\t\u0001","big":12345678901,"neg":-1.5e-3}'';
}
