package config

import (
	"io/fs"

	"github.com/tasker-systems/tasker-go/configs"
)

// EmbeddedFiles returns the compiled-in configuration tree (configs/tasker,
// embedded by package configs), rooted so that it contains base/ and
// environments/ like a config dir.
func EmbeddedFiles() fs.FS { return configs.Tasker() }
