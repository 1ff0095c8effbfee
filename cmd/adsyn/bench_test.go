package main

import (
	"io"
	"strings"
	"testing"
)

// Flags a scenario does not act on are refused before anything runs,
// naming the flag and what the scenario takes.
func TestBenchRefusesFlagsAScenarioIgnores(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"segments", "--conns", "8"}, "--conns: the segments scenario does not use it"},
		{[]string{"stats", "--duration", "5s"}, "--duration: the stats scenario does not use it"},
		{[]string{"stats", "--rate", "100"}, "--rate: the stats scenario does not use it"},
		{[]string{"syndication", "--trace", "x"}, "--trace: the syndication scenario does not use it"},
		{[]string{"all", "--conns", "8"}, "--conns: the segments scenario does not use it"},
		{[]string{"stats", "--target", "http://127.0.0.1:1"}, "--target loads a running edge"},
	} {
		err := runBench(c.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}
