// Package configs holds the services' default configuration files,
// configs/tasker (base/ and environments/), compiled into every binary so
// that the services and the first-run demo work from any working directory.
// These files are the one copy: operators read and edit them here, and
// adapters/config loads them from disk or, when no config directory exists,
// from this embedded tree.
package configs

import (
	"embed"
	"io/fs"
)

//go:embed tasker/base tasker/environments
var files embed.FS

// Tasker returns the compiled-in configs/tasker tree, rooted so that it
// contains base/ and environments/ like a config dir.
func Tasker() fs.FS {
	sub, err := fs.Sub(files, "tasker")
	if err != nil {
		// fs.Sub only fails for an invalid path literal: a programmer error.
		panic("configs: embedded tasker tree: " + err.Error())
	}
	return sub
}
