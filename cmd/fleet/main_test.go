package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript scripts run `fleet` as a command in-process.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"fleet": func() { os.Exit(Main()) },
	})
}
