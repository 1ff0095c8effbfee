package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/adsyn/adsyn/internal/buildinfo"
)

// version prints what this binary was built from.
func version(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("adsyn version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("version takes no arguments, got %q", fs.Args())
	}
	fmt.Fprint(stdout, buildinfo.Read())
	return nil
}
