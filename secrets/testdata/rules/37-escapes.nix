{
  ctrl = "bell:\x07 nul-less \r\n";
  unicode = "héllo → ✓";
  dollar = "$ ${"in"} $$ $${x} \${y}";
  ind = ''
    $ ''${x} '''
    a\nb
  '';
  trailing = ''
    line
    '';
  interpAtStart = ''
    ${"x"}
      y
  '';
}
