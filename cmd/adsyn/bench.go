package main

import (
	"errors"
	"io"
)

func bench(args []string, stdout, stderr io.Writer) error {
	return errors.New("bench: not yet")
}
