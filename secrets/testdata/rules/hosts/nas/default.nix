{
  hostName = "nas";
  key = builtins.readFile ../../pubkeys/nas.pub;
  secrets = [ "smb" "backup" ];
}
