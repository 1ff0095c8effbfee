package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/adsyn/adsyn/bench"
)

type scenario func(ctx context.Context, o bench.Options, progress io.Writer) ([]bench.Result, error)

func one(f func(context.Context, bench.Options, io.Writer) (bench.Result, error)) scenario {
	return func(ctx context.Context, o bench.Options, progress io.Writer) ([]bench.Result, error) {
		r, err := f(ctx, o, progress)
		return []bench.Result{r}, err
	}
}

var scenarios = map[string]scenario{
	"pixel":       bench.Pixel,
	"ad":          one(bench.Ad),
	"segments":    one(bench.Segments),
	"syndication": one(bench.Syndication),
	"stats":       one(bench.Stats),
	"soak":        one(bench.Soak), // every load at once, for --duration; not in "all"
}

// honours lists the flags each scenario acts on; any other flag set on the
// command line is refused rather than silently ignored.
var honours = map[string][]string{
	"pixel":       {"duration", "conns", "rounds", "rate", "target", "trace"},
	"ad":          {"duration", "conns", "rounds", "rate", "target", "nats", "nats-nkey", "trace"},
	"segments":    {"duration", "rounds", "rate"},
	"syndication": {"duration", "rounds", "rate"},
	"stats":       {"rounds"},
	"soak":        {"duration", "rate", "memprofile"},
}

// common flags every scenario takes.
var common = []string{"json", "cpuprofile"}

// refuseUnhonoured returns an error naming the first flag set on the
// command line that one of names does not act on.
func refuseUnhonoured(fs *flag.FlagSet, names []string) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err != nil || slices.Contains(common, f.Name) {
			return
		}
		for _, n := range names {
			if !slices.Contains(honours[n], f.Name) {
				err = fmt.Errorf("--%s: the %s scenario does not use it (it takes --%s)", f.Name, n, strings.Join(honours[n], ", --"))
				return
			}
		}
	})
	return err
}

// targetScenarios can load a running edge (--target).
var targetScenarios = []string{"pixel", "ad"}

// scenarioOrder is the order of "all".
var scenarioOrder = []string{"pixel", "segments", "ad", "syndication", "stats"}

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("adsyn bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "saturating load time per target, split into rounds")
	fs.IntVar(&o.Conns, "conns", 32, "client connections")
	fs.IntVar(&o.Rounds, "rounds", 5, "alternating target/ceiling rounds (the ratio is their median)")
	fs.Float64Var(&o.Rate, "rate", 0, "fixed-rate phase in req/s (0: half the throughput of the slower of adsyn and the ceiling)")
	fs.StringVar(&o.Target, "target", "", "load a running adsyn edge (URL) instead of one started in process (pixel, ad)")
	fs.StringVar(&o.NATS, "nats", "", "with --target, the NATS URL that edge uses; ad seeds its campaigns and records there (start the edge with --tcf-vendor-id 1001)")
	fs.StringVar(&o.NATSNKey, "nats-nkey", "", "with --nats, the NKey seed file that NATS requires (the edge's DATA/nats-adsyn.nk)")
	fs.StringVar(&o.HeapProfile, "memprofile", "", "soak: write heap profiles to FILE.start (after the first sample) and FILE.end (go tool pprof -base FILE.start FILE.end shows what grew)")
	fs.StringVar(&o.Trace, "trace", "", "write a Go execution trace of this process during adsyn's first fixed-rate round (go tool trace FILE)")
	asJSON := fs.Bool("json", false, "print one JSON object per scenario")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (all: one per scenario, FILE.<scenario>)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: adsyn bench <%s|all> [flags]\n", strings.Join(scenarioOrder, "|"))
		fs.PrintDefaults()
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Usage()
		return errors.New("name a scenario")
	}
	name := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if o.Rate < 0 {
		return errors.New("--rate must be 0 (half the slower side's throughput) or a positive req/s")
	}
	names := []string{name}
	if name == "all" {
		names = nil
		for _, n := range scenarioOrder {
			if scenarios[n] != nil {
				names = append(names, n)
			}
		}
	} else if scenarios[name] == nil {
		fs.Usage()
		return fmt.Errorf("unknown or not yet built scenario %q", name)
	}
	if o.Target != "" && !slices.Contains(targetScenarios, name) {
		return fmt.Errorf("--target loads a running edge: scenarios %s only", strings.Join(targetScenarios, ", "))
	}
	if err := refuseUnhonoured(fs, names); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if name == "all" {
		return runEach(ctx, names, fs, stdout, stderr)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	o.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: benchLogLevel()}))
	rs, err := scenarios[name](ctx, o, stderr)
	if err != nil {
		return fmt.Errorf("bench %s: %w", name, err)
	}
	for _, r := range rs {
		if *asJSON {
			if err := r.JSON(stdout); err != nil {
				return err
			}
		} else {
			r.Table(stdout)
		}
	}
	return nil
}

// runEach runs the scenarios of "all" one after the other, each in a
// process of its own. In one process a scenario slows those after it: after
// the ad scenario (whose heap peaked at 1.2 GB), the syndication scenario
// ran about a fifth slower, its ceiling too, so its figures said more about
// what ran before than about syndication.
func runEach(ctx context.Context, names []string, fs *flag.FlagSet, stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench all: %w", err)
	}
	for _, n := range names {
		cmd := exec.CommandContext(ctx, exe, scenarioArgs(n, fs)...)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		// Stopped as a terminal stops it, so it removes its data directory.
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 30 * time.Second
		fmt.Fprintf(stderr, "bench all: %s, in a process of its own\n", n)
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("bench %s: %w", n, err)
		}
	}
	return nil
}

// scenarioArgs is the command line that runs scenario n with the flags set
// on fs (every scenario honours them: refuseUnhonoured checked); a CPU
// profile goes to a file per scenario, FILE.<scenario>.
func scenarioArgs(n string, fs *flag.FlagSet) []string {
	args := []string{"bench", n}
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		if f.Name == "cpuprofile" {
			v += "." + n
		}
		args = append(args, "-"+f.Name+"="+v)
	})
	return args
}

// benchLogLevel is warnings, or debug with ADSYN_BENCH_DEBUG=1 (what the
// workers do, flush by flush, for whoever profiles a scenario).
func benchLogLevel() slog.Level {
	if os.Getenv("ADSYN_BENCH_DEBUG") == "1" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}
