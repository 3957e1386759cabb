package cmd

import (
	"fmt"
	"runtime"
)

// Set at build time with -ldflags "-X github.com/hcistorage/storage-webhook/cmd.version=...".
var (
	version = "dev"
	commit  = "unknown"
)

// VersionString is what `storage-webhook version` prints.
func VersionString() string {
	return fmt.Sprintf("storage-webhook %s (commit %s, %s)", version, commit, runtime.Version())
}
