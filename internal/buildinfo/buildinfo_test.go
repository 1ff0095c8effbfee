package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFrom(t *testing.T) {
	for _, c := range []struct {
		name string
		bi   *debug.BuildInfo
		want Info
	}{{
		name: "a release built from a clean tree",
		bi: &debug.BuildInfo{
			GoVersion: "go1.26.0",
			Main:      debug.Module{Path: "github.com/adsyn/adsyn", Version: "v1.4.2"},
			Deps: []*debug.Module{
				{Path: "github.com/nats-io/nats.go", Version: "v1.55.0"},
				{Path: "github.com/valyala/fasthttp", Version: "v1.78.0"},
				{Path: "github.com/nats-io/nats-server/v2", Version: "v2.15.2",
					Replace: &debug.Module{Path: "../nats-server", Version: ""}},
			},
			Settings: []debug.BuildSetting{
				{Key: "vcs", Value: "git"},
				{Key: "vcs.revision", Value: "bef6f35c0ffee"},
				{Key: "vcs.time", Value: "2026-12-05T17:00:00Z"},
				{Key: "vcs.modified", Value: "false"},
			},
		},
		want: Info{Version: "v1.4.2", Revision: "bef6f35c0ffee", Time: "2026-12-05T17:00:00Z", GoVersion: "go1.26.0",
			Modules: []Module{{"github.com/valyala/fasthttp", "v1.78.0"}, {"github.com/nats-io/nats.go", "v1.55.0"},
				{"github.com/nats-io/nats-server/v2", "v2.15.2 => ../nats-server"}}},
	}, {
		name: "a work tree with changes",
		bi: &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/adsyn/adsyn", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}},
		want: Info{Version: "(devel)", Revision: "abc-dirty", Time: "unknown", GoVersion: "go1.26.0",
			Modules: []Module{{"github.com/valyala/fasthttp", "unknown"}, {"github.com/nats-io/nats.go", "unknown"},
				{"github.com/nats-io/nats-server/v2", "unknown"}}},
	}, {
		name: "no build information",
		want: Info{Version: "(devel)", Revision: "unknown", Time: "unknown", GoVersion: "unknown",
			Modules: []Module{{"github.com/valyala/fasthttp", "unknown"}, {"github.com/nats-io/nats.go", "unknown"},
				{"github.com/nats-io/nats-server/v2", "unknown"}}},
	}} {
		t.Run(c.name, func(t *testing.T) {
			got := From(c.bi)
			if got.String() != c.want.String() {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

func TestStringOfARelease(t *testing.T) {
	i := Info{Version: "v1.4.2", Revision: "bef6f35", Time: "2026-12-05T17:00:00Z", GoVersion: "go1.26.0",
		Modules: []Module{{"github.com/valyala/fasthttp", "v1.78.0"}}}
	const want = "adsyn v1.4.2\n" +
		"  commit      bef6f35\n" +
		"  built       2026-12-05T17:00:00Z\n" +
		"  go          go1.26.0\n" +
		"  github.com/valyala/fasthttp v1.78.0\n"
	if got := i.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// Every binary knows the Go that built it, with or without VCS stamping.
func TestReadRunningBinary(t *testing.T) {
	if got := Read().GoVersion; got != runtime.Version() {
		t.Errorf("go version %q, runtime says %q", got, runtime.Version())
	}
}
