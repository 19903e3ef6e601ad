package config

import (
	"embed"
	"io/fs"
)

// defaultFiles is a copy of configs/tasker (base/ and environments/),
// compiled into every binary so the services and the first-run demo work
// from any working directory. TestEmbeddedFilesMatchConfigDir keeps the
// copy identical to configs/tasker.
//
//go:embed defaults
var defaultFiles embed.FS

// EmbeddedFiles returns the compiled-in configuration tree, rooted so that
// it contains base/ and environments/ like a config dir.
func EmbeddedFiles() fs.FS {
	sub, err := fs.Sub(defaultFiles, "defaults")
	if err != nil {
		// fs.Sub only fails for an invalid path literal: a programmer error.
		panic("config: embedded defaults: " + err.Error())
	}
	return sub
}
