// Command storage-webhook is the admission webhook for VM storage on Harvester/KubeVirt
// clusters that keep images and disks on third-party storage through CDI.
package main

import (
	"os"

	"github.com/hcistorage/storage-webhook/cmd"
)

func main() {
	os.Exit(cmd.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
