// Command fleet brings NixOS machines up from bare metal with their secrets.
package main

import "os"

func main() { os.Exit(Main()) }
