package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
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

// "all" hands each scenario's process the flags as they were set, each
// value read back as it was given, and a CPU profile file of its own.
func TestScenarioArgsCarryTheFlagsSet(t *testing.T) {
	parse := func(args []string) (*flag.FlagSet, *time.Duration, *int, *float64, *bool, *string) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		d := fs.Duration("duration", time.Second, "")
		n := fs.Int("rounds", 5, "")
		r := fs.Float64("rate", 0, "")
		j := fs.Bool("json", false, "")
		p := fs.String("cpuprofile", "", "")
		fs.Int("conns", 32, "") // left unset: not passed on
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return fs, d, n, r, j, p
	}
	fs, _, _, _, _, _ := parse([]string{"--duration", "1m30s", "-rounds=3", "--rate", "2500.5", "--json", "--cpuprofile", "/tmp/x.prof"})
	args := scenarioArgs("stats", fs)
	if args[0] != "bench" || args[1] != "stats" {
		t.Fatalf("args %q: want bench stats first", args)
	}
	for _, a := range args[2:] {
		if strings.HasPrefix(a, "-conns") {
			t.Errorf("args %q pass on --conns, which was not set", args)
		}
	}
	_, d, n, r, j, p := parse(args[2:])
	if *d != 90*time.Second || *n != 3 || *r != 2500.5 || !*j || *p != "/tmp/x.prof.stats" {
		t.Errorf("args %q read back as duration %v, rounds %d, rate %v, json %v, cpuprofile %q", args, *d, *n, *r, *j, *p)
	}
}
