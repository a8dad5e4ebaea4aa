{
  hostName = "web";
  key = builtins.readFile ../../pubkeys/web.pub;
  secrets = [ "tls" ];
  armor = true;
}
