// Package buildinfo says what the running binary was built from: its
// version, commit, build time, Go version and the versions of the modules
// operators ask about, read from runtime/debug.ReadBuildInfo. adsyn version
// prints it and /metrics carries it as adsyn_build_info.
package buildinfo
