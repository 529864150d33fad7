// Package buildinfo says which relia this is: the version set at link time
// (-ldflags "-X github.com/relia-dev/relia/internal/buildinfo.Version=v1.2.3"),
// or the module version and VCS revision Go recorded in the binary.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Version is set at link time by release builds; empty otherwise.
var Version string

// String returns "relia VERSION (REVISION, GOVERSION)".
func String() string {
	v, rev := Version, ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	s := "relia " + v + " ("
	if rev != "" {
		s += rev + ", "
	}
	return s + runtime.Version() + ")"
}
