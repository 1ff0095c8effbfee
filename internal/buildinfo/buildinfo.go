package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Unknown stands for what the build did not record (a build without VCS
// stamping has no commit or time).
const Unknown = "unknown"

// Modules are the dependencies whose versions adsyn version prints.
var Modules = []string{"github.com/valyala/fasthttp", "github.com/nats-io/nats.go", "github.com/nats-io/nats-server/v2"}

// Module is a dependency and its version.
type Module struct {
	Path, Version string
}

// Info is what a binary was built from.
type Info struct {
	Version   string // the main module's version, "(devel)" from a work tree
	Revision  string // the VCS commit, "-dirty" with uncommitted changes
	Time      string // the commit's time (vcs.time)
	GoVersion string
	Modules   []Module // Modules, in that order; a missing one is Unknown
}

// Read returns the running binary's Info.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return From(bi)
}

// From returns the Info of bi; a nil bi gives Unknown everywhere.
func From(bi *debug.BuildInfo) Info {
	i := Info{Version: "(devel)", Revision: Unknown, Time: Unknown, GoVersion: Unknown}
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	if v := bi.Main.Version; v != "" {
		i.Version = v
	}
	if bi.GoVersion != "" {
		i.GoVersion = bi.GoVersion
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && i.Revision != Unknown {
		i.Revision += "-dirty"
	}
	for _, path := range Modules {
		m := Module{Path: path, Version: Unknown}
		for _, d := range bi.Deps {
			if d.Path != path {
				continue
			}
			m.Version = d.Version
			if d.Replace != nil {
				m.Version = strings.TrimSpace(d.Version + " => " + d.Replace.Path + " " + d.Replace.Version)
			}
		}
		i.Modules = append(i.Modules, m)
	}
	return i
}

// String is Info as adsyn version prints it.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "adsyn %s\n", i.Version)
	fmt.Fprintf(&b, "  commit      %s\n", i.Revision)
	fmt.Fprintf(&b, "  built       %s\n", i.Time)
	fmt.Fprintf(&b, "  go          %s\n", i.GoVersion)
	for _, m := range i.Modules {
		fmt.Fprintf(&b, "  %s %s\n", m.Path, m.Version)
	}
	return b.String()
}
